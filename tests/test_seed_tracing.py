"""Two points a port of keras-explainable met: searches inside ``tf.function``, unbuilt models.

keras-explainable calls searches (``get_logits_layer``) and ``gather_units`` inside functions
that TensorFlow traces with AutoGraph. AutoGraph converts every function it meets outside
TensorFlow and Keras, and logs "AutoGraph could not transform ..." for any it cannot convert:
library code must not produce that message. ``_traced_probe.py`` runs each public function
inside ``tf.function`` in a fresh interpreter and reports what was logged; these tests check
the report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import keras
import pytest
from keras import layers

import keras_inspect
from keras_inspect import inspection

TESTS = Path(__file__).resolve().parent
PROBE = TESTS / "_traced_probe.py"

#: The probe's phases, in the order it runs them: the Keras 3 phase first, so that it is checked
#: with nothing converted before it.
PHASES = ("keras3", "tf_keras", "first-use")

tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="tf.function traces TensorFlow code; this run computes Keras 3 models with "
    f"{keras.backend.backend()}, and tf_keras is traced in the TensorFlow run",
)


def _run_probe() -> dict[str, Any]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS.parent), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(PROBE), *PHASES],
        capture_output=True, text=True, env=env, cwd=TESTS, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return {"error": done.stdout + done.stderr}
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # stderr, cut at the marks the probe prints before each phase and before the control.
    for name in (*PHASES, "control"):
        after_mark = done.stderr.partition(f"---- {name} ----")[2]
        report.setdefault("stderr", {})[name] = after_mark.partition("\n---- ")[0]
    return report


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict[str, Any]:
    """The probe's report, computed once per test run (it takes a TensorFlow start-up and
    three traces): the first xdist worker to ask runs it, the others read its file."""
    pytest.importorskip("tf_keras")
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent  # the run's directory, common to its workers
    result, claim = shared / "traced_probe.json", shared / "traced_probe.claim"
    try:
        os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        deadline = time.monotonic() + 900
        while not result.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        report = json.loads(result.read_text())
    else:
        report = _run_probe()
        partial = result.with_suffix(".partial")
        partial.write_text(json.dumps(report))
        partial.replace(result)  # readers never see half a file
    assert "error" not in report, report.get("error")
    return report


@tensorflow_only
@pytest.mark.parametrize("name", PHASES)
def test_no_autograph_message_inside_tf_function(probe: dict[str, Any], name: str) -> None:
    # The capture works: the control function's message was recorded, and written to stderr.
    assert any("loop_with_else" in m and "could not transform" in m for m in probe["control"])
    assert "AutoGraph could not transform" in probe["stderr"]["control"]
    # No message in any phase: Keras 3 models, tf_keras models (whose reader imports tf_keras
    # on demand), and a first call that loads the plugin manager inside the trace. The public
    # functions are marked to run unconverted (framework/autograph.py).
    messages = probe["phases"][name]["during"]
    assert messages == [], "\n\n".join(messages)
    assert "AutoGraph" not in probe["stderr"][name]


@tensorflow_only
@pytest.mark.parametrize("name", PHASES)
def test_traced_results_equal_the_eager_ones(probe: dict[str, Any], name: str) -> None:
    same = probe["phases"][name]["same"]
    assert sorted(same) == sorted(
        [
            "biases", "endpoints", "expose", "find_layer_with", "find_layer_with(role)",
            "gather_units", "get_global_pooling_layer", "get_logits_layer", "get_nested_layer",
            "get_target_layer", "layers_with_biases", "layers_with_role", "split",
        ]
    )  # fmt: skip
    assert [function for function, equal in same.items() if not equal] == []


# -- a Sequential that was never built ------------------------------------------------------------


def _unbuilt(module: Any) -> Any:
    return module.Sequential(
        [module.layers.Conv2D(2, 3), module.layers.GlobalAveragePooling2D(), module.layers.Dense(2)]
    )


@pytest.mark.parametrize("flavour", ["keras3", "tf_keras"])
def test_an_unbuilt_sequential_is_told_to_build_on_an_input(flavour: str) -> None:
    module = keras if flavour == "keras3" else pytest.importorskip("tf_keras")
    model = _unbuilt(module)
    calls = {
        "expose(model)": lambda: inspection.expose(model),
        "expose(model, arguments)": lambda: inspection.expose(model, arguments=0),
        "endpoints": lambda: inspection.endpoints(model, [0]),
        "find_layer_with(role=...)": lambda: inspection.find_layer_with(model, role="logits"),
        "get_logits_layer": lambda: inspection.get_logits_layer(model),
    }
    for call, run in calls.items():
        with pytest.raises(keras_inspect.KerasInspectError) as caught:
            run()
        message = str(caught.value)
        assert "has no functional graph" in message, (call, message)
        # The advice uses the model's own flavour of Keras.
        expected = "keras.Input(shape)" if flavour == "keras3" else "tf_keras.Input(shape)"
        assert f"Sequential([{expected}" in message, (call, message)


def test_a_built_sequential_is_searched() -> None:
    model = _unbuilt(keras)
    model.build((None, 8, 8, 3))  # building on a shape gives the Sequential its graph
    assert inspection.get_logits_layer(model) is model.layers[-1]
    exposed = inspection.expose(model)
    assert [tuple(t.shape) for t in exposed.outputs] == [(None, 2), (None, 6, 6, 2)]
    assert isinstance(model.layers[-1], layers.Dense)
