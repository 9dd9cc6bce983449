"""Cutting a model in two at a signal: ``head(body(x)) == model(x)``.

Gradients with respect to an intermediate signal are then one autodiff call on ``head``,
whichever Keras backend runs (:func:`keras_inspect.gradients` does it for any signal in one
call). Both halves share every layer (and weight) with the model.

The body reads the signal through the signal engine; the head replaces it by a new symbolic
input and re-traces each graph on the path down to it from that input alone (the engine's
``cut``): only what is downstream of the cut is called again. A model in which
some path reaches the outputs without going through the cut (a residual connection around it,
another model input) cannot be cut there, and the error names the output that escapes.
"""

from __future__ import annotations

from typing import Any

from keras_inspect.answers.descriptors import to_endpoint
from keras_inspect.autograph import plain_python
from keras_inspect.engine.building import built_once, connected
from keras_inspect.engine.requests import request
from keras_inspect.engine.trace import cut
from keras_inspect.graph.endpoints import Endpoint
from keras_inspect.graph.inspected import InspectedModel, inspect_model


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
    (signal,) = connected(view, [endpoint], reroute=False)
    new_name = view.new_names()
    new_inputs = [reader.new_input(t, new_name(f"{view.name}_cut")) for t in signal]
    outputs = cut(view, view.model, [request(endpoint, "replace", new_inputs)], new_name)
    return (
        reader.input_structure(view.model),
        signal,
        new_inputs,
        reader.pack_outputs(view.model, outputs),
    )
