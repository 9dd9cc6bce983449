"""layers_with_role: every layer playing a role, in graph order, remembered until something changes."""

from __future__ import annotations

from typing import Any

import keras
import pytest
from conftest import IMAGE_SHAPE, build_nested
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import layers

import keras_inspect as ki

pytestmark = pytest.mark.usefixtures("fresh_pm")


def _by_classify(model: keras.Model, role: str) -> list[Any]:
    pm = ki.plugin_manager()
    return [e.layer for e in ki.walk(model) if pm.classify(e.layer, role)[0]]


@pytest.mark.parametrize("role", ["normalization", "pooling", "logits", "feature_map"])
def test_agrees_with_classifying_each_layer_of_the_walk(role: str) -> None:
    model = build_nested()
    assert ki.layers_with_role(model, role) == _by_classify(model, role)


def test_nested_layers_in_graph_order() -> None:
    model = build_nested()
    [bn] = ki.layers_with_role(model, "normalization")
    assert bn is ki.get_nested_layer(model, "backbone/b_bn")
    pooling = ki.layers_with_role(model, "pooling")
    assert pooling[-1] is ki.get_global_pooling_layer(model)


def test_the_answer_is_a_fresh_list_each_time() -> None:
    model = build_nested()
    first = ki.layers_with_role(model, "normalization")
    first.clear()
    assert len(ki.layers_with_role(model, "normalization")) == 1


class Scale(layers.Layer):
    def call(self, inputs: Any) -> Any:
        return inputs * 2.0


def test_a_registration_is_seen_at_once() -> None:
    inputs = keras.Input((3,))
    model = keras.Model(inputs, layers.Dense(2)(Scale(name="scale")(inputs)))
    assert ki.layers_with_role(model, "normalization") == []
    ki.register_layer(Scale, roles=("normalization",))
    assert [layer.name for layer in ki.layers_with_role(model, "normalization")] == ["scale"]
    ki.unregister_layer(Scale)
    assert ki.layers_with_role(model, "normalization") == []


def test_a_changed_model_is_seen_at_once() -> None:
    model = keras.Sequential([keras.Input(IMAGE_SHAPE), layers.Conv2D(2, 3)])
    assert ki.layers_with_role(model, "normalization") == []
    model.add(layers.BatchNormalization(name="late_bn"))
    assert [layer.name for layer in ki.layers_with_role(model, "normalization")] == ["late_bn"]
    model.pop()
    assert ki.layers_with_role(model, "normalization") == []


def test_bad_roles_and_models() -> None:
    model = build_nested()
    with pytest.raises(ValueError, match="normalization"):
        ki.layers_with_role(model, "normalisation")
    with pytest.raises(TypeError, match="role must be a string"):
        ki.layers_with_role(model, ["normalization"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected a Keras model"):
        ki.layers_with_role("model", "normalization")


@settings(max_examples=60, deadline=None)
@given(role=st.one_of(st.text(max_size=12), st.integers(), st.none(), st.just("pooling")))
def test_any_role_value_gives_layers_or_a_clean_error(role: Any) -> None:
    model = _SHARED
    try:
        found = ki.layers_with_role(model, role)
    except (TypeError, ValueError) as error:
        assert repr(role) in str(error) or str(role) in str(error)
    else:
        assert found == _by_classify(model, role)


_SHARED = build_nested()
