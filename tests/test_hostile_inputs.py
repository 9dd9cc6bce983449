"""What careless or hostile callers found: each answer is right, or an error that says why.

Regression tests for the failures reproduced from outside (layers that only look like stock ones,
values of the wrong kind that were accepted, errors from inside a backend, unbounded messages,
a failed request that left a node on the user's layers). Plugin faults, races and hostile files
have their own modules (test_hook_calls.py, test_plugin_loading.py, test_hostile_files.py).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
from conftest import CHEAP, randomize_weights, to_numpy
from keras import layers

import keras_inspect as ki
from keras_inspect import hookimpl, new_plugin_manager, using_plugin_manager


# -- 1. only layers that run their stock call are split at their activation --------------------


class DoubledDense(layers.Dense):
    """A Dense whose call differs from the stock one: its output is twice the stock output."""

    def call(self, inputs: Any) -> Any:
        return super().call(inputs) * 2


class ExplicitDoubledDense(layers.Dense):
    def call(self, inputs: Any) -> Any:
        return layers.Dense.call(self, inputs) * 2


class Renamed(layers.Dense):
    """A subclass that keeps the stock call: still split exactly."""


@pytest.mark.parametrize("kind", [DoubledDense, ExplicitDoubledDense])
def test_a_subclass_that_overrides_call_is_not_split(kind: type) -> None:
    inputs = keras.Input((4,))
    hidden = kind(3, activation="relu", name="custom", **CHEAP)(inputs)
    model = randomize_weights(keras.Model(inputs, layers.Dense(2, name="out")(hidden)), seed=1)
    counts = {e.name: len(e.layer._inbound_nodes) for e in ki.walk(model)}
    for call in (
        lambda: ki.expose(model, {"name": "custom", "link": "pre_activation"}, outputs="out"),
        lambda: ki.split(model, {"name": "custom", "link": "pre_activation"}),
        lambda: ki.gradients(model, np.ones((1, 4), "float32"), {"name": "custom", "link": "pre_activation"}),
    ):
        with pytest.raises(ki.EndpointError, match="'custom'.*override call"):
            call()
    # The failed requests left nothing on the model's layers.
    assert {e.name: len(e.layer._inbound_nodes) for e in ki.walk(model)} == counts


def test_a_subclass_that_keeps_the_stock_call_is_split_exactly() -> None:
    inputs = keras.Input((4,))
    hidden = Renamed(3, activation="relu", name="renamed", **CHEAP)(inputs)
    model = randomize_weights(keras.Model(inputs, layers.Dense(2, name="out")(hidden)), seed=2)
    exposed = ki.expose(model, {"name": "renamed", "link": "pre_activation"}, outputs="out")
    x = np.random.default_rng(3).normal(size=(5, 4)).astype("float32")
    logits, pre = exposed(x)
    np.testing.assert_allclose(to_numpy(logits), to_numpy(model(x)), rtol=1e-6)
    assert float(to_numpy(pre).min()) < 0  # before the ReLU


def test_inside_a_subclassed_layer_too() -> None:
    class Holder(layers.Layer):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.inner = DoubledDense(3, activation="relu", name="inner")

        def call(self, x: Any) -> Any:
            return self.inner(x)

    inputs = keras.Input((4,))
    model = keras.Model(inputs, Holder(name="holder")(inputs))
    with pytest.raises(ki.EndpointError, match="'inner'.*override call"):
        ki.expose(model, {"name": "holder/inner", "link": "pre_activation"}, outputs=[])


# -- 8. the error contract: ValueError or TypeError with a message, from keras-inspect ----------


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"axis": np.int64(1)}, None),
        ({"axis": 1.5}, TypeError),
        ({"axis": None}, TypeError),
        ({"batch_dims": np.int32(1)}, None),
        ({"batch_dims": "0"}, TypeError),
    ],
    ids=["numpy-int-axis", "float-axis", "none-axis", "numpy-batch-dims", "text-batch-dims"],
)
def test_gather_units_axis_and_batch_dims(kwargs: dict, error: type | None) -> None:
    tensor = np.arange(6, dtype="float32").reshape(2, 3)
    indices = np.array([[2], [0]])
    if error is None:
        picked = ki.gather_units(tensor, indices, **kwargs)
        np.testing.assert_array_equal(to_numpy(picked), [[2.0], [3.0]])
    else:
        with pytest.raises(error, match="must be an integer"):
            ki.gather_units(tensor, indices, **kwargs)


def test_gather_units_on_a_ragged_list() -> None:
    with pytest.raises(ValueError, match="rectangular"):
        ki.gather_units([[1.0, 2.0], [3.0]], np.array([[0], [0]]))


def test_properties_must_be_attribute_names(cnn: keras.Model) -> None:
    with pytest.raises(TypeError, match="attribute name"):
        ki.find_layer_with(cnn, properties=cnn.outputs[0])
    assert ki.find_layer_with(cnn, properties="kernel").name == "logits"


def _deep(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "call",
    [
        lambda m, v: ki.endpoints(m, v),
        lambda m, v: ki.expose(m, v),
        lambda m, v: ki.get_nested_layer(m, v),
        lambda m, v: ki.find_layer_with(m, properties=v),
        lambda m, v: ki.find_layer_with(m, klass=v),
        lambda m, v: ki.layers_with_biases(m, exclude=v),
        lambda m, v: ki.gather_units(v, np.zeros((1, 1), "int32")),
        lambda m, v: ki.gather_units(np.zeros((1, 2), "float32"), v),
        lambda m, v: ki.gradients(m, np.zeros((1, 16, 16, 3), "float32"), target=v),
        lambda m, v: ki.Endpoint(path=v),
    ],
    ids=["endpoints", "expose", "get_nested_layer", "properties", "klass", "exclude",
         "gather-tensor", "gather-indices", "gradients-target", "Endpoint"],
)
def test_a_list_nested_100000_deep_is_refused_briefly(cnn: keras.Model, call: Any) -> None:
    with pytest.raises((TypeError, ValueError)) as caught:
        call(cnn, _deep(100_000))
    assert not isinstance(caught.value, RecursionError)
    assert 0 < len(str(caught.value)) < 1_000


def test_a_ten_million_character_name_gives_a_short_message(cnn: keras.Model) -> None:
    name = "x" * 10_000_000
    for call in (
        lambda: ki.get_nested_layer(cnn, name),
        lambda: ki.endpoints(cnn, {"name": "conv1", "link": name}),
        lambda: ki.find_layer_with(cnn, role=name),
        lambda: ki.find_layer_with(cnn, role="pooling", strategy=name),
        lambda: ki.expose(cnn, f"conv1/{name}"),
    ):
        with pytest.raises(ValueError) as caught:
            call()
        assert len(str(caught.value)) < 2_000, len(str(caught.value))


# -- 10. wrong values are refused, not used -----------------------------------------------------


class BiasOf:
    def __init__(self, value: Any, kind: type, name: str | None = None) -> None:
        self.value, self.kind, self.name = value, kind, name

    @hookimpl(tryfirst=True)
    def keras_inspect_layer_bias(self, layer: Any) -> Any:
        if isinstance(layer, self.kind) and self.name in (None, layer.name):
            return self.value
        return None


@pytest.mark.parametrize(
    "shape, kind",
    [((7, 7), layers.Dense), ((5,), layers.Flatten), ((3, 1, 1), layers.Conv2D)],
    ids=["7x7-on-dense", "5-on-flatten", "channels-first-on-channels-last"],
)
def test_a_bias_that_does_not_broadcast_to_the_output_is_refused(shape: tuple, kind: type) -> None:
    inputs = keras.Input((6, 6, 2))
    x = layers.Conv2D(4, 3, name="conv", **CHEAP)(inputs)
    x = layers.Flatten(name="flat")(x)
    model = keras.Model(inputs, layers.Dense(3, name="dense", **CHEAP)(x))
    pm = new_plugin_manager(entrypoints=False)
    pm.register(BiasOf(np.zeros(shape, "float32"), kind), name="misshapen")
    with using_plugin_manager(pm), pytest.raises(ki.PluginError, match="'misshapen'.*broadcast"):
        ki.layers_with_biases(model)


def test_a_bias_that_broadcasts_is_accepted(cnn: keras.Model) -> None:
    pm = new_plugin_manager(entrypoints=False)
    pm.register(BiasOf(np.ones((1, 1, 4), "float32"), layers.Conv2D, "conv1"), name="fine")
    with using_plugin_manager(pm):
        found, values = ki.layers_with_biases(cnn)
    assert found[0].name == "conv1" and np.shape(values[0]) == (1, 1, 4)


def test_exclude_takes_layers_and_names(cnn: keras.Model) -> None:
    every = ki.layers_with_biases(cnn, return_biases=False)
    conv1 = cnn.get_layer("conv1")
    by_name = ki.layers_with_biases(cnn, exclude=["conv1"], return_biases=False)
    by_layer = ki.layers_with_biases(cnn, exclude=[conv1], return_biases=False)
    assert by_name == by_layer == [layer for layer in every if layer is not conv1]
    with pytest.raises(ki.LayerNotFoundError, match="'conv1'"):
        ki.layers_with_biases(cnn, exclude=["conv"])  # a misspelled name is not ignored
    with pytest.raises(TypeError, match="exclude"):
        ki.layers_with_biases(cnn, exclude=[42])


class Yields:
    def __init__(self, items: Any) -> None:
        self.items = items

    @hookimpl
    def keras_inspect_search_strategies(self) -> dict:
        return {"odd": lambda model: list(self.items)}


@pytest.mark.parametrize("which", ["int", "other-models-layer"])
def test_a_strategy_must_yield_the_models_own_layers(cnn: keras.Model, mlp: keras.Model, which: str) -> None:
    item = 42 if which == "int" else mlp.get_layer("hidden")
    pm = new_plugin_manager(entrypoints=False)
    pm.register(Yields([item]), name="odd-strategy")
    with using_plugin_manager(pm), pytest.raises(ValueError, match="'odd'.*not a layer of model"):
        ki.find_layer_with(cnn, klass=object, strategy="odd")


@pytest.mark.parametrize("flag", ["no", 0, None, 1.0])
def test_search_reversed_must_be_a_boolean(cnn: keras.Model, flag: Any) -> None:
    with pytest.raises(TypeError, match="search_reversed must be True or False"):
        ki.find_layer_with(cnn, klass=layers.Conv2D, search_reversed=flag)
    assert ki.find_layer_with(cnn, klass=layers.Conv2D, search_reversed=np.bool_(False)).name == "conv1"


def test_a_bare_layer_is_not_a_model(cnn: keras.Model) -> None:
    for call in (ki.get_logits_layer, ki.walk, ki.expose, ki.summary):
        with pytest.raises(TypeError, match="expected a Keras model"):
            call(cnn.get_layer("logits"))


# -- a failed request leaves nothing ------------------------------------------------------------


def test_a_failed_expose_leaves_no_node_on_the_users_layers() -> None:
    pixels = keras.Input((8, 8, 2))
    h = layers.Conv2D(3, 3, activation="relu", name="c1", **CHEAP)(pixels)
    h = layers.Conv2D(4, 3, name="c2", **CHEAP)(h)
    backbone = keras.Model(pixels, h, name="backbone")
    model = keras.Sequential(
        [keras.Input((8, 8, 2)), backbone, layers.GlobalAveragePooling2D(name="gap"),
         layers.Dense(2, name="out", **CHEAP)]
    )  # fmt: skip
    before = {e.name: len(e.layer._inbound_nodes) for e in ki.walk(model)}
    # The first signal re-traces the backbone (new calls of c2 after the split c1); the second
    # fails afterwards: node 5 of gap does not exist.
    request = [{"name": "backbone/c1", "link": "pre_activation"}, {"name": "gap", "node": 5}]
    with pytest.raises(ki.EndpointError, match="node 5 is out of range"):
        ki.expose(model, request)
    assert {e.name: len(e.layer._inbound_nodes) for e in ki.walk(model)} == before
    # The first signal alone still works (nothing stale was cached), and adds calls only then.
    exposed = ki.expose(model, request[:1], outputs="out")
    x = np.random.default_rng(5).normal(size=(2, 8, 8, 2)).astype("float32")
    np.testing.assert_allclose(to_numpy(exposed(x)[0]), to_numpy(model(x)), rtol=1e-5, atol=1e-6)
