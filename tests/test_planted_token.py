"""Token attributions find the token that decides the label, and only on a trained model.

A small transformer text classifier is trained for seconds on a synthetic task: every sequence
is noise tokens with one planted token at a random position, and the planted token alone
decides the label. Layer integrated gradients at the token embeddings (through ``gradients``
with ``replace=``, every step in one batched call) must peak at the planted token for nearly
every held-out sequence; for the same architecture with randomised weights, no more often than
chance (the model randomisation check of explanation methods).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

import keras_inspect as ki
from conftest import to_numpy

LENGTH, NOISE, HIDDEN = 12, 24, 16
PLANTED = (NOISE, NOISE + 1)  # token ids: the first means label 0, the second label 1
STEPS = 16


def _data(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, NOISE, size=(count, LENGTH))
    where = rng.integers(0, LENGTH, size=count)
    labels = rng.integers(0, 2, size=count)
    tokens[np.arange(count), where] = np.asarray(PLANTED)[labels]
    return tokens.astype("int32"), labels.astype("int32"), where


def _classifier(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    tokens = keras.Input((LENGTH,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(NOISE + 2, HIDDEN, name="token_embedding")(tokens)
    attended = keras.layers.MultiHeadAttention(2, 8, name="attention")(x, x)
    x = keras.layers.LayerNormalization(name="norm")(keras.layers.Add(name="residual")([x, attended]))
    x = keras.layers.Dense(HIDDEN, activation="relu", name="mlp")(x)
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(tokens, keras.layers.Dense(2, name="logits")(pooled), name="planted")


def _attributions(model: keras.Model, tokens: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Integrated gradients at the token embeddings (zero baseline), per token."""
    embedding = {"role": "token_embedding"}
    values = to_numpy(ki.expose(model, arguments=embedding, outputs=[])(tokens))
    alphas = (np.arange(STEPS, dtype="float32") + 0.5) / STEPS
    count = len(tokens)
    path = (alphas[:, None, None, None] * values[None]).reshape(STEPS * count, LENGTH, HIDDEN)
    result = ki.gradients(
        model,
        np.tile(tokens, (STEPS, 1)),
        embedding,
        target=np.tile(labels, STEPS),
        replace=[(embedding, path)],
    )
    grads = to_numpy(result.gradients[0]).reshape(STEPS, count, LENGTH, HIDDEN).mean(axis=0)
    return (values * grads).sum(axis=-1)


def _peaks_at_planted(model: keras.Model, data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
    tokens, labels, where = data
    attributions = _attributions(model, tokens, labels)
    return float(np.mean(attributions.argmax(axis=1) == where))


@pytest.fixture(scope="module")
def trained() -> keras.Model:
    model = _classifier(seed=3)
    tokens, labels, _ = _data(3000, seed=1)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(tokens, labels, batch_size=64, epochs=6, verbose=0)
    return model


def test_the_task_is_learned(trained: keras.Model) -> None:
    tokens, labels, _ = _data(200, seed=2)
    accuracy = np.mean(to_numpy(trained(tokens)).argmax(axis=1) == labels)
    assert accuracy > 0.97  # far above the 0.5 of guessing: the planted token is used


def test_attributions_peak_at_the_planted_token(trained: keras.Model) -> None:
    assert ki.find_layer_with(trained, role="token_embedding").name == "token_embedding"
    assert _peaks_at_planted(trained, _data(200, seed=2)) >= 0.9


MODELS = 40


def test_randomised_weights_find_the_planted_token_no_more_than_chance() -> None:
    """One randomised model tends to favour some token ids over others (whichever embeddings
    its random weights amplify), so its rate is near 0 or far above chance; by symmetry its
    expected rate is chance. The mean over many randomised models is compared with chance,
    with a margin of three standard errors of the worst case (each model's rate all or
    nothing)."""
    data = _data(50, seed=2)
    rates = [_peaks_at_planted(_classifier(seed=100 + k), data) for k in range(MODELS)]
    chance = 1 / LENGTH
    assert np.mean(rates) <= chance + 3 * np.sqrt(chance * (1 - chance) / MODELS)
