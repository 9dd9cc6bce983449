"""Built-in adapter: the reference's generic rules, asked last.

A layer with a kernel may produce logits, and a layer with a non-``None`` ``bias`` adds it, as the
reference did for any layer type. Recurrent layers are left out: their bias is added inside the
recurrence, not to the output.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_inspect.hooks.specs import hookimpl
from keras_inspect.answers.bias_math import in_compute_dtype, layer_attribute

_RECURRENT = tuple(
    getattr(keras.layers, name)
    for name in ("RNN", "SimpleRNNCell", "LSTMCell", "GRUCell", "ConvLSTM", "Bidirectional")
    if hasattr(keras.layers, name)
)


@hookimpl(trylast=True)
def keras_inspect_classify_layer(layer: Any, role: str) -> bool | None:
    if role != "logits":
        return None
    return layer_attribute(layer, "kernel") is not None and not isinstance(layer, keras.Model)


@hookimpl(trylast=True)
def keras_inspect_layer_bias(layer: Any) -> Any | None:
    if isinstance(layer, _RECURRENT) or isinstance(layer, keras.Model):
        return None
    bias = layer_attribute(layer, "bias")
    if isinstance(bias, keras.Variable):
        return in_compute_dtype(layer, bias)
    return None
