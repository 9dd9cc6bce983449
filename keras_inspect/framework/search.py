"""Finding layers: by name or path, by class and properties, by role, under a strategy."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .errors import NoMatchingLayerError, did_you_mean
from .graph import find_entry, require_flavour, walk
from .manager import plugin_manager

DEFAULT_STRATEGY = "reverse"


def get_nested_layer(model: Any, name: Any) -> Any:
    """The layer at ``name``: a layer name, a path ``"outer/inner/layer"`` or a tuple of names."""
    require_flavour(model)
    return find_entry(model, name).layer


def resolve_strategy(name: Any) -> Any:
    """The strategy callable registered under ``name``; raises with close matches."""
    if not isinstance(name, str):
        raise TypeError(
            f"strategy must be the name of a search strategy (str); received {name!r} of type "
            f"{type(name).__name__}."
        )
    strategies = plugin_manager().strategies()
    if name not in strategies:
        raise ValueError(
            f"Unknown search strategy {name!r}.{did_you_mean(name, strategies)} Available: "
            f"{', '.join(sorted(strategies))}."
        )
    return strategies[name]


def _check_klass(klass: Any) -> tuple[type, ...] | None:
    if klass is None:
        return None
    classes = tuple(klass) if isinstance(klass, (tuple, list)) else (klass,)
    for c in classes:
        if not isinstance(c, type):
            raise TypeError(
                f"klass must be a class or a tuple of classes; received {klass!r}."
            )
    return classes


def _check_properties(properties: Any) -> tuple[str, ...] | None:
    if properties is None:
        return None
    names = (properties,) if isinstance(properties, str) else tuple(properties)
    for p in names:
        if not isinstance(p, str):
            raise TypeError(
                f"properties must be attribute names (str); received {properties!r}."
            )
    return names


def _has(layer: Any, name: str) -> bool:
    try:
        return hasattr(layer, name)
    except Exception:
        return False


def find_layer_with(
    model: Any,
    name: Any = None,
    properties: Sequence[str] | None = None,
    klass: Any = None,
    search_reversed: bool = True,
    *,
    role: str | None = None,
    strategy: str | None = None,
) -> Any:
    """The first layer, in the strategy's order, that has every asked-for trait.

    ``name`` short-circuits the search (see :func:`get_nested_layer`). Otherwise a layer must be
    an instance of ``klass`` (if given), have every attribute in ``properties`` and play
    ``role`` according to the plugins. The order is ``strategy`` if given, else ``"reverse"``
    (last to first in graph order) or, with ``search_reversed=False``, ``"forward"``.
    """
    if name is None and properties is None and klass is None and role is None:
        raise ValueError(
            "find_layer_with needs at least one of name, properties, klass or role to say "
            "which layer to find; all were None."
        )
    require_flavour(model)
    if name is not None:
        return get_nested_layer(model, name)
    classes = _check_klass(klass)
    names = _check_properties(properties)
    pm = plugin_manager()
    if role is not None:
        pm.check_role(role)
    if strategy is None:
        strategy = DEFAULT_STRATEGY if search_reversed else "forward"
    order = resolve_strategy(strategy)
    try:
        candidates: Iterable[Any] = order(model)
        iterator = iter(candidates)
    except Exception as error:
        raise ValueError(
            f"search strategy {strategy!r} failed on model {getattr(model, 'name', model)!r}: "
            f"{type(error).__name__}: {error}"
        ) from error
    # Bound once: the classifier caches answers per layer for this generation of plugins.
    plays = pm._classifier(role) if role is not None else None
    for layer in _guarded(iterator, strategy, model):
        if classes is not None and not isinstance(layer, classes):
            continue
        if names is not None and not all(_has(layer, p) for p in names):
            continue
        if plays is not None and not plays(layer)[0]:
            continue
        return layer
    criteria = ", ".join(
        f"{k}={v!r}"
        for k, v in (("role", role), ("klass", klass), ("properties", properties))
        if v is not None
    )
    raise NoMatchingLayerError(
        f"No layer of model {getattr(model, 'name', model)!r} matches {criteria} "
        f"(searched with strategy {strategy!r}). Pass the layer's name explicitly, or register "
        "its type with keras_inspect.register_layer(..., roles=...)."
    )


def _guarded(iterator: Iterator[Any], strategy: str, model: Any) -> Iterator[Any]:
    """The strategy's layers; an error raised while producing them names the strategy."""
    while True:
        try:
            layer = next(iterator)
        except StopIteration:
            return
        except Exception as error:
            raise ValueError(
                f"search strategy {strategy!r} failed on model "
                f"{getattr(model, 'name', model)!r}: {type(error).__name__}: {error}"
            ) from error
        yield layer


def get_logits_layer(model: Any, name: Any = None) -> Any:
    """The layer that produces the logits: by default the last layer (in graph order) with a kernel."""
    return find_layer_with(model, name, role="logits")


def get_global_pooling_layer(model: Any, name: Any = None) -> Any:
    """The last global pooling layer (or ``Flatten``) in graph order."""
    return find_layer_with(model, name, role="pooling")


_role_lock = threading.Lock()
# model -> role -> (plugin state, walk entries, layers): valid while both are the current ones.
_by_role: weakref.WeakKeyDictionary[Any, dict[str, tuple[Any, Any, tuple[Any, ...]]]] = (
    weakref.WeakKeyDictionary()
)


def layers_with_role(model: Any, role: str) -> list[Any]:
    """Every layer of ``model`` (nested ones included) that plays ``role``, in graph order.

    The answer is remembered per model and role until the model's layers or the registered
    plugins change, so asking again (e.g. for the normalization layers of a model on every
    batch of an explanation loop) costs a few look-ups, not a pass over the layers.
    """
    entries = walk(model)
    pm = plugin_manager()
    state = pm._state
    try:
        cached = _by_role.get(model, {}).get(role)
    except TypeError:  # an unhashable role, or a model without weak references
        cached = None
    if cached is not None and cached[0] is state and cached[1] is entries:
        return list(cached[2])
    pm.check_role(role)
    plays = pm._classifier(role)
    found = tuple(entry.layer for entry in entries if plays(entry.layer)[0])
    # A layer's roles may change when it gets built (its weights appear), never afterwards.
    if all(getattr(entry.layer, "built", True) for entry in entries):
        try:
            with _role_lock:
                _by_role.setdefault(model, {})[role] = (state, entries, found)
        except TypeError:
            pass
    return list(found)
