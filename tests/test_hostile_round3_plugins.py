"""Round three, plugins: endless iterables, BaseExceptions, wrappers that never yield, fake
tensors, and every error a plugin causes reported as keras-inspect's own, naming the plugin."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import keras_inspect as ki
from _plugins import plugin_error
from keras_inspect import PluginError, hookimpl
from test_plugin_loading import _distribution, _run

HANG = 60  # seconds; an endless iterable that is not bounded shows as a timeout


def finishes(call: Callable[[], Any]) -> BaseException | None:
    """What ``call`` raised (``None`` if nothing), failing the test if it runs for ever."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG)
    assert outcome, f"still running after {HANG} s: an endless iterable was not bounded"
    return outcome[0]


def fault(plugin: object, name: str, call: Callable[[], Any]) -> PluginError:
    pm = ki.new_plugin_manager(entrypoints=False)
    pm.register(plugin, name=name)

    def within() -> None:
        with ki.using_plugin_manager(pm):
            call()

    error = finishes(within)
    assert isinstance(error, PluginError), repr(error)
    assert "plugin plugin" not in str(error).lower()
    return error


# -- endless iterables --------------------------------------------------------------------------


class EndlessRoles:
    @hookimpl
    def keras_inspect_roles(self) -> Any:
        return itertools.cycle(["logits", "odd"])


class EndlessStrategy:
    @hookimpl
    def keras_inspect_search_strategies(self) -> Any:
        def same_layer_for_ever(model: Any) -> Any:
            return itertools.repeat(model.layers[0])

        return {"for_ever": same_layer_for_ever}


class EndlessStrategyTable:
    @hookimpl
    def keras_inspect_search_strategies(self) -> Any:
        class Table(dict):
            def items(self) -> Any:
                # The same entry for ever: endless, without growing (the test must be safe to
                # run against code that does not bound it).
                return (("again", len) for _ in itertools.count())

        return Table(x=len)


def test_an_endless_roles_iterable_is_refused(cnn: keras.Model) -> None:
    message = str(fault(EndlessRoles(), "endless-roles", lambda: ki.get_logits_layer(cnn)))
    assert "'endless-roles'" in message and "keras_inspect_roles" in message
    assert "more than" in message


def test_a_strategy_that_yields_for_ever_is_refused(cnn: keras.Model) -> None:
    def search() -> None:
        ki.find_layer_with(cnn, klass=keras.layers.Dense, strategy="for_ever")

    message = str(fault(EndlessStrategy(), "endless-strategy", search))
    assert "'for_ever'" in message and "'endless-strategy'" in message
    # The bound is the model's size, which the message states.
    assert f"more than {len(ki.walk(cnn)) + len(cnn.inputs)} layers" in message


def test_an_endless_strategy_table_is_refused(cnn: keras.Model) -> None:
    message = str(fault(EndlessStrategyTable(), "endless-table", lambda: ki.get_logits_layer(cnn)))
    assert "'endless-table'" in message and "keras_inspect_search_strategies" in message


def test_a_strategy_may_yield_every_layer_and_input_once(cnn: keras.Model) -> None:
    class Thorough:
        @hookimpl
        def keras_inspect_search_strategies(self) -> Any:
            def thorough(model: Any) -> Any:
                inputs = [t._keras_history[0] for t in model.inputs]  # the input layers
                return [*inputs, *(entry.layer for entry in ki.walk(model))]

            return {"thorough": thorough}

    pm = ki.new_plugin_manager(entrypoints=False)
    pm.register(Thorough(), name="thorough")
    with ki.using_plugin_manager(pm):
        # The only Dense comes last: the whole sequence is taken, and it is within the bound.
        assert ki.find_layer_with(cnn, klass=keras.layers.Dense, strategy="thorough") is (
            cnn.get_layer("logits")
        )


def test_a_roles_generator_that_raises_is_named(cnn: keras.Model) -> None:
    class Breaks:
        @hookimpl
        def keras_inspect_roles(self) -> Any:
            yield "fine"
            raise LookupError("lost the list")

    message = str(fault(Breaks(), "breaking-roles", lambda: ki.get_logits_layer(cnn)))
    assert "'breaking-roles'" in message and "LookupError" in message and "lost the list" in message


# -- BaseExceptions -----------------------------------------------------------------------------


class Custom(BaseException):
    pass


@pytest.mark.parametrize("raised", [GeneratorExit("closing"), Custom("mine")], ids=["GeneratorExit", "custom"])
@pytest.mark.parametrize("hook", ["classify", "bias", "strategy"])
def test_a_base_exception_in_a_plugin_is_a_plugin_error_naming_it(
    cnn: keras.Model, raised: BaseException, hook: str
) -> None:
    class Raising:
        @hookimpl(tryfirst=True)
        def keras_inspect_classify_layer(self, layer: Any, role: str) -> Any:
            if hook == "classify":
                raise raised

        @hookimpl(tryfirst=True)
        def keras_inspect_layer_bias(self, layer: Any) -> Any:
            if hook == "bias":
                raise raised

        @hookimpl
        def keras_inspect_search_strategies(self) -> Any:
            def strategy(model: Any) -> Any:
                yield model.layers[-1]
                raise raised

            return {"raising": strategy}

    calls = {
        "classify": lambda: ki.get_logits_layer(cnn),
        "bias": lambda: ki.layers_with_biases(cnn),
        "strategy": lambda: ki.find_layer_with(cnn, klass=keras.layers.Conv2D, strategy="raising"),
    }
    error = fault(Raising(), "raising-plugin", calls[hook])
    assert "'raising-plugin'" in str(error) and type(raised).__name__ in str(error)
    assert error.__cause__ is raised


ENTRY_POINT_PROGRAM = """
import json, subprocess, sys, warnings, keras
import keras_inspect as ki
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    first = ki.plugin_manager()
    again = ki.plugin_manager()
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
listing = subprocess.run([sys.executable, "-m", "keras_inspect", "plugins"], capture_output=True, text=True)
print(json.dumps({
    "same": first is again,
    "logits": ki.get_logits_layer(model).name,
    "warnings": [str(w.message) for w in caught],
    "failed": {i.distribution: i.error for i in first.plugin_infos() if i.error},
    "listing": [listing.returncode, listing.stdout, listing.stderr],
}))
"""


@pytest.fixture(scope="module")
def base_exceptions_at_import(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("base_exception_plugins")
    _distribution(root, "keras-inspect-genexit", "genexit", "ki_genexit", "raise GeneratorExit('bye')\n")
    _distribution(root, "keras-inspect-custom", "custom", "ki_custom",
                  "class Mine(BaseException):\n    pass\nraise Mine('my own')\n")  # fmt: skip
    result = _run(root, ENTRY_POINT_PROGRAM)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("dist", "kind"), [("genexit", "GeneratorExit"), ("custom", "Mine")])
def test_a_base_exception_at_import_is_reported_and_skipped(
    base_exceptions_at_import: dict, dist: str, kind: str
) -> None:
    observed = base_exceptions_at_import
    error = observed["failed"][f"keras-inspect-{dist}"]
    assert "could not be imported" in error and kind in error
    assert any(f"keras-inspect-{dist}" in w for w in observed["warnings"])
    assert observed["same"] and observed["logits"] == "d"  # loaded once, and every call works


def test_the_plugin_listing_survives_base_exceptions_at_import(base_exceptions_at_import: dict) -> None:
    status, out, err = base_exceptions_at_import["listing"]
    assert status == 0 and "Traceback" not in err
    assert "keras-inspect-genexit" in out and "FAILED" in out


# -- wrappers, fake tensors ---------------------------------------------------------------------


class NotAGenerator:
    @hookimpl(wrapper=True)
    def keras_inspect_classify_layer(self, layer: Any, role: str) -> Any:
        return None


class ReturnsBeforeYielding:
    @hookimpl(wrapper=True)
    def keras_inspect_classify_layer(self, layer: Any, role: str) -> Generator[None, Any, Any]:
        if role:
            return None
        yield


def test_a_wrapper_that_is_not_a_generator_is_refused_by_name() -> None:
    pm = ki.new_plugin_manager(entrypoints=False)
    with pytest.raises(PluginError) as caught:
        pm.register(NotAGenerator(), name="no-yield")
    message = str(caught.value)
    assert "'no-yield'" in message and "keras_inspect_classify_layer" in message
    assert "generator" in message and "plugin plugin" not in message


def test_a_wrapper_that_returns_before_yielding_is_named(cnn: keras.Model) -> None:
    error = plugin_error(ReturnsBeforeYielding(), "early-return", lambda: ki.get_logits_layer(cnn))
    assert "'early-return'" in str(error) and "keras_inspect_classify_layer" in str(error)


class LooksLikeATensor:
    shape = (5,)
    dtype = "float32"


@pytest.mark.parametrize("fake", [LooksLikeATensor(), type("Meta", (), {"shape": (), "dtype": np.float32})()])
def test_an_object_with_only_shape_and_dtype_is_not_a_bias(cnn: keras.Model, fake: object) -> None:
    class Fake:
        @hookimpl(tryfirst=True)
        def keras_inspect_layer_bias(self, layer: Any) -> Any:
            return fake

    error = plugin_error(Fake(), "fake-bias", lambda: ki.layers_with_biases(cnn))
    assert "'fake-bias'" in str(error) and "numeric tensor" in str(error)


@pytest.mark.parametrize("kind", ["numpy", "variable", "backend tensor"])
def test_real_tensors_are_biases(cnn: keras.Model, kind: str) -> None:
    value = np.linspace(-1, 1, 5).astype("float32")
    bias = {
        "numpy": lambda: value,
        "variable": lambda: keras.Variable(value),
        "backend tensor": lambda: keras.ops.convert_to_tensor(value),
    }[kind]()

    class Real:
        @hookimpl(tryfirst=True)
        def keras_inspect_layer_bias(self, layer: Any) -> Any:
            return bias if layer.name == "logits" else None

    pm = ki.new_plugin_manager(entrypoints=False)
    pm.register(Real(), name="real-bias")
    assert pm.layer_bias(cnn.get_layer("logits")) == (bias, "real-bias")


# -- "plugin plugin" ---------------------------------------------------------------------------


def test_no_message_names_a_plugin_twice(cnn: keras.Model, tmp_path: Path) -> None:
    class Typo:
        @hookimpl
        def keras_inspect_layer_bais(self, layer: Any) -> Any:
            return None

    pm = ki.new_plugin_manager(entrypoints=False)
    pm.register(Typo(), name="typo-plugin")
    with pytest.raises(PluginError) as caught:
        pm.check()
    messages = [str(caught.value)]

    class Wrong:
        @hookimpl(tryfirst=True)
        def keras_inspect_classify_layer(self, layer: Any, role: str) -> Any:
            return "yes"

    messages.append(str(plugin_error(Wrong(), "wrong-answer", lambda: ki.get_logits_layer(cnn))))

    class Raises:
        @hookimpl(tryfirst=True)
        def keras_inspect_layer_bias(self, layer: Any) -> Any:
            raise ValueError("oops")

    messages.append(str(plugin_error(Raises(), "raising", lambda: ki.layers_with_biases(cnn))))
    for message in messages:
        assert "plugin plugin" not in message.lower()
        assert "object at 0x" not in message  # named by name, not by repr
    assert "'typo-plugin'" in messages[0]
