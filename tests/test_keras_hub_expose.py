"""expose, split and get_target_layer on keras-hub image classifiers built from small configs.

The ViT encoder is a subclassed layer: its blocks are reached by call interception, and their
values are checked against the block layers called directly on the encoder's input.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_inspect as ki
from conftest import to_numpy

keras_hub = pytest.importorskip("keras_hub")

SHAPE = (32, 32, 3)


def _x(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, size=(2, *SHAPE)).astype("float32")


def _close(got: object, want: object) -> None:
    np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def vit() -> keras.Model:
    backbone = keras_hub.models.ViTBackbone(
        image_shape=SHAPE, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
    )  # fmt: skip
    return keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=3)


@pytest.fixture(scope="module")
def resnet() -> keras.Model:
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 16], stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2], block_type="basic_block", use_pre_activation=False,
        image_shape=SHAPE,
    )  # fmt: skip
    return keras_hub.models.ResNetImageClassifier(backbone=backbone, num_classes=3)


@pytest.fixture(scope="module")
def efficientnet() -> keras.Model:
    backbone = keras_hub.models.EfficientNetBackbone(
        stackwise_width_coefficients=[1.0, 1.0], stackwise_depth_coefficients=[1.0, 1.0],
        stackwise_kernel_sizes=[3, 3], stackwise_num_repeats=[1, 1],
        stackwise_input_filters=[8, 8], stackwise_output_filters=[8, 16],
        stackwise_expansion_ratios=[1, 2], stackwise_squeeze_and_excite_ratios=[0.0, 0.25],
        stackwise_strides=[1, 2], stackwise_block_types=["fused", "unfused"],
        stackwise_force_input_filters=[0, 0], stackwise_nores_option=[False, False],
        num_features=32, input_shape=SHAPE,
    )  # fmt: skip
    return keras_hub.models.EfficientNetImageClassifier(backbone=backbone, num_classes=4)


def _path_of(model: keras.Model, layer: object) -> str:
    return next(entry.name for entry in ki.walk(model) if entry.layer is layer)


def test_vit_block_outputs_by_interception(vit: keras.Model) -> None:
    backbone = vit.backbone
    encoder = next(e for e in ki.walk(vit) if e.path[-1] == "vit_encoder")
    blocks = [e for e in ki.walk(vit) if e.path[:-1] == encoder.path and "block" in e.path[-1]]
    assert len(blocks) == 2 and not blocks[0].in_graph
    exposed = ki.expose(vit, [blocks[0].name, blocks[1].name])
    x = _x()
    logits, first, second = exposed(x)
    embedding = keras.Model(backbone.inputs[0], encoder.layer.input)(x)
    _close(first, blocks[0].layer(embedding))
    _close(second, blocks[1].layer(blocks[0].layer(embedding)))
    _close(logits, vit(x))
    for entry in ki.walk(vit):
        assert "call" not in entry.layer.__dict__


def test_vit_mlp_pre_activation_inside_a_block(vit: keras.Model) -> None:
    dense = next(e for e in ki.walk(vit) if e.path[-2:] == ("mlp", "dense_1"))
    activation = dense.layer.activation
    exposed = ki.expose(vit, [dense.name, {"name": dense.path, "link": "pre_activation"}])
    x = _x(1)
    logits, out, pre = exposed(x)
    _close(activation(pre), out)
    _close(logits, vit(x))


@pytest.mark.parametrize("name", ["resnet", "efficientnet"])
def test_cnn_classifier_mid_layer_default_and_target(name: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(name)
    backbone = model.backbone
    mid = backbone.layers[len(backbone.layers) // 2]
    exposed = ki.expose(model, [_path_of(model, mid)])
    default = ki.expose(model)
    x = _x(3)
    want_mid, want_features = keras.Model(backbone.inputs[0], [mid.output, backbone.output])(x)
    logits, got_mid = exposed(x)
    _close(got_mid, want_mid)
    _close(logits, model(x))
    _close(default(x)[1], want_features)
    assert ki.get_target_layer(model) is backbone.output._keras_history.operation
    body, head = ki.split(model, _path_of(model, backbone.layers[-1]))
    _close(head(body(x)), model(x))


def test_vit_gradient_at_a_block_inside_the_subclassed_encoder(vit: keras.Model) -> None:
    """The gradient at the first block's output (reached by interception) against central
    finite differences of the rest of the model, written out with its own layers."""
    encoder = next(e for e in ki.walk(vit) if e.path[-1] == "vit_encoder")
    first, second = [e for e in ki.walk(vit) if e.path[:-1] == encoder.path and "block" in e.path[-1]]
    x = _x(2)
    result = ki.gradients(vit, x, first.name, target=1)
    (tokens,) = (to_numpy(v) for v in result.signals)
    (grad,) = (to_numpy(g) for g in result.gradients)
    assert grad.shape == tokens.shape == (2, 1 + (32 // 8) ** 2, 16)

    def rest(z: np.ndarray) -> np.ndarray:
        encoded = encoder.layer.layer_norm(second.layer(z))
        return to_numpy(vit.output_dense(encoded[:, 0]))[:, 1]  # token pooling, then the head

    np.testing.assert_allclose(rest(tokens), to_numpy(result.scores), rtol=1e-4, atol=1e-5)
    rng = np.random.default_rng(3)
    for _ in range(2):
        direction = rng.normal(size=tokens.shape).astype("float32")
        eps = 1e-2
        numeric = (rest(tokens + eps * direction) - rest(tokens - eps * direction)) / (2 * eps)
        analytic = (grad * direction).reshape(2, -1).sum(axis=1)
        np.testing.assert_allclose(analytic, numeric, rtol=3e-2, atol=3e-4)
    # Attention mixes the tokens: every patch token, not only the class token, has a gradient.
    assert np.abs(grad[:, 1:]).max() > 0
