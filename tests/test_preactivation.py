"""link="pre_activation": the signal before a fused activation, the model's outputs unchanged."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import layers

import keras_inspect as ki
from conftest import CHEAP, randomize_weights, to_numpy
from keras_inspect.adapters.keras3.wrappers import PreActivation
from keras_inspect.graph.fused_activations import call_without_activation

SHAPE = (6, 6, 2)


def _x(batch: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype("float32")


@pytest.fixture(scope="module")
def fused() -> keras.Model:
    """Each kind of layer with a fused activation that can be split."""
    inputs = keras.Input(SHAPE, name="image")
    x = layers.Conv2D(3, 3, activation="relu", name="conv", **CHEAP)(inputs)
    x = layers.DepthwiseConv2D(3, activation="elu", name="depthwise")(x)
    x = layers.SeparableConv2D(4, 1, activation="sigmoid", name="separable")(x)
    x = layers.Flatten(name="flat")(x)
    x = layers.Dense(5, activation="tanh", name="dense", **CHEAP)(x)
    x = layers.Dense(3, name="linear", **CHEAP)(x)
    outputs = layers.Activation("softmax", name="probs")(x)
    return randomize_weights(keras.Model(inputs, outputs, name="fused"), seed=21)


ACTIVATIONS = {
    "conv": lambda v: np.maximum(v, 0),
    "depthwise": lambda v: np.where(v > 0, v, np.expm1(v)),
    "separable": lambda v: 1 / (1 + np.exp(-v)),
    "dense": np.tanh,
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_of_pre_activation_is_the_output(fused: keras.Model, name: str) -> None:
    exposed = ki.expose(fused, [name, {"name": name, "link": "pre_activation"}], outputs="probs")
    x = _x(2, SHAPE, seed=len(name))
    probs, output, pre = exposed(x)
    np.testing.assert_allclose(ACTIVATIONS[name](to_numpy(pre)), to_numpy(output), rtol=1e-4, atol=1e-5)
    # The final outputs are those of the original model.
    np.testing.assert_allclose(to_numpy(probs), to_numpy(fused(x)), rtol=1e-6, atol=1e-7)


def test_pre_activation_of_dense_is_the_affine_map(fused: keras.Model) -> None:
    dense = fused.get_layer("dense")
    exposed = ki.expose(fused, [{"name": "dense", "link": "input"}, {"name": "dense", "link": "pre_activation"}], outputs=[])
    features, pre = exposed(_x(3, SHAPE, seed=5))
    expected = to_numpy(features) @ to_numpy(dense.kernel) + to_numpy(dense.bias)
    np.testing.assert_allclose(to_numpy(pre), expected, rtol=1e-5, atol=1e-5)


def test_layers_without_fused_activation_give_their_output(fused: keras.Model) -> None:
    exposed = ki.expose(fused, ["linear", {"name": "linear", "link": "pre_activation"}], outputs=[])
    plain, pre = exposed(_x(2, SHAPE, seed=6))
    np.testing.assert_array_equal(to_numpy(plain), to_numpy(pre))
    # An Activation layer is not a fused activation: its pre_activation is its output.
    exposed = ki.expose(fused, [{"name": "probs", "link": "pre_activation"}], outputs=[])
    np.testing.assert_allclose(to_numpy(exposed(_x(1, SHAPE, seed=7))).sum(), 1.0, rtol=1e-5)


def test_unknown_fused_layer_is_refused_with_a_reason() -> None:
    inputs = keras.Input((4, 2))
    outputs = layers.SimpleRNN(3, activation="tanh", name="rnn")(inputs)
    model = keras.Model(inputs, outputs)
    with pytest.raises(ki.EndpointError, match="Cannot split the fused activation of 'rnn'"):
        ki.expose(model, {"name": "rnn", "link": "pre_activation"}, outputs=[])


def test_the_split_layer_is_not_modified_and_shares_weights(fused: keras.Model) -> None:
    conv = fused.get_layer("conv")
    activation = conv.activation
    exposed = ki.expose(fused, {"name": "conv", "link": "pre_activation"})
    assert conv.activation is activation
    wrappers = [layer for layer in exposed.layers if isinstance(layer, PreActivation)]
    assert len(wrappers) == 1 and wrappers[0].layer is conv
    assert {id(v) for v in exposed.weights} == {id(v) for v in fused.weights}


def test_pre_activation_model_saves_and_loads(fused: keras.Model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    exposed = ki.expose(fused, [{"name": n, "link": "pre_activation"} for n in ACTIVATIONS])
    path = tmp_path / "pre.keras"
    exposed.save(path)
    loaded = keras.models.load_model(path)
    x = _x(2, SHAPE, seed=8)
    for got, want in zip(loaded(x), exposed(x)):
        np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-6, atol=1e-6)


@settings(max_examples=5)
@given(seed=st.integers(0, 2**16), scale=st.floats(0.1, 10.0))
def test_call_without_activation_inverts_relu_where_positive(fused: keras.Model, seed: int, scale: float) -> None:
    conv = fused.get_layer("conv")
    x = _x(1, SHAPE, seed) * scale
    pre = to_numpy(call_without_activation(conv, keras.ops.convert_to_tensor(x)))
    out = to_numpy(conv(x))
    np.testing.assert_allclose(np.maximum(pre, 0), out, rtol=1e-5, atol=1e-5 * scale)
    assert (pre < 0).any() or (out > 0).all()
