"""Two layers common in image-retrieval models, written with ``keras.ops`` (any backend).

Both are registered as serializable, so a ``.keras`` file that uses them loads wherever this
package is installed (keras-inspect imports it, through its entry point, before loading a file).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_inspect_retrieval")
class GeMPooling2D(keras.layers.Layer):
    """Generalized-mean pooling over height and width (channels last).

    ``y_c = mean_hw(max(x, eps) ** p) ** (1 / p)``: ``p = 1`` is average pooling, large ``p``
    approaches max pooling. ``p`` is learned.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.initial_p = float(p)
        self.eps = float(eps)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.p = self.add_weight(
            name="p", shape=(), initializer=keras.initializers.Constant(self.initial_p)
        )

    def call(self, inputs: Any) -> Any:
        powered = ops.power(ops.maximum(inputs, self.eps), self.p)
        return ops.power(ops.mean(powered, axis=(1, 2)), 1.0 / self.p)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "p": self.initial_p, "eps": self.eps}


@keras.saving.register_keras_serializable(package="keras_inspect_retrieval")
class FrozenBatchNormalization(keras.layers.Layer):
    """Batch normalization whose statistics and affine parameters never change.

    ``y = (x - mean) / sqrt(variance + epsilon) * gamma + beta`` on the last axis, in training and
    at inference alike (the layer of detection and retrieval backbones fine-tuned with small
    batches). None of its weights is trainable.
    """

    def __init__(self, epsilon: float = 1e-5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        shape = (input_shape[-1],)
        for name, init in (
            ("gamma", "ones"), ("beta", "zeros"), ("moving_mean", "zeros"),
            ("moving_variance", "ones"),
        ):  # fmt: skip
            setattr(self, name, self.add_weight(name=name, shape=shape, initializer=init,
                                                trainable=False))

    def call(self, inputs: Any) -> Any:
        scale = self.gamma * ops.rsqrt(self.moving_variance + self.epsilon)
        return inputs * scale + (self.beta - self.moving_mean * scale)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}
