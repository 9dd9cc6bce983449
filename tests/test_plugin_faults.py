"""Plugin faults: broken entry points among good ones, strict mode, raising hooks, wrong answers.

Entry points are faked by replacing ``importlib.metadata.distributions`` (what the manager reads)
with distributions whose entry points name real modules written to a temporary directory, so an
import error is a real one raised while importing.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import pytest

import keras_inspect
from keras_inspect import PluginError, hookimpl, new_plugin_manager, using_plugin_manager
from keras_inspect.hooks.loading import STRICT_PLUGINS_ENV

from _plugins import plugin_error

GOOD = """
from keras_inspect import hookimpl

@hookimpl
def keras_inspect_roles():
    return ("{role}",)
"""
BROKEN_IMPORT = """
raise RuntimeError("this plugin's import is broken")
"""
MISSING_DEPENDENCY = """
import a_dependency_that_is_not_installed_anywhere
"""
MISSPELLED = """
from keras_inspect import hookimpl

@hookimpl
def keras_inspect_clasify_layer(layer, role):
    return None
"""


class FakeDistribution:
    """An installed distribution as ``importlib.metadata`` describes it, one entry point."""

    def __init__(self, dist_name: str, entry_name: str, module: str) -> None:
        self.metadata = {"Name": dist_name}
        self.version = "1.2.3"
        self.entry_points = [
            importlib.metadata.EntryPoint(name=entry_name, value=module, group="keras_inspect")
        ]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Fake-install plugin distributions: ``install(("dist", "entry", source), ...)``."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(STRICT_PLUGINS_ENV, raising=False)

    def setup(*plugins: tuple[str, str, str]) -> None:
        dists = []
        for dist_name, entry_name, source in plugins:
            module = f"fake_{tmp_path.name}_{entry_name}".replace("-", "_")
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
            monkeypatch.delitem(sys.modules, module, raising=False)
            dists.append(FakeDistribution(dist_name, entry_name, module))
        importlib.invalidate_caches()
        monkeypatch.setattr(importlib.metadata, "distributions", lambda: list(dists))

    return setup


def three_plugins(install: Callable[..., None]) -> None:
    install(
        ("keras-inspect-first", "first", GOOD.format(role="first_role")),
        ("keras-inspect-broken", "broken", BROKEN_IMPORT),
        ("keras-inspect-needs-dep", "needs-dep", MISSING_DEPENDENCY),
        ("keras-inspect-typo", "typo", MISSPELLED),
        ("keras-inspect-last", "last", GOOD.format(role="last_role")),
    )


def test_broken_entry_points_are_reported_by_distribution_and_others_load(
    install: Callable[..., None],
) -> None:
    three_plugins(install)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pm = new_plugin_manager(entrypoints=True)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    for dist, what in (
        ("keras-inspect-broken", "RuntimeError: this plugin's import is broken"),
        ("keras-inspect-needs-dep", "a_dependency_that_is_not_installed_anywhere"),
        ("keras-inspect-typo", "keras_inspect_clasify_layer"),
    ):
        assert any(dist in m and what in m for m in messages), (dist, messages)
    # The plugins before and after the broken ones are loaded and answer.
    assert {"first_role", "last_role"} <= pm.roles()
    failed = {info.distribution: info for info in pm.plugin_infos() if info.error}
    assert set(failed) == {"keras-inspect-broken", "keras-inspect-needs-dep", "keras-inspect-typo"}
    assert all(info.version == "1.2.3" for info in failed.values())
    assert pm.get_plugin("broken") is None and pm.get_plugin("typo") is None


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_strict_mode_fails_on_the_first_broken_plugin(
    install: Callable[..., None], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    three_plugins(install)
    monkeypatch.setenv(STRICT_PLUGINS_ENV, value)
    with pytest.raises(PluginError, match="keras-inspect-broken.*could not be imported") as caught:
        new_plugin_manager(entrypoints=True)
    assert STRICT_PLUGINS_ENV in str(caught.value)
    assert isinstance(caught.value.__cause__, RuntimeError)


@pytest.mark.parametrize("value", ["0", "", "false", "no"])
def test_strict_mode_off_values_warn_instead(
    install: Callable[..., None], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    install(("keras-inspect-broken", "broken", BROKEN_IMPORT))
    monkeypatch.setenv(STRICT_PLUGINS_ENV, value)
    with pytest.warns(RuntimeWarning, match="keras-inspect-broken"):
        new_plugin_manager(entrypoints=True)


# -- hooks that raise -------------------------------------------------------------------------


class Raises:
    """Raises from one hook, given by name."""

    def __init__(self, hook: str) -> None:
        self.hook = hook

    def _maybe(self, name: str) -> None:
        if name == self.hook:
            raise ArithmeticError(f"bug in {name}")

    @hookimpl(tryfirst=True)
    def keras_inspect_classify_layer(self, layer: Any, role: str) -> Any:
        self._maybe("keras_inspect_classify_layer")

    @hookimpl(tryfirst=True)
    def keras_inspect_layer_bias(self, layer: Any) -> Any:
        self._maybe("keras_inspect_layer_bias")

    @hookimpl
    def keras_inspect_search_strategies(self) -> Any:
        self._maybe("keras_inspect_search_strategies")

    @hookimpl
    def keras_inspect_roles(self) -> Any:
        self._maybe("keras_inspect_roles")

    @hookimpl(tryfirst=True)
    def keras_inspect_model_flavour(self, model: Any) -> Any:
        self._maybe("keras_inspect_model_flavour")


HOOK_CALLS: dict[str, Callable[[keras.Model], Any]] = {
    "keras_inspect_classify_layer": lambda m: keras_inspect.find_layer_with(m, klass=object, role="pooling"),
    "keras_inspect_layer_bias": lambda m: keras_inspect.layers_with_biases(m),
    "keras_inspect_search_strategies": lambda m: keras_inspect.get_logits_layer(m),
    "keras_inspect_roles": lambda m: keras_inspect.get_global_pooling_layer(m),
    "keras_inspect_model_flavour": lambda m: keras_inspect.walk(m),
}


@pytest.mark.parametrize("hook", sorted(HOOK_CALLS))
def test_a_raising_hook_is_named_with_its_plugin(cnn: keras.Model, hook: str) -> None:
    pm = new_plugin_manager(entrypoints=False)
    pm.register(Raises(hook), name="raises-sometimes")
    with using_plugin_manager(pm), pytest.raises(PluginError) as caught:
        HOOK_CALLS[hook](cnn)
    message = str(caught.value)
    assert "'raises-sometimes'" in message and hook in message and f"bug in {hook}" in message
    assert isinstance(caught.value.__cause__, ArithmeticError)
    # Unregistered, everything works again: nothing stale was cached.
    pm.unregister(name="raises-sometimes")
    with using_plugin_manager(pm):
        HOOK_CALLS[hook](cnn)


def test_a_strategy_that_fails_midway_is_named(cnn: keras.Model) -> None:
    class Midway:
        @hookimpl
        def keras_inspect_search_strategies(self) -> dict[str, Any]:
            def two_then_fail(model: Any) -> Any:
                yield from model.layers[:2]
                raise LookupError("lost my place")

            return {"midway": two_then_fail}

    pm = new_plugin_manager(entrypoints=False)
    pm.register(Midway(), name="midway-plugin")
    with using_plugin_manager(pm), pytest.raises(ValueError, match="'midway'.*LookupError.*lost my place"):
        keras_inspect.find_layer_with(cnn, role="pooling", strategy="midway")


# -- wrong answers ----------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["keras3", 42, object(), keras])
def test_a_flavour_that_is_not_an_adapter_is_rejected(cnn: keras.Model, answer: Any) -> None:
    class WrongFlavour:
        @hookimpl(tryfirst=True)
        def keras_inspect_model_flavour(self, model: Any) -> Any:
            return answer

    message = str(
        plugin_error(WrongFlavour(), "wrong-flavour", lambda: keras_inspect.get_logits_layer(cnn))
    )
    assert "'wrong-flavour'" in message and "keras_inspect_model_flavour" in message
    assert "is_layer" in message


@pytest.mark.parametrize(
    "answer, call",
    [
        ("a string", "bias"), (b"bytes", "bias"), ({"bias": 1.0}, "bias"), ([0.0, 1.0], "bias"),
        ("yes", "classify"), (1, "classify"), (None, "ok"),
    ],
)  # fmt: skip
def test_wrong_answer_types_are_rejected_with_the_plugin_name(
    cnn: keras.Model, answer: Any, call: str
) -> None:
    class Wrong:
        @hookimpl(tryfirst=True)
        def keras_inspect_layer_bias(self, layer: Any) -> Any:
            return answer

        @hookimpl(tryfirst=True)
        def keras_inspect_classify_layer(self, layer: Any, role: str) -> Any:
            return answer

    pm = new_plugin_manager(entrypoints=False)
    pm.register(Wrong(), name="wrong-types")
    with using_plugin_manager(pm):
        if call == "ok":
            assert keras_inspect.get_logits_layer(cnn).name == "logits"
            return
        hook = "keras_inspect_layer_bias" if call == "bias" else "keras_inspect_classify_layer"
        with pytest.raises(PluginError, match=f"'wrong-types'.*{hook}"):
            if call == "bias":
                keras_inspect.layers_with_biases(cnn)
            else:
                keras_inspect.get_logits_layer(cnn)


# -- misspelled hooks -------------------------------------------------------------------------


def test_check_pending_catches_a_misspelled_hook_registered_in_process() -> None:
    class Typo:
        @hookimpl
        def keras_inspect_layer_bais(self, layer: Any) -> Any:
            return None

        @hookimpl
        def keras_inspect_roles(self) -> Any:
            return ("fine",)

    pm = new_plugin_manager(entrypoints=False)
    pm.register(Typo(), name="typo-plugin")
    with pytest.raises(PluginError, match="keras_inspect_layer_bais"):
        pm.check()
    pm.unregister(name="typo-plugin")
    pm.check()


def test_a_misspelled_hook_in_an_entry_point_is_skipped_with_a_close_match(
    install: Callable[..., None],
) -> None:
    install(("keras-inspect-typo", "typo", MISSPELLED))
    with pytest.warns(RuntimeWarning, match="keras-inspect-typo.*keras_inspect_clasify_layer") as w:
        pm = new_plugin_manager(entrypoints=True)
    assert any("keras_inspect_classify_layer" in str(item.message) for item in w)
    pm.check()  # the manager itself is consistent: the bad plugin is not registered
