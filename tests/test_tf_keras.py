"""Keras 2 (``tf_keras``) models through the tf_keras flavour and layer adapters.

tf_keras always computes with TensorFlow, whatever ``KERAS_BACKEND`` says, and it lives happily
in the same process as Keras 3 on JAX or PyTorch: these tests run in every backend's run (they
pass there, and running them thrice checks that nothing in keras-inspect leaks the Keras 3
backend into tf_keras code, e.g. a bias computed with ``keras.ops`` would come back as a JAX
array). They need TensorFlow and tf_keras, which the test environment installs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_inspect as ki
from keras_inspect.adapters.tf_keras.graph import READER as FLAVOUR
from keras_inspect.adapters.tf_keras.graph import TfKerasGraphReader as TfKerasFlavour
from keras_inspect.graph.inspected import reader_of
from keras_inspect.errors import EndpointError

L = tf_keras.layers
RNG = np.random.default_rng(7)


def _randomise_normalization(model: tf_keras.Model) -> None:
    """Give every BatchNormalization non-trivial statistics (fresh ones fold to zero)."""
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, L.BatchNormalization):
            layer.set_weights(
                [
                    RNG.uniform(0.5, 2.0, w.shape).astype("float32")
                    if i in (0, 3)  # gamma, moving variance: positive
                    else RNG.normal(size=w.shape).astype("float32")
                    for i, w in enumerate(layer.get_weights())
                ]
            )
        elif isinstance(layer, L.LayerNormalization):
            weights = layer.get_weights()
            layer.set_weights([RNG.normal(size=w.shape).astype("float32") for w in weights])
        elif isinstance(layer, (L.Dense, L.Conv2D)) and layer.use_bias:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, RNG.normal(size=bias.shape).astype("float32")])


@pytest.fixture(scope="module")
def flat_model() -> tf_keras.Model:
    inputs = tf_keras.Input((16, 16, 3), name="image")
    x = L.Conv2D(6, 3, activation="relu", name="conv1")(inputs)
    x = L.BatchNormalization(epsilon=1e-2, name="bn1")(x)
    x = L.Conv2D(8, 3, name="conv2")(x)
    x = L.LayerNormalization(name="ln")(x)
    x = L.Activation("relu", name="relu")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(7, name="hidden")(x)
    outputs = L.Dense(4, name="logits")(x)
    model = tf_keras.Model(inputs, outputs, name="flat")
    _randomise_normalization(model)
    return model


@pytest.fixture(scope="module")
def flat_sequential() -> tf_keras.Sequential:
    model = tf_keras.Sequential(
        [
            tf_keras.Input((12, 12, 2)),
            L.Conv2D(4, 3, name="c1"),
            L.BatchNormalization(name="b1"),
            L.MaxPooling2D(name="pool"),
            L.Flatten(name="flatten"),
            L.Dense(3, name="out"),
        ],
        name="seq",
    )
    _randomise_normalization(model)
    return model


@pytest.fixture(scope="module")
def nested_model() -> tf_keras.Sequential:
    """A functional backbone inside a Sequential, the seed's usual setting."""
    inputs = tf_keras.Input((16, 16, 3))
    x = L.Conv2D(5, 3, name="stem")(inputs)
    x = L.BatchNormalization(epsilon=1e-3, name="stem_bn")(x)
    x = L.Activation("relu", name="stem_relu")(x)
    x = L.Conv2D(6, 3, activation="relu", name="block")(x)
    x = L.GlobalAveragePooling2D(name="avg_pool")(x)
    backbone = tf_keras.Model(inputs, x, name="backbone")
    model = tf_keras.Sequential([backbone, L.Dense(3, name="predictions")], name="classifier")
    _randomise_normalization(model)
    return model


def _images(model: tf_keras.Model, n: int = 3) -> np.ndarray:
    shape = tuple(model.inputs[0].shape[1:])
    return RNG.normal(size=(n, *shape)).astype("float32")


# -- the seed's own logic, as it ran on Keras 2, to compare with --------------------------------


def _seed_search(model: tf_keras.Model, match: Callable[[Any], bool]) -> Any:
    for layer in reversed(list(model._flatten_layers(include_self=False))):
        if match(layer):
            return layer
    raise AssertionError("the seed would have found nothing")


def _seed_logits(model: tf_keras.Model) -> tf_keras.layers.Layer:
    return _seed_search(model, lambda layer: hasattr(layer, "kernel"))


def _seed_pooling(model: tf_keras.Model) -> tf_keras.layers.Layer:
    from tf_keras.src.layers.pooling.base_global_pooling1d import GlobalPooling1D
    from tf_keras.src.layers.pooling.base_global_pooling2d import GlobalPooling2D
    from tf_keras.src.layers.pooling.base_global_pooling3d import GlobalPooling3D

    classes = (L.Flatten, GlobalPooling1D, GlobalPooling2D, GlobalPooling3D)
    return _seed_search(model, lambda layer: isinstance(layer, classes))


# -- flavour choice -----------------------------------------------------------------------------


def test_the_registry_picks_the_tf_keras_flavour_from_the_model_type(flat_model) -> None:
    pm = ki.plugin_manager()
    assert reader_of(flat_model, pm) is FLAVOUR
    assert isinstance(reader_of(flat_model, pm), TfKerasFlavour)
    keras3 = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="k3_dense")])
    assert reader_of(keras3, pm).name == "keras3"
    assert reader_of(object(), pm) is None


def test_walk_follows_the_graph_into_the_nested_backbone(nested_model) -> None:
    paths = [entry.path for entry in ki.walk(nested_model)]
    assert paths == [
        ("backbone",),
        ("backbone", "stem"),
        ("backbone", "stem_bn"),
        ("backbone", "stem_relu"),
        ("backbone", "block"),
        ("backbone", "avg_pool"),
        ("predictions",),
    ]
    assert all(entry.in_graph for entry in ki.walk(nested_model))
    assert ki.get_nested_layer(nested_model, "backbone/block") is nested_model.layers[0].get_layer(
        "block"
    )


# -- roles: the seed's picks on flat models -----------------------------------------------------


@pytest.mark.parametrize("fixture", ["flat_model", "flat_sequential"])
def test_logits_and_pooling_match_the_seed_on_flat_models(fixture, request) -> None:
    model = request.getfixturevalue(fixture)
    assert ki.get_logits_layer(model) is _seed_logits(model)
    assert ki.get_global_pooling_layer(model) is _seed_pooling(model)


def test_roles_on_the_nested_model_come_from_graph_order(nested_model) -> None:
    backbone = nested_model.layers[0]
    assert ki.get_logits_layer(nested_model) is nested_model.get_layer("predictions")
    assert ki.get_global_pooling_layer(nested_model) is backbone.get_layer("avg_pool")
    assert ki.find_layer_with(nested_model, role="normalization") is backbone.get_layer("stem_bn")
    first_kernel = ki.find_layer_with(nested_model, role="logits", strategy="forward")
    assert first_kernel is backbone.get_layer("stem")


def test_normalization_roles(flat_model) -> None:
    found = ki.find_layer_with(flat_model, role="normalization")
    assert found is flat_model.get_layer("ln")
    first = ki.find_layer_with(flat_model, role="normalization", search_reversed=False)
    assert first is flat_model.get_layer("bn1")
    pm = ki.plugin_manager()
    assert pm.classify(flat_model.get_layer("gap"), "normalization") == (
        False,
        None,
    )
    assert pm.classify(flat_model.get_layer("relu"), "logits")[0] is False


# -- biases -------------------------------------------------------------------------------------


def test_biases_are_the_seeds_except_batch_norm(flat_model) -> None:
    layers, values = ki.layers_with_biases(flat_model)
    assert [layer.name for layer in layers] == ["conv1", "bn1", "conv2", "ln", "hidden", "logits"]
    for layer, value in zip(layers, values):
        if isinstance(layer, (L.Conv2D, L.Dense, L.LayerNormalization)):
            # As the seed: the layer's own variable, so a kept list follows training.
            own = layer.beta if isinstance(layer, L.LayerNormalization) else layer.bias
            assert value is own, type(value)
        else:
            assert isinstance(value, tf.Tensor), type(value)  # folded: a computed snapshot
    assert len(ki.biases(layers)) == len(layers)


@pytest.mark.parametrize("name", ["bn1", "ln"])
def test_normalization_bias_is_the_layers_output_on_zeros(flat_model, name) -> None:
    layer = flat_model.get_layer(name)
    (value,) = ki.biases([layer])
    zeros = tf.zeros((1, *layer.input_shape[1:]))
    on_zeros = layer(zeros, training=False)[0, 0, 0]
    np.testing.assert_allclose(value.numpy(), on_zeros.numpy(), rtol=1e-5, atol=1e-5)


def test_batch_norm_uses_its_own_epsilon_not_the_seeds(flat_model) -> None:
    layer = flat_model.get_layer("bn1")
    (value,) = ki.biases([layer])
    seed = -layer.moving_mean * layer.gamma / tf.sqrt(layer.moving_variance + 1e-07) + layer.beta
    # epsilon=1e-2 moves the fold well beyond float noise: the correction is visible.
    assert np.max(np.abs(value.numpy() - seed.numpy())) > 1e-3


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    axis=st.sampled_from([1, 2, -1]),
    epsilon=st.sampled_from([1e-5, 1e-3, 0.1]),
    center=st.booleans(),
    scale=st.booleans(),
)
def test_batch_norm_fold_matches_the_layer_on_zeros(axis, epsilon, center, scale) -> None:
    layer = L.BatchNormalization(axis=axis, epsilon=epsilon, center=center, scale=scale)
    layer.build((None, 3, 4, 5))
    layer.set_weights(
        [
            RNG.uniform(0.3, 3.0, w.shape).astype("float32")
            if w is layer.moving_variance or (scale and w is layer.gamma)
            else RNG.normal(size=w.shape).astype("float32")
            for w in layer.weights
        ]
    )
    (value,) = ki.biases([layer])
    zeros = tf.zeros((2, 3, 4, 5))
    expected = layer(zeros, training=False)[0].numpy()
    # The fold is shaped to broadcast over one sample's output, so adding it to zeros must
    # reproduce the layer's output exactly where it is.
    np.testing.assert_allclose(np.broadcast_to(value.numpy(), expected.shape), expected, atol=2e-5)


def test_channels_first_convolution_bias_broadcasts_over_channels() -> None:
    inputs = tf_keras.Input((3, 10, 10))
    conv = L.Conv2D(4, 3, data_format="channels_first", name="cf")
    conv(inputs)
    (value,) = ki.biases([conv])
    assert tuple(value.shape) == (4, 1, 1)
    np.testing.assert_array_equal(value.numpy()[:, 0, 0], conv.bias.numpy())


def test_layers_without_constant_are_skipped() -> None:
    dense = L.Dense(3, use_bias=False)
    dense.build((None, 2))
    norm = L.LayerNormalization(center=False)
    norm.build((None, 2))
    lstm = L.LSTM(2)
    lstm.build((None, 3, 2))
    assert ki.biases([dense, norm, lstm]) == []


# -- endpoints and expose -----------------------------------------------------------------------


def test_expose_defaults_to_logits_and_pooling_input(flat_model) -> None:
    exposed = ki.expose(flat_model)
    assert isinstance(exposed, tf_keras.Model)
    x = _images(flat_model)
    logits, features = exposed(x)
    np.testing.assert_allclose(logits.numpy(), flat_model(x).numpy(), rtol=1e-5, atol=1e-6)
    reference = tf_keras.Model(flat_model.inputs, flat_model.get_layer("relu").output)(x)
    np.testing.assert_allclose(features.numpy(), reference.numpy(), rtol=1e-5, atol=1e-6)


def test_expose_reaches_inside_the_nested_backbone(nested_model) -> None:
    backbone = nested_model.layers[0]
    exposed = ki.expose(
        nested_model,
        arguments=["backbone/stem_bn", {"name": "backbone/block", "link": "input"}],
    )
    x = _images(nested_model)
    logits, bn, block_in = exposed(x)
    np.testing.assert_allclose(logits.numpy(), nested_model(x).numpy(), rtol=1e-5, atol=1e-6)
    inner = tf_keras.Model(
        backbone.inputs,
        [backbone.get_layer("stem_bn").output, backbone.get_layer("stem_relu").output],
    )
    bn_ref, relu_ref = inner(x)
    np.testing.assert_allclose(bn.numpy(), bn_ref.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(block_in.numpy(), relu_ref.numpy(), rtol=1e-5, atol=1e-6)


def test_expose_default_on_nested_model_is_backbone_pooling_input(nested_model) -> None:
    exposed = ki.expose(nested_model)
    x = _images(nested_model)
    logits, features = exposed(x)
    backbone = nested_model.layers[0]
    reference = tf_keras.Model(backbone.inputs, backbone.get_layer("block").output)(x)
    np.testing.assert_allclose(features.numpy(), reference.numpy(), rtol=1e-5, atol=1e-6)
    # Grad-CAM's premise, checked on the exposed signals: the head sees the mean feature.
    head = nested_model.get_layer("predictions")
    np.testing.assert_allclose(
        head(tf.reduce_mean(features, axis=(1, 2))).numpy(), logits.numpy(), rtol=1e-5, atol=1e-5
    )


def test_endpoints_connect_to_the_outer_inputs(nested_model) -> None:
    tensors = ki.endpoints(nested_model, ["backbone/stem", "predictions"])
    model = tf_keras.Model(nested_model.inputs, tensors)
    x = _images(nested_model, 2)
    stem, out = model(x)
    backbone = nested_model.layers[0]
    np.testing.assert_allclose(
        stem.numpy(), backbone.get_layer("stem")(x).numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(out.numpy(), nested_model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_descriptors_by_index_tensor_and_layer(flat_model) -> None:
    conv2 = flat_model.get_layer("conv2")
    by_index = ki.endpoints(flat_model, [2])  # layers[0] is the InputLayer, as in the seed
    by_tensor = ki.endpoints(flat_model, [conv2.output])
    by_layer = ki.endpoints(flat_model, [{"layer": conv2}])
    assert by_index[0] is flat_model.get_layer("bn1").output
    assert by_tensor[0] is conv2.output
    assert by_layer[0] is conv2.output


def test_expose_twice_reuses_the_graph_and_leaves_the_model_alone(nested_model) -> None:
    layers_before = list(nested_model.layers)
    outputs_before = list(nested_model.outputs)
    first = ki.expose(nested_model, "backbone/stem")
    nodes_after_first = len(nested_model.get_layer("predictions")._inbound_nodes)
    second = ki.expose(nested_model, "backbone/stem")
    assert len(nested_model.get_layer("predictions")._inbound_nodes) == nodes_after_first
    assert [t.ref() for t in first.outputs] == [t.ref() for t in second.outputs]
    assert list(nested_model.layers) == layers_before
    assert [t.ref() for t in nested_model.outputs] == [t.ref() for t in outputs_before]


def test_pre_activation_of_a_fused_activation_is_split_off(flat_model) -> None:
    conv1 = flat_model.get_layer("conv1")
    exposed = ki.expose(
        flat_model, arguments=[{"name": "conv1", "link": "pre_activation"}, "conv1"]
    )
    x = _images(flat_model, 2)
    logits, pre, post = exposed(x)
    by_hand = tf.nn.conv2d(x, conv1.kernel, strides=1, padding="VALID") + conv1.bias
    np.testing.assert_allclose(pre.numpy(), by_hand.numpy(), rtol=1e-4, atol=1e-5)
    assert np.any(pre.numpy() < 0)  # the ReLU had something to cut
    np.testing.assert_allclose(post.numpy(), np.maximum(pre.numpy(), 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits.numpy(), flat_model(x).numpy(), rtol=1e-4, atol=1e-5)
    # No weight was copied: the split shares the layer's variables.
    assert {id(v) for v in exposed.weights} == {id(v) for v in flat_model.weights}
    # Without a fused activation the pre-activation is the output.
    (tensor,) = ki.endpoints(flat_model, [{"name": "conv2", "link": "pre_activation"}])
    assert tensor is flat_model.get_layer("conv2").output


def test_split_cuts_a_tf_keras_model_at_a_nested_signal(nested_model) -> None:
    from keras_inspect.signals.split import split

    body, head = split(nested_model, "backbone/stem_relu")
    x = _images(nested_model, 2)
    signal = body(x)
    np.testing.assert_allclose(
        head(signal).numpy(), nested_model(x).numpy(), rtol=1e-5, atol=1e-5
    )
    # Grad-CAM's gradient is then the head's gradient at the signal, here with TF's tape.
    with tf.GradientTape() as tape:
        tape.watch(signal)
        score = tf.reduce_sum(head(signal)[:, 1])
    assert tape.gradient(score, signal).shape == signal.shape


def test_subclassed_tf_keras_model_has_no_graph_to_expose() -> None:
    class Tiny(tf_keras.Model):
        def __init__(self) -> None:
            super().__init__(name="tiny")
            self.dense = L.Dense(2, name="inner")

        def call(self, x):  # type: ignore[no-untyped-def]
            return self.dense(x)

    model = Tiny()
    model(np.zeros((1, 3), "float32"))
    (entry,) = ki.walk(model)
    assert entry.path == ("inner",) and not entry.in_graph
    assert ki.get_logits_layer(model) is model.dense
    with pytest.raises(EndpointError, match="functional graph"):
        ki.expose(model, outputs="inner", arguments=[])


def test_a_layer_of_another_model_is_rejected(flat_model, nested_model) -> None:
    with pytest.raises(ValueError, match="not part of model"):
        ki.endpoints(flat_model, [{"layer": nested_model.get_layer("predictions")}])


def test_exposed_tf_keras_model_runs_under_xla(nested_model) -> None:
    exposed = ki.expose(nested_model, "backbone/stem_bn")
    x = _images(nested_model, 2)

    @tf.function(jit_compile=True)
    def step(images):  # type: ignore[no-untyped-def]
        logits, signal = exposed(images, training=False)
        # gather_units speaks the Keras 3 backend; under TF's XLA use TF's own gather.
        chosen = tf.gather(logits, tf.argmax(logits, axis=-1)[:, None], batch_dims=1)
        return chosen, signal, ki.biases([nested_model.get_layer("predictions")])[0]

    chosen, signal, bias = step(x)
    logits = nested_model(x).numpy()
    np.testing.assert_allclose(chosen.numpy()[:, 0], logits.max(axis=-1), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bias.numpy(), nested_model.get_layer("predictions").bias.numpy())
    assert signal.shape == (2, 14, 14, 5)
