"""docs/migration.md, the sections on searches and biases: the seed next to keras-inspect.

As in test_seed_parity.py, the seed's algorithms (``_seed``) and ``keras_inspect.inspection`` run
on the same Keras 2 (``tf_keras``) model; the layer-order tests also build each topology with
Keras 3, where ``Model._flatten_layers`` (which the seed searched) lists nested layers reversed.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Any

import keras
import numpy as np
import pytest

tf_keras = pytest.importorskip("tf_keras")

import _seed as seed  # noqa: E402  (imports tf_keras)
import tensorflow as tf  # noqa: E402
from _seed_models import (  # noqa: E402
    TOPOLOGIES,
    fused_model,
    guide_nested,
    randomise,
    randomised_batch_norm,
)

import keras_inspect  # noqa: E402
from keras_inspect import inspection  # noqa: E402
from keras_inspect.adapters.normalization import NORMALIZATION_TYPES  # noqa: E402
from keras_inspect.adapters.pooling import POOLING_TYPES  # noqa: E402

L = tf_keras.layers
pytestmark = pytest.mark.usefixtures("fresh_pm")


# -- batch normalization: the layer's epsilon, scale, center and axis ----------------------------


def _on_zeros(layer: Any, shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray(layer(tf.zeros((1, *shape)), training=False)[0])


@pytest.mark.parametrize("epsilon", [1e-3, 1e-2])
def test_batch_norm_fold_uses_the_layers_epsilon_not_1e_7(epsilon: float) -> None:
    bn = randomised_batch_norm((4,), epsilon=epsilon)
    truth = _on_zeros(bn, (4,))  # what the layer adds: its output on zeros
    (ours,), (theirs,) = inspection.biases([bn]), seed.biases([bn])
    np.testing.assert_allclose(np.asarray(ours), truth, rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(np.asarray(theirs) - truth)) > 1e-4  # far beyond float32 noise


@pytest.mark.parametrize("options", [{"scale": False}, {"center": False}])
def test_batch_norm_without_gamma_or_beta(options: dict[str, bool]) -> None:
    bn = randomised_batch_norm((3, 4, 5), **options)
    with pytest.raises(ValueError, match="None"):
        seed.biases([bn])  # the seed multiplied by a missing gamma / added a missing beta
    (ours,) = inspection.biases([bn])
    np.testing.assert_allclose(
        np.broadcast_to(np.asarray(ours), (3, 4, 5)), _on_zeros(bn, (3, 4, 5)), atol=2e-5
    )


def test_batch_norm_on_another_axis_broadcasts_over_that_axis() -> None:
    bn = randomised_batch_norm((3, 4, 5), axis=1)
    (theirs,), (ours,) = seed.biases([bn]), inspection.biases([bn])
    assert tuple(theirs.shape) == (3,)  # would broadcast over the last axis (5): wrong
    assert tuple(ours.shape) == (3, 1, 1)
    np.testing.assert_allclose(
        np.broadcast_to(np.asarray(ours), (3, 4, 5)), _on_zeros(bn, (3, 4, 5)), atol=2e-5
    )


# -- layer and group normalization ------------------------------------------------------------


def test_layer_and_group_normalization_add_beta() -> None:
    model = tf_keras.Sequential(
        [tf_keras.Input((6,)), L.LayerNormalization(name="ln"), L.GroupNormalization(2, name="gn")]
    )
    ln, gn = model.layers
    ln.beta.assign(np.arange(6, dtype="float32"))
    gn.beta.assign(-np.arange(6, dtype="float32"))
    with pytest.raises(AttributeError, match="moving_variance"):
        seed.biases([ln])
    with pytest.raises(AttributeError, match="moving_variance"):
        seed.layers_with_biases(model)
    assert seed.layers_with_biases(model, return_biases=False) == [ln]  # group norm: missed
    layers, values = inspection.layers_with_biases(model)
    assert layers == [ln, gn]
    assert values[0] is ln.beta and values[1] is gn.beta  # their own variables
    uncentred = tf_keras.Sequential([tf_keras.Input((6,)), L.LayerNormalization(center=False)])
    with pytest.raises(AttributeError, match="moving_variance"):
        seed.layers_with_biases(uncentred)
    assert inspection.layers_with_biases(uncentred) == ([], [])
    for layer, value in zip(layers, values):
        np.testing.assert_allclose(np.asarray(value), _on_zeros(layer, (6,)), atol=1e-6)


# -- graph order ---------------------------------------------------------------------------------


def _non_input_names(layers: Any, module: Any) -> list[str]:
    return [layer.name for layer in layers if not isinstance(layer, module.layers.InputLayer)]


def _flatten_order(model: Any, module: Any) -> list[str]:
    return _non_input_names(model._flatten_layers(include_self=False), module)


def _reversed_below_the_top(model: Any) -> list[str]:
    """The walk's layers, with every container's own layers taken last to first except the top
    model's: the order Keras 3's ``_flatten_layers`` yields (it pushes each container's layers
    onto the front of its queue one by one)."""
    children: dict[tuple[str, ...], list[Any]] = defaultdict(list)
    for entry in keras_inspect.walk(model):
        children[entry.path[:-1]].append(entry)
    order: list[str] = []

    def visit(prefix: tuple[str, ...], reverse: bool) -> None:
        for entry in reversed(children[prefix]) if reverse else children[prefix]:
            order.append(entry.layer.name)
            visit(entry.path, True)

    visit((), False)
    return order


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_on_keras_2_the_seeds_order_is_the_graph_order(topology: str) -> None:
    model = TOPOLOGIES[topology](tf_keras)
    assert _flatten_order(model, tf_keras) == [e.layer.name for e in keras_inspect.walk(model)]
    for reverse in (True, False):
        theirs = seed.find_layer_with(model, properties=["kernel"], search_reversed=reverse)
        ours = inspection.find_layer_with(model, properties=["kernel"], search_reversed=reverse)
        assert ours is theirs
    assert inspection.get_logits_layer(model) is seed.get_logits_layer(model)


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_on_keras_3_flatten_layers_reverses_each_nested_container(topology: str) -> None:
    model = TOPOLOGIES[topology](keras)
    entries = keras_inspect.walk(model)
    flat = _flatten_order(model, keras)
    assert flat == _reversed_below_the_top(model)
    held: dict[tuple[str, ...], int] = defaultdict(int)
    for entry in entries:
        held[entry.path[:-1]] += 1
    # The seed's order differs exactly when some container below the top holds two layers.
    reordered = any(count > 1 for container, count in held.items() if container)
    assert (flat != [e.layer.name for e in entries]) == reordered


def test_on_keras_3_the_seeds_search_would_find_the_first_conv() -> None:
    model = guide_nested(keras)
    conv = keras.layers.Conv2D
    assert seed.find_layer_with(model, klass=conv).name == "c1"
    assert seed.find_layer_with(model, klass=conv, search_reversed=False).name == "c2"
    assert inspection.find_layer_with(model, klass=conv).name == "c2"
    assert inspection.find_layer_with(model, klass=conv, search_reversed=False).name == "c1"


def test_on_keras_2_the_guides_nested_example_agrees_with_the_seed() -> None:
    model = guide_nested(tf_keras)
    for reverse, expected in ((True, "c2"), (False, "c1")):
        theirs = seed.find_layer_with(model, klass=L.Conv2D, search_reversed=reverse)
        ours = inspection.find_layer_with(model, klass=L.Conv2D, search_reversed=reverse)
        assert ours is theirs and ours.name == expected
    assert inspection.get_logits_layer(model) is seed.get_logits_layer(model)
    assert inspection.get_global_pooling_layer(model) is seed.get_global_pooling_layer(model)


def test_input_layers_are_no_candidates() -> None:
    model = guide_nested(tf_keras)
    assert isinstance(seed.find_layer_with(model, klass=L.InputLayer), L.InputLayer)
    with pytest.raises(keras_inspect.NoMatchingLayerError, match="InputLayer"):
        inspection.find_layer_with(model, klass=L.InputLayer)


# -- biases: the layer's own variable, or a computed snapshot -------------------------------------


def test_biases_return_the_layers_variable_where_the_seed_did() -> None:
    model = fused_model(tf_keras)
    conv, dense = model.get_layer("conv"), model.get_layer("dense")
    ours, theirs = inspection.biases([conv, dense]), seed.biases([conv, dense])
    assert ours[0] is theirs[0] is conv.bias and ours[1] is theirs[1] is dense.bias
    dense.bias.assign(np.full((2,), 7.0, "float32"))  # as training would
    np.testing.assert_array_equal(np.asarray(ours[1]), [7.0, 7.0])


def test_computed_biases_are_snapshots() -> None:
    inputs = tf_keras.Input((3, 6, 6))
    x = L.Conv2D(4, 3, data_format="channels_first", name="cf")(inputs)
    x = L.BatchNormalization(axis=1, name="bn")(x)
    x = L.Flatten()(x)
    x = L.Dense(3, dtype="mixed_float16", name="half")(x)
    model = randomise(tf_keras.Model(inputs, x), seed=4)
    cf, bn, half = (model.get_layer(n) for n in ("cf", "bn", "half"))
    ours = dict(zip(("cf", "bn", "half"), inspection.biases([cf, bn, half])))
    theirs = dict(zip(("cf", "bn", "half"), seed.biases([cf, bn, half])))
    assert theirs["cf"] is cf.bias and theirs["half"] is half.bias  # wrong shape, wrong dtype
    assert tuple(ours["cf"].shape) == (4, 1, 1)  # broadcasts over (channels, height, width)
    assert ours["half"].dtype == tf.float16 == half.compute_dtype
    before = {name: np.asarray(value).copy() for name, value in ours.items()}
    for layer in (cf, bn, half):
        randomise(layer, seed=5)
    for name, value in ours.items():
        np.testing.assert_array_equal(np.asarray(value), before[name])  # not following the layer
    assert not np.allclose(np.asarray(inspection.biases([bn])[0]).ravel(), before["bn"].ravel())
    np.testing.assert_array_equal(np.asarray(theirs["cf"]), np.asarray(cf.bias))  # a variable


# -- nested names ------------------------------------------------------------------------------


def test_a_unique_nested_name_and_paths() -> None:
    model = guide_nested(tf_keras)
    c2 = model.get_layer("backbone").get_layer("c2")
    for name in ("c2", "backbone/c2"):
        with pytest.raises(ValueError, match="No such layer"):
            seed.get_nested_layer(model, name)
        assert inspection.get_nested_layer(model, name) is c2
    assert seed.get_nested_layer(model, ("backbone", "c2")) is c2
    assert inspection.get_nested_layer(model, ("backbone", "c2")) is c2
    inputs = tf_keras.Input((4,))
    towers = [
        tf_keras.Sequential([tf_keras.Input((4,)), L.Dense(2, name="c2")], name=name)(inputs)
        for name in ("left", "right")
    ]
    twice = tf_keras.Model(inputs, L.Add()(towers))
    with pytest.raises(keras_inspect.LayerNotFoundError, match="'left/c2'.*'right/c2'"):
        inspection.get_nested_layer(twice, "c2")


# -- unchanged on purpose, and other differences ------------------------------------------------


def test_flatten_is_a_pooling_layer_and_expose_uses_its_input() -> None:
    model = fused_model(tf_keras)
    assert inspection.get_global_pooling_layer(model) is seed.get_global_pooling_layer(model)
    assert seed.get_global_pooling_layer(model).name == "flat"
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 1)).astype("float32")
    for ours, theirs in zip(inspection.expose(model)(x), seed.expose(model)(x)):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-6, atol=1e-6)


def test_biases_skip_layers_without_one_and_searches_raise_value_errors() -> None:
    model = fused_model(tf_keras)
    layers = [model.get_layer("conv"), L.ReLU(), L.Dense(2, use_bias=False), model.get_layer("dense")]
    assert [id(v) for v in inspection.biases(layers)] == [id(v) for v in seed.biases(layers)]
    assert len(inspection.biases(layers)) == 2
    for find in (seed.find_layer_with, inspection.find_layer_with):
        with pytest.raises(ValueError):
            find(model, klass=L.LSTM)
        with pytest.raises(ValueError):
            find(model)


@pytest.mark.parametrize(("axis", "batch_dims", "indices"), [
    (-1, -1, [[0, 2], [1, 1]]), (-1, 0, [2, 0]), (1, 1, [[0], [2]]), (0, 0, [1]),
])  # fmt: skip
def test_gather_units_gathers_as_tf_gather(axis: int, batch_dims: int, indices: list) -> None:
    values = np.arange(24, dtype="float32").reshape(2, 3, 4)[..., 0]
    theirs = seed.gather_units(tf.constant(values), tf.constant(indices), axis, batch_dims)
    ours = inspection.gather_units(values, np.asarray(indices), axis, batch_dims)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), np.asarray(theirs))
    assert inspection.gather_units(values, None) is seed.gather_units(values, None) is values


def test_gather_units_counts_negative_indices_from_the_end() -> None:
    values = np.arange(6, dtype="float32").reshape(2, 3)
    with tf.device("/CPU:0"), pytest.raises(tf.errors.InvalidArgumentError):
        seed.gather_units(tf.constant(values), tf.constant([[-1], [0]]))
    ours = inspection.gather_units(values, np.asarray([[-1], [0]]))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), [[2.0], [3.0]])


def test_recurrent_cells_are_not_listed() -> None:
    inputs = tf_keras.Input((5, 3))
    model = tf_keras.Model(inputs, L.Dense(2, name="post")(L.LSTM(4, name="lstm")(inputs)))
    theirs = seed.layers_with_biases(model, return_biases=False)
    assert [layer.name for layer in theirs] == ["lstm_cell", "post"]  # the LSTM's own cell
    ours = inspection.layers_with_biases(model, return_biases=False)
    assert [layer.name for layer in ours] == ["post"]


def test_a_nested_model_is_never_the_logits_layer_in_either() -> None:
    model = guide_nested(tf_keras)
    outer = tf_keras.Sequential([tf_keras.Input((16, 16, 3)), model])  # the last layer is a model
    assert inspection.get_logits_layer(outer) is seed.get_logits_layer(outer) is model.get_layer("head")


# -- the seed's module constants ---------------------------------------------------------------


@pytest.mark.parametrize(("name", "types", "role"), [
    ("POOLING_LAYERS", POOLING_TYPES, "pooling"),
    ("NORMALIZATION_LAYERS", NORMALIZATION_TYPES, "normalization"),
])  # fmt: skip
def test_deprecated_type_tuples(name: str, types: tuple, role: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"layers_with_role\\(model, '{role}'\\)") as caught:
        value = getattr(inspection, name)
    assert caught[0].filename == __file__  # the warning points at the caller
    assert value == types and isinstance(value, tuple)
    with pytest.warns(DeprecationWarning):
        from keras_inspect.inspection import POOLING_LAYERS  # noqa: F401
    with pytest.raises(AttributeError, match="register_layer"):
        setattr(inspection, name, ())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert getattr(inspection, name) == types  # unchanged by the refused assignment
    assert name not in inspection.__all__
    with pytest.raises(AttributeError):
        getattr(keras_inspect, name)  # not re-exported by the package: deprecated where it was


def test_deprecated_tuples_hold_keras_3_classes() -> None:
    with pytest.warns(DeprecationWarning):
        pooling, normalization = inspection.POOLING_LAYERS, inspection.NORMALIZATION_LAYERS
    assert isinstance(keras.layers.GlobalAveragePooling2D(), pooling)
    assert isinstance(keras.layers.Flatten(), pooling)
    assert isinstance(keras.layers.GroupNormalization(2), normalization)
    assert not isinstance(L.GlobalAveragePooling2D(), pooling)  # tf_keras: ask for the role
    model = tf_keras.Sequential([tf_keras.Input((4, 4, 1)), L.GlobalAveragePooling2D(name="gap")])
    assert keras_inspect.layers_with_role(model, "pooling") == [model.get_layer("gap")]
    for seed_type in seed.POOLING_LAYERS:
        assert seed_type.__module__.startswith("tf_keras")
