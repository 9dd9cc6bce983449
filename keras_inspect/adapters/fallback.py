"""Built-in adapter: the reference's generic rules, asked last.

A layer with a kernel may produce logits, and a layer with a bias variable adds it, as the
reference did for any layer type. Recurrent layers are left out (their bias is added inside the
recurrence, not to the output), and so are models.
"""

from __future__ import annotations

from typing import Any

from keras_inspect.adapters.stock import stock_layers_of
from keras_inspect.answers.bias_math import in_compute_dtype, layer_attribute
from keras_inspect.hooks.specs import hookimpl


@hookimpl(trylast=True)
def keras_inspect_classify_layer(layer: Any, role: str) -> bool | None:
    if role != "logits":
        return None
    stock = stock_layers_of(layer)
    if stock is None:
        return None
    return layer_attribute(layer, "kernel") is not None and not isinstance(layer, stock.model)


@hookimpl(trylast=True)
def keras_inspect_layer_bias(layer: Any) -> Any | None:
    stock = stock_layers_of(layer)
    if stock is None or isinstance(layer, (*stock.recurrent, stock.model)):
        return None
    bias = layer_attribute(layer, "bias")
    if isinstance(bias, stock.variable):
        return in_compute_dtype(layer, bias, stock.math)
    return None
