"""Graph order: searches and bias lists follow the order the model computes its layers.

``Model._flatten_layers()`` lists a nested functional model's layers in tracking order (reversed,
in Keras 3), so the first model below is built to make the two orders disagree, and the tests
check that keras-inspect follows the graph.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
from conftest import CHEAP, images, randomize_weights, to_numpy
from keras import layers

import keras_inspect
from keras_inspect import walk

pytestmark = pytest.mark.usefixtures("fresh_pm")


def build_disordered() -> keras.Model:
    """Input -> inner(first -> second) -> softmax; the last layer with a kernel is nested."""
    inputs = keras.Input((6,), name="features")
    x = layers.Dense(5, name="first", **CHEAP)(inputs)
    x = layers.BatchNormalization(name="norm")(x)
    x = layers.Dense(4, name="second", **CHEAP)(x)
    inner = keras.Model(inputs, x, name="inner")
    outer_inputs = keras.Input((6,), name="outer_features")
    outputs = layers.Activation("softmax", name="softmax")(inner(outer_inputs))
    return randomize_weights(keras.Model(outer_inputs, outputs, name="outer"))


def build_branches() -> keras.Model:
    """Layers created in one order and called in another, in a single graph."""
    late = layers.Dense(3, name="created_first_called_last", **CHEAP)
    early = layers.Dense(3, name="created_last_called_first", **CHEAP)
    inputs = keras.Input((3,), name="x")
    return keras.Model(inputs, late(early(inputs)), name="branches")


@pytest.fixture(scope="module")
def disordered() -> keras.Model:
    return build_disordered()


def _names(items: Any) -> list[str]:
    return [item.name for item in items]


def _flatten_order(model: keras.Model) -> list[str]:
    return [
        layer.name
        for layer in model._flatten_layers(include_self=False)
        if not isinstance(layer, keras.layers.InputLayer)
    ]


def test_flatten_order_and_graph_order_disagree(disordered: keras.Model) -> None:
    flat = _flatten_order(disordered)
    graph = [entry.layer.name for entry in walk(disordered)]
    assert sorted(flat) == sorted(graph)
    assert flat != graph
    assert flat.index("first") > flat.index("second")  # the premise of these tests
    assert graph == ["inner", "first", "norm", "second", "softmax"]


def test_walk_paths_and_containers(disordered: keras.Model) -> None:
    entries = walk(disordered)
    inner = disordered.get_layer("inner")
    assert [e.path for e in entries] == [
        ("inner",),
        ("inner", "first"),
        ("inner", "norm"),
        ("inner", "second"),
        ("softmax",),
    ]
    assert [e.name for e in entries][1] == "inner/first"
    assert entries[1].container is inner and entries[0].container is disordered
    assert all(e.in_graph for e in entries)
    assert walk(disordered) == entries  # cached per model, same answer


def test_graph_order_follows_calls_not_creation() -> None:
    model = build_branches()
    assert _names(e.layer for e in walk(model)) == [
        "created_last_called_first",
        "created_first_called_last",
    ]
    assert keras_inspect.get_logits_layer(model).name == "created_first_called_last"


def test_searches_follow_graph_order(disordered: keras.Model) -> None:
    assert keras_inspect.get_logits_layer(disordered).name == "second"
    assert keras_inspect.find_layer_with(disordered, klass=layers.Dense).name == "second"
    assert (
        keras_inspect.find_layer_with(disordered, klass=layers.Dense, search_reversed=False).name
        == "first"
    )
    assert (
        keras_inspect.find_layer_with(disordered, klass=layers.Dense, strategy="forward").name
        == "first"
    )
    assert (
        keras_inspect.find_layer_with(disordered, properties=["kernel"], strategy="reverse").name
        == "second"
    )
    assert keras_inspect.find_layer_with(disordered, role="normalization").name == "norm"


def test_strategies_list_graph_order(disordered: keras.Model, fresh_pm: Any) -> None:
    strategies = fresh_pm.strategies()
    forward = _names(strategies["forward"](disordered))
    reverse = _names(strategies["reverse"](disordered))
    assert forward == [entry.layer.name for entry in walk(disordered)]
    assert reverse == forward[::-1]


def test_layers_with_biases_follow_graph_order(disordered: keras.Model) -> None:
    found, values = keras_inspect.layers_with_biases(disordered)
    assert _names(found) == ["first", "norm", "second"]
    assert len(values) == len(found)
    flat_order = [n for n in _flatten_order(disordered) if n in {"first", "norm", "second"}]
    assert flat_order != _names(found)


def test_nested_logits_output_matches_the_model(disordered: keras.Model) -> None:
    """The layer found as logits really computes the pre-softmax signal of the model."""
    x = images(3, (6,))
    exposed = keras_inspect.expose(disordered, arguments=[], outputs=None)
    result = exposed(x)
    logits = to_numpy(result[0] if isinstance(result, (list, tuple)) else result)
    assert logits.shape == (3, 4)
    np.testing.assert_allclose(
        to_numpy(keras.ops.softmax(logits, axis=-1)), to_numpy(disordered(x)), rtol=1e-5, atol=1e-6
    )


def test_sequential_inside_functional_inside_sequential() -> None:
    """Three levels of nesting: the walk descends into each where it is called."""
    core = keras.Sequential(
        [keras.Input((4,)), layers.Dense(4, name="core_a", **CHEAP), layers.Dense(4, name="core_b", **CHEAP)],
        name="core",
    )
    inputs = keras.Input((4,))
    x = layers.Dense(4, name="mid_a", **CHEAP)(inputs)
    mid = keras.Model(inputs, layers.Dense(4, name="mid_b", **CHEAP)(core(x)), name="mid")
    top = keras.Sequential([keras.Input((4,)), layers.Dense(4, name="top_a", **CHEAP), mid], name="top")
    assert [e.name for e in walk(top)] == [
        "top_a",
        "mid",
        "mid/mid_a",
        "mid/core",
        "mid/core/core_a",
        "mid/core/core_b",
        "mid/mid_b",
    ]
    assert keras_inspect.get_logits_layer(top).name == "mid_b"
    assert keras_inspect.get_nested_layer(top, "mid/core/core_a").name == "core_a"
    assert keras_inspect.get_nested_layer(top, ("mid", "core", "core_b")).name == "core_b"
    assert _names(keras_inspect.layers_with_biases(top, return_biases=False)) == [
        "top_a",
        "mid_a",
        "core_a",
        "core_b",
        "mid_b",
    ]


class _Head(layers.Layer):
    """A subclassed head: two Dense layers called inside its own call (recorded in no graph)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden = layers.Dense(8, name="hidden", **CHEAP)
        self.out = layers.Dense(3, name="out", **CHEAP)

    def call(self, x: Any) -> Any:
        return self.out(keras.ops.relu(self.hidden(x)))


def _headed() -> keras.Model:
    inputs = keras.Input((6,), name="features")
    x = layers.Dense(6, name="trunk", **CHEAP)(inputs)
    return keras.Model(inputs, _Head(name="head")(x), name="headed")


def test_the_reverse_search_asks_a_layer_before_the_layers_it_calls() -> None:
    model = _headed()
    order = [entry.name for entry in walk(model)]
    assert order == ["trunk", "head", "head/hidden", "head/out"]
    strategies = keras_inspect.plugin_manager().strategies()
    # The head's output is computed after its Dense layers': it is nearest the model's output.
    assert _names(strategies["reverse"](model)) == ["head", "out", "hidden", "trunk"]
    # Not a logits layer by itself: the last Dense inside it is found, as before.
    assert keras_inspect.get_logits_layer(model).name == "out"


def test_a_head_registered_as_logits_is_found_rather_than_a_layer_inside_it() -> None:
    keras_inspect.register_layer(_Head, roles=["logits"])
    model = _headed()
    assert keras_inspect.get_logits_layer(model) is model.get_layer("head")
    x = np.random.default_rng(0).normal(size=(2, 6)).astype("float32")
    logits, _ = keras_inspect.expose(model, arguments="trunk")(x)
    np.testing.assert_allclose(to_numpy(logits), to_numpy(model(x)), rtol=1e-6, atol=1e-6)
