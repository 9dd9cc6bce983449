"""Built-in adapter: the ``"feature_map"`` role of a layer.

``"feature_map"`` holds for a layer whose output is a spatial map (rank >= 3) that is not
statically 1x1; with the default ``"reverse"`` search it finds the last such layer in graph
order. Which spatial map feeds the classifier head is a property of the model, not of a layer:
:func:`keras_inspect.get_target_layer` answers that by walking the graph from the logits.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_inspect.hooks.specs import hookimpl
from keras_inspect.answers.target_layer import is_spatial


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
    if role != "feature_map" or not isinstance(layer, keras.layers.Layer):
        return None
    if isinstance(layer, (keras.Model, keras.layers.InputLayer)):
        return False
    shape = _output_shape(layer)
    return shape is not None and is_spatial(shape, layer)
