"""Built-in adapter: layers that apply a kernel and add an explicit bias.

Dense, EinsumDense, and every convolution (1D/2D/3D, transposed, depthwise, separable): the
layers whose fused activation keras-inspect can split off. The bias of a ``channels_first``
convolution is reshaped to ``(C, 1, ...)`` so that it broadcasts against the layer's output;
otherwise the layer's own bias variable is returned (cast only under mixed precision).
"""

from __future__ import annotations

from typing import Any

import keras

from keras_inspect.graph.fused_activations import SPLITTABLE_NAMES
from keras_inspect.hooks.specs import hookimpl
from keras_inspect.answers.bias_math import align_to_axes, in_compute_dtype, layer_rank

KERNEL_LAYERS: tuple[type, ...] = tuple(
    getattr(keras.layers, name) for name in SPLITTABLE_NAMES if hasattr(keras.layers, name)
)


@hookimpl
def keras_inspect_layer_bias(layer: Any) -> Any | None:
    if not isinstance(layer, KERNEL_LAYERS):
        return None
    bias = getattr(layer, "bias", None)
    if not getattr(layer, "use_bias", True) or bias is None:
        return None
    bias = in_compute_dtype(layer, bias)
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        bias = align_to_axes(bias, 1, layer_rank(layer))
    return bias
