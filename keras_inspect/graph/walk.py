"""The model graph walk: every layer of a model, nested ones included, in graph order.

``Model._flatten_layers()`` lists the layers of nested models in tracking order, which is not the
order the model computes them; the walk below follows each graph model's own topological order
and descends into nested models at the place where they are called.
"""

from __future__ import annotations

import weakref
from typing import Any

import attrs

from keras_inspect.errors import describe
from keras_inspect.graph.reader import GraphReader


@attrs.frozen(kw_only=True, eq=False)
class LayerEntry:
    """One layer found by the walk.

    A layer called in several models (a token embedding called by a backbone, then in reverse
    by the language model around it) has one entry at each place, each with its own path.

    :ivar path: layer names from the top model down to this layer, e.g. ``("backbone", "conv1")``.
    :ivar layer: the layer object.
    :ivar container: the model or layer that directly holds it.
    :ivar in_graph: whether every container on the path has a functional graph (so the layer's
        signals can be exposed by graph surgery rather than by call interception).
    :ivar calls: the layer's calls recorded in its container's graph, oldest first (empty for a
        layer inside a subclassed layer); the flavour's node objects.
    """

    path: tuple[str, ...]
    layer: Any
    # Entries are cached for as long as their model lives, so the top model is held through a
    # weak reference: a strong one would keep every walked model alive for ever.
    _container: Any
    in_graph: bool
    # The calls, or the graph reader that reads them on first use: most entries are never
    # asked, and reading every layer's calls during the walk made the first search of a large
    # model half again as slow. One field, not two: each field of a frozen class costs the walk
    # a set-attribute per layer.
    _calls: tuple[Any, ...] | GraphReader = ()

    @property
    def calls(self) -> tuple[Any, ...]:
        calls = self._calls
        if isinstance(calls, tuple):
            return calls
        container = self.container
        found = () if container is None else tuple(calls.calls(self.layer, container))
        object.__setattr__(self, "_calls", found)  # frozen for users; filled in once, here
        return found

    @property
    def container(self) -> Any:
        container = self._container
        if isinstance(container, weakref.ref):
            return container()
        return container

    @property
    def name(self) -> str:
        return "/".join(self.path)


def walk_graph(reader: GraphReader, model: Any) -> tuple[LayerEntry, ...]:
    """Every layer of ``model`` in graph order (see :func:`keras_inspect.walk`)."""
    found: list[LayerEntry] = []
    _walk_into(found, reader, model, (), True, weakref.ref(model))
    return tuple(found)


def _walk_into(
    found: list[LayerEntry],
    reader: GraphReader,
    container: Any,
    prefix: tuple[str, ...],
    in_graph: bool,
    holder: Any,
) -> None:
    # Plain recursion into a list, not generators: the first search of a model pays for this
    # walk over every layer (800+ in the large applications), most of them leaves.
    children = reader.children(container)
    if not children:
        return
    graph = in_graph and reader.has_graph(container)
    seen: set[int] = set()  # a layer called several times here is one entry here
    for child in children:
        key = id(child)
        if key in seen:
            continue
        seen.add(key)
        path = (*prefix, child.name)
        found.append(
            LayerEntry(
                path=path, layer=child, container=holder, in_graph=graph,
                calls=reader if graph else (),
            )
        )
        _walk_into(found, reader, child, path, graph, child)


def graph_signature(reader: GraphReader, model: Any) -> tuple[Any, ...]:
    """What the walk of ``model`` depends on: compared by identity to know it is still valid.

    A model's sub-layers can change (``Sequential.add``/``pop``, a late build). A graph model is
    fixed by its graph, whose nodes-by-depth mapping both flavours build anew whenever the graph
    changes (a Sequential that gets a layer gets a new one): two identities, checked on every
    public call, cheaply. Other models are compared by their list of sub-layers.
    """
    graph = reader.graph_of(model)
    if graph is not None:
        return (reader.name, graph, reader.nodes_by_depth(graph))
    return (reader.name, None, *reader.children(model))


def same_signature(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    # By identity: symbolic tensors overload ``==``.
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def split_path(name: Any) -> tuple[str, ...]:
    """Normalise a layer name, a path string ``"a/b/c"`` or a sequence of names to a tuple."""
    if isinstance(name, str):
        parts = tuple(name.split("/"))
    elif isinstance(name, (tuple, list)):
        parts = tuple(name)
        if not all(isinstance(part, str) for part in parts):
            raise TypeError(
                f"a layer path must be a string or a sequence of strings; received "
                f"{describe(name)}."
            )
    else:
        raise TypeError(
            "a layer name must be a string, a path 'outer/inner' or a tuple/list of names; "
            f"received {describe(name)}."
        )
    if not parts or any(not part for part in parts):
        raise ValueError(f"a layer path must contain non-empty names; received {describe(name)}.")
    return parts
