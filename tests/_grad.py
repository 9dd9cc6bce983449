"""Real gradients of a model's output w.r.t. its input and its intermediate signals, per backend.

``df/dz`` for an intermediate signal ``z`` is, by definition, the derivative of ``f`` w.r.t. an
additive perturbation of ``z``. The helper re-runs the model's graph eagerly, adding a zero tensor
``delta`` to every signal the model returns after its first output, and differentiates w.r.t.
the input and those zeros with the backend's own autodiff (``tf.GradientTape``, ``jax.grad``,
``torch.autograd``). Nested graph models are entered, so a signal exposed from deep inside a
backbone is perturbed where it is computed, and everything downstream sees the perturbation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

Select = Callable[[Any], Any]


def _graph(model: Any) -> Any:
    return model._functional if isinstance(model, keras.Sequential) else model


def _is_graph_model(op: Any) -> bool:
    if isinstance(op, keras.Sequential):
        return getattr(op, "_functional", None) is not None
    return isinstance(op, keras.Model) and getattr(op, "_nodes_by_depth", None) is not None


def run_with_taps(model: Any, inputs: list[Any], taps: dict[int, Any]) -> list[Any]:
    """Run ``model``'s graph on concrete ``inputs``; ``taps`` maps a symbolic tensor's id to a
    tensor added to that signal where it is produced. Returns the flat list of outputs."""
    graph = _graph(model)
    values: dict[int, Any] = {}
    for symbolic, value in zip(keras.tree.flatten(graph.inputs), inputs):
        values[id(symbolic)] = value + taps[id(symbolic)] if id(symbolic) in taps else value
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if node.is_input:
                continue
            args, kwargs = node.arguments.fill_in(values)
            op = node.operation
            tapped = [id(t) in taps for t in node.outputs]
            if any(tapped) and _is_graph_model(op):
                inner = {
                    id(i): taps[id(o)]
                    for i, o in zip(keras.tree.flatten(_graph(op).outputs), node.outputs)
                    if id(o) in taps
                }
                results = run_with_taps(op, keras.tree.flatten((args, kwargs)), inner)
            else:
                results = [
                    r + taps[id(o)] if id(o) in taps else r
                    for r, o in zip(keras.tree.flatten(op(*args, **kwargs)), node.outputs)
                ]
            for symbolic, value in zip(node.outputs, results):
                values[id(symbolic)] = value
    return [values[id(t)] for t in keras.tree.flatten(graph.outputs)]


def output_and_gradients(
    model: Any, x: np.ndarray, select: Select
) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
    """For a model returning ``[y, *signals]``: its outputs, ``dF/dx`` and ``dF/dsignal`` each,
    where ``F = sum(select(y))`` (``select`` maps ``y`` to one scalar per sample)."""
    signals = keras.tree.flatten(model.outputs)[1:]
    shapes = [(x.shape[0], *s.shape[1:]) for s in signals]

    def forward(x_: Any, deltas: list[Any]) -> tuple[Any, list[Any]]:
        taps = {id(s): d for s, d in zip(signals, deltas)}
        outputs = run_with_taps(model, [x_], taps)
        return ops.sum(select(outputs[0])), outputs

    zeros = [np.zeros(s, dtype=x.dtype) for s in shapes]
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x_t = tf.constant(x)
        deltas = [tf.constant(z) for z in zeros]
        with tf.GradientTape() as tape:
            tape.watch([x_t, *deltas])
            total, outputs = forward(x_t, deltas)
        grads = tape.gradient(total, [x_t, *deltas])
    elif backend == "jax":
        import jax

        (total, outputs), grads = jax.value_and_grad(forward, argnums=(0, 1), has_aux=True)(
            x, zeros
        )
        grads = [grads[0], *grads[1]]
    elif backend == "torch":
        import torch

        x_t = torch.tensor(x, requires_grad=True)
        deltas = [torch.tensor(z, requires_grad=True) for z in zeros]
        total, outputs = forward(x_t, deltas)
        grads = list(torch.autograd.grad(total, [x_t, *deltas], allow_unused=True))
    else:
        raise ValueError(f"no gradient helper for backend {backend!r}")
    # A signal the output does not depend on gets no gradient (None) from TF and torch.
    grads = [
        np.zeros_like(z) if g is None else ops.convert_to_numpy(g)
        for g, z in zip(grads, [x, *zeros])
    ]
    return [ops.convert_to_numpy(o) for o in outputs], grads[0], grads[1:]
