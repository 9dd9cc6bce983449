"""Finding layers: in graph order, by name or path, by class and properties, by role.

Roles come from the plugins (``keras_inspect_classify_layer``); a search remembers each answer
in its model's :class:`~keras_inspect.graph.inspected.InspectedModel`, so searching a
large model again costs a dictionary look-up per layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from keras_inspect.autograph import plain_python
from keras_inspect.errors import (
    NoMatchingLayerError,
    PluginError,
    clip,
    describe,
    did_you_mean,
    shorten,
)  # fmt: skip
from keras_inspect.graph.inspected import InspectedModel, inspect_model
from keras_inspect.graph.walk import LayerEntry
from keras_inspect.hooks.manager import InspectPluginManager

DEFAULT_STRATEGY = "reverse"

#: ``(layer, entry) -> (plays the role, plugin that decided)``, remembered per model.
Classifier = Callable[..., tuple[bool, "str | None"]]


@plain_python
def walk(model: Any, *, pm: InspectPluginManager | None = None) -> tuple[LayerEntry, ...]:
    """Every layer of ``model`` in graph order, nested models' layers included.

    A nested model comes right before its own layers. A layer called several times in one model
    appears once there; a layer called in several models (nested ones included) appears at each,
    with its path there. Sub-layers of layers without a graph (subclassed layers and models)
    follow their owner in tracking order, marked ``in_graph=False``.
    """
    return inspect_model(model, pm).entries


@plain_python
def get_nested_layer(model: Any, name: Any) -> Any:
    """The layer at ``name``: a layer name, a path ``"outer/inner/layer"`` or a tuple of names."""
    return inspect_model(model).entry(name).layer


def classifier(view: InspectedModel, role: str) -> Classifier:
    """``(layer, entry=None) -> view.pm.classify(layer, role, entry)``, remembered per model,
    role and place (a layer called in two models may play a role at one place only).

    An answer is reused while the layer's ``built`` flag is unchanged: a layer's roles may
    change when it gets built (its weights appear), never afterwards.
    """
    cache = view.cache("classified").setdefault(role, {})
    classify = view.pm.classify

    def plays(layer: Any, entry: LayerEntry | None = None) -> tuple[bool, str | None]:
        built = getattr(layer, "built", None)
        key = (id(layer), None if entry is None else entry.path)
        hit = cache.get(key)
        if hit is not None and hit[0] == built:
            return hit[1]
        answer = classify(layer, role, entry)
        cache[key] = (built, answer)
        return answer

    return plays


def resolve_strategy(pm: InspectPluginManager, name: Any) -> Callable[[Any], Iterable[Any]]:
    """The strategy callable registered under ``name``; raises with close matches."""
    if not isinstance(name, str):
        raise TypeError(
            f"strategy must be the name of a search strategy (str); received {describe(name)}."
        )
    strategies = pm.strategy_table()
    if name not in strategies:
        raise ValueError(
            f"Unknown search strategy {shorten(name)}.{did_you_mean(name, strategies)} "
            f"Available: {', '.join(sorted(strategies))}."
        )
    return strategies[name]


def _classes(klass: Any) -> tuple[type, ...] | None:
    if klass is None:
        return None
    classes = tuple(klass) if isinstance(klass, (tuple, list)) else (klass,)
    if not all(isinstance(c, type) for c in classes):
        raise TypeError(f"klass must be a class or a tuple of classes; received {describe(klass)}.")
    return classes


def _property_names(properties: Any) -> tuple[str, ...] | None:
    if properties is None:
        return None
    if isinstance(properties, str):
        return (properties,)
    if not isinstance(properties, (list, tuple, set, frozenset)) or not all(
        isinstance(p, str) for p in properties
    ):
        raise TypeError(
            "properties must be an attribute name or a list of attribute names (str); "
            f"received {describe(properties)}."
        )
    return tuple(properties)


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False; received {describe(value)}.")


def _has(layer: Any, name: str) -> bool:
    try:
        return hasattr(layer, name)
    except Exception:
        return False


@plain_python
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
    view = inspect_model(model)
    if name is None and properties is None and klass is None and role is None:
        raise ValueError(
            "find_layer_with needs at least one of name, properties, klass or role to say "
            "which layer to find; all were None."
        )
    if name is not None:
        return view.entry(name).layer
    criteria = {"properties": properties, "klass": klass, "search_reversed": search_reversed}
    return find_in(view, role, strategy=strategy, **criteria)


def find_in(view: InspectedModel, role: str | None = None, **criteria: Any) -> Any:
    """:func:`find_layer_with` (without ``name``) on a model already inspected; ``criteria``
    are its ``properties``, ``klass``, ``search_reversed`` and ``strategy``."""
    return find_entry(view, role, **criteria).layer


def find_entry(view: InspectedModel, role: str | None = None, **criteria: Any) -> LayerEntry:
    """:func:`find_in`'s answer with its place in the model (which call of a layer called
    in several models matched)."""
    properties, klass = criteria.get("properties"), criteria.get("klass")
    search_reversed, strategy = criteria.get("search_reversed", True), criteria.get("strategy")
    classes = _classes(klass)
    names = _property_names(properties)
    reverse = _flag(search_reversed, "search_reversed")
    pm = view.pm
    plays = classifier(view, pm.check_role(role)) if role is not None else None
    if strategy is None:
        strategy = DEFAULT_STRATEGY if reverse else "forward"
    for entry in _candidates(view, strategy):
        layer = entry.layer
        if classes is not None and not isinstance(layer, classes):
            continue
        if names is not None and not all(_has(layer, p) for p in names):
            continue
        if plays is not None and not plays(layer, entry)[0]:
            continue
        return entry
    criteria = ", ".join(
        f"{k}={shorten(v)}"
        for k, v in (("role", role), ("klass", klass), ("properties", properties))
        if v is not None
    )
    raise NoMatchingLayerError(
        f"No layer of model {view.name!r} matches {criteria} (searched with strategy "
        f"{strategy!r}). Pass the layer's name explicitly, or register its type with "
        "keras_inspect.register_layer(..., roles=...)." + _no_graph_hint(view)
    )


def _no_graph_hint(view: InspectedModel) -> str:
    if view.reader.has_graph(view.model):
        return ""
    return (
        f" Note: model {view.name!r} has no functional graph (a subclassed model, or a "
        "Sequential that was never built), so its layers may have no weights yet; build it on "
        f"an input first, e.g. Sequential([{view.reader.input_call}, ...])."
    )


def _candidates(view: InspectedModel, strategy: str) -> Iterator[LayerEntry]:
    """The strategy's layers, each checked to be a layer of the model, as entries, and no more
    of them than the model has places of layers and input layers (an endless strategy would hang
    every search); a failure is a :class:`PluginError` naming the strategy and the plugin that
    offered it. A strategy that offers ``entries(model)`` (the built-in ones) gives each place
    of a layer called in several models as its own candidate; a layer yielded by another is
    taken at its last place (see ``InspectedModel.entry_of``)."""
    order = resolve_strategy(view.pm, strategy)
    order = getattr(order, "entries", order)
    model = view.model

    def by_plugin(what: str) -> str:
        owner = shorten(view.pm.strategy_owner(strategy))
        return f"search strategy {strategy!r} of plugin {owner} {what}"

    def failed(error: BaseException) -> PluginError:
        return PluginError(
            by_plugin(f"failed on model {view.name!r}")
            + f": {type(error).__name__}: {clip(str(error))}"
        )

    try:
        iterator = iter(order(model))
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        raise failed(error) from error
    yielded, limit = 0, len(view.entries)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except KeyboardInterrupt:
            raise
        except BaseException as error:
            raise failed(error) from error
        yielded += 1
        if yielded > limit:
            limit = _most_candidates(view)  # counted only when the layers alone are exceeded
            if yielded > limit:
                raise PluginError(
                    by_plugin(f"yielded more than {limit} layers of model {view.name!r}")
                    + ", the number of its layers and input layers; a strategy yields each "
                    "layer at most once (is it endless?)."
                )
        if isinstance(item, LayerEntry) and view.has_layer(item.layer):
            yield item
        elif view.has_layer(item):
            yield view.entry_of(item)
        elif view.reader.is_layer(item) and view.reader.is_input_layer(item):
            yield view.entry_of(item, inputs=True)
        else:
            raise PluginError(
                by_plugin(f"yielded {describe(item)}, which is not a layer of model {view.name!r}")
                + "; a strategy must yield the model's own layers."
            )


def _most_candidates(view: InspectedModel) -> int:
    """The model's layers, nested ones included, plus the input layers of it and of each nested
    model: what a strategy can yield without repeating a layer."""
    count = len(view.entries)
    for owner in (view.model, *(entry.layer for entry in view.entries)):
        try:
            inputs = owner.inputs if view.reader.is_model(owner) else None
        except Exception:
            inputs = None
        count += len(inputs) if isinstance(inputs, (list, tuple)) else 0
    return count


@plain_python
def get_logits_layer(model: Any, name: Any = None) -> Any:
    """The layer that produces the logits: by default the last layer (in graph order) with a kernel."""
    return find_layer_with(model, name, role="logits")


@plain_python
def get_global_pooling_layer(model: Any, name: Any = None) -> Any:
    """The last global pooling layer (or ``Flatten``) in graph order."""
    return find_layer_with(model, name, role="pooling")


@plain_python
def layers_with_role(model: Any, role: str) -> list[Any]:
    """Every layer of ``model`` (nested ones included) that plays ``role``, in graph order.

    The answer is remembered per model and role until the model's layers or the registered
    plugins change, so asking again (e.g. for the normalization layers of a model on every
    batch of an explanation loop) costs a look-up, not a pass over the layers.
    """
    view = inspect_model(model)
    cache = view.cache("by_role")
    try:
        found = cache.get(role)
    except TypeError:  # an unhashable role: check_role below explains
        found = None
    if found is None:
        plays = classifier(view, view.pm.check_role(role))
        # A layer playing the role at several places is listed once, at the first.
        matched = {}
        for entry in view.entries:
            if id(entry.layer) not in matched and plays(entry.layer, entry)[0]:
                matched[id(entry.layer)] = entry.layer
        found = tuple(matched.values())
        # A layer's roles may change when it gets built (its weights appear), never afterwards.
        if all(getattr(entry.layer, "built", True) for entry in view.entries):
            cache[role] = found
    return list(found)


def role_decisions(
    view: InspectedModel, entry: LayerEntry, roles: Iterable[str]
) -> list[tuple[str, str | None]]:
    """``(role, deciding plugin)`` for each of ``roles`` the layer of ``entry`` plays there
    (for summaries)."""
    decided = []
    for role in roles:
        plays, plugin = classifier(view, role)(entry.layer, entry)
        if plays:
            decided.append((role, plugin))
    return decided
