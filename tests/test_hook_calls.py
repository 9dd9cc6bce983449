"""Hook calls go through pluggy's own caller: monitoring and tracing see them, errors name plugins.

Also: what a hook wrapper (``wrapper=True``) does wrong is attributed to it by name, and a plugin
that raises ``SystemExit`` inside a hook cannot end the process.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any

import keras
import pytest

import keras_inspect as ki
from keras_inspect import PluginError, hookimpl, new_plugin_manager, using_plugin_manager

from _plugins import plugin_error


def _monitored(pm: ki.InspectPluginManager) -> tuple[list[str], Any]:
    seen: list[str] = []

    def before(hook_name: str, hook_impls: Any, kwargs: Any) -> None:
        seen.append(hook_name)

    def after(outcome: Any, hook_name: str, hook_impls: Any, kwargs: Any) -> None:
        pass

    return seen, pm.add_hookcall_monitoring(before, after)


def test_pluggy_monitoring_sees_every_hook_call_of_a_search(cnn: keras.Model) -> None:
    pm = new_plugin_manager(entrypoints=False)
    seen, undo = _monitored(pm)
    try:
        with using_plugin_manager(pm):
            assert ki.find_layer_with(cnn, role="pooling").name == "gap"
            ki.layers_with_biases(cnn)
            ki.expose(cnn)
    finally:
        undo()
    for hook in (
        "keras_inspect_model_flavour",
        "keras_inspect_roles",
        "keras_inspect_search_strategies",
        "keras_inspect_classify_layer",
        "keras_inspect_layer_bias",
    ):
        assert hook in seen, hook
    # Asked again, the search answers from the model's cache: no classification is repeated.
    again, undo = _monitored(pm)
    try:
        with using_plugin_manager(pm):
            assert ki.find_layer_with(cnn, role="pooling").name == "gap"
    finally:
        undo()
    assert "keras_inspect_classify_layer" not in again


def test_pluggy_tracing_writes_the_hook_calls(cnn: keras.Model) -> None:
    pm = new_plugin_manager(entrypoints=False)
    lines: list[str] = []
    pm.trace.root.setwriter(lines.append)
    undo = pm.enable_tracing()
    try:
        with using_plugin_manager(pm):
            ki.get_logits_layer(cnn)
    finally:
        undo()
    assert any("keras_inspect_classify_layer" in line for line in lines)


def test_answers_name_the_plugin_that_gave_them(cnn: keras.Model) -> None:
    pm = new_plugin_manager(entrypoints=False)
    gap = cnn.get_layer("gap")
    assert pm.classify(gap, "pooling") == (True, "keras_inspect.adapters.pooling")
    assert pm.layer_bias(cnn.get_layer("logits"))[1] == "keras_inspect.adapters.linear"
    assert pm.classify(gap, "logits") == (False, "keras_inspect.adapters.fallback")


class RaisingWrapper:
    @hookimpl(wrapper=True)
    def keras_inspect_classify_layer(self, layer: Any, role: str) -> Generator[None, Any, Any]:
        yield
        raise ZeroDivisionError("the wrapper's own bug")


class ReplacingWrapper:
    @hookimpl(wrapper=True)
    def keras_inspect_classify_layer(self, layer: Any, role: str) -> Generator[None, Any, Any]:
        yield
        return "maybe"


class ExitingHook:
    @hookimpl(tryfirst=True)
    def keras_inspect_layer_bias(self, layer: Any) -> Any:
        raise SystemExit(3)


def test_a_raising_hook_wrapper_is_named(cnn: keras.Model) -> None:
    error = plugin_error(RaisingWrapper(), "raising-wrapper", lambda: ki.get_logits_layer(cnn))
    message = str(error)
    assert "'raising-wrapper'" in message and "hook wrapper" in message
    assert "keras_inspect_classify_layer" in message and "the wrapper's own bug" in message
    assert isinstance(error.__cause__, ZeroDivisionError)


def test_a_hook_wrapper_that_replaces_the_answer_is_named(cnn: keras.Model) -> None:
    error = plugin_error(ReplacingWrapper(), "replacing-wrapper", lambda: ki.get_logits_layer(cnn))
    message = str(error)
    assert "'replacing-wrapper'" in message and "'maybe'" in message
    assert "None" not in message.split("returned")[0]


def test_system_exit_in_a_hook_becomes_a_plugin_error(cnn: keras.Model) -> None:
    error = plugin_error(ExitingHook(), "exiting-plugin", lambda: ki.layers_with_biases(cnn))
    message = str(error)
    assert "'exiting-plugin'" in message and "SystemExit" in message
    assert "keras_inspect_layer_bias" in message
    assert isinstance(error.__cause__, SystemExit)


def test_registering_layer_types_while_searching_by_role(cnn: keras.Model) -> None:
    """The registry's hooks read an immutable snapshot: no "changed size during iteration"."""
    pm = new_plugin_manager(entrypoints=False)
    kinds = [type(f"Kind{i}", (keras.layers.Layer,), {}) for i in range(40)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def search() -> None:
        with using_plugin_manager(pm):
            while not stop.is_set():
                try:
                    assert ki.find_layer_with(cnn, role="pooling").name == "gap"
                    assert ki.layers_with_role(cnn, "normalization") == [cnn.get_layer("bn1")]
                except BaseException as error:  # noqa: BLE001 - reported below
                    errors.append(error)
                    return

    threads = [threading.Thread(target=search) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for round_ in range(5):
            for i, kind in enumerate(kinds):
                ki.register_layer(kind, roles=[f"role_{round_}_{i}"], manager=pm)
            for kind in kinds:
                ki.unregister_layer(kind, manager=pm)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []


def test_registration_drops_every_cache_of_the_manager(cnn: keras.Model) -> None:
    pm = new_plugin_manager(entrypoints=False)
    with using_plugin_manager(pm):
        assert ki.layers_with_role(cnn, "pooling") == [cnn.get_layer("gap")]
        before = pm.state
        ki.register_layer(keras.layers.Activation, roles=["pooling"], manager=pm)
        assert pm.state is not before
        assert ki.layers_with_role(cnn, "pooling") == [cnn.get_layer("relu1"), cnn.get_layer("gap")]
        ki.unregister_layer(keras.layers.Activation, manager=pm)
        assert ki.layers_with_role(cnn, "pooling") == [cnn.get_layer("gap")]
