"""examples/plugin-package, pip-installed into a temporary directory, used through its entry point."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import keras
import numpy as np
import pytest
from conftest import EXAMPLE_PLUGIN_SOURCE, import_from, importable
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_inspect as ki
from keras_inspect.cli import main as cli

PYPROJECT = tomllib.loads((EXAMPLE_PLUGIN_SOURCE / "pyproject.toml").read_text())
DISTRIBUTION = PYPROJECT["project"]["name"]
VERSION = PYPROJECT["project"]["version"]
((ENTRY_NAME, ENTRY_VALUE),) = PYPROJECT["project"]["entry-points"]["keras_inspect"].items()
PACKAGE = ENTRY_VALUE.split(".")[0]


@pytest.fixture(scope="module")
def installed(example_plugin_site: Path) -> Iterator[ModuleType]:
    """The example package, installed and visible (with its entry point) for one test module."""
    # Fixtures resolve by name: test_docs.py imports this one and finds the site in conftest.
    with importable(example_plugin_site, PACKAGE):
        dist = importlib.metadata.distribution(DISTRIBUTION)
        # The copy just built, with the metadata its pyproject.toml declares.
        assert Path(dist.locate_file("")).resolve() == example_plugin_site.resolve()
        assert dist.version == VERSION
        assert ("keras_inspect", ENTRY_NAME, ENTRY_VALUE) in {
            (e.group, e.name, e.value) for e in dist.entry_points
        }
        yield import_from(example_plugin_site, PACKAGE)


@pytest.fixture
def pm(installed: ModuleType) -> Iterator[ki.InspectPluginManager]:
    manager = ki.new_plugin_manager(strict=True)
    with ki.using_plugin_manager(manager):
        yield manager


def _model(package: ModuleType) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            keras.layers.Conv2D(5, 3, name="conv"),
            package.FrozenBatchNormalization(name="frozen_bn"),
            keras.layers.ReLU(name="relu"),
            package.GeMPooling2D(name="gem"),
            keras.layers.Dense(4, name="logits"),
        ],
        name="retrieval_net",
    )
    _randomize(model.get_layer("frozen_bn"), seed=1)
    return model


def _randomize(layer: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    size = layer.gamma.shape
    layer.gamma.assign(rng.normal(size=size).astype("float32"))
    layer.beta.assign(rng.normal(size=size).astype("float32"))
    layer.moving_mean.assign(rng.normal(size=size).astype("float32"))
    layer.moving_variance.assign(rng.uniform(0.2, 3.0, size=size).astype("float32"))


def test_a_fresh_manager_loads_it_from_the_entry_point(pm: ki.InspectPluginManager) -> None:
    (info,) = [i for i in pm.plugin_infos() if i.name == ENTRY_NAME]
    assert info.distribution == DISTRIBUTION and info.version == VERSION
    assert not info.builtin and info.error is None
    assert set(info.hooks) == {
        "keras_inspect_roles", "keras_inspect_classify_layer", "keras_inspect_layer_bias",
    }  # fmt: skip
    assert "frozen_normalization" in pm.roles()
    without = ki.new_plugin_manager(entrypoints=False)
    assert "frozen_normalization" not in without.roles()


def test_roles_are_decided_by_the_plugin(
    pm: ki.InspectPluginManager, installed: ModuleType
) -> None:
    model = _model(installed)
    gem, frozen = model.get_layer("gem"), model.get_layer("frozen_bn")
    assert pm.classify(gem, "pooling") == (True, ENTRY_NAME)
    assert pm.classify(frozen, "normalization") == (True, ENTRY_NAME)
    assert pm.classify(frozen, "frozen_normalization") == (True, ENTRY_NAME)
    assert pm.classify(frozen, "logits") == (False, ENTRY_NAME)
    assert ki.get_global_pooling_layer(model) is gem
    assert ki.find_layer_with(model, role="frozen_normalization") is frozen
    assert ki.get_logits_layer(model).name == "logits"
    # Without the plugin the library does not know GeM.
    with ki.using_plugin_manager(ki.new_plugin_manager(entrypoints=False)):
        with pytest.raises(ki.NoMatchingLayerError):
            ki.get_global_pooling_layer(model)


@settings(max_examples=4)
@given(st.integers(0, 2**16))
def test_bias_is_the_output_for_a_zero_input(installed: ModuleType, seed: int) -> None:
    # The layer is affine in x, so what it adds independently of x is its output at x = 0.
    layer = installed.FrozenBatchNormalization(epsilon=1e-3)
    layer.build((None, 4, 4, 6))
    _randomize(layer, seed)
    with ki.using_plugin_manager(ki.new_plugin_manager()):
        bias, plugin = ki.plugin_manager().layer_bias(layer)
    assert plugin == ENTRY_NAME
    zeros = np.zeros((1, 4, 4, 6), "float32")
    expected = keras.ops.convert_to_numpy(layer(zeros))[0, 0, 0]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bias), expected, rtol=1e-5, atol=1e-6)


def test_layers_with_biases_and_expose(pm: ki.InspectPluginManager, installed: ModuleType) -> None:
    model = _model(installed)
    layers, values = ki.layers_with_biases(model)
    assert [layer.name for layer in layers] == ["conv", "frozen_bn", "logits"]
    frozen = model.get_layer("frozen_bn")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(values[1]),
        keras.ops.convert_to_numpy(frozen(np.zeros((1, 1, 1, 5), "float32")))[0, 0, 0],
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip
    exposed = ki.expose(model)
    x = np.random.default_rng(0).normal(size=(2, 12, 12, 3)).astype("float32")
    logits, feature_map = (keras.ops.convert_to_numpy(t) for t in exposed(x))
    np.testing.assert_allclose(logits, keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-5)
    relu = keras.Model(model.inputs, model.get_layer("relu").output)
    np.testing.assert_allclose(feature_map, keras.ops.convert_to_numpy(relu(x)), rtol=1e-5, atol=1e-5)


def test_cli_summary_of_a_saved_model_uses_the_plugin(
    pm: ki.InspectPluginManager,
    installed: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "retrieval.keras"
    _model(installed).save(path)
    assert cli.main(["summary", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {"/".join(row["path"]): row for row in data["rows"]}
    assert rows["gem"]["roles"] == [{"role": "pooling", "plugin": ENTRY_NAME}]
    assert {"role": "frozen_normalization", "plugin": ENTRY_NAME} in rows["frozen_bn"]["roles"]
    assert rows["frozen_bn"]["bias_plugin"] == ENTRY_NAME
    assert data["defaults"]["pooling"] == ["gem"]
    assert cli.main(["plugins"]) == 0
    assert f"{ENTRY_NAME}  [{DISTRIBUTION} {VERSION}, plugin]" in capsys.readouterr().out


def test_a_subprocess_finds_it_through_pythonpath(
    installed: ModuleType, example_plugin_site: Path
) -> None:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(example_plugin_site)
    locate = f"import importlib.metadata as m; print(m.distribution({DISTRIBUTION!r}).locate_file(''))"
    where = subprocess.run(
        [sys.executable, "-c", locate],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(where).resolve() == example_plugin_site.resolve()
    done = subprocess.run(
        [sys.executable, "-m", "keras_inspect", "plugins"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{ENTRY_NAME}  [{DISTRIBUTION} {VERSION}, plugin]" in done.stdout
