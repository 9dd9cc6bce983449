"""Thread safety: searches, bias extraction and expose on shared models while plugins come and go.

Eight worker threads call ``find_layer_with``, ``layers_with_biases`` and ``expose`` on the same
models while another thread keeps registering and unregistering a plugin. Every result must be
one that some consistent set of registrations gives: the answer without the plugin or the answer
with it, never an error or a mixture.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np
import pytest
from conftest import images, to_numpy

import keras_inspect
from keras_inspect import hookimpl, new_plugin_manager, register_layer, unregister_layer
from keras_inspect import using_plugin_manager

WORKERS = 8
ROUNDS = 6


class PoolingIsRelu:
    """Makes ``relu1`` (and only it) a pooling layer, asked before the built-ins."""

    @hookimpl(tryfirst=True)
    def keras_inspect_classify_layer(self, layer: Any, role: str) -> bool | None:
        if role == "pooling" and getattr(layer, "name", None) == "relu1":
            return True
        return None


class Unrelated(keras.layers.Layer):
    """A type no model here uses: registering it changes the generation, not the answers."""


@pytest.fixture
def fast_switching() -> Iterator[None]:
    # Switch threads far more often than the default 5 ms, so races get their chance.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def run_concurrently(
    pm: Any, work: Callable[[], Any], toggle: Callable[[], None]
) -> list[Any]:
    """Run ``work`` ROUNDS times in each of WORKERS threads while ``toggle`` runs in a loop."""
    start = threading.Barrier(WORKERS + 1)
    done = threading.Event()
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        with using_plugin_manager(pm):
            start.wait()
            try:
                for _ in range(ROUNDS):
                    outcome = work()
                    with lock:
                        results.append(outcome)
            except BaseException as error:  # noqa: BLE001 - reported below, with its traceback
                with lock:
                    errors.append(error)

    def toggler() -> None:
        with using_plugin_manager(pm):
            start.wait()
            toggles = 0
            while not done.is_set() or toggles < 4:
                toggle()
                toggles += 1

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    switcher = threading.Thread(target=toggler)
    for thread in [*threads, switcher]:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    done.set()
    switcher.join(timeout=60)
    if errors:
        raise errors[0]
    assert not any(t.is_alive() for t in [*threads, switcher]), "a thread hung"
    assert len(results) == WORKERS * ROUNDS
    return results


def test_searches_see_the_plugin_or_not_never_a_mixture(
    cnn: keras.Model, nested: keras.Model, fast_switching: None
) -> None:
    pm = new_plugin_manager(entrypoints=False)
    plugin = PoolingIsRelu()
    with using_plugin_manager(pm):
        expected_layers = keras_inspect.layers_with_biases(cnn, return_biases=False)
        logits = keras_inspect.get_logits_layer(nested)

    def work() -> tuple[str, str, Any, Any]:
        forward = keras_inspect.find_layer_with(cnn, role="pooling", search_reversed=False)
        reverse = keras_inspect.get_global_pooling_layer(cnn)
        found = keras_inspect.layers_with_biases(cnn, return_biases=False)
        return forward.name, reverse.name, found, keras_inspect.get_logits_layer(nested)

    def toggle() -> None:
        pm.register(plugin, name="pooling-is-relu")
        register_layer(Unrelated, roles=("normalization",), manager=pm)
        pm.unregister(name="pooling-is-relu")
        unregister_layer(Unrelated, manager=pm)

    results = run_concurrently(pm, work, toggle)
    forwards = {r[0] for r in results}
    # relu1 comes before gap in graph order: with the plugin a forward search stops there.
    assert forwards <= {"gap", "relu1"}
    assert {r[1] for r in results} == {"gap"}
    assert all(r[2] == expected_layers for r in results)
    assert all(r[3] is logits for r in results)
    # Once the registrations settle, the answer is the plain one again (no stale cache).
    with using_plugin_manager(pm):
        assert keras_inspect.find_layer_with(cnn, role="pooling", search_reversed=False).name == "gap"
        pm.register(plugin, name="pooling-is-relu")
        assert keras_inspect.find_layer_with(cnn, role="pooling", search_reversed=False).name == "relu1"


def test_expose_on_shared_models_while_plugins_change(
    cnn: keras.Model, nested: keras.Model, fast_switching: None
) -> None:
    pm = new_plugin_manager(entrypoints=False)
    plugin = PoolingIsRelu()
    x = images(2)
    expected_cnn = to_numpy(cnn(x, training=False))
    expected_nested = to_numpy(nested(x, training=False))
    with using_plugin_manager(pm):
        feature_shape = tuple(keras_inspect.endpoints(nested, "backbone/b_conv2")[0].shape)

    def work() -> tuple[Any, Any]:
        flat = keras_inspect.expose(cnn, arguments=["conv2"])
        deep = keras_inspect.expose(nested, arguments=["backbone/b_conv2"])
        return flat, deep

    def toggle() -> None:
        pm.register(plugin, name="pooling-is-relu")
        pm.unregister(name="pooling-is-relu")

    results = run_concurrently(pm, work, toggle)
    for flat, deep in results:
        assert [tuple(t.shape) for t in deep.outputs][1] == feature_shape
        assert len(flat.outputs) == 2 and len(deep.outputs) == 2
    # Every exposed model computes what the original computes (a few checked numerically).
    for flat, deep in results[:: len(results) // 3]:
        np.testing.assert_allclose(to_numpy(flat(x, training=False)[0]), expected_cnn, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            to_numpy(deep(x, training=False)[0]), expected_nested, rtol=1e-5, atol=1e-5
        )


def test_classification_cache_follows_registrations_across_threads(cnn: keras.Model) -> None:
    """A plugin registered in one thread is seen by the next search in another thread."""
    pm = new_plugin_manager(entrypoints=False)
    relu = cnn.get_layer("relu1")
    seen: list[tuple[bool, str | None]] = []

    def ask() -> None:
        with using_plugin_manager(pm):
            seen.append(pm.classify(relu, "pooling"))

    for register in (False, True, False):
        if register:
            pm.register(PoolingIsRelu(), name="pooling-is-relu")
        elif pm.get_plugin("pooling-is-relu") is not None:
            pm.unregister(name="pooling-is-relu")
        thread = threading.Thread(target=ask)
        thread.start()
        thread.join()
    assert seen == [(False, None), (True, "pooling-is-relu"), (False, None)]
