"""The model graph walk: every layer of a model, nested ones included, in graph order.

``Model._flatten_layers()`` lists the layers of nested models in tracking order, which is not the
order the model computes them; the walk below follows each graph model's own topological order
and descends into nested models at the place where they are called.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import attrs

from .errors import did_you_mean
from .manager import InspectPluginManager, plugin_manager


@attrs.frozen(kw_only=True, eq=False)
class LayerEntry:
    """One layer found by the walk.

    :ivar path: layer names from the top model down to this layer, e.g. ``("backbone", "conv1")``.
    :ivar layer: the layer object.
    :ivar container: the model or layer that directly holds it.
    :ivar in_graph: whether every container on the path has a functional graph (so the layer's
        signals can be exposed by graph surgery rather than by call interception).
    """

    path: tuple[str, ...]
    layer: Any
    # The walk cache holds entries for as long as their model lives, so the top model is held
    # through a weak reference: a strong one would keep every walked model alive for ever.
    _container: Any
    in_graph: bool

    @property
    def container(self) -> Any:
        container = self._container
        if isinstance(container, weakref.ref):
            return container()
        return container

    @property
    def name(self) -> str:
        return "/".join(self.path)


def require_flavour(model: Any, pm: InspectPluginManager | None = None) -> Any:
    """The flavour adapter of ``model``; ``TypeError`` if ``model`` is not a Keras model."""
    pm = pm or plugin_manager()
    flavour = pm.flavour(model)
    if flavour is None or not flavour.is_layer(model):
        raise TypeError(
            f"expected a Keras model (keras.Model, or a tf_keras model); received "
            f"{_describe(model)}."
        )
    return flavour


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} of type {type(value).__module__}.{type(value).__qualname__}"


_cache_lock = threading.Lock()
_walk_cache: weakref.WeakKeyDictionary[Any, tuple[Any, tuple[LayerEntry, ...]]] = (
    weakref.WeakKeyDictionary()
)


def _signature(model: Any, flavour: Any) -> tuple[Any, ...]:
    # A model's sub-layers can change (Sequential.add/pop, late build); the walk is redone then.
    # A graph model is fixed by its input and output tensors (a Sequential gets new ones when it
    # changes), which are few; other models are compared by their list of sub-layers.
    if flavour.has_graph(model):
        return (flavour.name, True, *flavour.inputs(model), None, *flavour.outputs(model))
    return (flavour.name, False, *flavour.children(model))


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    # By identity: symbolic tensors overload ``==``.
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def walk(model: Any, *, pm: InspectPluginManager | None = None) -> tuple[LayerEntry, ...]:
    """Every layer of ``model`` in graph order, nested models' layers included.

    A nested model comes right before its own layers. Layers shared by several calls appear once,
    at their first call. Sub-layers of layers without a graph (subclassed layers and models)
    follow their owner in tracking order, marked ``in_graph=False``.
    """
    flavour = require_flavour(model, pm)
    signature = _signature(model, flavour)
    try:
        cached = _walk_cache.get(model)
    except TypeError:
        cached = None
    if cached is not None and _same(cached[0], signature):
        return cached[1]
    found: list[LayerEntry] = []
    _walk_into(found, model, flavour, (), True, set(), weakref.ref(model))
    entries = tuple(found)
    try:
        with _cache_lock:
            _walk_cache[model] = (signature, entries)
    except TypeError:
        pass
    return entries


def _walk_into(
    found: list[LayerEntry],
    container: Any,
    flavour: Any,
    prefix: tuple[str, ...],
    in_graph: bool,
    seen: set[int],
    holder: Any,
) -> None:
    # Plain recursion into a list, not generators: the first search of a model pays for this
    # walk over every layer (800+ in the large applications), most of them leaves.
    children = flavour.children(container)
    if not children:
        return
    graph = in_graph and flavour.has_graph(container)
    for child in children:
        key = id(child)
        if key in seen:
            continue
        seen.add(key)
        path = (*prefix, child.name)
        found.append(LayerEntry(path=path, layer=child, container=holder, in_graph=graph))
        _walk_into(found, child, flavour, path, graph, seen, child)


def walk_layers(model: Any) -> list[Any]:
    """The layers of :func:`walk`, without their paths."""
    return [entry.layer for entry in walk(model)]


def split_path(name: Any) -> tuple[str, ...]:
    """Normalise a layer name, a path string ``"a/b/c"`` or a sequence of names to a tuple."""
    if isinstance(name, str):
        parts = tuple(name.split("/"))
    elif isinstance(name, (tuple, list)):
        parts = tuple(name)
        if not all(isinstance(part, str) for part in parts):
            raise TypeError(
                f"a layer path must be a string or a sequence of strings; received {name!r}."
            )
    else:
        raise TypeError(
            f"a layer name must be a string, a path 'outer/inner' or a tuple/list of names; "
            f"received {_describe(name)}."
        )
    if not parts or any(not part for part in parts):
        raise ValueError(f"a layer path must contain non-empty names; received {name!r}.")
    return parts


def find_entry(model: Any, name: Any) -> LayerEntry:
    """The walk entry at a path; raises with close matches if there is none.

    Each step of a path first looks for a direct sub-layer of that name, so
    ``("backbone", "conv1")`` and ``"backbone/conv1"`` are exact. A single name that is not a
    direct sub-layer is looked up among all nested layers and must be unique there.
    """
    from .errors import LayerNotFoundError

    parts = split_path(name)
    entries = walk(model)
    by_path = {entry.path: entry for entry in entries}
    entry = by_path.get(parts)
    if entry is not None:
        return entry
    if len(parts) == 1:
        nested = [e for e in entries if e.path[-1] == parts[0]]
        if len(nested) == 1:
            return nested[0]
        if len(nested) > 1:
            raise LayerNotFoundError(
                f"Layer name {parts[0]!r} is ambiguous in model {model.name!r}: it names "
                f"{', '.join(repr(e.name) for e in nested)}. Pass the full path."
            )
    # Report the first step that fails, with the names available at that level.
    for depth in range(1, len(parts) + 1):
        if parts[:depth] not in by_path:
            siblings = [e.path[-1] for e in entries if e.path[:-1] == parts[: depth - 1]]
            where = f"model {model.name!r}" if depth == 1 else f"{'/'.join(parts[:depth - 1])!r}"
            hint = did_you_mean(parts[depth - 1], siblings)
            if not hint:
                hint = did_you_mean(parts[depth - 1], [e.path[-1] for e in entries])
                hint = hint.replace("Did you mean", "Nested layers with a close name:")
            raise LayerNotFoundError(
                f"No layer named {parts[depth - 1]!r} in {where} (path {'/'.join(parts)!r})."
                f"{hint}"
            )
    raise LayerNotFoundError(f"No layer at path {'/'.join(parts)!r} in model {model.name!r}.")


def find_layer_entry(model: Any, layer: Any) -> LayerEntry:
    """The walk entry of a layer object; ``ValueError`` if it is not part of ``model``."""
    from .errors import LayerNotFoundError

    for entry in walk(model):
        if entry.layer is layer:
            return entry
    raise LayerNotFoundError(
        f"Layer {getattr(layer, 'name', layer)!r} is not part of model {model.name!r}."
    )
