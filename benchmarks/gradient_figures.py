"""Figures 7 and 8: ``ki.gradients`` against the gradients an expert writes by hand.

7. Grad-CAM (the gradient of each example's top logit at the input of the last global pooling
   layer), batch 16, on EfficientNetB0 and ResNet50V2, eager and compiled; and the resident
   memory growth over 100 calls on ResNet50V2.
8. FullGrad (the gradient at the input and at every biased layer) on ResNet50V2, eager and
   compiled, against one hand-written forward and backward pass.

The models are built with ``classifier_activation=None``, so their output is the logits
``ki.gradients`` differentiates and the hand-written side is plain Keras (see ``handwritten.py``).
Before any timing, each side runs once (tracing, compiling, building and caching whatever it
builds) and both sides' gradients are checked to agree.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

import keras_inspect as ki
from common import SHAPE, Row, emit, fresh, paired, rss_mb, size_of
from handwritten import (
    BACKEND, Grads, compiled, fullgrad, gradcam, gradcam_watching_feature_map, ready,
)

BATCH = 16
GRADCAM_MODELS = ("EfficientNetB0", "ResNet50V2")


def _inputs(batch: int) -> Any:
    x = np.random.default_rng(0).random((batch, *SHAPE), dtype=np.float32)
    return keras.ops.convert_to_tensor(x)


def _check(name: str, base: list[Any], cand: list[Any]) -> None:
    """Both sides computed the same gradients (to float32 round-off, scaled to each one's size)."""
    if len(base) != len(cand):
        raise AssertionError(f"{name}: {len(base)} hand-written gradients, {len(cand)} from ki")
    for i, (b, c) in enumerate(zip(base, cand)):
        b, c = keras.ops.convert_to_numpy(b), keras.ops.convert_to_numpy(c)
        scale = float(np.abs(b).max()) or 1.0
        np.testing.assert_allclose(
            c, b, rtol=1e-3, atol=1e-4 * scale, err_msg=f"{name}: gradient {i} differs"
        )


def _modes() -> list[str]:
    return ["eager", "compiled"] if BACKEND in ("tensorflow", "jax") else ["eager"]


def _compare(
    label: str,
    name: str,
    size: str,
    x: Any,
    base_fn: Grads,
    cand_fn: Grads,
    limit: float,
    repeats: int,
    pick: Callable[[list[Any]], list[Any]] = lambda grads: grads,
) -> None:
    for mode in _modes():
        if mode == "eager":
            base, cand = base_fn, cand_fn
        else:
            base, cand = compiled(base_fn), compiled(cand_fn)
            assert base is not None and cand is not None
        # Warm-up and check: traces, compiles and builds whatever each side caches.
        _check(f"{label}, {mode}, {name}", pick(ready(base(x))), pick(ready(cand(x))))
        seconds = paired(lambda: ready(base(x)), lambda: ready(cand(x)), 2 * repeats)
        emit(Row(f"{label}, {mode}", name, size, seconds[0] * 1e3, seconds[1] * 1e3, "ms",
                 f"<= {limit}", seconds[1] <= limit * seconds[0]))
        del base, cand
        gc.collect()


def figure_gradcam(repeats: int) -> None:
    x = _inputs(BATCH)
    for name in GRADCAM_MODELS:
        model = fresh(name, classifier_activation=None)
        pooling = ki.get_global_pooling_layer(model).name
        size = f"batch {BATCH}, {size_of(model)}"

        def candidate(inputs: Any, model: Any = model) -> list[Any]:
            return ki.gradients(model, inputs).gradients

        _compare("7 Grad-CAM", name, size, x, gradcam(model, pooling), candidate, 1.1, repeats)
        if BACKEND == "tensorflow":
            # For information: against a tape that records only the head (the default tape
            # above records the whole forward pass, since it watches every trainable variable).
            economical = gradcam_watching_feature_map(model, pooling)
            _check(f"7 Grad-CAM, head-only tape, {name}", economical(x), candidate(x))
            base, cand = paired(lambda: economical(x), lambda: candidate(x), 2 * repeats)
            emit(Row("7 Grad-CAM, eager, vs head-only tape (info)", name, size, base * 1e3,
                     cand * 1e3, "ms", "-", None))
        del model, candidate


def figure_fullgrad(repeats: int, batch: int = BATCH) -> None:
    x = _inputs(batch)
    model = fresh("ResNet50V2", classifier_activation=None)
    layers = ki.layers_with_biases(model, return_biases=False)
    signals = [model.inputs[0], *({"layer": layer, "link": "pre_activation"} for layer in layers)]
    size = f"batch {batch}, {len(layers)} biased layers + input, {size_of(model)}"

    def candidate(inputs: Any) -> list[Any]:
        return ki.gradients(model, inputs, signals).gradients

    # On JAX the hand-written side computes the input gradient only: compare that one.
    pick = (lambda grads: grads[:1]) if BACKEND == "jax" else (lambda grads: grads)
    _compare("8 FullGrad", "ResNet50V2", size, x, fullgrad(model, layers), candidate, 1.25,
             repeats, pick)


def figure_gradient_memory(calls: int = 100) -> None:
    x = _inputs(BATCH)
    model = fresh("ResNet50V2", classifier_activation=None)
    size = f"batch {BATCH}, {size_of(model)}"
    base = gradcam(model, ki.get_global_pooling_layer(model).name)

    def candidate() -> Any:
        return ready(ki.gradients(model, x).gradients)

    # A few calls of each first: the backend, Keras and keras-inspect allocate one-time state,
    # and the allocator's pools grow to their working size.
    for _ in range(3):
        ready(base(x))
        candidate()
    growth = []
    for run in (lambda: ready(base(x)), candidate):
        gc.collect()
        after = []
        for _ in range(calls):
            run()
            after.append(rss_mb())
        # The backends' allocators hand large blocks back and take them again: within a steady
        # state the resident size swings by up to 200 MB from one call to the next (PyTorch).
        # A leak shows as a trend: the last quarter of the calls against the first.
        quarter = max(calls // 4, 1)
        growth.append(statistics.median(after[-quarter:]) - statistics.median(after[:quarter]))
    emit(Row(f"7 RSS growth, {calls} Grad-CAM calls", "ResNet50V2", size, growth[0], growth[1],
             "MB", "< 50 MB", growth[1] < 50))
