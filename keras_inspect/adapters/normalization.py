"""Built-in adapter: normalization layers and their input-independent bias.

At inference a BatchNormalization computes ``(x - mean) / sqrt(var + eps) * gamma + beta``, so it
adds the constant ``beta - gamma * mean / sqrt(var + eps)``, folded here in float32 with the
layer's own ``epsilon`` (``gamma = 1`` without ``scale``, ``beta = 0`` without ``center``).
Layer and group normalization re-centre on statistics of each input, so their only constant is
``beta``; RMS normalization has none unless it carries a ``beta``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_inspect import hookimpl
from keras_inspect.framework.tensors import align_to_axes, in_compute_dtype, layer_rank

_BATCH = (keras.layers.BatchNormalization,)
_PER_SAMPLE = tuple(
    getattr(keras.layers, name)
    for name in ("LayerNormalization", "GroupNormalization", "RMSNormalization")
    if hasattr(keras.layers, name)
)
_OTHER = tuple(
    getattr(keras.layers, name) for name in ("UnitNormalization",) if hasattr(keras.layers, name)
)
NORMALIZATION_TYPES = _BATCH + _PER_SAMPLE + _OTHER


def folded_batch_norm_bias(layer: Any) -> Any:
    """The constant an inference-mode BatchNormalization adds, shaped to broadcast."""
    mean = ops.cast(layer.moving_mean, "float32")
    variance = ops.cast(layer.moving_variance, "float32")
    inverse_std = ops.rsqrt(variance + float(layer.epsilon))
    gamma = ops.cast(layer.gamma, "float32") if getattr(layer, "scale", True) else 1.0
    beta = ops.cast(layer.beta, "float32") if getattr(layer, "center", True) else 0.0
    bias = beta - gamma * mean * inverse_std
    return align_to_axes(in_compute_dtype(layer, bias), layer.axis, layer_rank(layer))


def _beta(layer: Any) -> Any | None:
    if not getattr(layer, "center", False):
        return None
    beta = getattr(layer, "beta", None)
    if beta is None:
        return None
    return align_to_axes(in_compute_dtype(layer, beta), layer.axis, layer_rank(layer))


@hookimpl
def keras_inspect_layer_bias(layer: Any) -> Any | None:
    if isinstance(layer, _BATCH):
        return folded_batch_norm_bias(layer)
    if isinstance(layer, _PER_SAMPLE):
        return _beta(layer)
    return None


@hookimpl
def keras_inspect_classify_layer(layer: Any, role: str) -> bool | None:
    if role == "normalization" and isinstance(layer, NORMALIZATION_TYPES):
        return True
    return None
