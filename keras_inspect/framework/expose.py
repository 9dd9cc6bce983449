"""Build models that return intermediate signals, wherever they live in the model.

A signal in the top model's graph is one of its symbolic tensors. A signal inside a nested graph
model is made reachable by calling, where the nested model was called, a flat sub-model over the
nested model's *existing* graph that also returns the wanted signals; the enclosing graph is
re-traced around that call, and only the operations downstream of it are called again. No inner
layer is called again, every layer object (and so every weight) is shared, and each layer is
computed once by the new model.

Two requests need a changed call rather than an existing tensor, and are served by substituting
one node while its graph is re-traced (the flavour provides the substitutes):

- ``link="pre_activation"`` on a layer with a fused activation: the node becomes the layer
  without its activation followed by the activation (see ``framework/preactivation.py``);
- a layer inside a subclassed layer (no graph): the enclosing layer's node becomes a wrapper that
  intercepts the inner layer's call (see ``framework/intercept.py``).

Results are cached per model and request, so exposing the same signals again adds no nodes.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

from .endpoints import Endpoint, locate
from .errors import EndpointError
from .graph import require_flavour


class _Request:
    """One wanted signal, relative to the container currently being processed."""

    __slots__ = ("endpoint", "rest")

    def __init__(self, endpoint: Endpoint, rest: tuple[str, ...]) -> None:
        self.endpoint = endpoint
        self.rest = rest  # path below the current container


_augmented_lock = threading.Lock()
# (container, key of the wanted signals) -> augmented flat model; avoids re-building (and
# re-adding nodes) when the same signals are exposed again.
_augmented: weakref.WeakKeyDictionary[Any, dict[tuple, Any]] = weakref.WeakKeyDictionary()


def connected_tensors(
    model: Any, endpoints: Sequence[Endpoint], *, signals_only: bool = False
) -> list[Any]:
    """Symbolic tensors of ``endpoints`` connected to ``model``'s own inputs, flattened in order.

    With ``signals_only`` the tensors are meant to be the only outputs of a new model (the body
    of :func:`~keras_inspect.split`): nested models then compute only what the signals need,
    and nothing downstream of a signal is called again.
    """
    flavour = require_flavour(model)
    if not flavour.has_graph(model):
        raise EndpointError(
            f"Model {model.name!r} has no functional graph (a subclassed model, or a Sequential "
            "that was never built): build it on a keras.Input first, e.g. "
            "model = keras.Sequential([keras.Input(shape), ...])."
        )
    requests = [_Request(endpoint, endpoint.path) for endpoint in endpoints]
    groups, _ = _taps(model, model, flavour, requests, signals_only)
    return [t for group in groups for t in group]


def _taps(
    top: Any, container: Any, flavour: Any, requests: list[_Request], signals_only: bool = False
) -> tuple[list[list[Any]], dict[int, Any]]:
    """For each request, its tensors in ``container``'s graph (connected to its inputs).

    Also returns the re-trace mapping (``id`` of an original tensor -> its new counterpart),
    empty when nothing had to be re-traced.
    """
    results: list[list[Any] | None] = [None] * len(requests)
    substitutes: dict[int, Any] = {}
    collected: dict[int, list[list[list[Any]]]] = {}
    # request position -> (key of the substitute that yields it, index among its signals)
    pending: dict[int, tuple[int, int]] = {}
    nested: dict[str, list[int]] = {}
    for position, request in enumerate(requests):
        if len(request.rest) > 1:
            nested.setdefault(request.rest[0], []).append(position)

    children = {child.name: child for child in flavour.children(container)}
    for child_name, positions in nested.items():
        child = children[child_name]
        sub_requests = [_Request(requests[p].endpoint, requests[p].rest[1:]) for p in positions]
        if flavour.has_graph(child):
            call = _nested_call(top, child, flavour, sub_requests, signals_only)
        else:
            call = _intercepted_call(child, flavour, sub_requests)
        sink = collected.setdefault(id(child), [])
        if signals_only:
            for node in flavour.calls(child, container):
                keep = flavour.call_tensors(node, "output")
                substitutes[id(node)] = _collecting(call, sink, keep)
        else:
            substitutes[id(child)] = _collecting(call, sink)
        for offset, position in enumerate(positions):
            pending[position] = (id(child), offset)

    located = {}
    for position, request in enumerate(requests):
        if len(request.rest) != 1:
            continue
        item = locate(top, request.endpoint)
        located[position] = item
        layer = item.entry.layer
        if request.endpoint.link == "pre_activation" and flavour.activation_of(layer):
            key = id(item.call)
            if key not in substitutes:
                tag = _call_tag(flavour, layer, container, item.call)
                call = _split_call(flavour, layer, item.entry.name, tag)
                keep = flavour.call_tensors(item.call, "output") if signals_only else None
                substitutes[key] = _collecting(call, collected.setdefault(key, []), keep)
            pending[position] = (key, 0)

    mapping = flavour.retrace(container, flavour.inputs(container), substitutes) if substitutes else {}
    for position, where in pending.items():
        key, offset = where
        calls = collected.get(key)
        if not calls:
            raise EndpointError(
                f"{'/'.join(requests[position].endpoint.path)!r} lies in a part of "
                f"{container.name!r} that is not computed from its inputs; it cannot be reached."
            )
        results[position] = _select(calls[-1][offset], requests[position].endpoint)
    for position, item in located.items():
        if results[position] is None:
            results[position] = [mapping.get(id(t), t) for t in item.tensors]
    return [r if r is not None else [] for r in results], mapping


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
            f"The pre-activation of {endpoint.name!r} has {len(tensors)} tensor(s); index "
            f"{endpoint.index} is out of range."
        )
    return [tensors[endpoint.index]]


def _call_tag(flavour: Any, layer: Any, container: Any, call: Any) -> str:
    calls = list(flavour.calls(layer, container))
    position = next((i for i, c in enumerate(calls) if c is call), 0)
    return "" if position == 0 else f"_{position}"


def _split_call(flavour: Any, layer: Any, name: str, tag: str) -> Any:
    split = getattr(flavour, "split_activation", None)
    if split is None:
        raise EndpointError(
            f"The {flavour.name} flavour cannot split the fused activation of {name!r}; "
            "expose its output, or build the model with a separate Activation layer."
        )

    def call(args: tuple, kwargs: dict) -> tuple[Any, list[list[Any]]]:
        pre, output = split(layer, args, kwargs, tag)
        return output, [[pre]]

    return call


def _nested_call(
    top: Any, child: Any, flavour: Any, requests: list[_Request], signals_only: bool
) -> Any:
    sub_model, sizes = _augmented_model(top, child, flavour, requests, signals_only)
    n_outputs = 0 if signals_only else len(flavour.outputs(child))

    def call(args: tuple, kwargs: dict) -> tuple[Any, list[list[Any]]]:
        flat = flavour.outputs_of_call(flavour.call_model(sub_model, args, kwargs))
        taps, start = [], n_outputs
        for size in sizes:
            taps.append(flat[start : start + size])
            start += size
        return (None if signals_only else flavour.pack_outputs(child, flat[:n_outputs])), taps

    return call


def _intercepted_call(child: Any, flavour: Any, requests: list[_Request]) -> Any:
    intercept = getattr(flavour, "intercept", None)
    if intercept is None:
        raise EndpointError(
            f"{child.name!r} is a subclassed layer (no graph) and the {flavour.name} flavour "
            "cannot intercept calls inside it; expose its output instead."
        )
    targets = [
        {"path": list(r.rest), "link": r.endpoint.link, "node": r.endpoint.node}
        for r in requests
    ]
    call = intercept(child, targets)

    def select(args: tuple, kwargs: dict) -> tuple[Any, list[list[Any]]]:
        outputs, signals = call(args, kwargs)
        picked = []
        for request, tensors in zip(requests, signals):
            index = request.endpoint.index
            picked.append(list(tensors) if index is None else [tensors[index]])
        return outputs, picked

    return select


def _augmented_model(
    top: Any, child: Any, flavour: Any, requests: list[_Request], signals_only: bool
) -> tuple[Any, list[int]]:
    """A flat model over ``child``'s own graph returning its outputs (unless
    ``signals_only``), then the wanted signals."""
    key = (signals_only, *((r.rest, r.endpoint) for r in requests))
    with _augmented_lock:
        per_child = _augmented.setdefault(child, {})
        cached = per_child.get(key)
    if cached is not None:
        return cached
    groups, mapping = _taps(top, child, flavour, requests, signals_only)
    sizes = [len(g) for g in groups]
    own = [] if signals_only else [mapping.get(id(t), t) for t in flavour.outputs(child)]
    outputs = [*own, *(t for g in groups for t in g)]
    sub_model = flavour.build_model(flavour.input_structure(child), outputs)
    with _augmented_lock:
        per_child[key] = (sub_model, sizes)
    return sub_model, sizes


_connected_lock = threading.Lock()
#: Held while new symbolic nodes are added to a model's layers: Keras numbers a layer's nodes by
#: appending to ``_inbound_nodes``, which two threads tracing the same layer at once would
#: interleave (a "Graph disconnected" error, or a tensor pointing at another thread's node).
graph_lock = threading.RLock()
_connected: weakref.WeakKeyDictionary[Any, dict[tuple, tuple[Any, list[Any]]]] = (
    weakref.WeakKeyDictionary()
)


def cached_connected_tensors(
    model: Any, endpoints: Sequence[Endpoint], *, signals_only: bool = False
) -> list[Any]:
    """:func:`connected_tensors`, remembered per model so repeated calls add no new nodes."""
    from .graph import walk

    signature = tuple(id(e.layer) for e in walk(model))
    key = (signals_only, *endpoints)
    with _connected_lock:
        cached = _connected.get(model, {}).get(key)
    if cached is not None and cached[0] == signature:
        return list(cached[1])
    with graph_lock:
        with _connected_lock:
            cached = _connected.get(model, {}).get(key)
        if cached is not None and cached[0] == signature:
            return list(cached[1])  # another thread built it while this one waited
        tensors = connected_tensors(model, endpoints, signals_only=signals_only)
        with _connected_lock:
            _connected.setdefault(model, {})[key] = (signature, tensors)
    return list(tensors)


def endpoints(model: Any, endpoints: Any) -> list[Any]:
    """Symbolic tensors of the described signals, connected to ``model``'s inputs.

    ``endpoints`` is a list of descriptors (or one descriptor). A signal made of several tensors
    (a multi-input layer's input) contributes all of them, in order. Signals inside nested models
    are returned connected to the outer model's inputs, so
    ``keras.Model(model.inputs, endpoints(model, [...]))`` works for them too.
    """
    from .endpoints import to_endpoints

    require_flavour(model)
    return cached_connected_tensors(model, to_endpoints(model, endpoints))


def _as_list(value: Any, *, tuple_is_path: bool) -> list[Any]:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, tuple) and not tuple_is_path:
        return list(value)
    return [value]


def expose(model: Any, arguments: Any = None, outputs: Any = None) -> Any:
    """A new model with ``model``'s inputs whose outputs are ``[*outputs, *arguments]``.

    ``outputs`` defaults to the logits layer's output, ``arguments`` to the input of the last
    global pooling layer. Each may be one descriptor or a list of them; a tuple of names is one
    path (``("backbone", "conv5")``). The new model shares every layer and weight with ``model``.
    """
    from .endpoints import Endpoint, to_endpoint
    from .search import get_global_pooling_layer, get_logits_layer
    from .graph import find_layer_entry

    flavour = require_flavour(model)
    if outputs is None:
        outputs = [Endpoint(path=find_layer_entry(model, get_logits_layer(model)).path)]
    if arguments is None:
        pooling = find_layer_entry(model, get_global_pooling_layer(model))
        arguments = [Endpoint(path=pooling.path, link="input")]
    wanted = [
        to_endpoint(model, d)
        for d in (
            *_as_list(outputs, tuple_is_path=True),
            *_as_list(arguments, tuple_is_path=True),
        )
    ]
    if not wanted:
        raise EndpointError("expose needs at least one signal; outputs and arguments are empty.")
    tensors = cached_connected_tensors(model, wanted)
    return flavour.build_model(flavour.input_structure(model), tensors)
