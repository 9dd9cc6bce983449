"""Properties of bias folding over layer configurations, dtype policies included.

``tests/test_bias_folding.py`` pins the float32 folding of each layer family; here hypothesis
varies axis, epsilon, scale, center *and* the dtype policy (float16, bfloat16, mixed) together:

- the folded bias is the layer's inference output on zeros, in the layer's compute dtype, to
  within that dtype's rounding;
- it is the *whole* constant part: ``layer(t * x) - bias == t * (layer(x) - bias)`` for any
  input ``x`` and scalar ``t`` (an inference-mode BatchNormalization is affine), so the folded
  bias cannot be right at zero by accident only.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
from _layout import output_on_zeros
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import layers

import keras_inspect

pytestmark = pytest.mark.usefixtures("fresh_pm")

POLICIES = ("float32", "float16", "bfloat16", "mixed_float16", "mixed_bfloat16")
EPSILONS = (1e-3, 1.001e-5, 0.1)
CHANNELS = 4
# Non-channel axes have sizes distinct from CHANNELS and from each other, so a bias on the wrong
# axis fails to broadcast to the output's exact shape.
OTHER_SIZES = (3, 5, 2)


def resolution(dtype: str) -> float:
    """A relative tolerance covering a few roundings in ``dtype``."""
    return {"float32": 1e-5, "float16": 4e-3, "bfloat16": 3e-2}[dtype]


def numpy32(value: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(value, "float32")))


def input_shape(rank: int, axis: int) -> tuple[int, ...]:
    others = iter(OTHER_SIZES)
    return (2, *(CHANNELS if a == axis else next(others) for a in range(1, rank)))


@st.composite
def batch_norms(
    draw: st.DrawFn, policies: tuple[str, ...] = POLICIES
) -> tuple[Any, tuple[int, ...]]:
    """A built BatchNormalization with random statistics, and the input shape it was built for."""
    rank = draw(st.integers(2, 4))
    axis = draw(st.integers(1, rank - 1))
    layer = layers.BatchNormalization(
        axis=draw(st.sampled_from((axis, axis - rank))),
        epsilon=draw(st.sampled_from(EPSILONS)),
        scale=draw(st.booleans()),
        center=draw(st.booleans()),
        dtype=draw(st.sampled_from(policies)),
    )
    shape = input_shape(rank, axis)
    layer.build(shape)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    layer.moving_variance.assign(10.0 ** rng.uniform(-3.0, 0.5, CHANNELS))
    layer.moving_mean.assign(rng.normal(0.0, 1.0, CHANNELS))
    if layer.scale:
        layer.gamma.assign(rng.normal(0.0, 1.0, CHANNELS))
    if layer.center:
        layer.beta.assign(rng.normal(0.0, 1.0, CHANNELS))
    return layer, shape


def zeros(layer: Any, shape: tuple[int, ...]) -> Any:
    return keras.ops.zeros(shape, dtype=layer.compute_dtype)


@settings(max_examples=25)
@given(case=batch_norms())
def test_folded_batch_norm_bias_is_its_output_on_zeros(case: tuple[Any, tuple[int, ...]]) -> None:
    layer, shape = case
    (bias,) = keras_inspect.biases([layer])
    assert keras.backend.standardize_dtype(bias.dtype) == layer.compute_dtype
    output = numpy32(layer(zeros(layer, shape), training=False))
    folded = numpy32(bias)
    assert np.broadcast_shapes(folded.shape, output.shape) == output.shape
    tolerance = resolution(layer.compute_dtype) * max(1.0, float(np.abs(output).max()))
    np.testing.assert_allclose(np.broadcast_to(folded, output.shape), output, atol=tolerance)


@settings(max_examples=15)
# float32 only: the identity is exact, and 16-bit rounding is what the test above bounds.
@given(
    case=batch_norms(policies=("float32",)),
    t=st.floats(-4.0, 4.0).filter(lambda v: abs(v) > 0.25),
)
def test_folded_batch_norm_bias_is_the_whole_constant(
    case: tuple[Any, tuple[int, ...]], t: float
) -> None:
    layer, shape = case
    bias = numpy32(keras_inspect.biases([layer])[0])
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    linear = numpy32(layer(x, training=False)) - bias
    scaled = numpy32(layer(t * x, training=False)) - bias
    scale = max(1.0, float(np.abs(t * linear).max()))
    np.testing.assert_allclose(scaled, t * linear, atol=1e-5 * scale)


KERNEL_LAYERS = {
    "dense": (lambda dtype: layers.Dense(CHANNELS, dtype=dtype), (2, 3)),
    "conv2d": (lambda dtype: layers.Conv2D(CHANNELS, 3, dtype=dtype), (2, 5, 5, 3)),
    "conv2d_channels_first": (
        lambda dtype: layers.Conv2D(CHANNELS, 3, data_format="channels_first", dtype=dtype),
        (2, 3, 5, 7),
    ),
}


@settings(max_examples=12)
@given(
    name=st.sampled_from(sorted(KERNEL_LAYERS)),
    policy=st.sampled_from(POLICIES),
    seed=st.integers(0, 2**16),
)
def test_kernel_layer_bias_in_its_compute_dtype(name: str, policy: str, seed: int) -> None:
    build, shape = KERNEL_LAYERS[name]
    layer = build(policy)
    layer.build(shape)
    layer.bias.assign(np.random.default_rng(seed).normal(size=CHANNELS))
    (bias,) = keras_inspect.biases([layer])
    assert keras.backend.standardize_dtype(bias.dtype) == layer.compute_dtype
    output = numpy32(output_on_zeros(layer, shape, dtype=layer.compute_dtype))
    folded = numpy32(bias)
    assert np.broadcast_shapes(folded.shape, output.shape) == output.shape
    tolerance = resolution(layer.compute_dtype) * max(1.0, float(np.abs(output).max()))
    np.testing.assert_allclose(np.broadcast_to(folded, output.shape), output, atol=tolerance)


def test_layers_with_biases_keeps_each_layers_compute_dtype() -> None:
    """A model mixing policies: every bias comes back in its own layer's compute dtype."""
    inputs = keras.Input((4, 4, 3))
    x = layers.Conv2D(CHANNELS, 3, dtype="mixed_bfloat16")(inputs)
    x = layers.BatchNormalization(dtype="float16")(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(2, dtype="float32")(x)
    model = keras.Model(inputs, outputs)
    found, values = keras_inspect.layers_with_biases(model)
    assert [type(lay).__name__ for lay in found] == ["Conv2D", "BatchNormalization", "Dense"]
    assert [keras.backend.standardize_dtype(v.dtype) for v in values] == [
        "bfloat16", "float16", "float32"
    ]
