"""Figures 9-11: transformers and language models, against what an expert writes by hand.

9. Token attributions for a 64-token prompt on a small Llama: layer integrated gradients at the
   token embeddings, 32 steps in one batched call, the score being the log-probability of a
   continuation. keras-inspect: ``ki.gradients(..., replace=[(embeddings, path)])``. By hand:
   keras-hub's own ``CausalLM.score(..., layer_intercept_fn=...)`` putting the path in place of
   the embeddings, differentiated with the backend's autodiff. Eager, and compiled on JAX and
   TensorFlow.
10. An intervention (the last block's output replaced by given values) against the plain
    forward pass of the same model, through ``ki.intervene``.
11. Resident memory over 100 attribution calls with random prompt lengths, against the
    hand-written computation over the same lengths.
"""

from __future__ import annotations

import gc
from typing import Any

import keras
import numpy as np
from keras import ops

import keras_inspect as ki
from common import Row, emit, paired, rss_mb
from handwritten import BACKEND, compiled, ready

PROMPT, STEPS, VOCABULARY, TOKEN = 64, 32, 512, 17
EMBEDDING = {"role": "token_embedding"}


def small_llama() -> Any:
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.LlamaBackbone(
        vocabulary_size=VOCABULARY, num_layers=2, num_query_heads=4, num_key_value_heads=2,
        hidden_dim=64, intermediate_dim=128,
    )  # fmt: skip
    return keras_hub.models.LlamaCausalLM(backbone=backbone, preprocessor=None)


def _prompt(length: int, seed: int = 0) -> dict[str, Any]:
    tokens = np.random.default_rng(seed).integers(1, VOCABULARY, size=(1, length)).astype("int32")
    return {"token_ids": tokens, "padding_mask": np.ones_like(tokens)}


def _score(logits: Any) -> Any:
    return ops.log_softmax(logits[:, -1, :], axis=-1)[:, TOKEN]


def _path(model: Any, prompt: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The batched inputs and the points of the path from zero to the prompt's embeddings."""
    values = ops.convert_to_numpy(ki.expose(model, arguments=EMBEDDING, outputs=[])(prompt))
    alphas = (np.arange(STEPS, dtype="float32") + 0.5) / STEPS
    batch = {k: ops.convert_to_tensor(np.repeat(v, STEPS, axis=0)) for k, v in prompt.items()}
    return batch, ops.convert_to_tensor(alphas[:, None, None] * values)


def by_hand(model: Any) -> Any:
    """``f(batch, path) -> gradient at the path``: keras-hub's interception of the embeddings
    (index -1 of ``layer_intercept_fn``), differentiated by the backend."""

    def total(batch: dict[str, Any], path: Any) -> Any:
        def intercept(x: Any, index: int) -> Any:
            return path if index == -1 else x

        logits = model.score(
            token_ids=batch["token_ids"], padding_mask=batch["padding_mask"],
            scoring_mode="logits", layer_intercept_fn=intercept,
        )  # fmt: skip
        return ops.sum(_score(logits))

    if BACKEND == "jax":
        import jax

        return jax.grad(total, argnums=1)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def tape(batch: dict[str, Any], path: Any) -> Any:
            with tf.GradientTape() as recorder:
                recorder.watch(path)
                value = total(batch, path)
            return recorder.gradient(value, path)

        return tape
    import torch

    def autograd(batch: dict[str, Any], path: Any) -> Any:
        leaf = path.detach().requires_grad_(True)
        return torch.autograd.grad(total(batch, leaf), leaf)[0]

    return autograd


def with_keras_inspect(model: Any) -> Any:
    def gradient(batch: dict[str, Any], path: Any) -> Any:
        return ki.gradients(model, batch, EMBEDDING, _score, replace=[(EMBEDDING, path)]).gradients[0]

    return gradient


def _close(name: str, base: Any, cand: Any) -> None:
    b, c = ops.convert_to_numpy(base), ops.convert_to_numpy(cand)
    np.testing.assert_allclose(c, b, rtol=1e-3, atol=1e-4 * (float(np.abs(b).max()) or 1.0), err_msg=name)


def figure_token_attributions(repeats: int) -> None:
    model = small_llama()
    batch, path = _path(model, _prompt(PROMPT))
    size = f"{PROMPT} tokens x {STEPS} steps, {model.count_params() / 1e6:.2f}M params"
    modes = ["eager", "compiled"] if BACKEND in ("tensorflow", "jax") else ["eager"]
    for mode in modes:
        base, cand = by_hand(model), with_keras_inspect(model)
        if mode == "compiled":
            base, cand = compiled(base), compiled(cand)
        _close(f"9 token attributions, {mode}", ready(base(batch, path)), ready(cand(batch, path)))
        seconds = paired(lambda: ready(base(batch, path)), lambda: ready(cand(batch, path)), 2 * repeats)
        emit(Row(f"9 token attributions (layer IG), {mode}", "Llama", size, seconds[0] * 1e3,
                 seconds[1] * 1e3, "ms", "<= 1.2", seconds[1] <= 1.2 * seconds[0]))
        gc.collect()


def figure_intervention(repeats: int) -> None:
    model = small_llama()
    prompt = {k: ops.convert_to_tensor(np.repeat(v, 8, axis=0)) for k, v in _prompt(PROMPT).items()}
    block = [e.name for e in ki.walk(model) if len(e.path) == 2 and "Decoder" in type(e.layer).__name__][-1]
    values = ops.convert_to_tensor(np.zeros((8, PROMPT, 64), "float32"))
    ki.intervene(model, prompt, replace={block: values})  # builds the edited model once
    seconds = paired(
        lambda: ready(model(prompt, training=False)),
        lambda: ready(ki.intervene(model, prompt, replace={block: values}).outputs),
        2 * repeats,
    )
    emit(Row("10 intervention vs forward, eager", "Llama", f"batch 8 x {PROMPT} tokens",
             seconds[0] * 1e3, seconds[1] * 1e3, "ms", "<= 1.1", seconds[1] <= 1.1 * seconds[0]))


def figure_lengths_memory(calls: int = 100) -> None:
    model = small_llama()
    lengths = np.random.default_rng(1).integers(8, PROMPT + 1, size=calls)
    base, cand = by_hand(model), with_keras_inspect(model)
    inputs = [_path(model, _prompt(int(n), seed=i)) for i, n in enumerate(lengths)]
    for batch, path in inputs[:3]:
        ready(base(batch, path))
        ready(cand(batch, path))
    growth = []
    for run in (base, cand):
        gc.collect()
        start = rss_mb()
        for batch, path in inputs:
            ready(run(batch, path))
        gc.collect()
        growth.append(rss_mb() - start)
    emit(Row(f"11 RSS growth, {calls} calls, random lengths", "Llama", "8 to 64 tokens",
             growth[0], growth[1], "MB", "<= hand + 20 MB", growth[1] <= growth[0] + 20))
