"""Cutting a model in two at a signal: ``head(body(x)) == model(x)``.

Gradients with respect to an intermediate signal are then one autodiff call on ``head``,
whichever Keras backend runs (:func:`keras_inspect.gradients` does it for any signal in one
call). Both halves share every layer (and weight) with the model.

The head is built by re-tracing each graph on the path down to the signal, seeded with a new
symbolic input at the cut: only what is downstream of the cut is called again. A model in which
some path reaches the outputs without going through the cut (a residual connection around it,
another model input) cannot be cut there, and the error names the output that escapes.
"""

from __future__ import annotations

from typing import Any

from keras_inspect.autograph import plain_python
from keras_inspect.graph.endpoints import Endpoint, locate, to_endpoint
from keras_inspect.errors import EndpointError, name_of, shorten
from keras_inspect.graph.inspected import InspectedModel, inspect_model
from keras_inspect.signals.engine import built_once, connected_tensors


@plain_python
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
    view = inspect_model(model)
    if isinstance(at, (list, tuple)):
        raise TypeError(
            f"split cuts at one signal; received a {type(at).__name__} of {len(at)} "
            "descriptors. Pass one descriptor (a nested layer is named by a path 'outer/inner')."
        )
    endpoint = to_endpoint(view, at)
    found = built_once(view, "split", endpoint, lambda: _build(view, endpoint))
    reader = view.reader
    body_in, body_out, head_in, head_out = found
    body = reader.build_model(body_in, _one_or_list(body_out), name=f"{view.name}_body")
    head = reader.build_model(_one_or_list(head_in), head_out, name=f"{view.name}_head")
    return body, head


def _one_or_list(tensors: list[Any]) -> Any:
    return tensors[0] if len(tensors) == 1 else list(tensors)


def _build(view: InspectedModel, endpoint: Endpoint) -> tuple:
    reader = view.reader
    signal = connected_tensors(view, [endpoint], signals_only=True)
    new_inputs = [reader.new_input(t, f"{view.name}_cut_{i}") for i, t in enumerate(signal)]
    outputs = _head_outputs(view, view.model, endpoint.path, endpoint, new_inputs)
    return (
        reader.input_structure(view.model),
        signal,
        new_inputs,
        reader.pack_outputs(view.model, outputs),
    )


def _head_outputs(
    view: InspectedModel, container: Any, rest: tuple[str, ...], endpoint: Endpoint, new: list
) -> list[Any]:
    """``container``'s flat outputs, computed from ``new`` standing for the signal."""
    reader = view.reader
    if len(rest) == 1:
        item = locate(view, endpoint)
        layer = item.entry.layer
        if endpoint.link == "pre_activation" and reader.activation_of(layer):
            old = reader.call_tensors(item.call, "output")
            seeds = {id(old[0]): reader.apply_activation(layer, new[0])}
        else:
            seeds = {id(t): n for t, n in zip(item.tensors, new)}
    else:
        child = next(c for c in reader.children(container) if c.name == rest[0])
        if not reader.has_graph(child):
            raise EndpointError(
                f"Cannot split inside {name_of(child)!r}, a subclassed layer without a graph: "
                f"its computation cannot be cut at {shorten(endpoint.name)}. Split at the output of "
                f"{name_of(child)!r} instead, or use expose() to read the signal."
            )
        inner = _head_outputs(view, child, rest[1:], endpoint, new)
        calls = reader.calls(child, container)
        if not calls:
            raise EndpointError(f"{name_of(child)!r} is never called in {name_of(container)!r}.")
        # As in expose: a nested model called several times is cut at its last call.
        old = reader.call_tensors(calls[-1], "output")
        seeds = {id(t): n for t, n in zip(old, inner)}
    mapping = reader.retrace(container, [], {}, seeds=seeds)
    outputs = []
    for tensor in reader.outputs(container):
        if id(tensor) not in mapping:
            origin = reader.tensor_origin(tensor)
            producer = name_of(origin[0]) if origin else "?"
            raise EndpointError(
                f"Cannot split {view.name!r} at {shorten(endpoint.name)}: the output of "
                f"{name_of(container)!r} computed by layer {producer!r} can be reached "
                "without passing through that signal (a connection bypasses it, or the output "
                "does not depend on it). Choose a signal that every path to the outputs "
                "crosses, e.g. the output of a residual block rather than a layer inside it."
            )
        outputs.append(mapping[id(tensor)])
    return outputs
