"""Built-in adapter: normalization layers and their input-independent bias.

At inference a BatchNormalization computes ``(x - mean) / sqrt(var + eps) * gamma + beta``, so it
adds the constant ``beta - gamma * mean / sqrt(var + eps)`` (folded by
:func:`~keras_inspect.answers.bias_math.batch_norm_bias` with the layer's own ``epsilon``).
Layer and group normalization re-centre on statistics of each input, so their only constant is
``beta`` (the layer's own variable); RMS normalization has none unless it carries a ``beta``.
"""

from __future__ import annotations

from typing import Any

from keras_inspect.adapters.stock import KERAS3, StockLayers, stock_layers_of
from keras_inspect.answers.bias_math import (
    align_to_axes,
    batch_norm_bias,
    in_compute_dtype,
    layer_rank,
)
from keras_inspect.hooks.specs import hookimpl

#: The Keras 3 normalization layers (read by the deprecated ``inspection.NORMALIZATION_LAYERS``).
NORMALIZATION_TYPES: tuple[type, ...] = KERAS3.normalization


def _beta(layer: Any, stock: StockLayers) -> Any | None:
    beta = getattr(layer, "beta", None)
    if not getattr(layer, "center", False) or beta is None:
        return None
    axis = getattr(layer, "axis", -1)
    axes = [axis] if isinstance(axis, int) else list(axis)
    value = in_compute_dtype(layer, beta, stock.math)
    if len(axes) == len(value.shape):
        return align_to_axes(value, axes, layer_rank(layer), stock.math)
    return value


@hookimpl
def keras_inspect_layer_bias(layer: Any) -> Any | None:
    stock = stock_layers_of(layer)
    if stock is None:
        return None
    if isinstance(layer, stock.batch_norm):
        return batch_norm_bias(layer, stock.math)
    if isinstance(layer, stock.per_sample_norm):
        return _beta(layer, stock)
    return None


@hookimpl
def keras_inspect_classify_layer(layer: Any, role: str) -> bool | None:
    if role != "normalization":
        return None
    stock = stock_layers_of(layer)
    return True if stock is not None and isinstance(layer, stock.normalization) else None
