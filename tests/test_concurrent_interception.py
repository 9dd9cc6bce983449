"""Interception never changes what another thread sees.

Gradients and signals inside a subclassed layer are reached by running a detour through copies
of the enclosing layers (see ``adapters/keras3/interception.py``): the user's layers are never
modified, not even while a call runs. Eight threads, some only calling the user's model (with
another batch size), some asking keras-inspect for gradients and signals inside the subclassed
layer, a thousand calls in all: every answer equals the single-threaded one, and no thread fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

import keras_inspect as ki
from conftest import to_numpy

CALLS, THREADS = 1000, 8


class Block(keras.layers.Layer):
    """A subclassed layer: no graph records its sub-layers' calls."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(6, activation="tanh", name="inner")
        self.outer = keras.layers.Dense(6, name="outer")

    def call(self, x: Any) -> Any:
        return self.outer(self.inner(x)) + x[..., :6]


def _model() -> keras.Model:
    keras.utils.set_random_seed(5)
    x = keras.Input((8,), name="x")
    h = Block(name="block")(keras.layers.Dense(8, name="stem")(x))
    return keras.Model(x, keras.layers.Dense(3, name="logits")(h), name="concurrent")


def test_threads_calling_the_model_never_see_the_interception() -> None:
    model = _model()
    rng = np.random.default_rng(0)
    small, large = rng.normal(size=(2, 8)).astype("float32"), rng.normal(size=(5, 8)).astype("float32")
    signals = ["block/inner", {"name": "block/outer", "link": "input"}]

    def gradients() -> list[np.ndarray]:
        result = ki.gradients(model, small, signals, target=1)
        return [to_numpy(t) for t in (*result.gradients, *result.signals, result.outputs)]

    def exposed() -> list[np.ndarray]:
        return [to_numpy(t) for t in ki.expose(model, arguments="block/inner")(small)]

    def plain() -> list[np.ndarray]:
        return [to_numpy(model(large))]

    work: list[Callable[[], list[np.ndarray]]] = [plain, plain, plain, plain, gradients, gradients, exposed, exposed]
    expected = {fn.__name__: fn() for fn in (gradients, exposed, plain)}
    failures: list[str] = []
    start = threading.Barrier(THREADS)

    def worker(fn: Callable[[], list[np.ndarray]]) -> None:
        start.wait()
        for _ in range(CALLS // THREADS):
            try:
                got = fn()
            except Exception as error:  # noqa: BLE001 - every failure is collected and reported
                failures.append(f"{fn.__name__}: {type(error).__name__}: {error}")
                return
            for a, b in zip(got, expected[fn.__name__]):
                if a.shape != b.shape or not np.allclose(a, b, rtol=1e-5, atol=1e-6):
                    failures.append(f"{fn.__name__}: an answer differs from the single-threaded one")
                    return

    threads = [threading.Thread(target=worker, args=(fn,)) for fn in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:5]
    block = model.get_layer("block")
    assert "call" not in vars(block) and "call" not in vars(block.inner)  # never modified
