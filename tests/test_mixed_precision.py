"""Mixed precision: biases in each layer's compute dtype, BatchNorm folded in float32.

Models are built under a global policy (``keras.config.set_dtype_policy``) or with a per-layer
``dtype=``; the global policy is restored right after building, and an autouse fixture checks
that every test leaves it at float32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
import ml_dtypes
import numpy as np
import pytest
from conftest import images, to_numpy
from keras import layers

import keras_inspect as ki

POLICIES = ("mixed_float16", "mixed_bfloat16")
NUMPY_DTYPES = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32}


@contextlib.contextmanager
def global_policy(name: str) -> Iterator[None]:
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.fixture(autouse=True)
def _policy_is_left_alone() -> Iterator[None]:
    before = keras.config.dtype_policy().name
    yield
    assert keras.config.dtype_policy().name == before


def randomize(model: keras.Model, seed: int) -> None:
    """Random weights (positive variances) from NumPy; variables stay float32 under mixed
    policies, only the computation is in 16 bits."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "variance" in variable.path:
            value = rng.uniform(0.5, 2.0, size=shape)
        else:
            value = rng.normal(0.0, 0.5, size=shape)
        variable.assign(value.astype(variable.dtype))


def _dtype(value: object) -> str:
    return keras.backend.standardize_dtype(value.dtype)  # type: ignore[attr-defined]


def _build(policy: str) -> keras.Model:
    with global_policy(policy):
        inputs = keras.Input((12, 12, 3))
        x = layers.Conv2D(32, 3, name="conv", kernel_initializer="zeros")(inputs)
        x = layers.BatchNormalization(epsilon=1e-3, name="bn")(x)
        x = layers.Activation("relu", name="relu")(x)
        x = layers.LayerNormalization(name="ln")(x)
        x = layers.GlobalAveragePooling2D(name="gap")(x)
        # The usual mixed-precision recipe: logits in float32.
        outputs = layers.Dense(4, dtype="float32", name="logits", kernel_initializer="zeros")(x)
        model = keras.Model(inputs, outputs, name=f"cnn_{policy}")
    randomize(model, seed=4)
    bn = model.get_layer("bn")
    # Tiny variances make (var + eps) and its root lose digits in 16 bits: a fold computed in
    # the compute dtype would differ from the float32 one.
    bn.moving_variance.assign(np.geomspace(1e-4, 3.0, 32).astype("float32"))
    return model


@pytest.fixture(scope="module", params=POLICIES)
def mixed_model(request: pytest.FixtureRequest) -> keras.Model:
    return _build(request.param)


def test_global_policy_was_restored_after_building(mixed_model) -> None:
    assert keras.config.dtype_policy().name == "float32"
    assert mixed_model.get_layer("conv").compute_dtype in ("float16", "bfloat16")
    assert mixed_model.get_layer("conv").variable_dtype == "float32"


def test_biases_come_in_each_layers_compute_dtype(mixed_model) -> None:
    layers_, values = ki.layers_with_biases(mixed_model)
    assert [layer.name for layer in layers_] == ["conv", "bn", "ln", "logits"]
    for layer, value in zip(layers_, values):
        assert _dtype(value) == layer.compute_dtype, layer.name
    conv, logits = mixed_model.get_layer("conv"), mixed_model.get_layer("logits")
    assert _dtype(ki.biases([logits])[0]) == "float32"
    (conv_bias,) = ki.biases([conv])
    expected = to_numpy(conv.bias).astype(NUMPY_DTYPES[conv.compute_dtype])
    np.testing.assert_array_equal(to_numpy(conv_bias), expected)


def test_batch_norm_is_folded_in_float32(mixed_model) -> None:
    bn = mixed_model.get_layer("bn")
    compute = NUMPY_DTYPES[bn.compute_dtype]
    gamma, beta, mean, variance = (
        to_numpy(v).astype(np.float32)
        for v in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)
    )
    in_float32 = beta - gamma * mean / np.sqrt(variance + np.float32(bn.epsilon))
    (value,) = ki.biases([bn])
    ulp = float(ml_dtypes.finfo(compute).eps)
    # Rounded once from float32: within one unit in the last place of the compute dtype.
    np.testing.assert_allclose(to_numpy(value).astype(np.float32), in_float32, rtol=ulp, atol=0)
    # The same fold carried out in the compute dtype lands several units away somewhere, so the
    # check above tells the two apart.
    g, b, m, v = (a.astype(compute) for a in (gamma, beta, mean, variance))
    in_compute = (b - g * m / np.sqrt(v + compute(bn.epsilon))).astype(np.float32)
    assert np.max(np.abs(in_compute - in_float32) / np.abs(in_float32)) > 4 * ulp


def test_batch_norm_fold_is_the_layers_output_on_zeros(mixed_model) -> None:
    bn = mixed_model.get_layer("bn")
    (value,) = ki.biases([bn])
    on_zeros = bn(keras.ops.zeros((1, 10, 10, 32)), training=False)
    assert _dtype(on_zeros) == _dtype(value)
    tolerance = 1e-2 if bn.compute_dtype == "bfloat16" else 2e-3
    np.testing.assert_allclose(
        to_numpy(on_zeros)[0, 0, 0].astype(np.float32),
        to_numpy(value).astype(np.float32),
        rtol=tolerance,
        atol=tolerance,
    )


def test_exposed_signals_keep_their_dtype(mixed_model) -> None:
    exposed = ki.expose(mixed_model, arguments=["conv", "bn", "ln"])
    wanted = ["logits", "conv", "bn", "ln"]
    symbolic = [mixed_model.get_layer(name).output for name in wanted]
    assert [_dtype(t) for t in exposed.outputs] == [_dtype(t) for t in symbolic]
    results = exposed(images(2, shape=(12, 12, 3)))
    assert [_dtype(t) for t in results] == [_dtype(t) for t in symbolic]
    compute = mixed_model.get_layer("conv").compute_dtype
    assert [_dtype(t) for t in results] == ["float32", compute, compute, compute]
    np.testing.assert_allclose(
        to_numpy(results[0]), to_numpy(mixed_model(images(2, shape=(12, 12, 3)))), rtol=1e-6
    )
    picked = ki.gather_units(results[1], np.zeros((2, 1), "int32"), axis=-1, batch_dims=1)
    assert _dtype(picked) == compute


@pytest.mark.parametrize("dtype", POLICIES)
def test_per_layer_policy_under_a_float32_global_policy(dtype) -> None:
    model = keras.Sequential(
        [
            keras.Input((6,)),
            layers.Dense(5, dtype=dtype, name="low", kernel_initializer="zeros"),
            layers.BatchNormalization(dtype=dtype, name="bn"),
            layers.Dense(3, name="high", kernel_initializer="zeros"),
        ]
    )
    randomize(model, seed=2)
    compute = dtype.removeprefix("mixed_")
    values = dict(zip(["low", "bn", "high"], ki.layers_with_biases(model)[1]))
    assert {k: _dtype(v) for k, v in values.items()} == {
        "low": compute,
        "bn": compute,
        "high": "float32",
    }
    exposed = ki.expose(model, arguments=["low", "bn"])
    assert [_dtype(t) for t in exposed(np.ones((2, 6), "float32"))] == [
        "float32",
        compute,
        compute,
    ]


def test_tf_keras_layers_under_mixed_precision() -> None:
    import tensorflow as tf
    import tf_keras
    dense = tf_keras.layers.Dense(4, dtype="mixed_float16")
    dense.build((None, 3))
    bn = tf_keras.layers.BatchNormalization(dtype="mixed_float16", epsilon=1e-3)
    bn.build((None, 8))
    rng = np.random.default_rng(0)
    bn.set_weights(
        [
            rng.normal(size=8).astype("float32"),
            rng.normal(size=8).astype("float32"),
            rng.normal(size=8).astype("float32"),
            np.geomspace(1e-4, 2.0, 8).astype("float32"),
        ]
    )
    dense_bias, bn_bias = ki.biases([dense, bn])
    assert isinstance(dense_bias, tf.Tensor) and dense_bias.dtype == tf.float16
    assert bn_bias.dtype == tf.float16
    gamma, beta, mean, variance = (w.astype(np.float32) for w in bn.get_weights())
    in_float32 = beta - gamma * mean / np.sqrt(variance + np.float32(1e-3))
    ulp = float(np.finfo(np.float16).eps)
    np.testing.assert_allclose(bn_bias.numpy().astype(np.float32), in_float32, rtol=ulp, atol=0)
