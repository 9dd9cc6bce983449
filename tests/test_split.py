"""split(model, at) -> (body, head) with head(body(x)) == model(x), sharing every layer."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import layers

import keras_inspect as ki
from conftest import CHEAP, randomize_weights, to_numpy

SHAPE = (8, 8, 3)


def _x(batch: int = 2, shape: tuple[int, ...] = SHAPE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype("float32")


@pytest.fixture(scope="module")
def model() -> keras.Model:
    """A residual backbone inside a Sequential, with fused activations."""
    inputs = keras.Input(SHAPE, name="bb_in")
    stem = layers.Conv2D(4, 3, padding="same", activation="relu", name="stem", **CHEAP)(inputs)
    branch = layers.Conv2D(4, 3, padding="same", name="branch", **CHEAP)(stem)
    block_out = layers.Add(name="block_out")([stem, branch])
    x = layers.Conv2D(6, 1, activation="relu", name="expand", **CHEAP)(block_out)
    backbone = keras.Model(inputs, x, name="backbone")
    model = keras.Sequential(
        [keras.Input(SHAPE), backbone, layers.GlobalAveragePooling2D(name="gap"),
         layers.Dense(3, activation="softmax", name="probs", **CHEAP)],
        name="classifier",
    )  # fmt: skip
    return randomize_weights(model, seed=31)


CUTS = [
    "gap",
    "backbone/stem",
    "backbone/block_out",
    {"name": "backbone/expand", "link": "pre_activation"},
    {"name": "backbone/stem", "link": "input"},
    {"name": "probs", "link": "pre_activation"},
    {"name": "probs", "link": "input"},
]


@pytest.mark.parametrize("at", CUTS, ids=str)
def test_head_of_body_is_the_model(model: keras.Model, at: object) -> None:
    body, head = ki.split(model, at)
    x = _x(seed=len(str(at)))
    signal = body(x)
    np.testing.assert_allclose(to_numpy(head(signal)), to_numpy(model(x)), rtol=1e-5, atol=1e-6)
    # The body returns the same signal as expose.
    exposed = ki.expose(model, at, outputs=[])
    np.testing.assert_allclose(to_numpy(signal), to_numpy(exposed(x)), rtol=1e-6, atol=1e-7)


def test_halves_share_the_model_weights(model: keras.Model) -> None:
    body, head = ki.split(model, "backbone/block_out")
    weights = {id(v) for v in model.weights}
    assert {id(v) for v in body.weights} | {id(v) for v in head.weights} == weights
    assert not {id(v) for v in body.weights} & {id(v) for v in head.weights}


def test_a_cut_bypassed_by_a_residual_connection_is_refused(model: keras.Model) -> None:
    with pytest.raises(ki.EndpointError, match="can be reached without passing through"):
        ki.split(model, "backbone/branch")


def test_split_takes_one_descriptor(model: keras.Model) -> None:
    with pytest.raises(TypeError, match="one signal"):
        ki.split(model, ["gap", "probs"])


def test_gradient_through_the_head_matches_finite_differences(model: keras.Model) -> None:
    """The use case: d(score)/d(signal) by differentiating the head, on any backend."""
    body, head = ki.split(model, "gap")
    signal = to_numpy(body(_x(1, seed=3)))
    direction = np.random.default_rng(4).normal(size=signal.shape).astype("float32")
    eps = 1e-2
    plus = to_numpy(head(signal + eps * direction))[0, 0]
    minus = to_numpy(head(signal - eps * direction))[0, 0]
    dense = model.get_layer("probs")
    probs = to_numpy(head(signal))[0]
    # softmax(Wx+b)[0]: gradient = p0 * (W[:, 0] - W @ p)
    w = to_numpy(dense.kernel)
    grad = probs[0] * (w[:, 0] - w @ probs)
    np.testing.assert_allclose((plus - minus) / (2 * eps), grad @ direction[0], rtol=5e-2, atol=1e-4)


def test_multi_tensor_signal_gives_a_multi_input_head() -> None:
    left, right = keras.Input((3,)), keras.Input((3,))
    merged = layers.Concatenate(name="cat")([layers.Dense(2, name="l")(left), layers.Dense(2, name="r")(right)])
    two = keras.Model([left, right], layers.Dense(1, name="out")(merged))
    body, head = ki.split(two, {"name": "cat", "link": "input"})
    a, b = _x(2, (3,), 5), _x(2, (3,), 6)
    np.testing.assert_allclose(to_numpy(head(body([a, b]))), to_numpy(two([a, b])), rtol=1e-5, atol=1e-6)
    assert len(head.inputs) == 2


@settings(max_examples=4)
@given(seed=st.integers(0, 2**16))
def test_split_is_exact_for_random_inputs(model: keras.Model, seed: int) -> None:
    body, head = ki.split(model, {"name": "backbone/expand", "link": "pre_activation"})
    x = _x(2, seed=seed) * (1 + seed % 5)
    np.testing.assert_allclose(to_numpy(head(body(x))), to_numpy(model(x)), rtol=1e-5, atol=1e-6)


def test_split_inside_a_subclassed_layer_is_explained() -> None:
    class Wrapper(keras.layers.Layer):
        def __init__(self, **kwargs: object) -> None:
            super().__init__(**kwargs)
            self.inner = layers.Dense(2, name="inner")

        def call(self, x: object) -> object:
            return self.inner(x)

    inputs = keras.Input((3,))
    m = keras.Model(inputs, Wrapper(name="wrap")(inputs))
    with pytest.raises(ki.EndpointError, match="subclassed layer without a graph"):
        ki.split(m, "wrap/inner")
