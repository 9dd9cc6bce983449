"""The tf_keras wrapper layer that exposed models contain: a layer without its fused activation.

The tf_keras counterpart of the Keras 3 ``PreActivation``: it runs the layer's own ``call`` on a
read-only view whose ``activation`` is ``None`` (see ``framework/fused_activations.py``), sharing
the layer's weights; an ``Activation`` layer after it restores the layer's output. The class
derives from tf_keras's ``Wrapper``, so it is created on first use (tf_keras is optional).
"""

from __future__ import annotations

import functools
from typing import Any

from keras_inspect.graph.fused_activations import call_without_activation

from .detection import require_tf_keras


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
            return call_without_activation(self.layer, inputs)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return self.layer.compute_output_shape(input_shape)

    return PreActivation


def pre_activation(layer: Any, name: str) -> Any:
    """A new layer computing ``layer`` without its fused activation (weights shared)."""
    return _pre_activation_class()(layer, name=name)
