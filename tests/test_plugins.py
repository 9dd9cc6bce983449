"""Plugins: a real entry-point plugin, overriding built-ins, plugin strategies, broken plugins."""

from __future__ import annotations

import importlib.metadata
import sys
import types
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from conftest import (
    CHEAP,
    PLUGIN_DISTRIBUTION,
    PLUGIN_ENTRY_POINT,
    randomize_weights,
    to_numpy,
)
from keras import layers

import keras_inspect
from keras_inspect import (
    PluginError,
    hookimpl,
    new_plugin_manager,
    plugin_manager,
    reset_plugin_manager,
    using_plugin_manager,
)
from keras_inspect.hooks.loading import DISABLE_AUTOLOAD_ENV, STRICT_PLUGINS_ENV


def build_shift_model(shift_type: type) -> keras.Model:
    inputs = keras.Input((8, 8, 3), name="image")
    x = layers.Conv2D(4, 3, name="zeta_conv", **CHEAP)(inputs)
    x = shift_type(name="shift")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(6, name="beta_dense", **CHEAP)(x)
    outputs = layers.Dense(3, name="gamma_dense", **CHEAP)(x)
    return randomize_weights(keras.Model(inputs, outputs, name="shifted"))


# -- a real entry point ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shift_model(test_plugin: types.ModuleType) -> keras.Model:
    return build_shift_model(test_plugin.ChannelShift)


def test_test_plugin_is_a_distribution_installed_out_of_the_way(
    test_plugin: types.ModuleType, test_plugin_site: Path
) -> None:
    dist = importlib.metadata.distribution(PLUGIN_DISTRIBUTION)
    [entry_point] = [e for e in dist.entry_points if e.group == "keras_inspect"]
    assert entry_point.name == PLUGIN_ENTRY_POINT
    assert entry_point.load() is test_plugin
    # Found in the fixture's temporary directory, ahead of any copy installed in the environment.
    assert Path(dist.locate_file("")).resolve() == test_plugin_site.resolve()


def test_fresh_manager_loads_the_entry_point(
    test_plugin: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    pm = new_plugin_manager()
    assert pm.get_plugin(PLUGIN_ENTRY_POINT) is test_plugin
    info = next(i for i in pm.plugin_infos() if i.name == PLUGIN_ENTRY_POINT)
    assert info.distribution == PLUGIN_DISTRIBUTION
    assert info.version == importlib.metadata.version(PLUGIN_DISTRIBUTION)
    assert not info.builtin
    assert "keras_inspect_layer_bias" in info.hooks
    # Built-ins are registered before it, so they appear first.
    names = [i.name for i in pm.plugin_infos()]
    assert names.index("keras_inspect.adapters.linear") < names.index(PLUGIN_ENTRY_POINT)


def test_entry_point_plugin_roles_bias_and_strategy_are_used(
    test_plugin: types.ModuleType, shift_model: keras.Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    shift = shift_model.get_layer("shift")
    with using_plugin_manager(new_plugin_manager()) as pm:
        assert test_plugin.ROLE in pm.roles()
        assert pm.classify(shift, test_plugin.ROLE) == (True, PLUGIN_ENTRY_POINT)
        assert keras_inspect.find_layer_with(shift_model, role=test_plugin.ROLE) is shift
        assert keras_inspect.find_layer_with(shift_model, role="normalization") is shift

        found, values = keras_inspect.layers_with_biases(shift_model)
        assert [layer.name for layer in found] == ["zeta_conv", "shift", "beta_dense", "gamma_dense"]
        # The constant a ChannelShift adds is its output on zeros.
        on_zeros = to_numpy(shift(np.zeros((1, 2, 2, 4), "float32")))
        np.testing.assert_allclose(
            np.broadcast_to(to_numpy(values[1]), on_zeros.shape), on_zeros, rtol=1e-6
        )

        assert test_plugin.STRATEGY in pm.strategies()
        # Layers with a kernel: zeta_conv first in graph order, gamma_dense last, beta_dense
        # first by name; only the plugin's strategy picks beta_dense.
        any_kernel = keras_inspect.find_layer_with(
            shift_model, properties=["kernel"], strategy=test_plugin.STRATEGY
        )
        assert any_kernel.name == "beta_dense"
        assert keras_inspect.find_layer_with(shift_model, properties=["kernel"]).name == "gamma_dense"
        forward = keras_inspect.find_layer_with(shift_model, properties=["kernel"], strategy="forward")
        assert forward.name == "zeta_conv"


def test_without_the_plugin_the_custom_layer_is_unknown(
    test_plugin: types.ModuleType, shift_model: keras.Model, fresh_pm: Any
) -> None:
    assert fresh_pm.get_plugin(PLUGIN_ENTRY_POINT) is None
    found = keras_inspect.layers_with_biases(shift_model, return_biases=False)
    assert "shift" not in [layer.name for layer in found]
    with pytest.raises(ValueError, match="affine"):
        keras_inspect.find_layer_with(shift_model, role=test_plugin.ROLE)


@pytest.mark.parametrize("value", ["1", "true"])
def test_disable_autoload_skips_entry_points(
    test_plugin: types.ModuleType, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, value)
    pm = new_plugin_manager()
    assert pm.get_plugin(PLUGIN_ENTRY_POINT) is None
    assert test_plugin.ROLE not in pm.roles()
    assert test_plugin.STRATEGY not in pm.strategies()
    # Built-ins are still there.
    assert {"reverse", "forward"} <= set(pm.strategies())
    # Asking explicitly still loads entry points.
    assert new_plugin_manager(entrypoints=True).get_plugin(PLUGIN_ENTRY_POINT) is test_plugin


def test_default_manager_is_shared_lazy_and_resettable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    reset_plugin_manager()
    try:
        first = plugin_manager()
        assert plugin_manager() is first
        fresh = new_plugin_manager(entrypoints=False)
        with using_plugin_manager(fresh):
            assert plugin_manager() is fresh
        assert plugin_manager() is first
        reset_plugin_manager()
        assert plugin_manager() is not first
    finally:
        reset_plugin_manager()


def test_manager_without_builtins_knows_no_roles() -> None:
    pm = new_plugin_manager(builtins=False, entrypoints=False)
    assert pm.roles() == frozenset()
    assert pm.strategies() == {}
    assert pm.classify(layers.Dense(2), "logits") == (False, None)


# -- overriding built-ins and adding strategies in process ----------------------------------


class DenseIsNotLogits:
    """Declares that no Dense layer produces logits, before any other plugin is asked."""

    @hookimpl(tryfirst=True)
    def keras_inspect_classify_layer(self, layer: Any, role: str) -> bool | None:
        if role == "logits" and isinstance(layer, layers.Dense):
            return False
        return None


def test_tryfirst_plugin_overrides_a_builtin(cnn: keras.Model, fresh_pm: Any) -> None:
    assert keras_inspect.get_logits_layer(cnn).name == "logits"
    fresh_pm.register(DenseIsNotLogits(), name="dense-is-not-logits")
    assert fresh_pm.classify(cnn.get_layer("logits"), "logits") == (False, "dense-is-not-logits")
    # The next layer with a kernel, going backwards in graph order.
    assert keras_inspect.get_logits_layer(cnn).name == "conv2"
    # Naming the layer still bypasses the search.
    assert keras_inspect.get_logits_layer(cnn, "logits").name == "logits"


def test_tryfirst_beats_a_later_registered_plugin(cnn: keras.Model, fresh_pm: Any) -> None:
    class DenseIsLogits:
        @hookimpl
        def keras_inspect_classify_layer(self, layer: Any, role: str) -> bool | None:
            return True if role == "logits" and isinstance(layer, layers.Dense) else None

    fresh_pm.register(DenseIsNotLogits(), name="no")
    fresh_pm.register(DenseIsLogits(), name="yes")  # registered later, but not tryfirst
    assert fresh_pm.classify(cnn.get_layer("logits"), "logits") == (False, "no")


def test_plugin_bias_overrides_builtin_bias(cnn: keras.Model, fresh_pm: Any) -> None:
    class Doubled:
        @hookimpl
        def keras_inspect_layer_bias(self, layer: Any) -> Any | None:
            if isinstance(layer, layers.Dense):
                return keras.ops.convert_to_tensor(layer.bias) * 2.0
            return None

    dense = cnn.get_layer("logits")
    fresh_pm.register(Doubled(), name="doubled")
    value, plugin = fresh_pm.layer_bias(dense)
    assert plugin == "doubled"
    np.testing.assert_allclose(to_numpy(value), 2.0 * to_numpy(dense.bias))


def test_plugin_supplied_strategy(nested: keras.Model, fresh_pm: Any) -> None:
    """A strategy that visits only the top-level layers (ignores nested models' insides)."""

    class TopLevelOnly:
        @hookimpl
        def keras_inspect_search_strategies(self) -> dict[str, Any]:
            return {"top_level": lambda model: list(reversed(model.layers))}

    fresh_pm.register(TopLevelOnly(), name="top-level")
    assert "top_level" in fresh_pm.strategies()
    assert keras_inspect.find_layer_with(nested, klass=keras.Model).name == "backbone"
    conv = keras_inspect.find_layer_with(nested, klass=layers.Conv2D)
    assert conv.name == "b_conv2"  # found inside the backbone by the default strategy
    with pytest.raises(ValueError, match="top_level"):
        keras_inspect.find_layer_with(nested, klass=layers.Conv2D, strategy="top_level")
    assert (
        keras_inspect.find_layer_with(nested, properties=["kernel"], strategy="top_level").name
        == "predictions"
    )


def test_later_plugin_wins_a_strategy_name_clash(cnn: keras.Model, fresh_pm: Any) -> None:
    class ForwardIsReverse:
        @hookimpl
        def keras_inspect_search_strategies(self) -> dict[str, Any]:
            return {"forward": lambda model: reversed([e.layer for e in keras_inspect.walk(model)])}

    fresh_pm.register(ForwardIsReverse(), name="swap")
    found = keras_inspect.find_layer_with(cnn, klass=layers.Conv2D, search_reversed=False)
    assert found.name == "conv2"


def test_failing_strategy_is_named(cnn: keras.Model, fresh_pm: Any) -> None:
    class Broken:
        @hookimpl
        def keras_inspect_search_strategies(self) -> dict[str, Any]:
            def explode(model: Any) -> Any:
                raise RuntimeError("boom")

            return {"broken": explode}

    fresh_pm.register(Broken(), name="broken-strategy")
    with pytest.raises(ValueError, match="'broken'.*boom"):
        keras_inspect.find_layer_with(cnn, klass=layers.Dense, strategy="broken")


# -- broken plugins ----------------------------------------------------------------------------


class Raising:
    @hookimpl
    def keras_inspect_classify_layer(self, layer: Any, role: str) -> bool | None:
        raise ZeroDivisionError("the plugin's own bug")

    @hookimpl
    def keras_inspect_layer_bias(self, layer: Any) -> Any | None:
        raise KeyError("missing")


def test_raising_plugin_is_named_with_its_hook(cnn: keras.Model, fresh_pm: Any) -> None:
    fresh_pm.register(Raising(), name="raising-plugin")
    with pytest.raises(PluginError) as caught:
        keras_inspect.get_logits_layer(cnn)
    message = str(caught.value)
    assert "raising-plugin" in message
    assert "keras_inspect_classify_layer" in message
    assert "ZeroDivisionError" in message and "the plugin's own bug" in message
    assert isinstance(caught.value.__cause__, ZeroDivisionError)

    with pytest.raises(PluginError, match="raising-plugin.*KeyError.*keras_inspect_layer_bias"):
        keras_inspect.layers_with_biases(cnn)


@pytest.mark.parametrize("bad_bias", ["bias", 3.0, [1.0, 2.0], np.array(["a", "b"])])
def test_plugin_returning_a_non_tensor_bias(cnn: keras.Model, fresh_pm: Any, bad_bias: Any) -> None:
    class WrongBias:
        @hookimpl
        def keras_inspect_layer_bias(self, layer: Any) -> Any:
            return bad_bias

    fresh_pm.register(WrongBias(), name="wrong-bias")
    with pytest.raises(PluginError, match="wrong-bias.*keras_inspect_layer_bias.*tensor"):
        keras_inspect.biases([cnn.get_layer("conv1")])


@pytest.mark.parametrize("bad_answer", ["yes", 1, [True]])
def test_plugin_returning_a_non_bool_classification(
    cnn: keras.Model, fresh_pm: Any, bad_answer: Any
) -> None:
    class WrongAnswer:
        @hookimpl
        def keras_inspect_classify_layer(self, layer: Any, role: str) -> Any:
            return bad_answer

    fresh_pm.register(WrongAnswer(), name="wrong-answer")
    with pytest.raises(PluginError, match="wrong-answer.*keras_inspect_classify_layer"):
        keras_inspect.find_layer_with(cnn, role="pooling")


def test_plugin_returning_bad_strategies_or_roles(fresh_pm: Any) -> None:
    class BadStrategies:
        @hookimpl
        def keras_inspect_search_strategies(self) -> Any:
            return ["reverse"]

    class BadRoles:
        @hookimpl
        def keras_inspect_roles(self) -> Any:
            return "logits"

    fresh_pm.register(BadStrategies(), name="bad-strategies")
    with pytest.raises(PluginError, match="bad-strategies"):
        fresh_pm.strategies()
    fresh_pm.register(BadRoles(), name="bad-roles")
    with pytest.raises(PluginError, match="bad-roles"):
        fresh_pm.roles()


class Misspelled:
    @hookimpl
    def keras_inspect_clasify_layer(self, layer: Any, role: str) -> bool | None:
        return None


def test_misspelled_hook_fails_the_check(fresh_pm: Any) -> None:
    fresh_pm.register(Misspelled(), name="misspelled")
    with pytest.raises(PluginError) as caught:
        fresh_pm.check()
    message = str(caught.value)
    assert "keras_inspect_clasify_layer" in message
    assert "Misspelled" in message or "misspelled" in message


# -- entry points that fail to load ------------------------------------------------------------


class _FakeDistribution:
    """Stands in for an installed distribution that declares one ``keras_inspect`` entry point."""

    def __init__(self, name: str, module: str) -> None:
        self.metadata = {"Name": name}
        self.version = "9.9"
        self.entry_points = [
            importlib.metadata.EntryPoint(name=name, value=module, group="keras_inspect")
        ]


def _fake_entry_points(
    monkeypatch: pytest.MonkeyPatch, name: str, plugin: object | None
) -> None:
    module_name = f"_keras_inspect_fake_{name.replace('-', '_')}"
    if plugin is not None:
        monkeypatch.setitem(sys.modules, module_name, plugin)
    monkeypatch.setattr(
        importlib.metadata, "distributions", lambda: [_FakeDistribution(name, module_name)]
    )


def _module_with(**hooks: Any) -> types.ModuleType:
    module = types.ModuleType("fake_plugin")
    for key, value in hooks.items():
        setattr(module, key, value)
    return module


@hookimpl
def _keras_inspect_layer_bais(layer: Any) -> Any:
    return None


def test_entry_point_with_misspelled_hook_warns_and_is_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugin = _module_with(keras_inspect_layer_bais=_keras_inspect_layer_bais)
    _fake_entry_points(monkeypatch, "keras-inspect-typo", plugin)
    monkeypatch.delenv(STRICT_PLUGINS_ENV, raising=False)
    with pytest.warns(RuntimeWarning, match="keras-inspect-typo.*keras_inspect_layer_bais"):
        pm = new_plugin_manager(entrypoints=True)
    assert pm.get_plugin("keras-inspect-typo") is None
    [failure] = [i for i in pm.plugin_infos() if i.error]
    assert failure.name == "keras-inspect-typo" and failure.version == "9.9"
    assert "keras_inspect_layer_bias" in failure.error  # the close match


def test_entry_point_with_misspelled_hook_raises_when_strict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plugin = _module_with(keras_inspect_layer_bais=_keras_inspect_layer_bais)
    _fake_entry_points(monkeypatch, "keras-inspect-typo", plugin)
    with pytest.raises(PluginError, match="keras-inspect-typo.*keras_inspect_layer_bais"):
        new_plugin_manager(entrypoints=True, strict=True)
    monkeypatch.setenv(STRICT_PLUGINS_ENV, "1")
    with pytest.raises(PluginError, match="keras-inspect-typo"):
        new_plugin_manager(entrypoints=True)


def test_entry_point_that_cannot_be_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_entry_points(monkeypatch, "keras-inspect-missing", None)
    with pytest.warns(RuntimeWarning, match="keras-inspect-missing.*could not be imported"):
        pm = new_plugin_manager(entrypoints=True, strict=False)
    assert [i.name for i in pm.plugin_infos() if i.error] == ["keras-inspect-missing"]
    with pytest.raises(PluginError, match="keras-inspect-missing.*ModuleNotFoundError"):
        new_plugin_manager(entrypoints=True, strict=True)


def test_entry_point_plugin_is_used_after_loading(
    monkeypatch: pytest.MonkeyPatch, cnn: keras.Model
) -> None:
    @hookimpl
    def keras_inspect_classify_layer(layer: Any, role: str) -> bool | None:
        return True if role == "pooling" and layer.name == "relu1" else None

    plugin = _module_with(keras_inspect_classify_layer=keras_inspect_classify_layer)
    _fake_entry_points(monkeypatch, "keras-inspect-relu-pool", plugin)
    with using_plugin_manager(new_plugin_manager(entrypoints=True, strict=True)) as pm:
        assert pm.distributions["keras-inspect-relu-pool"] == ("keras-inspect-relu-pool", "9.9")
        # gap comes after relu1, so the reverse search still finds gap first...
        assert keras_inspect.get_global_pooling_layer(cnn).name == "gap"
        # ...and the forward one finds relu1.
        found = keras_inspect.find_layer_with(cnn, role="pooling", search_reversed=False)
        assert found.name == "relu1"
