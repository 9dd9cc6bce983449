"""A custom layer that keras-inspect cannot understand without this plugin."""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="keras_inspect_testplugin")
class ChannelShift(keras.layers.Layer):
    """``y = x * scale + shift`` per channel (last axis).

    The constant it adds lives in a weight called ``shift``, not ``bias``, so keras-inspect's
    generic fallback does not see it: only this plugin's bias hook does.
    """

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = input_shape[-1]
        self.scale = self.add_weight(shape=(channels,), initializer="ones", name="scale")
        self.shift = self.add_weight(
            shape=(channels,), initializer="random_normal", name="shift"
        )

    def call(self, inputs: Any) -> Any:
        return inputs * self.scale + self.shift

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape
