"""One forward and one backward pass with the running backend's own autodiff.

``value_and_gradients(f, zeros)`` calls ``f(deltas) -> (total, aux)`` once and differentiates
``total`` with respect to ``deltas`` at ``zeros``: ``tf.GradientTape`` on TensorFlow,
``jax.value_and_grad`` on JAX, ``torch.autograd.grad`` on PyTorch. Each works eagerly and inside
its backend's compiler (``tf.function``, ``jax.jit``). Only the running backend's library is
imported. A delta the total does not depend on gets a gradient of zeros.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import keras

#: ``f(deltas) -> (total, aux)``: a scalar to differentiate and what else the pass computed.
Forward = Callable[[list[Any]], tuple[Any, Any]]


def without_gradients() -> contextlib.AbstractContextManager[Any]:
    """A block whose operations the backend's autodiff need not record (PyTorch records every
    operation on weights that require gradients; TensorFlow's tape and JAX record nothing
    outside the differentiated call)."""
    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def value_and_gradients(forward: Forward, zeros: Sequence[Any]) -> tuple[Any, list[Any]]:
    """``(aux, [d total / d delta for each delta])`` at ``deltas = zeros``."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow(forward, list(zeros))
    if backend == "jax":
        return _jax(forward, list(zeros))
    if backend == "torch":
        return _torch(forward, list(zeros))
    raise ValueError(
        f"gradients need the backend's autodiff; the Keras backend {backend!r} is not one of "
        "tensorflow, jax, torch."
    )


def _tensorflow(forward: Forward, zeros: list[Any]) -> tuple[Any, list[Any]]:
    import tensorflow as tf

    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(zeros)
        total, aux = forward(zeros)
    grads = tape.gradient(total, zeros, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return aux, list(grads)


def _jax(forward: Forward, zeros: list[Any]) -> tuple[Any, list[Any]]:
    import jax

    (_, aux), grads = jax.value_and_grad(forward, has_aux=True)(zeros)
    return aux, list(grads)


def _torch(forward: Forward, zeros: list[Any]) -> tuple[Any, list[Any]]:
    import torch

    with torch.enable_grad():
        leaves = [z.detach().requires_grad_(True) for z in zeros]
        total, aux = forward(leaves)
        if total.requires_grad:
            grads = torch.autograd.grad(total, leaves, allow_unused=True)
        else:  # the total depends on no delta at all
            grads = [None] * len(leaves)
    grads = [torch.zeros_like(z) if g is None else g for g, z in zip(grads, zeros)]
    # The pass's values leave without the autograd graph that produced them.
    aux = keras.tree.map_structure(
        lambda t: t.detach() if isinstance(t, torch.Tensor) else t, aux
    )
    return aux, grads
