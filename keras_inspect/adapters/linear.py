"""Built-in adapter: layers that apply a kernel and add an explicit bias.

Dense, EinsumDense, and every convolution (1D/2D/3D, transposed, depthwise, separable). The bias
of a ``channels_first`` convolution is reshaped to ``(C, 1, ...)`` so that it broadcasts against
the layer's output.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_inspect import hookimpl
from keras_inspect.framework.tensors import align_to_axes, in_compute_dtype, layer_rank

_CONVOLUTIONS = tuple(
    getattr(keras.layers, name)
    for name in (
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "SeparableConv1D",
        "SeparableConv2D",
    )
    if hasattr(keras.layers, name)
)
_DENSE = (keras.layers.Dense, keras.layers.EinsumDense)


def _explicit_bias(layer: Any) -> Any | None:
    if not getattr(layer, "use_bias", True):
        return None
    return getattr(layer, "bias", None)


@hookimpl
def keras_inspect_layer_bias(layer: Any) -> Any | None:
    if isinstance(layer, _DENSE):
        bias = _explicit_bias(layer)
        return None if bias is None else in_compute_dtype(layer, bias)
    if isinstance(layer, _CONVOLUTIONS):
        bias = _explicit_bias(layer)
        if bias is None:
            return None
        bias = in_compute_dtype(layer, bias)
        if getattr(layer, "data_format", "channels_last") == "channels_first":
            bias = align_to_axes(bias, 1, layer_rank(layer))
        return bias
    return None
