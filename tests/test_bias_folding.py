"""Every built-in bias is checked against the layer's own computation on an all-zeros input.

For each of these layers, the output on zeros is exactly the constant the layer adds:
an inference-mode BatchNormalization gives ``beta - gamma * mean / sqrt(variance + epsilon)``,
layer/group normalization give ``beta`` (normalized zeros are zeros), and kernel layers give their
bias. The bias must also broadcast to the output without changing its shape, which pins down the
channel axis (channels-first layers included).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
from _layout import output_on_zeros
from conftest import to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import layers

import keras_inspect

pytestmark = pytest.mark.usefixtures("fresh_pm")

EPSILONS = (1e-3, 1.001e-5, 0.1)
# Non-channel axes get sizes that differ from each other and from every channel count used
# below, so a bias placed on the wrong axis cannot broadcast by accident.
OTHER_SIZES = (3, 5, 7)


def _shape(rank: int, channel_axes: list[int], channels: list[int]) -> tuple[int, ...]:
    shape, others = [2], iter(OTHER_SIZES)
    sizes = dict(zip(channel_axes, channels))
    for axis in range(1, rank):
        shape.append(sizes[axis] if axis in sizes else next(others))
    return tuple(shape)


def _randomize(*variables: Any, seed: int = 0) -> None:
    # Assigned from NumPy rather than drawn by Keras initializers: on the JAX backend every new
    # shape given to a random initializer costs seconds of XLA compilation.
    rng = np.random.default_rng(seed)
    for variable in variables:
        variable.assign(rng.normal(size=tuple(variable.shape)).astype("float32"))


def _assert_bias_is_output_on_zeros(layer: Any, shape: tuple[int, ...]) -> None:
    output = to_numpy(output_on_zeros(layer, shape, training=False))
    values = keras_inspect.biases([layer])
    assert len(values) == 1, f"{layer.name} should add a constant"
    bias = to_numpy(values[0])
    # Distinct sizes make a bias on the wrong axis fail to broadcast or to match.
    assert len(set(output.shape[1:])) == len(output.shape[1:]), output.shape
    assert np.broadcast_shapes(bias.shape, output.shape) == output.shape
    scale = max(1.0, float(np.abs(output).max()))
    np.testing.assert_allclose(np.broadcast_to(bias, output.shape), output, rtol=1e-5, atol=1e-5 * scale)
    # layers_with_biases reads the same value through the same hook.
    same, _plugin = keras_inspect.plugin_manager().layer_bias(layer)
    np.testing.assert_array_equal(to_numpy(same), bias)


def _assert_no_bias_and_zero_output(layer: Any, shape: tuple[int, ...]) -> None:
    output = to_numpy(output_on_zeros(layer, shape, training=False))
    assert keras_inspect.biases([layer]) == []
    np.testing.assert_array_equal(output, np.zeros_like(output))


# -- BatchNormalization --------------------------------------------------------------------


@st.composite
def batch_norm_configs(draw: st.DrawFn) -> dict[str, Any]:
    rank = draw(st.integers(2, 5))
    axis = draw(st.integers(1, rank - 1))
    return {
        "rank": rank,
        "axis": axis,
        # The layer accepts either spelling of the axis; both must fold the same way.
        "axis_argument": axis - rank if draw(st.booleans()) else axis,
        # One channel count keeps the number of distinct shapes (each compiled anew on JAX) low.
        "channels": 4,
        "epsilon": draw(st.sampled_from(EPSILONS)),
        "scale": draw(st.booleans()),
        "center": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


def _randomize_batch_norm(layer: Any, channels: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Variances down to 1e-3, where the layer's epsilon matters most.
    layer.moving_variance.assign(10.0 ** rng.uniform(-3.0, 1.0, channels))
    layer.moving_mean.assign(rng.normal(0.0, 2.0, channels))
    if layer.scale:
        layer.gamma.assign(rng.normal(0.0, 1.5, channels))
    if layer.center:
        layer.beta.assign(rng.normal(0.0, 1.0, channels))


@settings(max_examples=20)
@given(config=batch_norm_configs())
def test_batch_norm_bias_is_its_inference_output_on_zeros(config: dict[str, Any]) -> None:
    layer = layers.BatchNormalization(
        axis=config["axis_argument"],
        epsilon=config["epsilon"],
        scale=config["scale"],
        center=config["center"],
    )
    shape = _shape(config["rank"], [config["axis"]], [config["channels"]])
    layer(np.zeros(shape, "float32"), training=False)  # builds it
    _randomize_batch_norm(layer, config["channels"], config["seed"])
    _assert_bias_is_output_on_zeros(layer, shape)


@pytest.mark.parametrize("epsilon", EPSILONS)
def test_batch_norm_uses_its_own_epsilon(epsilon: float) -> None:
    """With tiny variances, a wrong epsilon (e.g. the seed's 1e-7) changes the bias a lot."""
    layer = layers.BatchNormalization(epsilon=epsilon)
    layer(np.zeros((2, 3), "float32"))
    layer.moving_variance.assign(np.full(3, 1e-3, "float32"))
    layer.moving_mean.assign(np.array([1.0, -2.0, 0.5], "float32"))
    bias = to_numpy(keras_inspect.biases([layer])[0])
    np.testing.assert_allclose(bias, -layer.moving_mean.numpy() / np.sqrt(1e-3 + epsilon), rtol=1e-5)


def test_batch_norm_in_a_channels_first_model() -> None:
    inputs = keras.Input((3, 5, 7), name="image")
    x = layers.Conv2D(4, 1, data_format="channels_first", name="conv", kernel_initializer="ones")(inputs)
    x = layers.BatchNormalization(axis=1, epsilon=1.001e-5, name="bn")(x)
    model = keras.Model(inputs, x)
    bn = model.get_layer("bn")
    _randomize_batch_norm(bn, 4, seed=3)
    found, values = keras_inspect.layers_with_biases(model)
    assert [layer.name for layer in found] == ["conv", "bn"]
    assert tuple(values[1].shape) == (4, 1, 1)
    _assert_bias_is_output_on_zeros(bn, (2, 4, 5, 7))


# -- layer, group and RMS normalization ----------------------------------------------------

# The torch backend only supports layer normalization over trailing axes (it maps the layer to
# torch's layer_norm); other backends take any axes.
_TRAILING_ONLY = keras.backend.backend() == "torch"


@st.composite
def layer_norm_configs(draw: st.DrawFn) -> dict[str, Any]:
    rank = draw(st.integers(2, 4))
    count = draw(st.integers(1, rank - 1))
    if _TRAILING_ONLY or draw(st.booleans()):
        axes = list(range(rank - count, rank))
    else:
        axes = sorted(draw(st.sets(st.integers(1, rank - 1), min_size=count, max_size=count)))
    return {
        "rank": rank,
        "axes": axes,
        "channels": draw(st.permutations((2, 4, 6)))[: len(axes)],
        "epsilon": draw(st.sampled_from(EPSILONS)),
        "scale": draw(st.booleans()),
        "center": draw(st.booleans()),
        "single": len(axes) == 1 and draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


@settings(max_examples=12)
@given(config=layer_norm_configs())
def test_layer_norm_bias_is_beta(config: dict[str, Any]) -> None:
    axis = config["axes"][0] if config["single"] else config["axes"]
    layer = layers.LayerNormalization(
        axis=axis,
        epsilon=config["epsilon"],
        scale=config["scale"],
        center=config["center"],
    )
    shape = _shape(config["rank"], config["axes"], config["channels"])
    layer.build(shape)
    _randomize(*layer.weights, seed=config["seed"])
    if config["center"]:
        _assert_bias_is_output_on_zeros(layer, shape)
    else:
        _assert_no_bias_and_zero_output(layer, shape)


@pytest.mark.parametrize(("axis", "shape"), [(-1, (2, 3, 5, 8)), (1, (2, 8, 3, 5)), (2, (2, 3, 8))])
@pytest.mark.parametrize("center", [True, False])
def test_group_norm_bias_is_beta(axis: int, shape: tuple[int, ...], center: bool) -> None:
    layer = layers.GroupNormalization(groups=4, axis=axis, center=center, epsilon=1e-3)
    layer.build(shape)
    _randomize(*layer.weights)
    if center:
        _assert_bias_is_output_on_zeros(layer, shape)
    else:
        _assert_no_bias_and_zero_output(layer, shape)


@pytest.mark.skipif(not hasattr(layers, "RMSNormalization"), reason="Keras without RMSNormalization")
def test_rms_norm_adds_no_constant() -> None:
    _assert_no_bias_and_zero_output(layers.RMSNormalization(), (2, 3, 4))


def test_normalization_layers_have_the_normalization_role(fresh_pm: Any) -> None:
    candidates = [layers.BatchNormalization(), layers.LayerNormalization(), layers.GroupNormalization(2)]
    if hasattr(layers, "RMSNormalization"):
        candidates.append(layers.RMSNormalization())
    for layer in candidates:
        assert fresh_pm.classify(layer, "normalization")[0], type(layer).__name__
    assert not fresh_pm.classify(layers.Dense(2), "normalization")[0]


# -- layers with an explicit bias ------------------------------------------------------------

CF = {"data_format": "channels_first"}
# The kernel does not matter on a zeros input; "ones" is cheap to initialize on every backend.
KERNELS = {"kernel_initializer": "ones"}

KERNEL_LAYERS: dict[str, tuple[Callable[..., Any], dict[str, Any], tuple[int, ...]]] = {
    "dense": (layers.Dense, {"units": 4}, (2, 3)),
    "dense_3d": (layers.Dense, {"units": 4}, (2, 3, 5)),
    "einsum_last": (
        layers.EinsumDense,
        {"equation": "ab,bc->ac", "output_shape": 4, "bias_axes": "c"},
        (2, 3),
    ),
    "einsum_middle": (
        layers.EinsumDense,
        {"equation": "abc,cd->abd", "output_shape": (5, 4), "bias_axes": "b"},
        (2, 5, 3),
    ),
    "conv1d": (layers.Conv1D, {"filters": 4, "kernel_size": 3, "padding": "same"}, (2, 7, 3)),
    "conv2d": (layers.Conv2D, {"filters": 4, "kernel_size": 3}, (2, 7, 5, 3)),
    "conv3d": (layers.Conv3D, {"filters": 4, "kernel_size": 2}, (2, 6, 3, 8, 3)),
    "conv1d_cf": (layers.Conv1D, {"filters": 4, "kernel_size": 3, **CF}, (2, 3, 7)),
    "conv2d_cf": (layers.Conv2D, {"filters": 4, "kernel_size": 3, "padding": "same", **CF}, (2, 3, 7, 5)),
    "conv3d_cf": (layers.Conv3D, {"filters": 4, "kernel_size": 2, **CF}, (2, 3, 6, 3, 8)),
    "conv1d_transpose": (layers.Conv1DTranspose, {"filters": 4, "kernel_size": 3}, (2, 5, 3)),
    "conv2d_transpose": (layers.Conv2DTranspose, {"filters": 4, "kernel_size": 2, "strides": 2}, (2, 3, 5, 3)),
    "conv3d_transpose": (layers.Conv3DTranspose, {"filters": 4, "kernel_size": 2}, (2, 2, 5, 6, 3)),
    "conv2d_transpose_cf": (layers.Conv2DTranspose, {"filters": 4, "kernel_size": 3, **CF}, (2, 3, 5, 7)),
    "depthwise1d": (layers.DepthwiseConv1D, {"kernel_size": 3, "depth_multiplier": 2}, (2, 7, 3)),
    "depthwise2d": (layers.DepthwiseConv2D, {"kernel_size": 3, "depth_multiplier": 2}, (2, 7, 5, 3)),
    "depthwise2d_cf": (layers.DepthwiseConv2D, {"kernel_size": 3, **CF}, (2, 3, 7, 6)),
    "separable1d": (layers.SeparableConv1D, {"filters": 4, "kernel_size": 3}, (2, 7, 3)),
    "separable2d": (layers.SeparableConv2D, {"filters": 4, "kernel_size": 3}, (2, 7, 5, 3)),
    "separable2d_cf": (layers.SeparableConv2D, {"filters": 4, "kernel_size": 3, **CF}, (2, 3, 7, 5)),
}


def _kernel_layer(factory: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    initializers = dict(KERNELS)
    if factory in (layers.DepthwiseConv1D, layers.DepthwiseConv2D):
        initializers = {"depthwise_initializer": "ones"}
    elif factory in (layers.SeparableConv1D, layers.SeparableConv2D):
        initializers = {"depthwise_initializer": "ones", "pointwise_initializer": "ones"}
    return factory(**kwargs, **initializers)


@pytest.mark.parametrize("name", sorted(KERNEL_LAYERS))
def test_kernel_layer_bias_is_its_output_on_zeros(name: str) -> None:
    factory, kwargs, shape = KERNEL_LAYERS[name]
    layer = _kernel_layer(factory, kwargs)
    layer.build(shape)
    _randomize(layer.bias)
    _assert_bias_is_output_on_zeros(layer, shape)


@pytest.mark.parametrize("name", ["dense", "conv2d", "conv2d_cf", "depthwise2d", "separable2d"])
def test_kernel_layer_without_bias_adds_none(name: str) -> None:
    factory, kwargs, shape = KERNEL_LAYERS[name]
    _assert_no_bias_and_zero_output(_kernel_layer(factory, {**kwargs, "use_bias": False}), shape)


def test_einsum_dense_without_bias_axes_adds_none() -> None:
    layer = layers.EinsumDense("ab,bc->ac", output_shape=4, kernel_initializer="ones")
    _assert_no_bias_and_zero_output(layer, (2, 3))
