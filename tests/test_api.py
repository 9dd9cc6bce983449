"""The public functions and constants, on small models, with numbers from the models themselves."""

from __future__ import annotations

import inspect
from typing import Any

import keras
import numpy as np
import pytest
from conftest import CHEAP, images, randomize_weights, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from keras import layers, ops

import keras_inspect
from keras_inspect import inspection

pytestmark = pytest.mark.usefixtures("fresh_pm")

from _seed_models import SEED_FUNCTIONS  # noqa: E402


# -- the surface ---------------------------------------------------------------------------


def test_seed_surface_is_exported_from_both_modules() -> None:
    for name in SEED_FUNCTIONS:
        function = getattr(inspection, name)
        assert callable(function)
        assert getattr(keras_inspect, name) is function
        assert name in inspection.__all__ and name in keras_inspect.__all__
    assert inspection.KERNEL_AXIS == keras_inspect.KERNEL_AXIS == -1
    assert inspection.SPATIAL_AXIS == keras_inspect.SPATIAL_AXIS == (-3, -2)


def test_everything_in_all_exists() -> None:
    for name in keras_inspect.__all__:
        assert hasattr(keras_inspect, name), name


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("get_nested_layer", [("model", None), ("name", None)]),
        ("get_logits_layer", [("model", None), ("name", None)]),
        ("get_global_pooling_layer", [("model", None), ("name", None)]),
        (
            "find_layer_with",
            [
                ("model", None),
                ("name", None),
                ("properties", None),
                ("klass", None),
                ("search_reversed", True),
                ("role", None),
                ("strategy", None),
            ],
        ),
        ("endpoints", [("model", None), ("endpoints", None)]),
        ("expose", [("model", None), ("arguments", None), ("outputs", None)]),
        ("gather_units", [("tensor", None), ("indices", None), ("axis", -1), ("batch_dims", -1)]),
        ("layers_with_biases", [("model", None), ("exclude", ()), ("return_biases", True)]),
        ("biases", [("layers", None)]),
    ],
)
def test_seed_signatures(name: str, parameters: list[tuple[str, Any]]) -> None:
    """Parameter names and defaults of the seed (positional order included)."""
    signature = inspect.signature(getattr(inspection, name))
    got = [
        (p.name, None if p.default is inspect.Parameter.empty else p.default)
        for p in signature.parameters.values()
    ]
    assert got == parameters
    if name == "find_layer_with":
        for keyword in ("role", "strategy"):
            assert signature.parameters[keyword].kind is inspect.Parameter.KEYWORD_ONLY


def test_spatial_axis_is_height_and_width(cnn: keras.Model) -> None:
    """Averaging a feature map over SPATIAL_AXIS is what the global pooling layer computes."""
    exposed = keras_inspect.expose(cnn)
    _logits, feature_map = exposed(images())
    pooled = ops.mean(feature_map, axis=keras_inspect.SPATIAL_AXIS)
    gap = cnn.get_layer("gap")
    np.testing.assert_allclose(to_numpy(pooled), to_numpy(gap(feature_map)), rtol=1e-5, atol=1e-6)
    kernel = cnn.get_layer("logits").kernel
    assert kernel.shape[keras_inspect.KERNEL_AXIS] == 5  # units of the logits layer


# -- finding layers --------------------------------------------------------------------------


def test_get_nested_layer_forms(nested: keras.Model) -> None:
    backbone = nested.get_layer("backbone")
    conv = backbone.get_layer("b_conv2")
    assert keras_inspect.get_nested_layer(nested, "backbone") is backbone
    assert keras_inspect.get_nested_layer(nested, "backbone/b_conv2") is conv
    assert keras_inspect.get_nested_layer(nested, ("backbone", "b_conv2")) is conv
    assert keras_inspect.get_nested_layer(nested, ["backbone", "b_conv2"]) is conv
    # A unique name is found at any depth.
    assert keras_inspect.get_nested_layer(nested, "b_conv2") is conv


def test_get_logits_and_pooling_layers(cnn: keras.Model, nested: keras.Model) -> None:
    assert keras_inspect.get_logits_layer(cnn) is cnn.get_layer("logits")
    assert keras_inspect.get_global_pooling_layer(cnn) is cnn.get_layer("gap")
    assert keras_inspect.get_logits_layer(nested) is nested.get_layer("predictions")
    assert keras_inspect.get_global_pooling_layer(nested) is nested.get_layer("avg_pool")
    # An explicit name wins over the search.
    assert keras_inspect.get_logits_layer(cnn, "conv2") is cnn.get_layer("conv2")
    assert keras_inspect.get_global_pooling_layer(nested, "backbone/b_relu").name == "b_relu"


@pytest.mark.parametrize(
    "pooling",
    [
        layers.GlobalAveragePooling1D,
        layers.GlobalMaxPooling1D,
        layers.GlobalAveragePooling2D,
        layers.GlobalMaxPooling2D,
        layers.GlobalAveragePooling3D,
        layers.GlobalMaxPooling3D,
        layers.Flatten,
    ],
)
def test_pooling_role(pooling: type, fresh_pm: Any) -> None:
    assert fresh_pm.classify(pooling(), "pooling") == (True, "keras_inspect.adapters.pooling")
    assert not fresh_pm.classify(layers.MaxPooling2D(), "pooling")[0]


def test_find_layer_with_criteria(cnn: keras.Model) -> None:
    assert keras_inspect.find_layer_with(cnn, klass=layers.Conv2D).name == "conv2"
    assert keras_inspect.find_layer_with(cnn, klass=(layers.Conv2D, layers.Dense)).name == "logits"
    assert keras_inspect.find_layer_with(cnn, klass=layers.Conv2D, search_reversed=False).name == "conv1"
    assert keras_inspect.find_layer_with(cnn, properties=["moving_mean"]).name == "bn1"
    assert keras_inspect.find_layer_with(cnn, properties="kernel", klass=layers.Conv2D).name == "conv2"
    assert keras_inspect.find_layer_with(cnn, role="normalization").name == "bn1"
    assert keras_inspect.find_layer_with(cnn, role="logits", strategy="forward").name == "conv1"
    assert keras_inspect.find_layer_with(cnn, name="relu1").name == "relu1"
    # All criteria must hold at once.
    with pytest.raises(keras_inspect.NoMatchingLayerError, match="role='normalization'"):
        keras_inspect.find_layer_with(cnn, klass=layers.Conv2D, role="normalization")


# -- biases ----------------------------------------------------------------------------------


def test_layers_with_biases_and_biases_align(cnn: keras.Model) -> None:
    found, values = keras_inspect.layers_with_biases(cnn)
    assert [layer.name for layer in found] == ["conv1", "bn1", "conv2", "logits"]
    assert len(values) == len(found)
    again = keras_inspect.biases(found)
    for layer, value, same in zip(found, values, again):
        np.testing.assert_array_equal(to_numpy(value), to_numpy(same))
    np.testing.assert_array_equal(to_numpy(values[0]), to_numpy(cnn.get_layer("conv1").bias))
    np.testing.assert_array_equal(to_numpy(values[3]), to_numpy(cnn.get_layer("logits").bias))
    assert keras_inspect.layers_with_biases(cnn, return_biases=False) == found
    # Layers without a constant are skipped by biases(), as by the seed.
    assert len(keras_inspect.biases([cnn.get_layer("gap"), cnn.get_layer("conv1")])) == 1


def test_layers_with_biases_exclude(cnn: keras.Model) -> None:
    bn, logits = cnn.get_layer("bn1"), cnn.get_layer("logits")
    found, values = keras_inspect.layers_with_biases(cnn, exclude=(bn, logits))
    assert [layer.name for layer in found] == ["conv1", "conv2"]
    assert len(values) == 2
    found = keras_inspect.layers_with_biases(cnn, exclude=[bn], return_biases=False)
    assert [layer.name for layer in found] == ["conv1", "conv2", "logits"]


def test_biases_sum_to_the_model_output_on_a_linear_model() -> None:
    """Completeness: for a linear model, f(0) is made of its biases pushed through the kernels."""
    inputs = keras.Input((4,))
    hidden = layers.Dense(3, name="hidden", **CHEAP)(inputs)
    outputs = layers.Dense(2, name="out", **CHEAP)(hidden)
    model = randomize_weights(keras.Model(inputs, outputs))
    found, values = keras_inspect.layers_with_biases(model)
    hidden_bias, out_bias = (to_numpy(v) for v in values)
    kernel = to_numpy(model.get_layer("out").kernel)
    expected = hidden_bias @ kernel + out_bias
    np.testing.assert_allclose(to_numpy(model(np.zeros((1, 4), "float32")))[0], expected, rtol=1e-6)


def test_nested_biases_include_inner_layers(nested: keras.Model) -> None:
    found = keras_inspect.layers_with_biases(nested, return_biases=False)
    assert [layer.name for layer in found] == ["b_conv1", "b_bn", "b_conv2", "predictions"]


# -- expose and endpoints --------------------------------------------------------------------


def test_expose_defaults(cnn: keras.Model) -> None:
    exposed = keras_inspect.expose(cnn)
    assert isinstance(exposed, keras.Model)
    x = images()
    logits, feature_map = exposed(x)
    np.testing.assert_allclose(to_numpy(logits), to_numpy(cnn(x)), rtol=1e-5, atol=1e-6)
    # The pooling layer's input, checked through the rest of the model.
    head = to_numpy(cnn.get_layer("logits")(cnn.get_layer("gap")(feature_map)))
    np.testing.assert_allclose(head, to_numpy(logits), rtol=1e-5, atol=1e-6)
    assert all(a is b for a, b in zip(exposed.inputs, cnn.inputs))


def test_expose_nested_signal(nested: keras.Model) -> None:
    exposed = keras_inspect.expose(nested, arguments="backbone/b_conv2", outputs="predictions")
    x = images(seed=4)
    logits, feature_map = exposed(x)
    np.testing.assert_allclose(to_numpy(logits), to_numpy(nested(x)), rtol=1e-5, atol=1e-6)
    backbone = nested.get_layer("backbone")
    expected = keras.Model(backbone.inputs[0], backbone.get_layer("b_conv2").output)(x)
    np.testing.assert_allclose(to_numpy(feature_map), to_numpy(expected), rtol=1e-5, atol=1e-6)
    # Weights are shared, not copied.
    assert {id(w) for w in exposed.weights} == {id(w) for w in nested.weights}


def test_expose_several_arguments_and_outputs(cnn: keras.Model) -> None:
    exposed = keras_inspect.expose(cnn, arguments=["conv1", {"name": "relu1"}], outputs=["logits", "gap"])
    results = exposed(images())
    assert [tuple(r.shape) for r in results] == [(2, 5), (2, 6), (2, 14, 14, 4), (2, 14, 14, 4)]
    np.testing.assert_allclose(
        to_numpy(results[3]), np.maximum(to_numpy(cnn.get_layer("bn1")(results[2])), 0), rtol=1e-5, atol=1e-6
    )


def test_endpoints_returns_symbolic_tensors(cnn: keras.Model) -> None:
    tensors = keras_inspect.endpoints(cnn, ["conv1", {"name": "logits", "link": "input"}])
    assert tensors[0] is cnn.get_layer("conv1").output
    assert tensors[1] is cnn.get_layer("gap").output
    model = keras.Model(cnn.inputs[0], tensors)
    assert [tuple(t.shape) for t in model(images())] == [(2, 14, 14, 4), (2, 6)]


# -- gather_units ----------------------------------------------------------------------------


@st.composite
def gather_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    batch = draw(st.integers(1, 4))
    units = draw(st.integers(1, 6))
    extra = draw(st.lists(st.integers(1, 3), max_size=2))
    axis = draw(st.integers(1, 1 + len(extra)))
    shape = [batch, *extra]
    shape.insert(axis, units)
    tensor = draw(hnp.arrays("float32", tuple(shape), elements=st.floats(-10, 10, width=32)))
    count = draw(st.integers(1, 5))
    indices = draw(hnp.arrays("int32", (batch, count), elements=st.integers(-units, units - 1)))
    return tensor, indices, axis


def _reference_gather(tensor: np.ndarray, indices: np.ndarray, axis: int) -> np.ndarray:
    """Per-sample selection along ``axis`` with numpy's take_along_axis."""
    positive = indices % tensor.shape[axis]
    shape = [tensor.shape[0]] + [1] * (tensor.ndim - 1)
    shape[axis] = positive.shape[1]
    index = positive.reshape(shape)
    target = list(tensor.shape)
    target[axis] = positive.shape[1]
    return np.take_along_axis(tensor, np.broadcast_to(index, target), axis=axis)


@settings(max_examples=15)
@given(case=gather_cases())
def test_gather_units_matches_take_along_axis(case: tuple[np.ndarray, np.ndarray, int]) -> None:
    tensor, indices, axis = case
    result = to_numpy(keras_inspect.gather_units(tensor, indices, axis=axis))
    np.testing.assert_array_equal(result, _reference_gather(tensor, indices, axis))
    # The same axis counted from the end.
    negative = to_numpy(keras_inspect.gather_units(tensor, indices, axis=axis - tensor.ndim))
    np.testing.assert_array_equal(negative, result)


def test_gather_units_picks_each_samples_target() -> None:
    logits = np.arange(12, dtype="float32").reshape(3, 4)
    targets = np.array([[2], [0], [3]])
    np.testing.assert_array_equal(
        to_numpy(keras_inspect.gather_units(logits, targets)), [[2.0], [4.0], [11.0]]
    )


def test_gather_units_none_returns_the_tensor() -> None:
    tensor = ops.ones((2, 3))
    assert keras_inspect.gather_units(tensor, None) is tensor
    array = np.ones((2, 3))
    assert keras_inspect.gather_units(array, None, axis=0, batch_dims=0) is array


def test_gather_units_batch_dims_zero() -> None:
    """batch_dims=0: the same units for every sample (a plain gather)."""
    tensor = np.arange(10, dtype="float32").reshape(2, 5)
    result = to_numpy(keras_inspect.gather_units(tensor, np.array([4, 1]), axis=1, batch_dims=0))
    np.testing.assert_array_equal(result, tensor[:, [4, 1]])


@pytest.mark.parametrize(
    ("tensor", "indices", "kwargs", "error", "needle"),
    [
        (np.ones((2, 3)), np.array([[3], [0]]), {}, ValueError, "3"),
        (np.ones((2, 3)), np.array([[-4], [0]]), {}, ValueError, "-4"),
        (np.ones((2, 3)), np.array([[0.5], [1.0]]), {}, TypeError, "integers"),
        (np.ones((2, 3)), np.array([[0], [1], [2]]), {}, ValueError, "batch axis"),
        (np.ones((2, 3)), np.array([[0], [1]]), {"axis": 2}, ValueError, "axis 2"),
    ],
)
def test_gather_units_errors(
    tensor: np.ndarray, indices: np.ndarray, kwargs: dict, error: type, needle: str
) -> None:
    with pytest.raises(error, match=needle):
        keras_inspect.gather_units(tensor.astype("float32"), indices, **kwargs)


@pytest.mark.parametrize(
    "indices",
    [object(), "ab", b"x", [[1e300], [0.0]], [[True], [False]], ...],
    ids=["object", "text", "bytes", "huge-float", "bool", "ellipsis"],
)
def test_gather_units_refuses_non_integer_indices_itself(indices: Any) -> None:
    """The value is checked before a backend sees it, so the error is ours and names it."""
    with pytest.raises(TypeError, match="indices must be integers") as caught:
        keras_inspect.gather_units(np.ones((2, 3), "float32"), indices)
    assert repr(indices)[:20] in str(caught.value)


# -- small utilities -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("axes", "rank", "values_shape", "expected"),
    [
        (-1, 4, (6,), (6,)),
        (3, 4, (6,), (6,)),
        (1, 4, (6,), (6, 1, 1)),
        (1, 3, (6,), (6, 1)),
        ([1, 2], 4, (6, 7), (6, 7, 1)),
        ([-2, -1], 4, (6, 7), (6, 7)),
        (2, 5, (6,), (6, 1, 1)),
    ],
)
def test_align_to_axes(axes: Any, rank: int, values_shape: tuple, expected: tuple) -> None:
    values = np.arange(np.prod(values_shape), dtype="float32").reshape(values_shape)
    aligned = to_numpy(keras_inspect.align_to_axes(values, axes, rank))
    assert aligned.shape == expected
    np.testing.assert_array_equal(aligned.reshape(values_shape), values)


def test_endpoint_is_a_frozen_value() -> None:
    import attrs

    endpoint = keras_inspect.Endpoint(path="backbone/conv", link="input", node=0)
    assert endpoint.path == ("backbone", "conv") and endpoint.name == "backbone/conv"
    assert endpoint == keras_inspect.Endpoint(path=("backbone", "conv"), link="input", node=0)
    assert hash(endpoint) == hash(keras_inspect.Endpoint(path=["backbone", "conv"], link="input", node=0))
    assert keras_inspect.Endpoint(path="x").link == "output"
    assert keras_inspect.Endpoint(path="x").node == "last"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        endpoint.link = "output"  # type: ignore[misc]
