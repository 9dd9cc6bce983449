"""Symbolic tensors for signals anywhere in a model, connected to the model's own inputs.

A signal in the top model's graph is one of its symbolic tensors. A signal inside a nested graph
model is made reachable by calling, where the nested model was called, a flat sub-model over the
nested model's *existing* graph that also returns the wanted signals; the enclosing graph is
re-traced around that call, and only the operations downstream of it are called again. No inner
layer is called again, every layer object (and so every weight) is shared, and each layer is
computed once by the new model.

Two requests need a changed call rather than an existing tensor, and are served by substituting
one node while its graph is re-traced (the graph reader provides both):

- ``link="pre_activation"`` on a layer with a fused activation: the node becomes the layer
  without its activation followed by the activation;
- a layer inside a subclassed layer (no graph): the enclosing layer's node becomes a wrapper that
  intercepts the inner layer's call.

Results are cached in the model's :class:`InspectedModel`, so asking again adds no nodes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from keras_inspect.graph.endpoints import Endpoint, locate
from keras_inspect.errors import EndpointError, name_of, shorten
from keras_inspect.graph.reader import GraphReader, graph_lock
from keras_inspect.graph.inspected import InspectedModel


class _Request:
    """One wanted signal, relative to the container currently being processed."""

    __slots__ = ("endpoint", "rest")

    def __init__(self, endpoint: Endpoint, rest: tuple[str, ...]) -> None:
        self.endpoint = endpoint
        self.rest = rest  # path below the current container


def require_graph(view: InspectedModel) -> None:
    """Raise the error that explains why a model without a functional graph cannot do this."""
    if not view.reader.has_graph(view.model):
        raise EndpointError(
            f"Model {view.name!r} has no functional graph (a subclassed model, or a Sequential "
            f"that was never built): build it on an input first, e.g. "
            f"Sequential([{view.reader.input_call}, ...])."
        )


@contextlib.contextmanager
def failing_leaves_nothing(view: InspectedModel) -> Iterator[None]:
    """If the block fails, remove the calls it added to the model's layers and forget what it
    cached over them: a failed request leaves the model (and the caches) as they were."""
    before = view.cache_keys()
    try:
        with view.reader.undo_calls_on_failure(view.layers()):
            yield
    except BaseException:
        view.forget_since(before)
        raise


def connected_tensors(
    view: InspectedModel, endpoints: Sequence[Endpoint], *, signals_only: bool = False
) -> list[Any]:
    """Symbolic tensors of ``endpoints`` connected to the model's own inputs, flattened in order.

    With ``signals_only`` the tensors are meant to be the only outputs of a new model (the body
    of :func:`~keras_inspect.split`): nested models then compute only what the signals need,
    and nothing downstream of a signal is called again. Remembered per model, so asking again
    adds no nodes to the model's layers.
    """
    groups = connected_groups(view, endpoints, signals_only=signals_only)
    return [t for group in groups for t in group]


def connected_groups(
    view: InspectedModel, endpoints: Sequence[Endpoint], *, signals_only: bool = False
) -> list[list[Any]]:
    """:func:`connected_tensors`, one list of tensors per endpoint."""
    require_graph(view)

    def build() -> list[list[Any]]:
        requests = [_Request(endpoint, endpoint.path) for endpoint in endpoints]
        return _taps(view, view.model, requests, signals_only)[0]

    found = built_once(view, "connected", (signals_only, *endpoints), build)
    return [list(group) for group in found]


def built_once(view: InspectedModel, kind: str, key: Any, build: Callable[[], Any]) -> Any:
    """``build()``, remembered in ``view``'s cache of ``kind`` under ``key``.

    Built under the graph lock (two threads asking at once build it once) and so that a failure
    leaves the model and the caches as they were (:func:`failing_leaves_nothing`).
    """
    cache = view.cache(kind)
    found = cache.get(key)
    if found is None:
        with graph_lock:
            found = cache.get(key)  # another thread may have built it while this one waited
            if found is None:
                with failing_leaves_nothing(view):
                    found = cache[key] = build()
    return found


def _taps(
    view: InspectedModel, container: Any, requests: list[_Request], signals_only: bool
) -> tuple[list[list[Any]], dict[int, Any]]:
    """For each request, its tensors in ``container``'s graph (connected to its inputs).

    Also returns the re-trace mapping (``id`` of an original tensor -> its new counterpart),
    empty when nothing had to be re-traced.
    """
    reader = view.reader
    results: list[list[Any] | None] = [None] * len(requests)
    substitutes: dict[int, Any] = {}
    collected: dict[int, list[list[list[Any]]]] = {}
    # request position -> (key of the substitute that yields it, index among its signals)
    pending: dict[int, tuple[int, int]] = {}
    for child, positions in by_child(reader, container, requests).items():
        sub_requests = [_Request(requests[p].endpoint, requests[p].rest[1:]) for p in positions]
        if reader.has_graph(child):
            call = _nested_call(view, child, sub_requests, signals_only)
        else:
            call = _intercepted_call(reader, child, sub_requests)
        sink = collected.setdefault(id(child), [])
        if signals_only:
            for node in reader.calls(child, container):
                keep = reader.call_tensors(node, "output")
                substitutes[id(node)] = _collecting(call, sink, keep)
        else:
            substitutes[id(child)] = _collecting(call, sink)
        for offset, position in enumerate(positions):
            pending[position] = (id(child), offset)

    located = {}
    for position, request in enumerate(requests):
        if len(request.rest) != 1:
            continue
        item = locate(view, request.endpoint)
        located[position] = item
        layer = item.entry.layer
        if request.endpoint.link == "pre_activation" and reader.activation_of(layer):
            key = id(item.call)
            if key not in substitutes:
                tag = call_tag(reader, layer, container, item.call)
                call = _split_call(reader, layer, tag)
                keep = reader.call_tensors(item.call, "output") if signals_only else None
                substitutes[key] = _collecting(call, collected.setdefault(key, []), keep)
            pending[position] = (key, 0)

    mapping = reader.retrace(container, reader.inputs(container), substitutes) if substitutes else {}
    for position, (key, offset) in pending.items():
        found = collected_signal(collected, key, offset, requests[position].endpoint, container)
        results[position] = _select(found, requests[position].endpoint)
    for position, item in located.items():
        if results[position] is None:
            results[position] = [mapping.get(id(t), t) for t in item.tensors]
    return [r if r is not None else [] for r in results], mapping


def collected_signal(
    sinks: dict[int, list[list[list[Any]]]], key: int, offset: int, endpoint: Endpoint, container: Any
) -> list[Any]:
    """The tensors a substitute recorded for one signal at its last call; an error if the
    substitute never ran (the signal is not computed from the container's inputs)."""
    calls = sinks.get(key)
    if not calls:
        raise EndpointError(
            f"{shorten(endpoint.name)} lies in a part of {name_of(container)!r} that is not "
            "computed from its inputs; it cannot be reached."
        )
    return list(calls[-1][offset])


def _collecting(call: Any, sink: list, keep: list[Any] | None = None) -> Any:
    """A substitute: computes the node with ``call`` and keeps its signals (last call wins).

    With ``keep`` (the node's original outputs) the node's outputs are left as they were, so
    nothing downstream is called again.
    """

    def substitute(args: tuple, kwargs: dict) -> Any:
        outputs, signals = call(args, kwargs)
        sink.append(signals)
        return outputs if keep is None else list(keep)

    return substitute


def _select(tensors: list[Any], endpoint: Endpoint) -> list[Any]:
    if endpoint.index is None or endpoint.link != "pre_activation":
        return list(tensors)
    if not -len(tensors) <= endpoint.index < len(tensors):
        raise EndpointError(
            f"The pre-activation of {shorten(endpoint.name)} has {len(tensors)} tensor(s); index "
            f"{endpoint.index} is out of range."
        )
    return [tensors[endpoint.index]]


def call_tag(reader: GraphReader, layer: Any, container: Any, call: Any) -> str:
    """A suffix that keeps the names of layers made for one call of ``layer`` unique."""
    calls = list(reader.calls(layer, container))
    position = next((i for i, c in enumerate(calls) if c is call), 0)
    return "" if position == 0 else f"_{position}"


def _split_call(reader: GraphReader, layer: Any, tag: str) -> Any:
    def call(args: tuple, kwargs: dict) -> tuple[Any, list[list[Any]]]:
        pre, output = reader.split_activation(layer, args, kwargs, tag)
        return output, [[pre]]

    return call


def _nested_call(
    view: InspectedModel, child: Any, requests: list[_Request], signals_only: bool
) -> Any:
    reader = view.reader
    sub_model, sizes = _augmented_model(view, child, requests, signals_only)
    n_outputs = 0 if signals_only else len(reader.outputs(child))

    def call(args: tuple, kwargs: dict) -> tuple[Any, list[list[Any]]]:
        flat = reader.flatten(reader.call_model(sub_model, args, kwargs))
        taps = chunks(flat[n_outputs:], sizes)
        return (None if signals_only else reader.pack_outputs(child, flat[:n_outputs])), taps

    return call


def _intercepted_call(reader: GraphReader, child: Any, requests: list[_Request]) -> Any:
    return intercepted_call(reader, child, [(r.endpoint, r.rest, None) for r in requests])


def intercepted_call(
    reader: GraphReader, child: Any, requests: Sequence[tuple[Endpoint, tuple[str, ...], Any]]
) -> Callable[[tuple, dict], tuple[Any, list[list[Any]]]]:
    """A call of the subclassed layer ``child`` that also returns signals of its sub-layers.

    Each request is ``(endpoint, path below child, delta)``; a delta (or ``None``) is added to
    that signal where it is produced (see ``GraphReader.intercept``).
    """
    targets = [
        {"path": list(rest), "link": endpoint.link, "node": endpoint.node, "delta": delta}
        for endpoint, rest, delta in requests
    ]
    call = reader.intercept(child, targets)

    def select(args: tuple, kwargs: dict) -> tuple[Any, list[list[Any]]]:
        outputs, signals = call(args, kwargs)
        picked = [
            list(tensors) if endpoint.index is None else [tensors[endpoint.index]]
            for (endpoint, _, _), tensors in zip(requests, signals)
        ]
        return outputs, picked

    return select


def by_child(reader: GraphReader, container: Any, requests: Sequence[Any]) -> dict[Any, list[int]]:
    """The positions of the requests below each child of ``container`` (their ``rest`` path has
    more than one name), grouped by that child, in request order."""
    children = {child.name: child for child in reader.children(container)}
    grouped: dict[Any, list[int]] = {}
    for position, request in enumerate(requests):
        if len(request.rest) > 1:
            grouped.setdefault(children[request.rest[0]], []).append(position)
    return grouped


def chunks(flat: Sequence[Any], sizes: Sequence[int]) -> list[list[Any]]:
    """``flat`` cut into consecutive lists of the given sizes."""
    out, start = [], 0
    for size in sizes:
        out.append(list(flat[start : start + size]))
        start += size
    return out


def _augmented_model(
    view: InspectedModel, child: Any, requests: list[_Request], signals_only: bool
) -> tuple[Any, list[int]]:
    """A flat model over ``child``'s own graph returning its outputs (unless
    ``signals_only``), then the wanted signals; remembered per model and request."""
    reader = view.reader
    cache = view.cache("augmented")
    key = (id(child), signals_only, *((r.rest, r.endpoint) for r in requests))
    found = cache.get(key)
    if found is None:
        groups, mapping = _taps(view, child, requests, signals_only)
        sizes = [len(g) for g in groups]
        own = [] if signals_only else [mapping.get(id(t), t) for t in reader.outputs(child)]
        outputs = [*own, *(t for g in groups for t in g)]
        found = cache[key] = (reader.build_model(reader.input_structure(child), outputs), sizes)
    return found
