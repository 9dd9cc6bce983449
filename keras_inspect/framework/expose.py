"""Build models that return intermediate signals, wherever they live in the model.

A signal in the top model's graph is one of its symbolic tensors. A signal inside a nested graph
model is made reachable by calling, where the nested model was called, a flat sub-model over the
nested model's *existing* graph that also returns the wanted signals; the enclosing graph is
re-traced around that call, and only the operations downstream of it are called again. No inner
layer is called again, every layer object (and so every weight) is shared, and each layer is
computed once by the new model.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

from .endpoints import Endpoint, Located, locate
from .errors import EndpointError
from .graph import require_flavour


class _Request:
    """One wanted signal, relative to the container currently being processed."""

    __slots__ = ("located", "rest")

    def __init__(self, located: Located, rest: tuple[str, ...]) -> None:
        self.located = located
        self.rest = rest  # path below the current container


_augmented_lock = threading.Lock()
# (container, key of the wanted signals) -> augmented flat model; avoids re-building (and
# re-adding nodes) when the same signals are exposed again.
_augmented: weakref.WeakKeyDictionary[Any, dict[tuple, Any]] = weakref.WeakKeyDictionary()


def connected_tensors(model: Any, endpoints: Sequence[Endpoint]) -> list[Any]:
    """Symbolic tensors of ``endpoints`` connected to ``model``'s own inputs, flattened in order."""
    flavour = require_flavour(model)
    if not flavour.has_graph(model):
        raise EndpointError(
            f"Model {model.name!r} has no functional graph (a subclassed model, or a Sequential "
            "that was never built): build it on a keras.Input first, e.g. "
            "model = keras.Sequential([keras.Input(shape), ...])."
        )
    located = [locate(model, endpoint) for endpoint in endpoints]
    for item in located:
        if item.endpoint.link == "pre_activation" and flavour.activation_of(item.entry.layer):
            raise EndpointError(
                f"Exposing the pre-activation of {item.entry.name!r} (fused activation "
                f"{getattr(flavour.activation_of(item.entry.layer), '__name__', '?')!r}) "
                "needs the layer split in two; this build of keras-inspect does not split "
                "fused activations yet. Use a separate Activation layer in the model."
            )
    requests = [_Request(item, item.endpoint.path) for item in located]
    groups = _taps(model, flavour, requests)
    return [t for group in groups for t in group]


def _taps(container: Any, flavour: Any, requests: list[_Request]) -> list[list[Any]]:
    """For each request, its tensors in ``container``'s own graph (connected to its inputs)."""
    nested: dict[str, list[int]] = {}
    for position, request in enumerate(requests):
        if len(request.rest) > 1:
            nested.setdefault(request.rest[0], []).append(position)
    results: list[list[Any] | None] = [
        None if len(r.rest) > 1 else list(r.located.tensors) for r in requests
    ]
    if not nested:
        return [r for r in results if r is not None]

    children = {child.name: child for child in flavour.children(container)}
    collected: dict[str, list[list[Any]]] = {}
    substitutes = {}
    for child_name, positions in nested.items():
        child = children[child_name]
        sub_requests = [
            _Request(requests[p].located, requests[p].rest[1:]) for p in positions
        ]
        sub_model, sizes = _augmented_model(child, flavour, sub_requests)
        n_outputs = len(flavour.outputs(child))
        substitutes[id(child)] = _substitute(
            child, flavour, sub_model, n_outputs, sizes, collected, child_name
        )
    mapping = flavour.retrace(container, flavour.inputs(container), substitutes)
    for child_name, positions in nested.items():
        if child_name not in collected:
            raise EndpointError(
                f"Nested model {child_name!r} is not called on the inputs of "
                f"{container.name!r}; its signals cannot be reached from them."
            )
        for position, tensors in zip(positions, collected[child_name][-1]):
            results[position] = tensors
    for position, request in enumerate(requests):
        if len(request.rest) == 1:
            results[position] = [mapping.get(id(t), t) for t in request.located.tensors]
    return [r if r is not None else [] for r in results]


def _substitute(child, flavour, sub_model, n_outputs, sizes, collected, key):  # type: ignore[no-untyped-def]
    def call(args: tuple, kwargs: dict) -> Any:
        flat = flavour.outputs_of_call(flavour.call_model(sub_model, args, kwargs))
        taps, start = [], n_outputs
        for size in sizes:
            taps.append(flat[start : start + size])
            start += size
        # A nested model called several times: its signals come from the last call.
        collected.setdefault(key, []).append(taps)
        return flavour.pack_outputs(child, flat[:n_outputs])

    return call


def _augmented_model(child: Any, flavour: Any, requests: list[_Request]) -> tuple[Any, list[int]]:
    """A flat model over ``child``'s own graph returning its outputs, then the wanted signals."""
    key = tuple((r.rest, r.located.endpoint) for r in requests)
    with _augmented_lock:
        per_child = _augmented.setdefault(child, {})
        cached = per_child.get(key)
    if cached is not None:
        return cached
    groups = _taps(child, flavour, requests)
    sizes = [len(g) for g in groups]
    outputs = [*flavour.outputs(child), *(t for g in groups for t in g)]
    sub_model = flavour.build_model(flavour.input_structure(child), outputs)
    with _augmented_lock:
        per_child[key] = (sub_model, sizes)
    return sub_model, sizes


_connected_lock = threading.Lock()
_connected: weakref.WeakKeyDictionary[Any, dict[tuple, tuple[Any, list[Any]]]] = (
    weakref.WeakKeyDictionary()
)


def cached_connected_tensors(model: Any, endpoints: Sequence[Endpoint]) -> list[Any]:
    """:func:`connected_tensors`, remembered per model so repeated calls add no new nodes."""
    from .graph import walk

    signature = tuple(id(e.layer) for e in walk(model))
    key = tuple(endpoints)
    with _connected_lock:
        cached = _connected.get(model, {}).get(key)
    if cached is not None and cached[0] == signature:
        return list(cached[1])
    tensors = connected_tensors(model, endpoints)
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
