"""``endpoints`` and ``expose``: models that return intermediate signals, wherever they live."""

from __future__ import annotations

from typing import Any

from keras_inspect.answers.descriptors import to_endpoints
from keras_inspect.answers.target_layer import default_feature_map, default_logits
from keras_inspect.autograph import plain_python
from keras_inspect.engine.building import connected, require_graph
from keras_inspect.errors import EndpointError
from keras_inspect.graph.inspected import inspect_model


@plain_python
def endpoints(model: Any, endpoints: Any) -> list[Any]:
    """Symbolic tensors of the described signals, connected to ``model``'s inputs.

    ``endpoints`` is a list of descriptors (or one descriptor). A signal made of several tensors
    (a multi-input layer's input) contributes all of them, in order. Signals inside nested models
    are returned connected to the outer model's inputs, so
    ``keras.Model(model.inputs, endpoints(model, [...]))`` works for them too.
    """
    view = inspect_model(model)
    return [t for group in connected(view, to_endpoints(view, endpoints)) for t in group]


@plain_python
def expose(model: Any, arguments: Any = None, outputs: Any = None) -> Any:
    """A new model with ``model``'s inputs whose outputs are ``[*outputs, *arguments]``.

    ``outputs`` defaults to the logits layer's output, ``arguments`` to the input of the last
    global pooling layer (for a transformer without one: the token sequence its token
    reduction consumes, a language model's final hidden states). Each may be one descriptor or
    a list (or tuple) of them; a layer of a nested model is named by a path
    ``"backbone/conv5"``. The new model shares every layer and weight with ``model``.
    """
    view = inspect_model(model)
    require_graph(view)
    if outputs is None:
        outputs = [default_logits(view)]
    if arguments is None:
        arguments = [default_feature_map(view)]
    wanted = [*to_endpoints(view, outputs), *to_endpoints(view, arguments)]
    if not wanted:
        raise EndpointError("expose needs at least one signal; outputs and arguments are empty.")
    tensors = [t for group in connected(view, wanted) for t in group]
    return view.reader.build_model(view.reader.input_structure(view.model), tensors)
