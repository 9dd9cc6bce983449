"""The gradients an expert writes by hand on each backend: the baselines of figures 7 and 8.

Each function returns a callable ``f(x) -> list of gradients`` over the running backend's tensors.
:func:`compiled` compiles such a callable the way that backend's users do (``tf.function`` with
XLA, ``jax.jit``), the two compilers ``ki.gradients`` supports; on PyTorch the figures are eager
only. :func:`ready` waits for a result: JAX dispatches asynchronously, and a timed call must
include the work it started.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras

import keras_inspect as ki

Grads = Callable[[Any], list[Any]]
BACKEND = keras.backend.backend()


def compiled(fn: Grads) -> Grads | None:
    """``fn`` compiled by the backend's compiler, or ``None`` where the figure is eager only."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    return None


def ready(value: Any) -> Any:
    if BACKEND == "jax":
        import jax

        return jax.block_until_ready(value)
    return value


def _top_logit_sum(logits: Any) -> Any:
    # ki.gradients' default target: each example's top logit, summed over the batch.
    return keras.ops.sum(keras.ops.max(logits, axis=-1))


def gradcam(model: Any, pooling: str) -> Grads:
    """The gradient of each example's top logit at the input of the layer ``pooling``.

    ``model`` ends in its logits (no fused softmax), so every backend's version is plain Keras
    plus the backend's autodiff.
    """
    if BACKEND == "jax":
        import jax

        # JAX cannot differentiate with respect to an intermediate value: cut the model there.
        body, head = ki.split(model, {"name": pooling, "link": "input"})
        head_grad = jax.grad(lambda fmap: _top_logit_sum(head(fmap, training=False)))
        return lambda x: [head_grad(body(x, training=False))]
    exposed = keras.Model(model.inputs, [model.outputs[0], model.get_layer(pooling).input])
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def tape_gradcam(x: Any) -> list[Any]:
            # A default tape, as Keras' own Grad-CAM example writes it: it records every
            # operation that reads a trainable variable, so the whole forward pass.
            with tf.GradientTape() as tape:
                logits, fmap = exposed(x, training=False)
                score = _top_logit_sum(logits)
            return [tape.gradient(score, fmap)]

        return tape_gradcam
    if BACKEND == "torch":
        import torch

        def autograd_gradcam(x: Any) -> list[Any]:
            logits, fmap = exposed(x, training=False)
            return list(torch.autograd.grad(_top_logit_sum(logits), fmap))

        return autograd_gradcam
    raise ValueError(f"no hand-written gradients for the {BACKEND} backend")


def gradcam_watching_feature_map(model: Any, pooling: str) -> Grads:
    """TensorFlow's most economical hand-written Grad-CAM: the model cut at the feature map
    (as on JAX) and a tape that records only the head, watching the feature map."""
    import tensorflow as tf

    body, head = ki.split(model, {"name": pooling, "link": "input"})

    def split_gradcam(x: Any) -> list[Any]:
        fmap = body(x, training=False)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(fmap)
            score = _top_logit_sum(head(fmap, training=False))
        return [tape.gradient(score, fmap)]

    return split_gradcam


def fullgrad(model: Any, layers: Sequence[Any]) -> Grads:
    """The gradient of the top logits at the input and at the output of each of ``layers``.

    On JAX only the input gradient: a function's intermediate values are no differentiable
    inputs there, and the input gradient is the least any gradient method pays (the whole
    forward and backward pass).
    """
    if BACKEND == "jax":
        import jax

        input_grad = jax.grad(lambda x: _top_logit_sum(model(x, training=False)))
        return lambda x: [input_grad(x)]
    exposed = ki.expose(model, [{"layer": layer, "link": "pre_activation"} for layer in layers])
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def tape_fullgrad(x: Any) -> list[Any]:
            with tf.GradientTape() as tape:
                tape.watch(x)
                logits, *signals = exposed(x, training=False)
                score = _top_logit_sum(logits)
            return list(tape.gradient(score, [x, *signals]))

        return tape_fullgrad
    if BACKEND == "torch":
        import torch

        def autograd_fullgrad(x: Any) -> list[Any]:
            x = x.detach().requires_grad_(True)
            logits, *signals = exposed(x, training=False)
            return list(torch.autograd.grad(_top_logit_sum(logits), [x, *signals]))

        return autograd_fullgrad
    raise ValueError(f"no hand-written gradients for the {BACKEND} backend")
