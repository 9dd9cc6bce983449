"""expose() reaches signals in nested, subclassed, shared-layer and multi-IO models.

Every expected value comes from the layers themselves: a model built on the inner model alone,
or the inner layer called on the inner input.
"""

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


def _inner() -> keras.Model:
    inputs = keras.Input(SHAPE, name="inner_in")
    x = layers.Conv2D(4, 3, activation="relu", name="conv_a", **CHEAP)(inputs)
    x = layers.Conv2D(5, 1, name="conv_b", **CHEAP)(x)
    return keras.Model(inputs, x, name="inner")


@pytest.fixture(scope="module")
def deep() -> keras.Model:
    """A Functional ("inner") inside a Functional ("middle") inside a Sequential."""
    inputs = keras.Input(SHAPE, name="middle_in")
    x = _inner()(inputs)
    x = layers.Activation("relu", name="middle_relu")(x)
    middle = keras.Model(inputs, x, name="middle")
    model = keras.Sequential(
        [
            keras.Input(SHAPE),
            middle,
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(3, name="logits", **CHEAP),
        ],
        name="deep",
    )
    return randomize_weights(model)


def test_nested_signal_matches_a_model_on_the_inner_graph(deep: keras.Model) -> None:
    inner = deep.get_layer("middle").get_layer("inner")
    exposed = ki.expose(deep, "middle/inner/conv_a")
    x = _x()
    logits, signal = exposed(x)
    expected = keras.Model(inner.inputs[0], inner.get_layer("conv_a").output)(x)
    np.testing.assert_allclose(to_numpy(signal), to_numpy(expected), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(logits), to_numpy(deep(x)), rtol=1e-5, atol=1e-6)


def test_default_expose_returns_the_pooling_input(deep: keras.Model) -> None:
    exposed = ki.expose(deep)
    x = _x(seed=1)
    logits, feature_map = exposed(x)
    middle = deep.get_layer("middle")
    np.testing.assert_allclose(to_numpy(feature_map), to_numpy(middle(x)), rtol=1e-5, atol=1e-6)
    # The pooling input really feeds the head: pooling it and applying the head gives the logits.
    head = deep.get_layer("logits")
    pooled = keras.ops.mean(feature_map, axis=(1, 2))
    np.testing.assert_allclose(to_numpy(head(pooled)), to_numpy(logits), rtol=1e-5, atol=1e-5)


def test_exposed_model_shares_the_layer_objects(deep: keras.Model) -> None:
    exposed = ki.expose(deep, "middle/inner/conv_b")
    original = {id(v) for v in deep.weights}
    assert {id(v) for v in exposed.weights} <= original
    conv = deep.get_layer("middle").get_layer("inner").get_layer("conv_b")
    assert any(v is conv.kernel for v in exposed.weights)


def test_input_link_of_a_nested_layer(deep: keras.Model) -> None:
    inner = deep.get_layer("middle").get_layer("inner")
    exposed = ki.expose(deep, {"name": "middle/inner/conv_b", "link": "input"})
    x = _x(seed=2)
    expected = keras.Model(inner.inputs[0], inner.get_layer("conv_a").output)(x)
    np.testing.assert_allclose(to_numpy(exposed(x)[1]), to_numpy(expected), rtol=1e-5, atol=1e-6)


def test_several_signals_at_several_depths(deep: keras.Model) -> None:
    exposed = ki.expose(
        deep, ["middle/inner/conv_a", "middle/middle_relu", {"name": "gap", "link": "input"}]
    )
    x = _x(seed=3)
    _, conv_a, relu, gap_in = exposed(x)
    assert conv_a.shape == (2, 6, 6, 4)
    np.testing.assert_allclose(to_numpy(relu), to_numpy(gap_in), rtol=0, atol=0)


# -- subclassed layers (no graph): call interception ------------------------------------------


@keras.saving.register_keras_serializable(package="keras_inspect_tests")
class Block(keras.layers.Layer):
    """Dense(relu) -> Dense, with the second Dense applied twice (a shared call)."""

    def __init__(self, units: int = 4, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.first = layers.Dense(units, activation="relu", name="first")
        self.second = layers.Dense(units, name="second")

    def build(self, input_shape: tuple) -> None:
        self.first.build(input_shape)
        self.second.build((*input_shape[:-1], self.units))

    def call(self, x: object) -> object:
        return self.second(self.second(self.first(x)))

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}


@pytest.fixture(scope="module")
def with_block() -> keras.Model:
    inputs = keras.Input((4,), name="features")
    x = Block(name="block")(inputs)
    outputs = layers.Dense(2, name="out")(x)
    return randomize_weights(keras.Model(inputs, outputs, name="with_block"), seed=4)


def test_layer_inside_a_subclassed_layer_is_intercepted(with_block: keras.Model) -> None:
    block = with_block.get_layer("block")
    exposed = ki.expose(
        with_block,
        [
            "block/first",
            {"name": "block/second", "node": 0},
            {"name": "block/second", "node": "last"},
            {"name": "block/first", "link": "pre_activation"},
        ],
    )
    x = _x(3, (4,))
    out, first, second0, second1, pre = exposed(x)
    np.testing.assert_allclose(to_numpy(first), to_numpy(block.first(x)), rtol=1e-5, atol=1e-6)
    expected0 = block.second(block.first(x))
    np.testing.assert_allclose(to_numpy(second0), to_numpy(expected0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        to_numpy(second1), to_numpy(block.second(expected0)), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(to_numpy(np.maximum(to_numpy(pre), 0)), to_numpy(first), atol=1e-6)
    np.testing.assert_allclose(to_numpy(out), to_numpy(with_block(x)), rtol=1e-5, atol=1e-6)
    # The user's layers are left exactly as they were.
    for layer in (block.first, block.second):
        assert "call" not in layer.__dict__


def test_intercepted_model_saves_and_loads(with_block: keras.Model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    exposed = ki.expose(with_block, "block/first")
    path = tmp_path / "intercepted.keras"
    exposed.save(path)
    loaded = keras.models.load_model(path)
    x = _x(2, (4,), seed=5)
    for got, want in zip(loaded(x), exposed(x)):
        np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-6, atol=1e-6)
    # Interception also holds inside a compiled predict step.
    if keras.backend.backend() in ("tensorflow", "jax"):
        loaded.compile(jit_compile=True)
    for got, want in zip(loaded.predict(x, verbose=0), exposed(x)):
        np.testing.assert_allclose(got, to_numpy(want), rtol=1e-5, atol=1e-6)
    assert "call" not in loaded.get_layer("block_intercepted").layer.first.__dict__


def test_intercepted_node_out_of_range_is_explained(with_block: keras.Model) -> None:
    with pytest.raises(Exception, match="called 2 time"):
        ki.expose(with_block, {"name": "block/second", "node": 5})
    assert "call" not in with_block.get_layer("block").second.__dict__


def test_uncalled_sublayer_error_is_ours_not_keras_shape_inference() -> None:
    class Block(layers.Layer):
        def __init__(self, **kwargs: object) -> None:
            super().__init__(**kwargs)
            self.gate = layers.Dense(4, name="gate")

        def build(self, shape: object) -> None:
            self.gate.build(shape)

        def call(self, x: object) -> object:
            return keras.ops.matmul(x, self.gate.kernel)  # uses the kernel, never calls gate

    given = keras.Input((4,))
    net = keras.Model(given, Block(name="block")(given))
    with pytest.raises(ki.EndpointError) as caught:
        ki.expose(net, "block/gate", outputs="block")
    assert str(caught.value).startswith("Layer 'gate' was not called while 'block' ran")
    assert "infer the output shape" not in str(caught.value)


def test_tensor_of_an_operation_is_named_as_an_operation() -> None:
    given = keras.Input((4,))
    hidden = layers.Dense(4, name="hidden")(given)
    sliced = hidden[:, 0:2]
    model = keras.Model(given, layers.Dense(2, name="head")(sliced))
    with pytest.raises(ki.EndpointError, match="operation .*not a layer") as caught:
        ki.endpoints(model, [sliced])
    assert "consumes" in str(caught.value)


def test_subclassed_top_model_is_refused_with_advice() -> None:
    class Net(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense = layers.Dense(2, name="dense")

        def call(self, x: object) -> object:
            return self.dense(x)

    net = Net()
    net(np.zeros((1, 3), "float32"))
    with pytest.raises(ki.EndpointError, match="no functional graph"):
        ki.expose(net, "dense", outputs=[])


# -- shared layers, multi-input, multi-output -------------------------------------------------


@pytest.fixture(scope="module")
def siamese() -> keras.Model:
    left = keras.Input((3,), name="left")
    right = keras.Input((3,), name="right")
    tower = layers.Dense(4, activation="tanh", name="tower", **CHEAP)
    merged = layers.Concatenate(name="concat")([tower(left), tower(right)])
    score = layers.Dense(1, name="score", **CHEAP)(merged)
    klass = layers.Dense(3, name="klass", **CHEAP)(merged)
    return randomize_weights(keras.Model([left, right], [score, klass], name="siamese"), seed=6)


def test_shared_layer_nodes(siamese: keras.Model) -> None:
    tower = siamese.get_layer("tower")
    exposed = ki.expose(
        siamese,
        [
            {"name": "tower", "node": 0},
            {"name": "tower", "node": 1},
            {"name": "tower", "node": "last"},
            {"name": "tower", "node": 1, "link": "pre_activation"},
        ],
        outputs=["score", "klass"],
    )
    a, b = _x(2, (3,), seed=7), _x(2, (3,), seed=8)
    score, klass, n0, n1, last, pre1 = exposed([a, b])
    np.testing.assert_allclose(to_numpy(n0), to_numpy(tower(a)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(n1), to_numpy(tower(b)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(last), to_numpy(n1), rtol=0, atol=0)
    np.testing.assert_allclose(np.tanh(to_numpy(pre1)), to_numpy(n1), rtol=1e-5, atol=1e-6)
    want_score, want_klass = siamese([a, b])
    np.testing.assert_allclose(to_numpy(score), to_numpy(want_score), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(klass), to_numpy(want_klass), rtol=1e-5, atol=1e-6)


def test_last_means_last_call_inside_this_model() -> None:
    left, right = keras.Input((3,)), keras.Input((3,))
    tower = layers.Dense(2, name="tower")
    model = keras.Model([left, right], layers.Add()([tower(left), tower(right)]))
    # Another model built later calls the same layer a third time.
    other_in = keras.Input((3,))
    keras.Model(other_in, tower(other_in))
    exposed = ki.expose(model, {"name": "tower", "node": "last"}, outputs=[])
    a, b = _x(2, (3,), seed=9), _x(2, (3,), seed=10)
    np.testing.assert_allclose(to_numpy(exposed([a, b])), to_numpy(tower(b)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ki.EndpointError, match="node 2 is out of range"):
        ki.expose(model, {"name": "tower", "node": 2}, outputs=[])


def test_multi_input_layer_input_and_index(siamese: keras.Model) -> None:
    tower = siamese.get_layer("tower")
    exposed = ki.expose(
        siamese,
        [{"name": "concat", "link": "input"}, {"name": "concat", "link": "input", "index": 1}],
        outputs=[],
    )
    a, b = _x(2, (3,), seed=11), _x(2, (3,), seed=12)
    both_left, both_right, only_right = exposed([a, b])
    np.testing.assert_allclose(to_numpy(both_left), to_numpy(tower(a)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(only_right), to_numpy(both_right), rtol=0, atol=0)


def test_nested_model_with_two_inputs_and_two_outputs() -> None:
    a_in, b_in = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    hidden = layers.Dense(4, activation="relu", name="hidden")(layers.Concatenate()([a_in, b_in]))
    inner = keras.Model(
        [a_in, b_in], [layers.Dense(2, name="o1")(hidden), layers.Dense(1, name="o2")(hidden)],
        name="inner",
    )
    x1, x2 = keras.Input((3,), name="x1"), keras.Input((3,), name="x2")
    o1, o2 = inner([x1, x2])
    outer = keras.Model([x1, x2], layers.Concatenate(name="cat")([o1, o2]), name="outer")
    exposed = ki.expose(outer, {"name": "inner/hidden", "link": "pre_activation"}, outputs="cat")
    a, b = _x(2, (3,), seed=13), _x(2, (3,), seed=14)
    out, pre = exposed([a, b])
    np.testing.assert_allclose(to_numpy(out), to_numpy(outer([a, b])), rtol=1e-5, atol=1e-6)
    hidden_layer = inner.get_layer("hidden")
    expected = keras.ops.matmul(np.concatenate([a, b], -1), hidden_layer.kernel) + hidden_layer.bias
    np.testing.assert_allclose(to_numpy(pre), to_numpy(expected), rtol=1e-5, atol=1e-5)


# -- the exposed model is an ordinary model ---------------------------------------------------


def test_exposed_model_predicts_compiles_and_round_trips(deep: keras.Model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    exposed = ki.expose(deep, [{"name": ("middle", "inner", "conv_a")}, {"name": "middle/inner/conv_a", "link": "pre_activation"}])
    x = _x(seed=15)
    eager = [to_numpy(t) for t in exposed(x)]
    if keras.backend.backend() in ("tensorflow", "jax"):
        exposed.compile(jit_compile=True)
    predicted = exposed.predict(x, verbose=0, batch_size=2)
    for got, want in zip(predicted, eager):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    path = tmp_path / "exposed.keras"
    exposed.save(path)
    loaded = keras.models.load_model(path)
    for got, want in zip(loaded(x), eager):
        np.testing.assert_allclose(to_numpy(got), want, rtol=1e-5, atol=1e-6)


@settings(max_examples=4)
@given(depth=st.integers(1, 3), which=st.integers(0, 1), seed=st.integers(0, 2**16))
def test_any_depth_of_nesting(depth: int, which: int, seed: int) -> None:
    inputs = keras.Input((3,), name="x")
    hidden = layers.Dense(4, activation="relu", name="h0")(inputs)
    model = keras.Model(inputs, layers.Dense(4, name="h1")(hidden), name="level0")
    inner_layers = [model.get_layer("h0"), model.get_layer("h1")]
    path: tuple[str, ...] = ("level0",)
    for level in range(1, depth + 1):
        wrap_in = keras.Input((3,))
        model = (
            keras.Sequential([keras.Input((3,)), model], name=f"level{level}")
            if level % 2
            else keras.Model(wrap_in, model(wrap_in), name=f"level{level}")
        )
        path = (f"level{level}", *path)
    randomize_weights(model, seed=seed % 7)
    target = inner_layers[which]
    exposed = ki.expose(model, "/".join((*path[1:], target.name)), outputs=[])
    x = _x(2, (3,), seed=seed)
    want = inner_layers[0](x) if which == 0 else model(x)
    np.testing.assert_allclose(to_numpy(exposed(x)), to_numpy(want), rtol=1e-5, atol=1e-6)
