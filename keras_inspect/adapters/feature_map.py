"""Built-in adapter: the ``"feature_map"`` role of a layer.

``"feature_map"`` holds for a layer whose output is a spatial map (rank >= 3) that is not
statically 1x1; with the default ``"reverse"`` search it finds the last such layer in graph
order. Which spatial map feeds the classifier head is a property of the model, not of a layer:
:func:`keras_inspect.get_target_layer` answers that by walking the graph from the logits.
"""

from __future__ import annotations

from typing import Any

from keras_inspect.adapters.stock import stock_layers_of
from keras_inspect.answers.target_layer import is_spatial
from keras_inspect.hooks.specs import hookimpl


def _output_shape(layer: Any) -> tuple | None:
    try:
        output = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(output, (list, tuple)):
        return None
    return tuple(output.shape)


@hookimpl
def keras_inspect_classify_layer(layer: Any, role: str) -> bool | None:
    if role != "feature_map":
        return None
    stock = stock_layers_of(layer)
    if stock is None:
        return None
    if isinstance(layer, (stock.model, stock.input_layer)):
        return False
    shape = _output_shape(layer)
    return shape is not None and is_spatial(shape, layer)
