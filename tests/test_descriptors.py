"""Endpoint descriptors: every accepted form names the same signal as its Endpoint value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import layers
import numpy as np
import pytest
from conftest import images, to_numpy

import keras_inspect
from keras_inspect import Endpoint
from keras_inspect.answers import descriptors as _endpoints
from keras_inspect.graph.inspected import inspect_model

pytestmark = pytest.mark.usefixtures("fresh_pm")

# Each form of "the output of conv1" in the flat model (model.layers[0] is the InputLayer).
TOP_LEVEL_FORMS: dict[str, Callable[[keras.Model], Any]] = {
    "int": lambda m: 1,
    "negative int": lambda m: -6,
    "name": lambda m: "conv1",
    "layer": lambda m: m.get_layer("conv1"),
    "dict name": lambda m: {"name": "conv1"},
    "dict layer": lambda m: {"layer": m.get_layer("conv1")},
    "dict layer index": lambda m: {"layer": 1, "link": "output", "node": "last"},
    "endpoint": lambda m: Endpoint(path=("conv1",)),
    "endpoint from string": lambda m: Endpoint(path="conv1"),
}


@pytest.mark.parametrize("form", sorted(TOP_LEVEL_FORMS))
def test_top_level_forms(cnn: keras.Model, form: str) -> None:
    descriptor = TOP_LEVEL_FORMS[form](cnn)
    assert to_endpoint(cnn, descriptor) == Endpoint(path=("conv1",), link="output", node="last")
    [tensor] = keras_inspect.endpoints(cnn, [descriptor])
    assert tensor is cnn.get_layer("conv1").output


def to_endpoint(model, descriptor):  # type: ignore[no-untyped-def]
    return _endpoints.to_endpoint(inspect_model(model), descriptor)


def to_endpoints(model, descriptors):  # type: ignore[no-untyped-def]
    return _endpoints.to_endpoints(inspect_model(model), descriptors)


def test_symbolic_tensor_form(cnn: keras.Model) -> None:
    tensor = cnn.get_layer("conv1").output
    endpoint = to_endpoint(cnn, tensor)
    assert endpoint.path == ("conv1",) and endpoint.link == "output"
    assert keras_inspect.endpoints(cnn, [tensor])[0] is tensor
    # A single descriptor needs no list.
    assert keras_inspect.endpoints(cnn, tensor)[0] is tensor
    assert keras_inspect.endpoints(cnn, "conv1")[0] is tensor


NESTED_FORMS: dict[str, Callable[[keras.Model], Any]] = {
    "path string": lambda m: "backbone/b_conv2",
    "unique inner name": lambda m: "b_conv2",
    "layer": lambda m: m.get_layer("backbone").get_layer("b_conv2"),
    "dict name": lambda m: {"name": "backbone/b_conv2"},
    "dict tuple name": lambda m: {"name": ("backbone", "b_conv2"), "node": 0},
    "dict layer": lambda m: {"layer": m.get_layer("backbone").get_layer("b_conv2")},
    "endpoint": lambda m: Endpoint(path=("backbone", "b_conv2")),
    "symbolic tensor": lambda m: m.get_layer("backbone").get_layer("b_conv2").output,
}


@pytest.fixture(scope="module")
def inner_feature_map(nested: keras.Model) -> np.ndarray:
    backbone = nested.get_layer("backbone")
    reference = keras.Model(backbone.inputs[0], backbone.get_layer("b_conv2").output)
    return to_numpy(reference(images(seed=5)))


@pytest.mark.parametrize("form", sorted(NESTED_FORMS))
def test_nested_forms(nested: keras.Model, inner_feature_map: np.ndarray, form: str) -> None:
    descriptor = NESTED_FORMS[form](nested)
    endpoint = to_endpoint(nested, descriptor)
    assert endpoint.path == ("backbone", "b_conv2")
    assert endpoint.link == "output"
    [tensor] = keras_inspect.endpoints(nested, [descriptor])
    # Connected to the outer model's inputs, and computing the inner layer's output.
    model = keras.Model(nested.inputs[0], tensor)
    np.testing.assert_allclose(to_numpy(model(images(seed=5))), inner_feature_map, rtol=1e-5, atol=1e-6)


def test_a_tuple_or_a_list_is_several_endpoints_as_in_the_seed(nested: keras.Model) -> None:
    for several in (("backbone", "predictions"), ["backbone", "predictions"]):
        assert to_endpoints(nested, several) == [
            Endpoint(path=("backbone",)),
            Endpoint(path=("predictions",)),
        ]
    # The seed's expose(model, "gap", ("logits", "probs")): two outputs, one argument.
    assert len(keras_inspect.expose(nested, "avg_pool", ("predictions", "backbone")).outputs) == 3
    # Paths are strings (or a tuple where one name is expected: a dict's "name", an Endpoint).
    assert to_endpoints(nested, "backbone/b_conv2") == [Endpoint(path=("backbone", "b_conv2"))]
    assert to_endpoints(nested, [{"name": ("backbone", "b_conv2")}]) == [
        Endpoint(path=("backbone", "b_conv2"))
    ]
    assert keras_inspect.get_nested_layer(nested, ("backbone", "b_conv2")).name == "b_conv2"


def test_a_nested_tuple_is_refused_with_the_path_forms(nested: keras.Model) -> None:
    with pytest.raises(TypeError, match="'outer/inner'"):
        keras_inspect.endpoints(nested, [("backbone", "b_conv2")])


def test_input_link(cnn: keras.Model, nested: keras.Model) -> None:
    [tensor] = keras_inspect.endpoints(cnn, [{"name": "logits", "link": "input"}])
    assert tensor is cnn.get_layer("gap").output
    [inner_input] = keras_inspect.endpoints(nested, [{"name": "backbone/b_conv2", "link": "input"}])
    backbone = nested.get_layer("backbone")
    reference = keras.Model(backbone.inputs[0], backbone.get_layer("b_relu").output)
    x = images(seed=6)
    np.testing.assert_allclose(
        to_numpy(keras.Model(nested.inputs[0], inner_input)(x)), to_numpy(reference(x)), rtol=1e-5, atol=1e-6
    )


def test_pre_activation_link(cnn: keras.Model) -> None:
    conv2 = cnn.get_layer("conv2")
    output, pre = keras_inspect.endpoints(
        cnn, ["conv2", Endpoint(path="conv2", link="pre_activation")]
    )
    values = keras.Model(cnn.inputs[0], [output, pre])(images(seed=7))
    out, before = (to_numpy(v) for v in values)
    assert before.min() < 0  # really before the fused relu
    np.testing.assert_allclose(out, np.maximum(before, 0), rtol=1e-5, atol=1e-6)
    assert conv2.activation is keras.activations.relu or conv2.activation.__name__ == "relu"
    # A layer without an activation: the pre-activation is its output.
    [same] = keras_inspect.endpoints(cnn, [{"name": "logits", "link": "pre_activation"}])
    x = images(seed=8)
    np.testing.assert_allclose(
        to_numpy(keras.Model(cnn.inputs[0], same)(x)), to_numpy(cnn(x)), rtol=1e-5, atol=1e-6
    )


def test_nodes_of_a_shared_layer(shared_model: keras.Model) -> None:
    concat_inputs = shared_model.get_layer("concat")._inbound_nodes[0].input_tensors
    first, second = concat_inputs
    resolve = lambda node: keras_inspect.endpoints(shared_model, [{"name": "shared", "node": node}])[0]  # noqa: E731
    assert resolve(0) is first
    assert resolve(1) is second
    assert resolve("last") is second
    assert resolve(-1) is second
    assert resolve(-2) is first
    [input_of_second] = keras_inspect.endpoints(
        shared_model, [Endpoint(path=("shared",), link="input", node=1)]
    )
    assert input_of_second is shared_model.inputs[1]
    # A symbolic tensor remembers which call produced it.
    assert to_endpoint(shared_model, first).node == 0
    assert to_endpoint(shared_model, second).node == 1


def test_list_signal_is_flattened_in_order(shared_model: keras.Model) -> None:
    first, second = shared_model.get_layer("concat")._inbound_nodes[0].input_tensors
    tensors = keras_inspect.endpoints(shared_model, [{"name": "concat", "link": "input"}, "head"])
    assert len(tensors) == 3 and tensors[0] is first and tensors[1] is second
    [only] = keras_inspect.endpoints(shared_model, [{"name": "concat", "link": "input", "index": 1}])
    assert only is second
    exposed = keras_inspect.expose(
        shared_model, arguments=[{"name": "concat", "link": "input"}], outputs="head"
    )
    assert len(exposed.outputs) == 3


def test_model_input_as_endpoint(cnn: keras.Model) -> None:
    given = cnn.inputs[0]
    input_layer = cnn.layers[0]
    for descriptor in (given, 0, input_layer, input_layer.name, {"layer": 0, "link": "input"}):
        assert keras_inspect.endpoints(cnn, [descriptor])[0] is given, descriptor
    x = np.random.default_rng(0).random((2, *given.shape[1:])).astype("float32")
    logits, echoed = keras_inspect.expose(cnn, arguments=0)(x)
    np.testing.assert_array_equal(to_numpy(echoed), x)
    np.testing.assert_allclose(to_numpy(logits), to_numpy(cnn(x)), rtol=1e-6, atol=1e-6)


def test_nested_model_input_as_endpoint() -> None:
    inner = keras.Sequential(
        [keras.Input((4,), name="inner_in"), layers.Dense(3, name="d1")], name="inner"
    )
    given = keras.Input((4,))
    scaled = layers.Rescaling(2.0, name="scale")(given)
    model = keras.Model(given, layers.Dense(2, name="head")(inner(scaled)))
    x = np.random.default_rng(1).random((3, 4)).astype("float32")
    head, seen = keras_inspect.expose(model, arguments="inner/inner_in", outputs="head")(x)
    np.testing.assert_allclose(to_numpy(seen), 2.0 * x, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(head), to_numpy(model(x)), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="inner_inn"):
        keras_inspect.endpoints(model, ["inner/inner_inn"])
