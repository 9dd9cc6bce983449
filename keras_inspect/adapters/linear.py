"""Built-in adapter: layers that apply a kernel and add an explicit bias.

Dense, EinsumDense, and every convolution (1D/2D/3D, transposed, depthwise, separable): the
layers whose fused activation keras-inspect can split off. The bias of a ``channels_first``
convolution is reshaped to ``(C, 1, ...)`` so that it broadcasts against the layer's output;
otherwise the layer's own bias variable is returned (cast only under mixed precision).
"""

from __future__ import annotations

from typing import Any

from keras_inspect.adapters.stock import KERAS3, stock_layers_of
from keras_inspect.answers.bias_math import align_to_axes, in_compute_dtype, layer_rank
from keras_inspect.hooks.specs import hookimpl

#: The Keras 3 kernel layers.
KERNEL_LAYERS: tuple[type, ...] = KERAS3.kernel


@hookimpl
def keras_inspect_layer_bias(layer: Any) -> Any | None:
    stock = stock_layers_of(layer)
    if stock is None or not isinstance(layer, stock.kernel):
        return None
    bias = getattr(layer, "bias", None)
    if not getattr(layer, "use_bias", True) or bias is None:
        return None
    bias = in_compute_dtype(layer, bias, stock.math)
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        bias = align_to_axes(bias, 1, layer_rank(layer), stock.math)
    return bias
