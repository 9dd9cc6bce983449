"""The in-tree keras-hub plugin, on keras-hub models built from small configs (no presets)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_inspect as ki
from keras_inspect.plugins import keras_hub as plugin

keras_hub = pytest.importorskip("keras_hub")

PLUGIN = "keras_hub"


@pytest.fixture(scope="module")
def pm() -> ki.InspectPluginManager:
    return ki.new_plugin_manager()


@pytest.fixture
def current(pm: ki.InspectPluginManager) -> Iterator[ki.InspectPluginManager]:
    with ki.using_plugin_manager(pm):
        yield pm


def _np(value: object) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(value))


@pytest.fixture(scope="module")
def resnet() -> keras.Model:
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 16], stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2], block_type="basic_block", use_pre_activation=False,
        image_shape=(32, 32, 3),
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
        num_features=32, input_shape=(32, 32, 3),
    )  # fmt: skip
    return keras_hub.models.EfficientNetImageClassifier(backbone=backbone, num_classes=4)


@pytest.fixture(scope="module")
def vit() -> keras.Model:
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=16,
        mlp_dim=32,
    )  # fmt: skip
    return keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=3)


@pytest.fixture(scope="module")
def bert() -> keras.Model:
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=12,
    )  # fmt: skip
    return keras_hub.models.BertTextClassifier(backbone=backbone, num_classes=2, preprocessor=None)


def test_enabled_through_its_entry_point(pm: ki.InspectPluginManager) -> None:
    (info,) = [i for i in pm.plugin_infos() if i.name == PLUGIN]
    assert info.distribution == "keras-inspect"
    assert set(info.hooks) == {"keras_inspect_classify_layer", "keras_inspect_layer_bias"}
    assert plugin.AVAILABLE


def test_without_keras_hub_the_module_defines_no_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "keras_hub" else real(name, *a)
    )
    spec = importlib.util.spec_from_file_location("_keras_hub_plugin_copy", Path(plugin.__file__))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.AVAILABLE is False
    assert not hasattr(module, "keras_inspect_classify_layer")
    pm = ki.new_plugin_manager(entrypoints=False)
    pm.register(module, name="no-keras-hub")
    assert pm.get_hookcallers(module) == []


@pytest.mark.parametrize("fixture", ["resnet", "efficientnet"])
def test_cnn_image_classifiers(
    current: ki.InspectPluginManager, fixture: str, request: pytest.FixtureRequest
) -> None:
    model = request.getfixturevalue(fixture)
    assert ki.get_logits_layer(model) is model.get_layer("predictions")
    assert ki.get_global_pooling_layer(model) is model.get_layer("pooler")
    norms = [e.layer for e in ki.walk(model) if current.classify(e.layer, "normalization")[0]]
    batch_norms = [
        e.layer for e in ki.walk(model) if isinstance(e.layer, keras.layers.BatchNormalization)
    ]
    assert norms == batch_norms and norms
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    logits, feature_map = ki.expose(model)(x)
    np.testing.assert_allclose(_np(logits), _np(model(x)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_np(feature_map), _np(model.backbone(x)), rtol=1e-4, atol=1e-5)


def test_vit_classifier(current: ki.InspectPluginManager, vit: keras.Model) -> None:
    assert ki.get_logits_layer(vit) is vit.get_layer("predictions")
    last_norm = ki.find_layer_with(vit, role="normalization")
    assert last_norm is vit.backbone.get_layer("vit_encoder").layer_norm
    # The class-token pooling is a tensor slice, not a layer: the token sequence is reached
    # through the backbone's output instead.
    x = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype("float32")
    logits, tokens = ki.expose(vit, arguments=vit.backbone.name)(x)
    np.testing.assert_allclose(_np(logits), _np(vit(x)), rtol=1e-4, atol=1e-5)
    assert tokens.shape == (2, 1 + (32 // 8) ** 2, 16)


def test_bert_text_classifier(current: ki.InspectPluginManager, bert: keras.Model) -> None:
    logits = ki.get_logits_layer(bert)
    assert logits is bert.get_layer("logits")
    layers, biases = ki.layers_with_biases(bert)
    assert layers[-1] is logits
    np.testing.assert_allclose(_np(biases[-1]), _np(logits.bias))
    norms = ki.summary(bert, role="normalization").rows
    assert {row.type for row in norms} == {"LayerNormalization"}
    # The token embedding is looked up forward only: it is not a logits layer.
    embedding = bert.backbone.token_embedding
    assert current.classify(embedding, "logits") == (False, PLUGIN)


def test_rms_normalization(current: ki.InspectPluginManager) -> None:
    inputs = keras.Input((5, 6))
    x = keras.layers.Dense(6, name="proj")(inputs)
    norm = keras_hub.layers.RMSNormalization(input_dim=6)
    outputs = keras.layers.Dense(3, name="head")(norm(x))
    model = keras.Model(inputs, outputs)
    assert current.classify(norm, "normalization") == (True, PLUGIN)
    assert ki.find_layer_with(model, role="normalization") is norm
    # It divides by each input's RMS and scales: nothing is added independently of the input.
    assert current.layer_bias(norm) == (None, None)
    assert norm not in ki.layers_with_biases(model, return_biases=False)
    scaled = _np(norm(np.full((1, 2, 6), 3.0, "float32")))
    np.testing.assert_allclose(scaled, np.ones((1, 2, 6)), rtol=1e-4)


def test_reversible_embedding_logits(current: ki.InspectPluginManager) -> None:
    tokens = keras.Input((7,), dtype="int32")
    embedding = keras_hub.layers.ReversibleEmbedding(20, 8, name="tokens")
    hidden = embedding(tokens)
    logits = embedding(hidden, reverse=True)
    model = keras.Model(tokens, logits)
    assert current.classify(embedding, "logits") == (True, PLUGIN)
    assert ki.get_logits_layer(model) is embedding
    forward_only = keras_hub.layers.ReversibleEmbedding(20, 8)
    keras.Model(tokens, forward_only(tokens))
    assert current.classify(forward_only, "logits") == (False, PLUGIN)


def test_masked_lm_head_logits_and_bias(current: ki.InspectPluginManager) -> None:
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=30, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=10,
    )  # fmt: skip
    model = keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=None)
    (head,) = [e.layer for e in ki.walk(model) if type(e.layer).__name__ == "MaskedLMHead"]
    assert current.classify(head, "logits") == (True, PLUGIN)
    bias, plugin_name = current.layer_bias(head)
    assert plugin_name == PLUGIN
    head._bias.assign(np.random.default_rng(2).normal(size=head._bias.shape).astype("float32"))
    # With the tied output projection zeroed, the head outputs its bias whatever the input.
    embeddings = backbone.token_embedding.embeddings
    embeddings.assign(np.zeros(embeddings.shape, "float32"))
    inputs = {
        "token_ids": np.ones((1, 10), "int32"),
        "segment_ids": np.zeros((1, 10), "int32"),
        "padding_mask": np.ones((1, 10), "int32"),
        "mask_positions": np.array([[1, 4]], "int32"),
    }
    outputs = _np(model(inputs))
    bias, _ = current.layer_bias(head)
    np.testing.assert_allclose(outputs[0, 0], _np(bias), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs[0, 1], _np(bias), rtol=1e-5, atol=1e-6)
