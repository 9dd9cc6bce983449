"""The signal engine, decided once for every caller (expose, split, gradients).

A nested model called several times is read and edited at its last call, by every feature; the
names of what keras-inspect adds to a graph never collide with the model's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_inspect as ki
from conftest import to_numpy

RNG = np.random.default_rng(11)


def _called_twice() -> tuple[keras.Model, keras.Model]:
    """``y = head(inner(x) + 3 * inner(2 * x))``: one nested model, two calls."""
    u = keras.Input((4,), name="u")
    inner = keras.Model(u, keras.layers.Dense(5, activation="tanh", name="d")(u), name="inner")
    x = keras.Input((4,), name="x")
    first = inner(x)
    doubled = keras.layers.Rescaling(2.0, name="double")(x)
    second = inner(doubled)
    tripled = keras.layers.Rescaling(3.0, name="triple")(second)
    total = keras.layers.Add(name="sum")([first, tripled])
    out = keras.layers.Dense(3, name="logits")(total)
    return keras.Model(x, out, name="outer"), inner


def test_a_nested_model_called_twice_is_read_at_its_last_call() -> None:
    model, inner = _called_twice()
    x = RNG.normal(size=(6, 4)).astype("float32")
    exposed = ki.expose(model, arguments=["inner/d"], outputs=["logits"])
    logits, value = exposed(x)
    np.testing.assert_allclose(to_numpy(value), to_numpy(inner(2 * x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(logits), to_numpy(model(x)), rtol=1e-5, atol=1e-6)


def test_a_nested_model_called_twice_is_edited_at_its_last_call_only() -> None:
    model, inner = _called_twice()
    x = RNG.normal(size=(6, 4)).astype("float32")
    result = ki.gradients(model, x, "inner/d", target=1)
    np.testing.assert_allclose(
        to_numpy(result.signals[0]), to_numpy(inner(2 * x)), rtol=1e-5, atol=1e-6
    )
    # Only the last call is perturbed: d logit_1 / d (last call's output) = 3 * W[:, 1].
    kernel = to_numpy(model.get_layer("logits").kernel)
    expected = np.broadcast_to(3.0 * kernel[:, 1], (6, 5))
    np.testing.assert_allclose(to_numpy(result.gradients[0]), expected, rtol=1e-5, atol=1e-6)


def test_split_cuts_a_nested_model_called_twice_at_its_last_call() -> None:
    model, _ = _called_twice()
    # The first call's branch reaches the output without the cut: the error names it.
    with pytest.raises(ki.EndpointError, match="can be reached without passing through"):
        ki.split(model, "inner/d")


def _names(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers]


def test_keras_inspect_names_never_collide_with_the_model_s() -> None:
    """A model whose layers and inputs take every name keras-inspect would choose."""
    x = keras.Input((6,), name="keras_inspect_edit")
    h = keras.layers.Dense(5, name="keras_inspect_add")(x)
    h = keras.layers.Dense(5, activation="relu", name="fc")(h)
    h = keras.layers.Activation("linear", name="fc_activation")(h)
    h = keras.layers.Activation("linear", name="fc_pre_activation")(h)
    h = keras.layers.Dense(4, name="keras_inspect_frontier")(h)
    model = keras.Model(x, keras.layers.Dense(3, name="add")(h), name="m")
    data = RNG.normal(size=(2, 6)).astype("float32")
    signals = [
        {"name": "fc", "link": "pre_activation"},
        "keras_inspect_add",
        "fc_activation",
        "keras_inspect_frontier",
    ]
    result = ki.gradients(model, data, signals, target=0)
    assert len(result.gradients) == 4
    np.testing.assert_allclose(to_numpy(result.outputs), to_numpy(model(data)), rtol=1e-5)
    exposed = ki.expose(model, arguments=[{"name": "fc", "link": "pre_activation"}])
    assert len(set(_names(exposed))) == len(_names(exposed))


FRESH_PROCESS = """
import sys, numpy as np, keras, keras_inspect as ki
model = keras.models.load_model(sys.argv[1])
assert "add" in [layer.name for layer in model.layers]
data = np.ones((3, 4), "float32")
result = ki.gradients(model, data, ["dense", "dense_1"], target=1)
print("gradients:", len(result.gradients))
"""


def test_a_loaded_model_with_an_anonymous_add_layer_works_on_the_first_call(tmp_path) -> None:
    """Keras names a new anonymous addition ``add`` in a fresh process; a model loaded from a
    file may hold an ``add`` layer already."""
    x = keras.Input((4,))
    a = keras.layers.Dense(4, name="dense")(x)
    b = keras.layers.Dense(4, name="dense_1")(x)
    model = keras.Model(x, keras.layers.Dense(2, name="out")(keras.layers.Add(name="add")([a, b])))
    path = tmp_path / "m.keras"
    model.save(path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(path)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "gradients: 2" in done.stdout
