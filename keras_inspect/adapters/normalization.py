"""Built-in adapter: normalization layers and their input-independent bias.

At inference a BatchNormalization computes ``(x - mean) / sqrt(var + eps) * gamma + beta``, so it
adds the constant ``beta - gamma * mean / sqrt(var + eps)`` (folded by
:func:`~keras_inspect.framework.tensors.batch_norm_bias` with the layer's own ``epsilon``).
Layer and group normalization re-centre on statistics of each input, so their only constant is
``beta`` (the layer's own variable); RMS normalization has none unless it carries a ``beta``.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_inspect.hooks.specs import hookimpl
from keras_inspect.answers.bias_math import (
    align_to_axes,
    batch_norm_bias,
    in_compute_dtype,
    layer_rank,
)

_BATCH = (keras.layers.BatchNormalization,)
_PER_SAMPLE = tuple(
    getattr(keras.layers, name)
    for name in ("LayerNormalization", "GroupNormalization", "RMSNormalization")
    if hasattr(keras.layers, name)
)
_OTHER = tuple(
    getattr(keras.layers, name) for name in ("UnitNormalization",) if hasattr(keras.layers, name)
)
NORMALIZATION_TYPES: tuple[type, ...] = _BATCH + _PER_SAMPLE + _OTHER


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
        return batch_norm_bias(layer)
    if isinstance(layer, _PER_SAMPLE):
        return _beta(layer)
    return None


@hookimpl
def keras_inspect_classify_layer(layer: Any, role: str) -> bool | None:
    if role == "normalization" and isinstance(layer, NORMALIZATION_TYPES):
        return True
    return None
