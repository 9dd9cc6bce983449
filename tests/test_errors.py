"""Bad input: ValueError/TypeError naming the value, what was expected, and close matches."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
from conftest import CHEAP, build_cnn, randomize_weights
from keras import layers

import keras_inspect
from keras_inspect import (
    Endpoint,
    EndpointError,
    KerasInspectError,
    LayerNotFoundError,
    NoMatchingLayerError,
    PluginError,
)

pytestmark = pytest.mark.usefixtures("fresh_pm")


def test_error_hierarchy() -> None:
    for error in (LayerNotFoundError, NoMatchingLayerError, EndpointError, PluginError):
        assert issubclass(error, KerasInspectError)
    assert issubclass(KerasInspectError, ValueError)


# -- names and paths -------------------------------------------------------------------------


def test_misspelled_name_lists_close_matches(cnn: keras.Model) -> None:
    with pytest.raises(LayerNotFoundError) as caught:
        keras_inspect.get_nested_layer(cnn, "conv_1")
    message = str(caught.value)
    assert "'conv_1'" in message and "'conv1'" in message and "cnn" in message


def test_misspelled_path_step_lists_its_siblings(nested: keras.Model) -> None:
    with pytest.raises(LayerNotFoundError) as caught:
        keras_inspect.get_nested_layer(nested, "backbone/b_conv3")
    message = str(caught.value)
    assert "'b_conv3'" in message and "'b_conv2'" in message and "backbone" in message
    with pytest.raises(LayerNotFoundError, match="'backbone'"):
        keras_inspect.get_nested_layer(nested, ("bakbone", "b_conv2"))


def test_name_without_any_close_match(cnn: keras.Model) -> None:
    with pytest.raises(LayerNotFoundError, match="'zzz'") as caught:
        keras_inspect.get_nested_layer(cnn, "zzz")
    assert "Did you mean" not in str(caught.value)


def test_ambiguous_nested_name_asks_for_the_path() -> None:
    def block(name: str) -> keras.Model:
        inputs = keras.Input((3,))
        return keras.Model(inputs, layers.Dense(3, name="proj", **CHEAP)(inputs), name=name)

    inputs = keras.Input((3,))
    model = keras.Model(inputs, block("second")(block("first")(inputs)), name="twice")
    with pytest.raises(LayerNotFoundError, match="ambiguous.*first/proj.*second/proj"):
        keras_inspect.get_nested_layer(model, "proj")
    assert keras_inspect.get_nested_layer(model, "second/proj").name == "proj"


@pytest.mark.parametrize(
    ("name", "error", "needle"),
    [
        (3.5, TypeError, "3.5"),
        (None, TypeError, "None"),
        (("backbone", 3), TypeError, "3"),
        ("", ValueError, "non-empty"),
        ("backbone//b_conv2", ValueError, "non-empty"),
        ((), ValueError, "non-empty"),
    ],
)
def test_malformed_names(nested: keras.Model, name: Any, error: type, needle: str) -> None:
    with pytest.raises(error) as caught:
        keras_inspect.get_nested_layer(nested, name)
    assert needle in str(caught.value)


# -- searches --------------------------------------------------------------------------------


def test_find_layer_with_needs_a_criterion(cnn: keras.Model) -> None:
    with pytest.raises(ValueError, match="at least one of name, properties, klass or role"):
        keras_inspect.find_layer_with(cnn)
    with pytest.raises(ValueError, match="at least one"):
        keras_inspect.find_layer_with(cnn, search_reversed=False, strategy="forward")


def test_model_without_pooling_layer(mlp: keras.Model) -> None:
    with pytest.raises(NoMatchingLayerError) as caught:
        keras_inspect.get_global_pooling_layer(mlp)
    message = str(caught.value)
    assert "'mlp'" in message and "pooling" in message
    with pytest.raises(ValueError):
        keras_inspect.expose(mlp)  # needs the pooling layer for its default argument


def test_model_without_logits_layer() -> None:
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layers.Activation("softmax", name="softmax")(inputs), name="nokernel")
    with pytest.raises(NoMatchingLayerError, match="logits"):
        keras_inspect.get_logits_layer(model)


def test_no_layer_matches_the_criteria(cnn: keras.Model) -> None:
    with pytest.raises(NoMatchingLayerError, match="klass=.*LSTM"):
        keras_inspect.find_layer_with(cnn, klass=layers.LSTM)
    with pytest.raises(NoMatchingLayerError, match="no_such_attribute"):
        keras_inspect.find_layer_with(cnn, properties=["no_such_attribute"])


def test_unknown_role_lists_close_matches(cnn: keras.Model) -> None:
    with pytest.raises(ValueError) as caught:
        keras_inspect.find_layer_with(cnn, role="normalisation")
    message = str(caught.value)
    assert "'normalisation'" in message and "'normalization'" in message
    assert "pooling" in message  # the known roles are listed
    with pytest.raises(TypeError, match="role"):
        keras_inspect.find_layer_with(cnn, role=3)


def test_unknown_strategy_lists_close_matches(cnn: keras.Model) -> None:
    with pytest.raises(ValueError) as caught:
        keras_inspect.find_layer_with(cnn, klass=layers.Dense, strategy="revers")
    message = str(caught.value)
    assert "'revers'" in message and "'reverse'" in message and "forward" in message
    with pytest.raises(TypeError, match="strategy"):
        keras_inspect.find_layer_with(cnn, klass=layers.Dense, strategy=reversed)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"klass": "Dense"}, "klass"),
        ({"klass": (layers.Dense, 3)}, "klass"),
        ({"properties": [3]}, "properties"),
    ],
)
def test_malformed_search_criteria(cnn: keras.Model, kwargs: dict, needle: str) -> None:
    with pytest.raises(TypeError, match=needle):
        keras_inspect.find_layer_with(cnn, **kwargs)


# -- not a model -----------------------------------------------------------------------------

NOT_MODELS = [None, "cnn", 3, np.zeros((2, 3)), object()]


@pytest.mark.parametrize("not_a_model", NOT_MODELS, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize(
    "call",
    [
        lambda m: keras_inspect.get_nested_layer(m, "conv1"),
        lambda m: keras_inspect.get_logits_layer(m),
        lambda m: keras_inspect.get_global_pooling_layer(m),
        lambda m: keras_inspect.find_layer_with(m, klass=layers.Dense),
        lambda m: keras_inspect.find_layer_with(m, name="conv1"),
        lambda m: keras_inspect.endpoints(m, ["conv1"]),
        lambda m: keras_inspect.expose(m),
        lambda m: keras_inspect.layers_with_biases(m),
        lambda m: keras_inspect.walk(m),
    ],
    ids=[
        "get_nested_layer",
        "get_logits_layer",
        "get_global_pooling_layer",
        "find_layer_with",
        "find_layer_with_name",
        "endpoints",
        "expose",
        "layers_with_biases",
        "walk",
    ],
)
def test_non_model_inputs_raise_type_error(not_a_model: Any, call: Any) -> None:
    with pytest.raises(TypeError, match="expected a Keras model") as caught:
        call(not_a_model)
    assert type(not_a_model).__name__ in str(caught.value)


def test_biases_needs_an_iterable_of_layers() -> None:
    with pytest.raises(TypeError, match="iterable of layers"):
        keras_inspect.biases("conv1")
    with pytest.raises(TypeError, match="iterable of layers"):
        keras_inspect.biases(3)


# -- endpoint descriptors ------------------------------------------------------------------


def _case_id(value: Any) -> str:
    # Stable across pytest-xdist workers: no memory addresses.
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, list):
        return ""
    if type(value) is object:
        return "object"
    return repr(value)[:40]


@pytest.mark.parametrize(
    ("descriptor", "error", "needles"),
    [
        ({"name": "conv1", "lnk": "input"}, EndpointError, ["'lnk'", "'link'"]),
        ({"name": "conv1", "layer": 1}, EndpointError, ["exactly one of 'name' and 'layer'"]),
        ({"link": "input"}, EndpointError, ["exactly one of 'name' and 'layer'"]),
        ({"name": "conv1", "link": "outputs"}, EndpointError, ["'outputs'", "'output'", "'input'"]),
        ({"name": "conv1", "node": "first"}, EndpointError, ["'first'", "'last'"]),
        ({"name": "conv1", "node": 1.0}, EndpointError, ["1.0", "node"]),
        ({"name": "conv1", "node": True}, EndpointError, ["True", "node"]),
        ({"name": "conv1", "index": "0"}, EndpointError, ["index", "'0'"]),
        ({"name": "conv_1"}, LayerNotFoundError, ["'conv_1'", "'conv1'"]),
        ({"layer": "conv1"}, TypeError, ["'layer'", "'conv1'"]),
        ({"layer": 40}, LayerNotFoundError, ["40", "out of range"]),
        (40, LayerNotFoundError, ["40", "7 top-level layers", "-7..6"]),
        (-8, LayerNotFoundError, ["-8", "out of range"]),
        (True, TypeError, ["bool"]),
        (2.0, TypeError, ["2.0", "float", "layer index"]),
        (object(), TypeError, ["object", "expected a layer index"]),
        ("conv_2", LayerNotFoundError, ["'conv_2'", "'conv2'"]),
    ],
    ids=lambda v: _case_id(v),
)
def test_malformed_descriptors(
    cnn: keras.Model, descriptor: Any, error: type, needles: list[str]
) -> None:
    with pytest.raises(error) as caught:
        keras_inspect.endpoints(cnn, [descriptor])
    message = str(caught.value)
    for needle in needles:
        assert needle in message, message


def test_node_out_of_range(cnn: keras.Model, shared_model: keras.Model) -> None:
    with pytest.raises(EndpointError, match=r"called 1 time.*node 1 is out of range"):
        keras_inspect.endpoints(cnn, [{"name": "conv1", "node": 1}])
    with pytest.raises(EndpointError, match=r"called 2 time.*node -3.*-2\.\.1"):
        keras_inspect.endpoints(shared_model, [{"name": "shared", "node": -3}])


def test_index_out_of_range(shared_model: keras.Model) -> None:
    with pytest.raises(EndpointError, match="2 tensor.*index 2"):
        keras_inspect.endpoints(shared_model, [{"name": "concat", "link": "input", "index": 2}])


def test_endpoint_value_validation() -> None:
    with pytest.raises(EndpointError, match="'pre-activation'"):
        Endpoint(path="conv1", link="pre-activation")
    with pytest.raises(EndpointError, match="'2'"):
        Endpoint(path="conv1", node="2")
    with pytest.raises(ValueError, match="non-empty"):
        Endpoint(path="a//b")


def test_layer_or_tensor_of_another_model(cnn: keras.Model) -> None:
    other = build_cnn()
    with pytest.raises(LayerNotFoundError, match="not part of model 'cnn'"):
        keras_inspect.endpoints(cnn, [other.get_layer("conv1")])
    with pytest.raises(EndpointError, match="not part of model 'cnn'"):
        keras_inspect.endpoints(cnn, [other.get_layer("conv1").output])
    with pytest.raises(LayerNotFoundError, match="not part of model"):
        keras_inspect.endpoints(cnn, [{"layer": other.get_layer("conv1")}])


def test_tensor_from_a_later_call_outside_the_graph(cnn: keras.Model) -> None:
    """A layer called again after the model was built: that call is not part of the model."""
    outside = randomize_weights(build_cnn())
    conv = outside.get_layer("conv1")
    stray = conv(keras.Input((16, 16, 3)))
    with pytest.raises(EndpointError, match="conv1"):
        keras_inspect.endpoints(outside, [stray])
    # node="last" still means the last call inside the model, not the stray one.
    [tensor] = keras_inspect.endpoints(outside, ["conv1"])
    assert tensor is not stray
    assert tensor is conv._inbound_nodes[0].output_tensors[0]


def test_expose_without_any_signal(cnn: keras.Model) -> None:
    with pytest.raises(EndpointError, match="at least one signal"):
        keras_inspect.expose(cnn, arguments=[], outputs=[])


def test_using_plugin_manager_needs_a_manager() -> None:
    with pytest.raises(TypeError, match="new_plugin_manager"):
        with keras_inspect.using_plugin_manager(object()):  # type: ignore[arg-type]
            pass
