"""The structure of a model that its picture needs: groups, connections, and each search's path.

A summary lists layers; a picture also needs to know which layer feeds which, which layers
belong to a nested model or to a subclassed layer, and, to answer "why this layer?", the layers
each role search looked at before it stopped. Everything here is computed once, when the summary
is made, and kept as plain indices into the walk (:func:`keras_inspect.walk`), so the page is a
view of the same snapshot as the table.

Connections are drawn between the layers that compute: a nested graph model is a group, not a
node, so an edge into it goes to the inner layers its input feeds, and an edge out of it starts
at the inner layer that made its output. Keras operations that are not layers (``x[:, 0]``,
``keras.ops.add`` in a functional graph) are not in the walk; edges pass through them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from keras_inspect.answers.search import DEFAULT_STRATEGY, _candidates, classifier
from keras_inspect.errors import clip
from keras_inspect.graph.inspected import InspectedModel

#: What one layer of the walk is, for the picture.
LAYER, MODEL, OWNER = "layer", "model", "owner"


@attrs.frozen(kw_only=True)
class Terminal:
    """A model input or output, drawn as a small node that is not a layer.

    :ivar kind: ``"input"`` or ``"output"``.
    :ivar name: the input layer's name, or ``output N``.
    :ivar shape: the symbolic shape (``None`` where unknown).
    """

    kind: str
    name: str
    shape: tuple[Any, ...] | None = None


@attrs.frozen(kw_only=True)
class SearchPath:
    """The layers a search by ``role`` looked at, in its strategy's order, until it stopped.

    :ivar visited: indices into the walk; the last one is the answer when ``found``.
    :ivar error: why the replay could not run (a strategy that failed).
    """

    role: str
    strategy: str
    visited: tuple[int, ...] = ()
    found: bool = False
    error: str | None = None


@attrs.frozen(kw_only=True)
class GraphStructure:
    """The picture's view of a model (see the module docstring); indices follow the walk.

    :ivar rows: every layer's summary row (:class:`~keras_inspect.views.records.LayerRow`), in
        walk order, whatever the summary's role filter kept.
    :ivar parents: for each layer, the index of the group (nested model or subclassed layer)
        that holds it, ``None`` at the top.
    :ivar kinds: for each layer, ``"model"`` (a nested graph model: a group with edges inside),
        ``"owner"`` (a layer whose sub-layers were reached by interception) or ``"layer"``.
    :ivar terminals: the model's inputs then outputs; in ``edges`` they are numbered after the
        layers (terminal ``k`` is ``len(parents) + k``).
    :ivar edges: ``(producer, consumer)`` pairs, each once.
    :ivar search_paths: one per role, in the summary's role order.
    :ivar has_graph: whether the model itself has a functional graph (a subclassed model, or a
        Sequential never built, has none: no connections, its layers in tracking order).
    :ivar edges_error: why the connections could not be read (then there are none).
    """

    rows: tuple[Any, ...]
    parents: tuple[int | None, ...]
    kinds: tuple[str, ...]
    terminals: tuple[Terminal, ...] = ()
    edges: tuple[tuple[int, int], ...] = ()
    search_paths: tuple[SearchPath, ...] = ()
    has_graph: bool = True
    edges_error: str | None = None


def graph_structure(
    view: InspectedModel, roles: Sequence[str], rows: Sequence[Any]
) -> GraphStructure:
    """The :class:`GraphStructure` of an inspected model, for the given roles; ``rows`` are the
    summary's rows of every walked layer, in walk order."""
    entries = view.entries
    reader = view.reader
    # By path: a layer called in several models is walked (and drawn) at each place.
    index = {entry.path: i for i, entry in enumerate(entries)}
    parents = tuple(index.get(entry.path[:-1]) for entry in entries)
    has_children = {p for p in parents if p is not None}
    kinds = tuple(
        (MODEL if entry.in_graph and reader.has_graph(entry.layer) else OWNER)
        if i in has_children
        else LAYER
        for i, entry in enumerate(entries)
    )
    edges_error = None
    try:
        terminals, edges = _EdgeTracer(view, index, kinds).trace()
    except Exception as error:
        # A summary must not fail on a graph record it cannot follow; the page says so.
        terminals, edges = (), ()
        edges_error = f"{type(error).__name__}: {clip(str(error))}"
    return GraphStructure(
        rows=tuple(rows),
        parents=parents,
        kinds=kinds,
        terminals=terminals,
        edges=edges,
        search_paths=tuple(search_path(view, role, index) for role in roles),
        has_graph=reader.has_graph(view.model),
        edges_error=edges_error,
    )


def search_path(view: InspectedModel, role: str, index: dict[tuple[str, ...], int]) -> SearchPath:
    """Replay ``find_layer_with(model, role=role)``: the default strategy's order, asking the
    same (cached) classifier at each place, recording each layer until the first that plays
    the role."""
    visited: list[int] = []
    try:
        plays = classifier(view, role)
        for entry in _candidates(view, DEFAULT_STRATEGY):
            position = index.get(entry.path)
            if position is not None:  # a strategy may also yield input layers
                visited.append(position)
            if plays(entry.layer, entry)[0]:
                return SearchPath(
                    role=role, strategy=DEFAULT_STRATEGY, visited=tuple(visited), found=True
                )
    except Exception as error:
        # The summary already reports the search's own failure; the path just stops there.
        return SearchPath(
            role=role, strategy=DEFAULT_STRATEGY, visited=tuple(visited), error=str(error)
        )
    return SearchPath(role=role, strategy=DEFAULT_STRATEGY, visited=tuple(visited))


#: A graph model and where it sits: its path in the walk (``()`` for the model itself).
_Place = tuple[tuple[str, ...], Any]


class _EdgeTracer:
    """Follows every functional graph of the model (the top one and nested graph models)."""

    def __init__(
        self, view: InspectedModel, index: dict[tuple[str, ...], int], kinds: Sequence[str]
    ) -> None:
        self.view = view
        self.reader = view.reader
        self.index = index
        self.kinds = kinds
        self.top = view.model
        self.terminals: list[Terminal] = []
        self.inputs: dict[int, int] = {}

    def trace(self) -> tuple[tuple[Terminal, ...], tuple[tuple[int, int], ...]]:
        reader = self.reader
        if not reader.has_graph(self.top):
            return (), ()
        for tensor in reader.inputs(self.top):
            origin = reader.tensor_origin(tensor)
            name = getattr(origin[0], "name", None) if origin else None
            self.inputs[id(tensor)] = len(self.terminals)
            self.terminals.append(
                Terminal(kind="input", name=str(name or "input"), shape=_shape(tensor))
            )
        edges: dict[tuple[int, int], None] = {}
        places: list[_Place] = [((), self.top)] + [
            (e.path, e.layer) for i, e in enumerate(self.view.entries) if self.kinds[i] == MODEL
        ]
        for place in places:
            for consumer, tensor in self._consumed(place):
                for source in self._sources(tensor, place):
                    edges.setdefault((source, consumer), None)
        count = len(self.kinds)
        for k, tensor in enumerate(reader.outputs(self.top)):
            node = count + len(self.terminals)
            self.terminals.append(Terminal(kind="output", name=f"output {k}", shape=_shape(tensor)))
            for source in self._sources(tensor, ((), self.top)):
                edges.setdefault((source, node), None)
        # Input terminals were numbered before the outputs were known: shift them past layers.
        shifted = {(self._number(s), self._number(c)): None for s, c in edges}
        return tuple(self.terminals), tuple(shifted)

    def _number(self, node: int) -> int:
        return -node - 1 + len(self.kinds) if node < 0 else node

    def _at(self, place: _Place, layer: Any) -> int | None:
        """The walk index of ``layer`` as called in the graph at ``place``, if walked there."""
        position = self.index.get((*place[0], getattr(layer, "name", None)))
        if position is None or self.view.entries[position].layer is not layer:
            return None
        return position

    def _consumed(self, place: _Place) -> Iterable[tuple[int, Any]]:
        """``(consumer, input tensor)`` for each call in the graph at ``place`` of a walked
        layer that computes (not a nested graph model: its inner layers consume instead)."""
        reader = self.reader
        graph = reader.graph_of(place[1])
        if graph is None:
            return
        layered = reader.nodes_by_depth(graph)
        for depth in sorted(layered, reverse=True):
            for node in layered[depth]:
                layer = reader.node_layer(node)
                position = None if layer is None else self._at(place, layer)
                if position is None or self.kinds[position] == MODEL:
                    continue
                for tensor in reader.node_tensors(node, "input"):
                    yield position, tensor

    def _sources(self, tensor: Any, place: _Place) -> list[int]:
        """The nodes that produce ``tensor`` in the graph at ``place``: walk indices, or
        ``-k - 1`` for the model's input terminal ``k``."""
        reader = self.reader
        found: list[int] = []
        pending = [(tensor, place)]
        seen: set[tuple[int, tuple[str, ...]]] = set()
        while pending:
            tensor, place = pending.pop()
            key = (id(tensor), place[0])
            if key in seen:
                continue
            seen.add(key)
            origin = reader.tensor_origin(tensor)
            if origin is None:
                continue
            operation, node = origin
            if reader.node_layer(node) is None or (
                reader.is_layer(operation) and reader.is_input_layer(operation)
            ):
                pending.extend(self._outer_feeds(tensor, place, found))
                continue
            position = self._at(place, operation)
            if position is None:  # an operation that is not a layer: look through it
                pending.extend((t, place) for t in reader.node_tensors(node, "input"))
            elif self.kinds[position] == MODEL:
                # A nested model's output: the inner tensor it returns at the same place.
                outputs = reader.node_tensors(node, "output")
                inner = reader.outputs(operation)
                k = _position(outputs, tensor)
                if k is not None and k < len(inner):
                    pending.append((inner[k], (self.view.entries[position].path, operation)))
            else:
                found.append(position)
        return found

    def _outer_feeds(
        self, tensor: Any, place: _Place, found: list[int]
    ) -> list[tuple[Any, _Place]]:
        """A graph input: the model's own (a terminal), or what feeds a nested model in the
        graph that calls it (at every call)."""
        path, container = place
        if not path:
            terminal = self.inputs.get(id(tensor))
            if terminal is not None:
                found.append(-terminal - 1)
            return []
        reader = self.reader
        k = _position(reader.inputs(container), tensor)
        outer_path = path[:-1]
        outer = self.top if not outer_path else self.view.entries[self.index[outer_path]].layer
        if k is None:
            return []
        feeds = []
        for call in reader.calls(container, outer):
            given = reader.call_tensors(call, "input")
            if k < len(given):
                feeds.append((given[k], (outer_path, outer)))
        return feeds


def _position(tensors: Sequence[Any], tensor: Any) -> int | None:
    # By identity: symbolic tensors overload ``==``.
    return next((i for i, t in enumerate(tensors) if t is tensor), None)


def _shape(tensor: Any) -> tuple[Any, ...] | None:
    try:
        return tuple(None if d is None else int(d) for d in tensor.shape)
    except (AttributeError, TypeError, ValueError):
        return None
