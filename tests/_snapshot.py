"""What a keras-inspect call must never change about a user's model, captured for comparison."""

from __future__ import annotations

import json
from collections.abc import Callable

import keras
import numpy as np
from conftest import to_numpy

import keras_inspect


def eager_predictions(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return to_numpy(keras.tree.flatten(model(x, training=False))[0])


class Snapshot:
    """Config, variables, weights, trainable flags, layers, outputs and predictions of a model."""

    def __init__(
        self,
        model: keras.Model,
        x: np.ndarray,
        predict: Callable[[keras.Model, np.ndarray], np.ndarray] = eager_predictions,
    ) -> None:
        self.config = json.dumps(model.get_config(), sort_keys=True, default=repr)
        self.variables = [id(v) for v in model.weights]
        self.values = [to_numpy(v).copy() for v in model.weights]
        self.trainable = [
            (entry.layer.name, entry.layer.trainable) for entry in keras_inspect.walk(model)
        ]
        self.model_trainable = model.trainable
        self.names = [layer.name for layer in model.layers]
        self.outputs = [id(t) for t in model.outputs]
        self.predictions = predict(model, x)

    def assert_same(self, other: Snapshot, after: str) -> None:
        assert other.config == self.config, f"config changed by {after}"
        assert other.variables == self.variables, f"variables replaced by {after}"
        for before, now in zip(self.values, other.values):
            np.testing.assert_array_equal(now, before, err_msg=f"weights changed by {after}")
        assert other.trainable == self.trainable, f"trainable flags changed by {after}"
        assert other.model_trainable == self.model_trainable, f"model.trainable changed by {after}"
        assert other.names == self.names, f"layers changed by {after}"
        assert other.outputs == self.outputs, f"outputs replaced by {after}"
        np.testing.assert_array_equal(
            other.predictions, self.predictions, err_msg=f"predictions changed by {after}"
        )
