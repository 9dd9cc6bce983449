"""The CAM identity on global-average-pooling + Dense heads, through ``expose``'s defaults.

For ``logits = GAP(A) @ W + b`` the class activation map of class ``c`` is ``A @ W[:, c]``, and
by linearity of the mean, ``mean over (h, w) of CAM_c + b[c] == logit_c`` exactly. ``expose(model)``
must return the logits and ``A`` (the input of the last global pooling layer) even when ``A`` is
produced deep inside a nested zoo backbone; the identity then holds for every class.
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
SHAPE = (64, 64, 3)  # the smallest input giving these backbones a 2x2 map, not 1x1
CLASSES = 7


def classifier(backbone: keras.Model, name: str) -> keras.Model:
    """``Sequential([backbone, GAP, Dense])`` with a random head (drawn in NumPy)."""
    model = keras.Sequential(
        [keras.Input(SHAPE), backbone, layers.GlobalAveragePooling2D(),
         layers.Dense(CLASSES, kernel_initializer="zeros")],
        name=f"{name}_classifier",  # not the backbone's name: torch refuses "." in names
    )
    dense = model.layers[-1]
    rng = np.random.default_rng(0)
    dense.kernel.assign(rng.normal(size=dense.kernel.shape) / np.sqrt(dense.kernel.shape[0]))
    dense.bias.assign(rng.normal(size=dense.bias.shape))
    return model


BACKBONES = {
    "mobilenetv2": lambda: keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=SHAPE, alpha=0.35
    ),
    # EfficientNetB0 works as well, but costs JAX half a minute of compilation per run.
    "resnet50v2": lambda: keras.applications.ResNet50V2(
        weights=None, include_top=False, input_shape=SHAPE
    ),
}


@pytest.fixture(scope="module", params=sorted(BACKBONES))
def zoo_classifier(request: pytest.FixtureRequest) -> keras.Model:
    return classifier(BACKBONES[request.param](), request.param)


def class_activation_maps(features: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """CAMs of every class: ``(n, h, w, classes)``."""
    return np.einsum("nhwk,kc->nhwc", features, kernel)


def numpy(value: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value))


@pytest.mark.slow
@settings(max_examples=3)
@given(seed=st.integers(0, 2**16))
def test_cam_identity_on_nested_zoo_backbone(zoo_classifier: keras.Model, seed: int) -> None:
    model = zoo_classifier
    backbone, pooling, dense = model.layers
    assert keras_inspect.get_global_pooling_layer(model) is pooling
    assert keras_inspect.get_logits_layer(model) is dense

    x = np.random.default_rng(seed).normal(size=(2, *SHAPE)).astype("float32")
    logits, features = (numpy(t) for t in keras_inspect.expose(model)(x))
    # The exposed map is the backbone's last feature map (spatial, before pooling).
    assert features.shape[:3] == (2, 2, 2)
    np.testing.assert_allclose(features, numpy(backbone(x)), rtol=1e-5, atol=1e-5)
    expected = numpy(model(x))
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)

    cams = class_activation_maps(features, numpy(dense.kernel))
    bias = numpy(keras_inspect.biases([dense])[0])
    rebuilt = cams.mean(axis=(1, 2)) + bias
    np.testing.assert_allclose(rebuilt, expected, rtol=RTOL, atol=RTOL * np.abs(expected).max())


@pytest.fixture(scope="module")
def spatial_softmax_classifier() -> keras.Model:
    """A small CNN backbone with a 4x4 map, nested, under GAP + Dense(softmax)."""
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(6, 3, strides=2, padding="same", activation="relu")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Conv2D(8, 3, strides=2, padding="same")(x)
    x = layers.ReLU(name="last_map")(x)
    backbone = keras.Model(inputs, x, name="backbone")
    model = keras.Sequential(
        [keras.Input((16, 16, 3)), backbone, layers.GlobalAveragePooling2D(),
         layers.Dense(CLASSES, activation="softmax")],
        name="softmax_classifier",
    )
    return model


def test_cam_identity_with_a_fused_softmax(spatial_softmax_classifier: keras.Model) -> None:
    """With ``Dense(activation="softmax")`` the logits are the Dense pre-activation."""
    model = spatial_softmax_classifier
    dense = keras_inspect.get_logits_layer(model)
    x = np.random.default_rng(1).normal(size=(3, 16, 16, 3)).astype("float32")
    explainer = keras_inspect.expose(model, outputs={"layer": dense, "link": "pre_activation"})
    logits, features = (numpy(t) for t in explainer(x))
    assert features.shape == (3, 4, 4, 8)

    cams = class_activation_maps(features, numpy(dense.kernel))
    rebuilt = cams.mean(axis=(1, 2)) + numpy(keras_inspect.biases([dense])[0])
    np.testing.assert_allclose(rebuilt, logits, rtol=RTOL, atol=RTOL * np.abs(logits).max())
    # The exposed pre-activation really is what the model's softmax reads.
    np.testing.assert_allclose(numpy(keras.ops.softmax(rebuilt)), numpy(model(x)), atol=1e-5)
    # A map is not constant, so each class's CAM carries spatial information.
    assert np.all(cams.std(axis=(1, 2)) > 0)
