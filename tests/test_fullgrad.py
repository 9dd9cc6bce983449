"""FullGrad completeness, computed with keras-inspect's biases and exposed signals.

A network made of ReLU, max pooling, inference-mode BatchNormalization, zero padding, global
average pooling, convolutions and Dense layers is piecewise linear in its input *and* in its
biases, so Euler's theorem for homogeneous functions gives, exactly (up to float rounding),

    f(x) = sum(x * df/dx) + sum over biased layers l of sum(b_l * df/dz_l)

where ``z_l`` is the signal ``b_l`` is added to: the layer's output, or its pre-activation when
an activation is fused into the layer. The biases come from ``layers_with_biases`` (implicit
BatchNormalization ones included), and the gradients at the input and at every ``z_l`` from one
``gradients`` call (``link="pre_activation"``). Any wrong bias (e.g. the seed's
BatchNormalization epsilon), missing layer, wrong gradient, or signal taken after the activation
breaks the identity; the negative controls below check that it does.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import layers

import keras_inspect

RTOL = 1e-4
CHEAP = {"kernel_initializer": "zeros"}  # weights are drawn in NumPy (see conftest)


def randomize(model: Any, seed: int, min_variance: float = 1e-3) -> Any:
    """Random kernels and biases; BatchNormalization statistics with variances from
    ``min_variance`` to 1 (log-uniform), random means, scales and offsets."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, layers.BatchNormalization):
            n = layer.moving_mean.shape
            layer.moving_variance.assign(10.0 ** rng.uniform(np.log10(min_variance), 0.0, n))
            layer.moving_mean.assign(rng.normal(0.0, 0.5, n))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, n) * np.sqrt(min_variance))
            if layer.center:
                layer.beta.assign(rng.normal(0.0, 0.5, n))
        elif isinstance(layer, (layers.Conv2D, layers.Dense)):
            fan_in = int(np.prod(layer.kernel.shape[:-1]))
            layer.kernel.assign(rng.normal(0.0, np.sqrt(2.0 / fan_in), layer.kernel.shape))
            if layer.use_bias:
                layer.bias.assign(rng.normal(0.0, 0.5, layer.bias.shape))
    return model


def decomposition(
    model: Any, x: np.ndarray, link: str = "pre_activation", exclude: tuple = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sample: the explained logit, ``sum(x * df/dx)`` and ``sum_l sum(b_l * df/dz_l)``.

    The explained logit of each sample is its largest in magnitude, so that a relative error is
    never measured against a logit that happens to be near zero.
    """
    biased, biases = keras_inspect.layers_with_biases(model, exclude=exclude)
    units = np.abs(keras.ops.convert_to_numpy(model(x))).argmax(axis=-1)
    signals = [model.inputs[0], *({"layer": lay, "link": link} for lay in biased)]
    result = keras_inspect.gradients(model, x, signals, target=units)
    input_grad, *signal_grads = (keras.ops.convert_to_numpy(g) for g in result.gradients)
    n = len(x)
    explained = keras.ops.convert_to_numpy(result.scores)
    expected = np.take_along_axis(keras.ops.convert_to_numpy(model(x)), units[:, None], axis=-1)
    np.testing.assert_allclose(explained, expected[:, 0], rtol=1e-5, atol=1e-6)
    input_part = (x * input_grad).reshape(n, -1).sum(axis=1)
    bias_part = np.zeros(n, dtype="float64")
    for bias, grad in zip(biases, signal_grads):
        bias = keras.ops.convert_to_numpy(bias)
        assert np.broadcast_shapes(bias.shape, grad.shape) == grad.shape
        bias_part += (bias * grad).reshape(n, -1).sum(axis=1)
    return explained, input_part, bias_part


def assert_complete(model: Any, x: np.ndarray) -> None:
    explained, input_part, bias_part = decomposition(model, x)
    np.testing.assert_allclose(input_part + bias_part, explained, rtol=RTOL, atol=0)
    # Both parts matter on these models: the identity is not carried by one term alone.
    assert np.all(np.abs(bias_part) > RTOL * np.abs(explained))


def image_batch(shape: tuple[int, ...], seed: int, batch: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype("float32")


# -- small networks -----------------------------------------------------------------------------


def conv_bn_relu_net() -> keras.Model:
    """Conv-BN-ReLU blocks (one BN without offset, one conv without bias), max pooling, GAP."""
    inputs = keras.Input((12, 12, 3))
    x = layers.Conv2D(6, 3, padding="same", **CHEAP)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(8, 3, use_bias=False, **CHEAP)(x)
    x = layers.BatchNormalization(center=False, epsilon=1e-2)(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(4, **CHEAP)(x)
    return keras.Model(inputs, outputs, name="conv_bn_relu")


def fused_relu_net() -> keras.Model:
    """Dense and Conv2D layers with a fused ReLU: their biases sit before the activation."""
    inputs = keras.Input((6, 6, 2))
    x = layers.Conv2D(5, 3, activation="relu", **CHEAP)(inputs)
    x = layers.Flatten()(x)
    x = layers.Dense(7, activation="relu", **CHEAP)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Dense(6, activation="relu", **CHEAP)(x)
    outputs = layers.Dense(3, **CHEAP)(x)
    return keras.Model(inputs, outputs, name="fused_relu")


@pytest.fixture(scope="module")
def conv_net() -> keras.Model:
    return conv_bn_relu_net()


@pytest.fixture(scope="module")
def fused_net() -> keras.Model:
    return randomize(fused_relu_net(), seed=1, min_variance=1e-2)


@settings(max_examples=6)
@given(seed=st.integers(0, 2**16))
def test_conv_bn_relu_net_is_complete(conv_net: keras.Model, seed: int) -> None:
    """Random weights and BatchNormalization statistics (variances down to 1e-3), random input."""
    randomize(conv_net, seed)
    assert_complete(conv_net, image_batch((12, 12, 3), seed, batch=3))


def test_fused_activation_net_is_complete(fused_net: keras.Model) -> None:
    assert_complete(fused_net, image_batch((6, 6, 2), seed=2, batch=4))


def test_signal_after_a_fused_activation_breaks_completeness(fused_net: keras.Model) -> None:
    """Negative control: ``df/dz`` taken after the ReLU instead of before it is wrong."""
    explained, input_part, bias_part = decomposition(
        fused_net, image_batch((6, 6, 2), seed=2, batch=4), link="output"
    )
    assert not np.allclose(input_part + bias_part, explained, rtol=RTOL, atol=0)


def test_leaving_out_the_batch_norm_bias_breaks_completeness(conv_net: keras.Model) -> None:
    """Negative control: BatchNormalization's implicit bias is a necessary part of the sum."""
    randomize(conv_net, seed=5)
    norms = [lay for lay in conv_net.layers if isinstance(lay, layers.BatchNormalization)]
    x = image_batch((12, 12, 3), seed=5)
    explained, input_part, bias_part = decomposition(conv_net, x, exclude=norms[:1])
    assert not np.allclose(input_part + bias_part, explained, rtol=RTOL, atol=0)


def test_signal_gradients_agree_with_split_heads(fused_net: keras.Model) -> None:
    """Two independent routes to ``df/dz``: perturbing the signal where it is produced inside
    the whole model, and perturbing the input of the head that ``split`` cuts off there."""
    x = image_batch((6, 6, 2), seed=3, batch=2)
    biased = keras_inspect.layers_with_biases(fused_net, return_biases=False)
    ends = [{"layer": lay, "link": "pre_activation"} for lay in biased]
    result = keras_inspect.gradients(fused_net, x, ends, target=0)
    for end, signal, grad in zip(ends, result.signals, result.gradients):
        body, head = keras_inspect.split(fused_net, end)
        signal = keras.ops.convert_to_numpy(signal)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(body(x)), signal, rtol=1e-6)
        (head_grad,) = keras_inspect.gradients(
            head, signal, head.inputs[0], target=0, logits=head.outputs[0]
        ).gradients
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(grad), keras.ops.convert_to_numpy(head_grad),
            rtol=1e-5, atol=1e-6,
        )
        assert np.abs(keras.ops.convert_to_numpy(grad)).max() > 0


# -- keras.applications (weights=None, small inputs) --------------------------------------------


def resnet50v2_nested() -> keras.Model:
    """ResNet50V2 as a nested backbone (the zoo pattern) under a GAP + Dense head."""
    backbone = keras.applications.ResNet50V2(
        weights=None, include_top=False, input_shape=(32, 32, 3)
    )
    model = keras.Sequential(
        [keras.Input((32, 32, 3)), backbone, layers.GlobalAveragePooling2D(),
         layers.Dense(5, **CHEAP)],
        name="resnet50v2_classifier",
    )
    return randomize(model, seed=3, min_variance=0.3)


def vgg16_flat() -> keras.Model:
    """VGG16's convolutions (fused ReLUs) with a GAP + Dense head, in one flat graph."""
    backbone = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    x = layers.GlobalAveragePooling2D()(backbone.output)
    outputs = layers.Dense(5, **CHEAP)(x)
    return randomize(keras.Model(backbone.input, outputs, name="vgg16_classifier"), seed=4)


@pytest.mark.slow
@pytest.mark.parametrize("build", [resnet50v2_nested, vgg16_flat], ids=["resnet50v2", "vgg16"])
def test_zoo_model_is_complete(build: Any) -> None:
    model = build()
    assert len(keras_inspect.layers_with_biases(model, return_biases=False)) >= 14
    assert_complete(model, image_batch((32, 32, 3), seed=6, batch=1))
