"""Built-in adapter: global pooling layers (and Flatten, as in the reference) as ``pooling``."""

from __future__ import annotations

from typing import Any

import keras

from keras_inspect.hooks.specs import hookimpl

POOLING_TYPES = tuple(
    getattr(keras.layers, name)
    for name in (
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalAveragePooling3D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GlobalMaxPooling3D",
        "Flatten",
    )
    if hasattr(keras.layers, name)
)


@hookimpl
def keras_inspect_classify_layer(layer: Any, role: str) -> bool | None:
    if role == "pooling" and isinstance(layer, POOLING_TYPES):
        return True
    return None
