"""One forward pass, and the backward passes it needs, with the running backend's own autodiff.

``value_and_gradients(f, points)`` calls ``f(points) -> (scores, aux)`` once and differentiates
the scores with respect to ``points``: ``tf.GradientTape`` on TensorFlow, ``jax.vjp`` on JAX,
``torch.autograd.grad`` on PyTorch. Scores of shape ``(batch,)`` give one gradient per point (of
their sum); scores of shape ``(batch, n)`` (several units per example) give gradients with a unit
axis after the batch axis, one backward pass per unit from the same forward pass (vectorised on
JAX). Each works eagerly and inside its backend's compiler. A point the scores do not depend on
gets zeros. With ``differentiable``, the computation stays recorded for an outer derivative
(double backpropagation: PyTorch then keeps the backward graph; TensorFlow's and JAX's outer
derivatives see through it anyway).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import keras

#: ``f(points) -> (scores, aux)``: scores ``(batch,)`` or ``(batch, n)``, and what else it computed.
Forward = Callable[[list[Any]], tuple[Any, Any]]


def without_gradients(differentiable: bool = False) -> contextlib.AbstractContextManager[Any]:
    """A block whose operations the backend's autodiff need not record (PyTorch records every
    operation on weights that require gradients; TensorFlow's tape and JAX record nothing
    outside the differentiated call). Recorded after all when the result must be
    ``differentiable`` with respect to the weights."""
    if keras.backend.backend() == "torch" and not differentiable:
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def value_and_gradients(
    forward: Forward,
    points: Sequence[Any],
    *,
    units: int | None = None,
    differentiable: bool = False,
) -> tuple[Any, list[Any]]:
    """``(aux, gradients)`` of the scores at ``points`` (see the module doc); ``units`` is ``n``
    for scores of shape ``(batch, n)``, ``None`` for ``(batch,)``."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow(forward, list(points), units)
    if backend == "jax":
        return _jax(forward, list(points), units)
    if backend == "torch":
        return _torch(forward, list(points), units, differentiable)
    raise ValueError(
        f"gradients need the backend's autodiff; the Keras backend {backend!r} is not one of "
        "tensorflow, jax, torch."
    )


def _unit_axis(stacked: Any) -> Any:
    """``(n, batch, ...)`` as ``(batch, n, ...)``."""
    return keras.ops.moveaxis(stacked, 0, 1)


def _tensorflow(forward: Forward, points: list[Any], units: int | None) -> tuple[Any, list[Any]]:
    import tensorflow as tf

    zero = tf.UnconnectedGradients.ZERO
    with tf.GradientTape(watch_accessed_variables=False, persistent=units is not None) as tape:
        tape.watch(points)
        scores, aux = forward(points)
        totals = (
            [tf.reduce_sum(scores)]
            if units is None
            else [tf.reduce_sum(scores[:, k]) for k in range(units)]
        )
    per_unit = [tape.gradient(total, points, unconnected_gradients=zero) for total in totals]
    del tape
    if units is None:
        return aux, list(per_unit[0])
    return aux, [_unit_axis(tf.stack(grads)) for grads in zip(*per_unit)]


def _jax(forward: Forward, points: list[Any], units: int | None) -> tuple[Any, list[Any]]:
    import jax
    import jax.numpy as jnp

    scores, pullback, aux = jax.vjp(forward, points, has_aux=True)
    if units is None:
        (grads,) = pullback(jnp.ones_like(scores))
        return aux, list(grads)
    # One pullback per unit, vectorised: the cotangent of unit k is 1 on column k.
    cotangents = jnp.broadcast_to(
        jnp.eye(units, dtype=scores.dtype)[:, None, :], (units, *scores.shape)
    )
    (grads,) = jax.vmap(pullback)(cotangents)
    return aux, [_unit_axis(g) for g in grads]


def _torch(
    forward: Forward, points: list[Any], units: int | None, differentiable: bool
) -> tuple[Any, list[Any]]:
    import torch

    with torch.enable_grad():
        leaves = [p.detach().requires_grad_(True) for p in points]
        scores, aux = forward(leaves)
        totals = [scores.sum()] if units is None else [scores[:, k].sum() for k in range(units)]
        per_unit = []
        for k, total in enumerate(totals):
            if total.requires_grad:
                keep = differentiable or k < len(totals) - 1
                found = torch.autograd.grad(
                    total, leaves, allow_unused=True, retain_graph=keep, create_graph=differentiable
                )
            else:  # the scores depend on no point at all
                found = (None,) * len(leaves)
            per_unit.append(
                [torch.zeros_like(p) if g is None else g for g, p in zip(found, points)]
            )
    if not differentiable:
        # The pass's values leave without the autograd graph that produced them.
        aux = keras.tree.map_structure(
            lambda t: t.detach() if isinstance(t, torch.Tensor) else t, aux
        )
    if units is None:
        return aux, per_unit[0]
    return aux, [_unit_axis(torch.stack(grads)) for grads in zip(*per_unit)]
