"""No harm to the user's model: every public call leaves it exactly as it was.

Over a part of the keras.applications zoo (small inputs) and a nested model, the config, the
weights (values and variable objects), the predictions, the ``trainable`` flags and a save/load
round trip are compared before and after each public call.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from _snapshot import Snapshot
from conftest import build_nested, images, to_numpy

import keras_inspect
from keras_inspect import KerasInspectError

SHAPE = (32, 32, 3)


def _mobilenet() -> keras.Model:
    return keras.applications.MobileNet(alpha=0.25, input_shape=SHAPE, weights=None, classes=5)


def _mobilenet_v2() -> keras.Model:
    return keras.applications.MobileNetV2(alpha=0.35, input_shape=SHAPE, weights=None, classes=5)


def _mobilenet_v3_small() -> keras.Model:
    return keras.applications.MobileNetV3Small(
        input_shape=SHAPE, weights=None, classes=5, minimalistic=True,
        include_preprocessing=False,
    )  # fmt: skip


def _nested() -> keras.Model:
    return build_nested()


# Building application models and compiling them (JAX) dominate the run time, so the default
# run checks one application; KERAS_INSPECT_FULL_ZOO=1 adds MobileNetV2 and MobileNetV3Small.
ZOO: dict[str, Callable[[], keras.Model]] = {
    "MobileNet": _mobilenet,
    "nested": _nested,
}
if os.environ.get("KERAS_INSPECT_FULL_ZOO"):
    ZOO["MobileNetV2"] = _mobilenet_v2
    ZOO["MobileNetV3Small"] = _mobilenet_v3_small


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Inference-mode predictions: eager where that is cheap, compiled on JAX.

    Eager JAX compiles each operation for each new shape (tens of seconds for one application
    model on a small CPU); ``predict`` compiles the model once and still reads the current
    variables on every call, so changed weights show. Changed attributes show in the config.
    """
    if keras.backend.backend() == "jax":
        return np.asarray(keras.tree.flatten(model.predict(x, verbose=0))[0])
    return to_numpy(keras.tree.flatten(model(x, training=False))[0])


def _all_layers(model: keras.Model) -> list[Any]:
    return [entry.layer for entry in keras_inspect.walk(model)]


def _middle(model: keras.Model) -> str:
    entries = [e for e in keras_inspect.walk(model) if e.in_graph and not e.layer.weights]
    return entries[len(entries) // 2].name


def public_calls(model: keras.Model, x: np.ndarray) -> list[tuple[str, Callable[[], Any]]]:
    middle = _middle(model)
    pm = keras_inspect.plugin_manager()
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("walk", lambda: keras_inspect.walk(model)),
        ("get_nested_layer", lambda: keras_inspect.get_nested_layer(model, middle)),
        ("get_logits_layer", lambda: keras_inspect.get_logits_layer(model)),
        ("get_global_pooling_layer", lambda: keras_inspect.get_global_pooling_layer(model)),
        ("get_target_layer", lambda: keras_inspect.get_target_layer(model)),
        ("layers_with_biases", lambda: keras_inspect.layers_with_biases(model)),
        ("biases", lambda: keras_inspect.biases(_all_layers(model))),
        ("endpoints", lambda: keras_inspect.endpoints(model, [middle, {"name": middle, "link": "input"}])),
        ("expose", lambda: keras_inspect.expose(model)),
        # Running an exposed model must not touch the original either.
        ("expose middle + run", lambda: predict(keras_inspect.expose(model, arguments=[middle]), x)),
        ("split", lambda: keras_inspect.split(model, middle)),
        ("summary", lambda: str(keras_inspect.summary(model))),
    ]
    for role in sorted(pm.roles()):
        calls.append((f"find_layer_with(role={role!r})",
                      lambda role=role: keras_inspect.find_layer_with(model, role=role)))
    return calls


@pytest.fixture(scope="module", params=sorted(ZOO))
def zoo_model(request: pytest.FixtureRequest) -> keras.Model:
    return ZOO[request.param]()


def test_public_calls_leave_the_model_untouched(zoo_model: keras.Model, tmp_path: Path) -> None:
    x = images(1, tuple(zoo_model.inputs[0].shape[1:]))
    before = Snapshot(zoo_model, x, predict)
    saved_before = _round_trip(zoo_model, tmp_path / "before.keras", x)
    for label, call in public_calls(zoo_model, x):
        try:
            call()
        except KerasInspectError:
            pass  # e.g. a role no layer of this model plays: refusing is harmless
        before.assert_same(Snapshot(zoo_model, x, predict), label)
    saved_after = _round_trip(zoo_model, tmp_path / "after.keras", x)
    assert saved_after[0] == saved_before[0], "the saved config changed"
    np.testing.assert_array_equal(saved_after[1], saved_before[1])
    np.testing.assert_array_equal(saved_after[1], before.predictions)


def _round_trip(model: keras.Model, path: Path, x: np.ndarray) -> tuple[str, np.ndarray]:
    model.save(path)
    loaded = keras.saving.load_model(path)
    return json.dumps(loaded.get_config(), sort_keys=True, default=repr), predict(loaded, x)
