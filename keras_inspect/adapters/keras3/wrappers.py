"""The Keras 3 wrapper layer that exposed models contain for a split activation.

:class:`PreActivation` computes a layer without its fused activation, sharing its weights (an
``Activation`` layer after it restores the layer's output exactly: same operations, same order).
The wrapper that reaches layers inside subclassed layers is in :mod:`.interception`.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras

from keras_inspect.graph.fused_activations import call_without_activation


@keras.saving.register_keras_serializable(package="keras_inspect")
class PreActivation(keras.layers.Wrapper):
    """Computes the wrapped layer without its fused activation, sharing its weights.

    ``Activation(layer.activation)(PreActivation(layer)(x))`` equals ``layer(x)``. Registered as
    ``keras_inspect>PreActivation``, so a model that contains it saves and loads (``import
    keras_inspect`` before ``keras.models.load_model``).
    """

    def __init__(self, layer: Any, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)

    def call(self, inputs: Any, training: Any = None) -> Any:
        if (
            training is not None
            and "training" in inspect.signature(type(self.layer).call).parameters
        ):
            return call_without_activation(self.layer, inputs, training=training)
        return call_without_activation(self.layer, inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.layer.compute_output_shape(input_shape)
