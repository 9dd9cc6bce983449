"""The keras-inspect plugin: what the retrieval layers are, and the constant each one adds.

keras-inspect finds this module through the ``keras_inspect`` entry point declared in
``pyproject.toml`` and registers it after its built-in adapters, so these hooks are asked first.
Each hook answers only for this package's layers and returns ``None`` ("no opinion") otherwise,
so every other layer keeps its built-in behaviour.
"""

from __future__ import annotations

from typing import Any

from keras import ops

from keras_inspect import hookimpl
from keras_inspect_retrieval.layers import FrozenBatchNormalization, GeMPooling2D

#: A role this plugin adds: normalization layers whose bias is constant in training mode too.
FROZEN_NORMALIZATION = "frozen_normalization"


@hookimpl
def keras_inspect_roles() -> list[str]:
    return [FROZEN_NORMALIZATION]


@hookimpl
def keras_inspect_classify_layer(layer: Any, role: str) -> bool | None:
    if isinstance(layer, GeMPooling2D):
        # GeM reduces height and width, so the feature map is its input, as for average pooling.
        return True if role == "pooling" else None
    if isinstance(layer, FrozenBatchNormalization):
        if role in ("normalization", FROZEN_NORMALIZATION):
            return True
        # It has no kernel, but say so explicitly: it is never the logits layer.
        return False if role == "logits" else None
    return None


@hookimpl
def keras_inspect_layer_bias(layer: Any) -> Any | None:
    if not isinstance(layer, FrozenBatchNormalization):
        return None
    # y = x * scale + (beta - mean * scale): the constant is the second term.
    scale = layer.gamma * ops.rsqrt(layer.moving_variance + layer.epsilon)
    return ops.cast(layer.beta - layer.moving_mean * scale, layer.compute_dtype)
