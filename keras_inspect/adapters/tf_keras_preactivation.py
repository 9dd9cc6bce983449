"""Splitting a fused activation off a tf_keras layer, sharing its weights.

The tf_keras counterpart of :mod:`keras_inspect.framework.preactivation`: a wrapper runs the
layer's own ``call`` with ``self`` seen through a read-only view whose ``activation`` is
``None``; an ``Activation`` layer after it restores the layer's output. The wrapper class derives
from tf_keras's ``Wrapper``, so it is created on first use (tf_keras is optional).
"""

from __future__ import annotations

import functools
from typing import Any

from keras_inspect.adapters.tf_keras_graph import require_tf_keras
from keras_inspect.framework.preactivation import _WithoutActivation

_SPLITTABLE_NAMES = (
    "Dense",
    "EinsumDense",
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


@functools.lru_cache(maxsize=1)
def _splittable_types() -> tuple[type, ...]:
    layers = require_tf_keras().layers
    return tuple(getattr(layers, n) for n in _SPLITTABLE_NAMES if hasattr(layers, n))


def is_splittable(layer: Any) -> bool:
    """Whether ``layer``'s call applies ``self.activation`` as its very last operation."""
    return isinstance(layer, _splittable_types())


@functools.lru_cache(maxsize=1)
def _pre_activation_class() -> type:
    tf_keras = require_tf_keras()

    @tf_keras.saving.register_keras_serializable(package="keras_inspect")
    class PreActivation(tf_keras.layers.Wrapper):
        """Computes the wrapped tf_keras layer without its fused activation."""

        def __init__(self, layer: Any, **kwargs: Any) -> None:
            kwargs.setdefault("dtype", layer.dtype_policy)
            super().__init__(layer, **kwargs)

        def call(self, inputs: Any) -> Any:
            return type(self.layer).call(_WithoutActivation(self.layer), inputs)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return self.layer.compute_output_shape(input_shape)

    return PreActivation


def pre_activation(layer: Any, tag: str = "") -> Any:
    """A new layer computing ``layer`` without its fused activation (weights shared)."""
    return _pre_activation_class()(layer, name=f"{layer.name}_pre_activation{tag}")
