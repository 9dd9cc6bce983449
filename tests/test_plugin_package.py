"""examples/plugin-package, installed into the test environment and used through its entry point."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import importlib.metadata
import json
import os
import shutil
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
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_inspect as ki
from keras_inspect import cli

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "examples" / "plugin-package"
PYPROJECT = tomllib.loads((PACKAGE_DIR / "pyproject.toml").read_text())
DISTRIBUTION = PYPROJECT["project"]["name"]
VERSION = PYPROJECT["project"]["version"]
((ENTRY_NAME, ENTRY_VALUE),) = PYPROJECT["project"]["entry-points"]["keras_inspect"].items()


def _sources() -> list[Path]:
    return sorted(p for p in (PACKAGE_DIR / "src").rglob("*.py") if "__pycache__" not in p.parts)


def _digest(read: Any) -> str:
    digest = hashlib.sha256()
    for path in _sources():
        relative = path.relative_to(PACKAGE_DIR / "src")
        digest.update(str(relative).encode())
        digest.update(read(relative))
    return digest.hexdigest()


def _is_current() -> bool:
    """Whether the installed distribution was built from the current sources and metadata."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    if dist.version != VERSION:
        return False
    entry_points = {(e.group, e.name, e.value) for e in dist.entry_points}
    if ("keras_inspect", ENTRY_NAME, ENTRY_VALUE) not in entry_points:
        return False
    files = {str(f): f for f in dist.files or ()}

    def read(relative: Path) -> bytes:
        record = files.get(str(relative))
        return b"missing" if record is None else Path(dist.locate_file(record)).read_bytes()

    return _digest(read) == _digest(lambda relative: (PACKAGE_DIR / "src" / relative).read_bytes())


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    # pytest-xdist workers share the environment: one pip at a time.
    lock = Path(os.environ.get("TMPDIR", "/tmp")) / "keras-inspect-plugin-package.lock"
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The example package, pip-installed (without dependencies) into this environment."""
    importlib.invalidate_caches()
    if not _is_current():
        with _locked():
            importlib.invalidate_caches()
            if not _is_current():
                # Build from a copy so that build/ and *.egg-info stay out of the example.
                build = tmp_path_factory.mktemp("plugin-package") / "src-copy"
                shutil.copytree(PACKAGE_DIR, build, ignore=shutil.ignore_patterns("__pycache__"))
                command = [
                    sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-input", "--disable-pip-version-check",
                    "--force-reinstall", str(build),
                ]  # fmt: skip
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                assert done.returncode == 0, done.stdout + done.stderr
        importlib.invalidate_caches()
    assert _is_current()
    return importlib.import_module("keras_inspect_retrieval")


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
