"""An exposed model under Keras' distribution engines, with two CPU devices.

The programs are the ones ``docs/backends.md`` shows (read from the page, so the docs cannot
drift from what is tested). Each runs in a fresh interpreter: logical devices
(``tf.config.set_logical_device_configuration``) and ``XLA_FLAGS`` must be set before
TensorFlow or JAX initialises, and a distribution set globally must not leak into other tests.
Each program checks that its distributed results equal the single-device ones. They pick their
own backend, so either could run in any run of the suite; to keep each run lean, each run
executes one: the engine of its own backend, and the torch run (Keras has no torch engine) the
TensorFlow one again.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "backends.md"
SCRIPT = re.compile(r"<!-- test-script: (\w+) -->\s*```python\n(.*?)```", re.DOTALL)


def _scripts() -> dict[str, str]:
    return dict(SCRIPT.findall(DOC.read_text(encoding="utf-8")))


def test_the_page_shows_both_programs() -> None:
    assert set(_scripts()) == {"mirrored", "data_parallel"}


ENGINE_FOR_RUN = {"tensorflow": "mirrored", "jax": "data_parallel", "torch": "mirrored"}
DONE = {"mirrored": "mirrored: ok", "data_parallel": "data parallel: ok"}


def test_explaining_on_two_devices_matches_one_device() -> None:
    name = ENGINE_FOR_RUN[keras.backend.backend()]
    done = DONE[name]
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"KERAS_BACKEND", "XLA_FLAGS", "CUDA_VISIBLE_DEVICES"}
    }
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = subprocess.run(
        [sys.executable, "-c", _scripts()[name]],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert done in result.stdout
