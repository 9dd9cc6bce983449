"""Figures 12 and 13: the pure form, and several units per example.

12. Grad-CAM through ``ki.stateless_gradients`` under ``jax.jit`` (the weights passed as
    arguments) against a hand-written ``jax.jit`` step over ``stateless_call``: the model cut at
    the feature map (``ki.split``), its body run with ``stateless_call`` and its head
    differentiated with ``jax.grad``. Batch 16, EfficientNetB0 and ResNet50V2; JAX only (the
    other backends read variables at call time).
13. Gradients at the feature map for ``n = 4`` units per example (a ``(batch, 4)`` target) in
    one call, against four single-unit calls, and against a hand-written batch Jacobian (one
    forward pass, one pullback per unit: ``jax.vmap`` of ``jax.vjp``, a persistent tape, or
    ``torch.autograd.grad`` per unit).
"""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
from keras import ops

import keras_inspect as ki
from common import Row, emit, fresh, paired, size_of
from handwritten import BACKEND, compiled, ready

BATCH, UNITS = 16, 4
MODELS = ("EfficientNetB0", "ResNet50V2")


def _inputs() -> Any:
    from common import SHAPE

    return ops.convert_to_tensor(np.random.default_rng(0).random((BATCH, *SHAPE), dtype=np.float32))


def _values(variables: list[Any]) -> list[Any]:
    return [ops.convert_to_tensor(v) for v in variables]


def hand_written_pure_gradcam(model: Any, pooling: str) -> Any:
    """``step(trainable, non_trainable, x)``: the gradient of each top logit at the pooling
    layer's input, with the weights as arguments (``stateless_call``), by hand."""
    import jax

    body, head = ki.split(model, {"name": pooling, "link": "input"})
    position = {id(v): i for i, v in enumerate(model.trainable_variables)}
    fixed = {id(v): i for i, v in enumerate(model.non_trainable_variables)}

    def pick(part: Any, trainable: list[Any], non_trainable: list[Any]) -> tuple[list[Any], list[Any]]:
        return (
            [trainable[position[id(v)]] for v in part.trainable_variables],
            [non_trainable[fixed[id(v)]] for v in part.non_trainable_variables],
        )

    def step(trainable: list[Any], non_trainable: list[Any], x: Any) -> Any:
        features, _ = body.stateless_call(*pick(body, trainable, non_trainable), x, training=False)
        head_values = pick(head, trainable, non_trainable)

        def top(fmap: Any) -> Any:
            logits, _ = head.stateless_call(*head_values, fmap, training=False)
            return ops.sum(ops.max(logits, axis=-1))

        return jax.grad(top)(features)

    return step


def figure_pure_form(repeats: int) -> None:
    if BACKEND != "jax":
        return
    import jax

    x = _inputs()
    for name in MODELS:
        model = fresh(name, classifier_activation=None)
        pooling = ki.get_global_pooling_layer(model).name
        trainable, non_trainable = _values(model.trainable_variables), _values(model.non_trainable_variables)
        base = jax.jit(hand_written_pure_gradcam(model, pooling))
        explain = ki.stateless_gradients(model)
        cand = jax.jit(lambda t, n, x: explain(t, n, x).gradients[0])
        expected, got = ready(base(trainable, non_trainable, x)), ready(cand(trainable, non_trainable, x))
        np.testing.assert_allclose(ops.convert_to_numpy(got), ops.convert_to_numpy(expected), rtol=1e-3, atol=1e-6)
        seconds = paired(
            lambda: ready(base(trainable, non_trainable, x)),
            lambda: ready(cand(trainable, non_trainable, x)),
            2 * repeats,
        )
        emit(Row("12 pure-form Grad-CAM, jax.jit", name, f"batch {BATCH}, {size_of(model)}",
                 seconds[0] * 1e3, seconds[1] * 1e3, "ms", "<= 1.05", seconds[1] <= 1.05 * seconds[0]))
        del model, base, cand
        gc.collect()


def hand_written_jacobian(model: Any, pooling: str) -> Any:
    """``f(x, units) -> [gradients (batch, n, ...), feature map]``: one forward pass to the
    logits from the feature map, one pullback per unit (the map itself is returned, as a
    Grad-CAM needs it: otherwise a compiler may drop the forward pass, the gradient of a
    pooling and Dense head being independent of the map)."""
    body, head = ki.split(model, {"name": pooling, "link": "input"})

    def picked(logits: Any, units: Any) -> Any:
        return ops.take_along_axis(logits, units, axis=-1)  # (batch, n)

    if BACKEND == "jax":
        import jax

        def jax_jacobian(x: Any, units: Any) -> Any:
            features = body(x, training=False)
            scores, pullback = jax.vjp(lambda f: picked(head(f, training=False), units), features)
            cotangents = jax.numpy.broadcast_to(jax.numpy.eye(UNITS)[:, None, :], (UNITS, *scores.shape))
            (grads,) = jax.vmap(pullback)(cotangents)
            return [jax.numpy.moveaxis(grads, 0, 1), features]

        return jax_jacobian
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def tape_jacobian(x: Any, units: Any) -> Any:
            features = body(x, training=False)
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(features)
                scores = picked(head(features, training=False), units)
                columns = [tf.reduce_sum(scores[:, k]) for k in range(UNITS)]
            return [tf.stack([tape.gradient(c, features) for c in columns], axis=1), features]

        return tape_jacobian
    import torch

    def autograd_jacobian(x: Any, units: Any) -> Any:
        with torch.no_grad():
            features = body(x, training=False)
        features = features.detach().requires_grad_(True)
        scores = picked(head(features, training=False), units)
        grads = [
            torch.autograd.grad(scores[:, k].sum(), features, retain_graph=k < UNITS - 1)[0]
            for k in range(UNITS)
        ]
        return [torch.stack(grads, dim=1), features.detach()]

    return autograd_jacobian


def figure_units(repeats: int) -> None:
    x = _inputs()
    units_np = np.random.default_rng(2).integers(0, 1000, size=(BATCH, UNITS)).astype("int32")
    units = ops.convert_to_tensor(units_np)
    model = fresh("ResNet50V2", classifier_activation=None)
    pooling = ki.get_global_pooling_layer(model).name
    size = f"batch {BATCH} x {UNITS} units, {size_of(model)}"
    jacobian = hand_written_jacobian(model, pooling)

    def pair(x: Any, u: Any) -> list[Any]:
        result = ki.gradients(model, x, target=u)
        return [result.gradients[0], result.signals[0]]

    def several() -> Any:
        return ready(pair(x, units))

    def singles() -> Any:
        return [ready(pair(x, units[:, k])) for k in range(UNITS)]

    def by_hand() -> Any:
        return ready(jacobian(x, units))

    for got, expected in zip(several(), by_hand()):
        np.testing.assert_allclose(ops.convert_to_numpy(got), ops.convert_to_numpy(expected), rtol=1e-3, atol=1e-6)
    single, together = paired(singles, several, 2 * repeats)
    emit(Row(f"13 {UNITS} units per example vs {UNITS} calls", "ResNet50V2", size,
             single * 1e3, together * 1e3, "ms", "-", None))
    hand, together = paired(by_hand, several, 2 * repeats)
    emit(Row(f"13 {UNITS} units per example vs a batch Jacobian", "ResNet50V2", size,
             hand * 1e3, together * 1e3, "ms", "<= 1.2", together <= 1.2 * hand))
    if compiled(by_hand) is not None:
        base, cand = compiled(jacobian), compiled(pair)
        ready(base(x, units)), ready(cand(x, units))
        hand, together = paired(lambda: ready(base(x, units)), lambda: ready(cand(x, units)), 2 * repeats)
        emit(Row(f"13 {UNITS} units per example vs a batch Jacobian, compiled", "ResNet50V2", size,
                 hand * 1e3, together * 1e3, "ms", "<= 1.2", together <= 1.2 * hand))
    del model
    gc.collect()

