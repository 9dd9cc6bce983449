"""Cutting a model in two at a signal: ``head(body(x)) == model(x)``.

Gradients with respect to an intermediate signal (Grad-CAM's feature map, FullGrad's
pre-activations) are then one backend-neutral ``keras.ops``/autodiff call on ``head``, whichever
Keras backend runs. Both halves share every layer (and weight) with the model.

The head is built by re-tracing each graph on the path down to the signal, seeded with a new
symbolic input at the cut: only what is downstream of the cut is called again. A model in which
some path reaches the outputs without going through the cut (a residual connection around it,
another model input) cannot be cut there, and the error names the output that escapes.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from .endpoints import Endpoint, locate, to_endpoint
from .errors import EndpointError
from .expose import cached_connected_tensors, graph_lock
from .graph import require_flavour

_lock = threading.Lock()
# model -> endpoint -> (body inputs, body outputs, head inputs, head outputs): splitting again
# builds new models over the same tensors instead of adding nodes to the model's layers.
_cache: weakref.WeakKeyDictionary[Any, dict[Endpoint, tuple]] = weakref.WeakKeyDictionary()


def split(model: Any, at: Any) -> tuple[Any, Any]:
    """Two models, ``body`` (the model's inputs to the signal ``at``) and ``head`` (that signal
    to the model's outputs), such that ``head(body(x))`` equals ``model(x)``.

    :param model: a functional or built sequential model (nested models are fine).
    :param at: one endpoint descriptor, as for :func:`keras_inspect.expose`: a name or path
        (``"backbone/conv4_block6_out"``), a layer, a dict with ``link`` (``"output"``,
        ``"input"``, ``"pre_activation"``) and ``node``, or an :class:`Endpoint`. A signal of
        several tensors (a multi-input layer's input) makes a body with several outputs and a
        head with several inputs.
    :raises EndpointError: if the signal lies inside a subclassed layer, or if some output is
        reachable without passing through the signal.
    """
    flavour = require_flavour(model)
    if isinstance(at, list):
        raise TypeError(
            f"split cuts at one signal; received a list of {len(at)} descriptors. Pass one "
            "descriptor (a tuple of names is one nested path)."
        )
    endpoint = to_endpoint(model, at)
    with _lock:
        cached = _cache.get(model, {}).get(endpoint)
    if cached is None:
        with graph_lock:
            with _lock:
                cached = _cache.get(model, {}).get(endpoint)
            if cached is None:
                cached = _build(model, flavour, endpoint)
                with _lock:
                    _cache.setdefault(model, {})[endpoint] = cached
    body_in, body_out, head_in, head_out = cached
    body = flavour.build_model(body_in, _one_or_list(body_out), name=f"{model.name}_body")
    head = flavour.build_model(_one_or_list(head_in), head_out, name=f"{model.name}_head")
    return body, head


def _one_or_list(tensors: list[Any]) -> Any:
    return tensors[0] if len(tensors) == 1 else list(tensors)


def _build(model: Any, flavour: Any, endpoint: Endpoint) -> tuple:
    signal = cached_connected_tensors(model, [endpoint], signals_only=True)
    new_input = _optional(flavour, "new_input")
    new_inputs = [new_input(t) for t in signal]
    outputs = _head_outputs(model, model, flavour, endpoint.path, endpoint, new_inputs)
    return (
        flavour.input_structure(model),
        signal,
        new_inputs,
        flavour.pack_outputs(model, outputs),
    )


def _optional(flavour: Any, method: str) -> Any:
    found = getattr(flavour, method, None)
    if found is None:
        raise EndpointError(
            f"The {flavour.name} flavour does not implement {method!r}, which split needs."
        )
    return found


def _head_outputs(
    top: Any, container: Any, flavour: Any, rest: tuple[str, ...], endpoint: Endpoint, new: list
) -> list[Any]:
    """``container``'s flat outputs, computed from ``new`` standing for the signal."""
    if len(rest) == 1:
        item = locate(top, endpoint)
        layer = item.entry.layer
        if endpoint.link == "pre_activation" and flavour.activation_of(layer):
            old = flavour.call_tensors(item.call, "output")
            seeds = {id(old[0]): _optional(flavour, "apply_activation")(layer, new[0])}
        else:
            seeds = {id(t): n for t, n in zip(item.tensors, new)}
    else:
        child = next(c for c in flavour.children(container) if c.name == rest[0])
        if not flavour.has_graph(child):
            raise EndpointError(
                f"Cannot split inside {child.name!r}, a subclassed layer without a graph: "
                f"its computation cannot be cut at {endpoint.name!r}. Split at the output of "
                f"{child.name!r} instead, or use expose() to read the signal."
            )
        inner = _head_outputs(top, child, flavour, rest[1:], endpoint, new)
        calls = flavour.calls(child, container)
        if not calls:
            raise EndpointError(f"{child.name!r} is never called in {container.name!r}.")
        # As in expose: a nested model called several times is cut at its last call.
        old = flavour.call_tensors(calls[-1], "output")
        seeds = {id(t): n for t, n in zip(old, inner)}
    mapping = flavour.retrace(container, [], {}, seeds=seeds)
    outputs = []
    for tensor in flavour.outputs(container):
        if id(tensor) not in mapping:
            origin = flavour.tensor_origin(tensor)
            producer = getattr(origin[0], "name", "?") if origin else "?"
            raise EndpointError(
                f"Cannot split {top.name!r} at {endpoint.name!r}: the output of "
                f"{container.name!r} computed by layer {producer!r} can be reached "
                "without passing through that signal (a connection bypasses it, or the output "
                "does not depend on it). Choose a signal that every path to the outputs "
                "crosses, e.g. the output of a residual block rather than a layer inside it."
            )
        outputs.append(mapping[id(tensor)])
    return outputs
