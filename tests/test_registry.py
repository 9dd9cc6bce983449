"""register_layer: in-process adapters, resolved along the class's MRO."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
from conftest import CHEAP, randomize_weights, to_numpy
from keras import layers, ops

import keras_inspect
from keras_inspect import new_plugin_manager, register_layer, unregister_layer

pytestmark = pytest.mark.usefixtures("fresh_pm")


class Offset(keras.layers.Layer):
    """Adds a learned vector called ``offset`` (invisible to the generic ``bias`` fallback)."""

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.offset = self.add_weight(
            shape=(input_shape[-1],), initializer="zeros", name="offset"
        )

    def call(self, inputs: Any) -> Any:
        return inputs + self.offset


class DoubleOffset(Offset):
    def call(self, inputs: Any) -> Any:
        return inputs + 2.0 * self.offset


def offset_bias(layer: Offset) -> Any:
    return ops.convert_to_tensor(layer.offset)


def double_offset_bias(layer: DoubleOffset) -> Any:
    return 2.0 * ops.convert_to_tensor(layer.offset)


@pytest.fixture(scope="module")
def offsets_model() -> keras.Model:
    inputs = keras.Input((5,), name="x")
    x = Offset(name="plain")(inputs)
    x = layers.Dense(4, name="dense", **CHEAP)(x)
    x = DoubleOffset(name="double")(x)
    return randomize_weights(keras.Model(inputs, x, name="offsets"))


def _on_zeros(layer: keras.layers.Layer, width: int) -> np.ndarray:
    return to_numpy(layer(np.zeros((1, width), "float32")))[0]


def test_unregistered_custom_layers_add_no_bias(offsets_model: keras.Model) -> None:
    found = keras_inspect.layers_with_biases(offsets_model, return_biases=False)
    assert [layer.name for layer in found] == ["dense"]


def test_register_layer_gives_roles_and_bias(offsets_model: keras.Model, fresh_pm: Any) -> None:
    assert register_layer(Offset, roles=("shifting",), bias=offset_bias) is Offset
    assert "shifting" in fresh_pm.roles()
    plain, double = offsets_model.get_layer("plain"), offsets_model.get_layer("double")

    found, values = keras_inspect.layers_with_biases(offsets_model)
    assert [layer.name for layer in found] == ["plain", "dense", "double"]
    np.testing.assert_allclose(to_numpy(values[0]), _on_zeros(plain, 5), rtol=1e-6)
    # A subclass inherits the registration of its base class...
    np.testing.assert_allclose(to_numpy(values[2]), to_numpy(double.offset), rtol=1e-6)
    assert keras_inspect.find_layer_with(offsets_model, role="shifting") is double
    assert keras_inspect.find_layer_with(offsets_model, role="shifting", search_reversed=False) is plain


def test_subclass_registration_wins(offsets_model: keras.Model, fresh_pm: Any) -> None:
    register_layer(Offset, roles="shifting", bias=offset_bias)
    register_layer(DoubleOffset, roles=["doubling"], bias=double_offset_bias)
    plain, double = offsets_model.get_layer("plain"), offsets_model.get_layer("double")

    values = keras_inspect.biases([plain, double])
    np.testing.assert_allclose(to_numpy(values[0]), _on_zeros(plain, 5), rtol=1e-6)
    np.testing.assert_allclose(to_numpy(values[1]), _on_zeros(double, 4), rtol=1e-6)
    # The most specific record replaces, not merges, the roles of its bases.
    assert fresh_pm.classify(double, "doubling") == (True, "keras_inspect.registry")
    assert fresh_pm.classify(double, "shifting") == (False, None)
    assert fresh_pm.classify(plain, "doubling") == (False, None)
    assert keras_inspect.find_layer_with(offsets_model, role="shifting") is plain

    # Registration order does not matter: the MRO decides.
    pm = new_plugin_manager(entrypoints=False)
    register_layer(DoubleOffset, roles=["doubling"], bias=double_offset_bias, manager=pm)
    register_layer(Offset, roles="shifting", bias=offset_bias, manager=pm)
    assert pm.classify(double, "doubling")[0] and not pm.classify(double, "shifting")[0]


def test_decorator_form(fresh_pm: Any) -> None:
    @register_layer(roles=("pooling",), bias=lambda layer: ops.ones((3,)))
    class SumPool(keras.layers.Layer):
        def call(self, inputs: Any) -> Any:
            return ops.sum(inputs, axis=(1, 2))

    assert isinstance(SumPool, type)  # the decorator returns the class itself
    inputs = keras.Input((4, 4, 3))
    x = SumPool(name="sum_pool")(inputs)
    model = keras.Model(inputs, layers.Dense(2, name="out", **CHEAP)(x))
    assert keras_inspect.get_global_pooling_layer(model).name == "sum_pool"
    found, values = keras_inspect.layers_with_biases(model)
    assert [layer.name for layer in found] == ["sum_pool", "out"]
    np.testing.assert_array_equal(to_numpy(values[0]), np.ones(3))


def test_registering_again_replaces_and_unregister_forgets(
    offsets_model: keras.Model, fresh_pm: Any
) -> None:
    plain = offsets_model.get_layer("plain")
    register_layer(Offset, roles="shifting", bias=offset_bias)
    register_layer(Offset, roles="moving")
    assert fresh_pm.classify(plain, "moving")[0]
    assert not fresh_pm.classify(plain, "shifting")[0]
    assert fresh_pm.layer_bias(plain) == (None, None)

    assert unregister_layer(Offset) is True
    assert unregister_layer(Offset) is False
    assert not fresh_pm.classify(plain, "moving")[0]
    assert "moving" not in fresh_pm.roles()


def test_registration_is_local_to_its_manager(offsets_model: keras.Model, fresh_pm: Any) -> None:
    other = new_plugin_manager(entrypoints=False)
    register_layer(Offset, bias=offset_bias, manager=other)
    plain = offsets_model.get_layer("plain")
    assert other.layer_bias(plain)[0] is not None
    assert fresh_pm.layer_bias(plain) == (None, None)


def test_registry_overrides_builtin_adapters(fresh_pm: Any) -> None:
    """In-process registrations are asked before the built-in adapters."""
    dense = layers.Dense(3, **CHEAP)
    dense.build((None, 2))
    register_layer(layers.Dense, bias=lambda layer: ops.zeros((3,)))
    value, plugin = fresh_pm.layer_bias(dense)
    assert plugin == "keras_inspect.registry"
    np.testing.assert_array_equal(to_numpy(value), np.zeros(3))
    # A registration without that role leaves the question to the built-ins.
    assert fresh_pm.classify(dense, "logits")[0]


@pytest.mark.parametrize(
    ("arguments", "error", "needle"),
    [
        (("Dense",), TypeError, "'Dense'"),
        ((layers.Dense(2),), TypeError, "layer class"),
        ((Offset, {"roles": [3]}), TypeError, "3"),
        ((Offset, {"roles": [""]}), TypeError, "non-empty"),
        ((Offset, {"bias": "offset"}), TypeError, "'offset'"),
    ],
)
def test_register_layer_rejects_bad_arguments(
    arguments: tuple, error: type[Exception], needle: str
) -> None:
    kwargs = arguments[1] if len(arguments) > 1 else {}
    with pytest.raises(error) as caught:
        register_layer(arguments[0], **kwargs)
    assert needle in str(caught.value)
