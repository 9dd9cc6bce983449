"""The user's model never changes, and repeated expose/split calls do not grow its graph."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from keras import layers

import keras_inspect as ki
from conftest import CHEAP, randomize_weights, to_numpy

SHAPE = (8, 8, 3)


@keras.saving.register_keras_serializable(package="keras_inspect_tests")
class Twice(keras.layers.Layer):
    """A subclassed layer: Dense(relu) applied, then a second Dense."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.one = layers.Dense(5, activation="relu", name="one")
        self.two = layers.Dense(5, name="two")

    def build(self, input_shape: tuple) -> None:
        self.one.build(input_shape)
        self.two.build((*input_shape[:-1], 5))

    def call(self, x: object) -> object:
        return self.two(self.one(x))


def _build() -> keras.Model:
    inputs = keras.Input(SHAPE, name="bb_in")
    x = layers.Conv2D(4, 3, activation="relu", name="conv", **CHEAP)(inputs)
    x = layers.Conv2D(5, 1, name="conv_b", **CHEAP)(x)
    backbone = keras.Model(inputs, x, name="backbone")
    model = keras.Sequential(
        [keras.Input(SHAPE), backbone, layers.GlobalAveragePooling2D(name="gap"),
         Twice(name="twice"), layers.Dense(3, name="logits", **CHEAP)],
        name="user_model",
    )  # fmt: skip
    return randomize_weights(model, seed=41)


REQUESTS = [
    None,
    "backbone/conv",
    {"name": "backbone/conv", "link": "pre_activation"},
    "twice/one",
    {"name": "twice/one", "link": "pre_activation"},
    {"name": "gap", "link": "input"},
]

SPLITS = ["backbone/conv", {"name": "backbone/conv", "link": "pre_activation"}, "gap"]


def _node_counts(model: keras.Model) -> dict[str, int]:
    return {entry.name: len(entry.layer._inbound_nodes) for entry in ki.walk(model)}


def _snapshot(model: keras.Model, x: np.ndarray) -> tuple:
    return (
        json.dumps(model.get_config(), sort_keys=True, default=str),
        [to_numpy(v).copy() for v in model.weights],
        to_numpy(model(x)),
        [v.path for v in model.weights],
    )


@pytest.fixture(scope="module")
def user_model() -> keras.Model:
    return _build()


def test_config_weights_predictions_and_saving_are_unchanged(user_model: keras.Model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(0).normal(size=(2, *SHAPE)).astype("float32")
    before = _snapshot(user_model, x)
    user_model.save(tmp_path / "before.keras")
    for _ in range(2):
        for request in REQUESTS:
            exposed = ki.expose(user_model, request)
            exposed(x)
        for at in SPLITS:
            body, head = ki.split(user_model, at)
            head(body(x))
    after = _snapshot(user_model, x)
    assert after[0] == before[0]
    assert after[3] == before[3]
    for got, want in zip(after[1], before[1]):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(after[2], before[2])
    user_model.save(tmp_path / "after.keras")
    reloaded = keras.models.load_model(tmp_path / "after.keras")
    np.testing.assert_allclose(to_numpy(reloaded(x)), before[2], rtol=1e-6, atol=1e-6)
    assert json.dumps(reloaded.get_config(), sort_keys=True, default=str) == before[0]
    # No wrapper or interception is left on the user's layers.
    for entry in ki.walk(user_model):
        assert "call" not in entry.layer.__dict__
    assert user_model.get_layer("backbone").get_layer("conv").activation is keras.activations.relu


def test_repeated_expose_adds_no_nodes() -> None:
    model = _build()
    for request in REQUESTS:
        ki.expose(model, request)
    ki.split(model, "backbone/conv")
    counts = _node_counts(model)
    for _ in range(20):
        for request in REQUESTS:
            ki.expose(model, request)
        ki.split(model, "backbone/conv")
    assert _node_counts(model) == counts


def test_equal_descriptors_in_other_forms_share_the_cache() -> None:
    model = _build()
    ki.expose(model, "backbone/conv")
    counts = _node_counts(model)
    conv = model.get_layer("backbone").get_layer("conv")
    for descriptor in ("backbone/conv", ["backbone/conv"], conv, {"layer": conv}):
        ki.expose(model, descriptor)
    assert _node_counts(model) == counts
