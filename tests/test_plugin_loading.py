"""Loading entry-point plugins that misbehave while they are imported.

Each case runs in a fresh interpreter whose path holds a plugin "distribution" made of a module
and a ``.dist-info`` directory (what ``importlib.metadata`` reads), written to a temporary
directory: nothing is installed, and a hang is a timeout, not a stuck test run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TIMEOUT = 120  # seconds; a deadlock shows as a timeout


def _distribution(root: Path, dist: str, entry: str, module: str, source: str) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[keras_inspect]\n{entry} = {module}\n")


def _run(root: Path, program: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("KERAS_INSPECT_DISABLE_PLUGIN_AUTOLOAD", None)
    env.pop("KERAS_INSPECT_STRICT_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


SELF_REGISTERING = """
import keras
import keras_inspect as ki

class Gate(keras.layers.Layer):
    def call(self, x):
        return x

# What a plugin author naturally writes: register while being imported.
ki.register_layer(Gate, roles=["gate"])
MANAGER = ki.plugin_manager()
"""

EXITING = """
import sys
sys.exit(7)
"""

SQUATTER = """
from keras_inspect import hookimpl

@hookimpl
def keras_inspect_roles():
    return ["squatted"]
"""

BUILT_IN_NAMES = ("keras_inspect.registry", "keras_inspect.adapters.pooling")

# One interpreter loads all the misbehaving plugins at once (importing Keras and a backend
# dominates the time) and reports what it observed.
PROGRAM = """
import json, warnings, keras
import keras_inspect as ki
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    pm = ki.plugin_manager()
import ki_gate_plugin
model = keras.Sequential([keras.Input((3,)), ki_gate_plugin.Gate(name="g"), keras.layers.Dense(2, name="d")])
print(json.dumps({
    "same_manager": ki_gate_plugin.MANAGER is pm,
    "roles": sorted(pm.roles()),
    "gate": ki.find_layer_with(model, role="gate").name,
    "logits": ki.get_logits_layer(model).name,
    "failed": {info.distribution: info.error for info in pm.plugin_infos() if info.error},
    "warnings": [str(w.message) for w in caught],
}))
"""


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("misbehaving_plugins")
    _distribution(root, "keras-inspect-gate", "gate", "ki_gate_plugin", SELF_REGISTERING)
    _distribution(root, "keras-inspect-exits", "exits", "ki_exiting_plugin", EXITING)
    for number, name in enumerate(BUILT_IN_NAMES):
        _distribution(root, f"keras-inspect-squatter{number}", name, f"ki_squatter{number}", SQUATTER)
    result = _run(root, PROGRAM)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_plugin_that_uses_the_api_while_imported_does_not_hang(observed: dict) -> None:
    # It got the very manager being loaded, and its registration is in it.
    assert observed["same_manager"] is True
    assert "gate" in observed["roles"] and observed["gate"] == "g"


def test_a_plugin_that_exits_while_imported_is_reported_and_skipped(observed: dict) -> None:
    error = observed["failed"]["keras-inspect-exits"]
    assert "could not be imported" in error and "SystemExit" in error
    assert any("keras-inspect-exits" in w for w in observed["warnings"])
    assert {"logits", "pooling"} <= set(observed["roles"])  # the process went on


@pytest.mark.parametrize("number", range(len(BUILT_IN_NAMES)))
def test_an_entry_point_named_like_a_built_in_is_refused_by_name(observed: dict, number: int) -> None:
    error = observed["failed"][f"keras-inspect-squatter{number}"]
    assert BUILT_IN_NAMES[number] in error and "built-in" in error
    assert "squatted" not in observed["roles"]
    assert observed["logits"] == "d"  # every call still works
