"""Built-in adapter: global pooling layers (and Flatten, as in the reference) as ``pooling``."""

from __future__ import annotations

from typing import Any

from keras_inspect.adapters.stock import KERAS3, stock_layers_of
from keras_inspect.hooks.specs import hookimpl

#: The Keras 3 pooling layers (read by the deprecated ``inspection.POOLING_LAYERS``).
POOLING_TYPES: tuple[type, ...] = KERAS3.pooling


@hookimpl
def keras_inspect_classify_layer(layer: Any, role: str) -> bool | None:
    if role != "pooling":
        return None
    stock = stock_layers_of(layer)
    return True if stock is not None and isinstance(layer, stock.pooling) else None
