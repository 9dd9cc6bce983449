"""Transformers and language models: right answers by default, any sequence length, interventions.

Every keras-hub causal LM, masked LM, text classifier and vision transformer family that builds
from a small config is enumerated (not a listed few): the logits of a causal LM come from its
token embedding called in reverse, those of a masked LM from its head, ``expose(model)``'s logits are ``model(x)``, and the defaults of ``expose``,
``gradients`` and ``get_target_layer`` work. The numbers are checked against identities: the
gradient at the final hidden states of ``logits[:, -1, c]`` is row ``c`` of the reverse
projection, integrated gradients are complete, patching a run with its own signal changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
from keras import ops

import _hub
import keras_inspect as ki
from conftest import to_numpy
from keras_inspect.graph.inspected import inspect_model

BACKEND = keras.backend.backend()
CAUSAL = _hub.families("causal_lm")
#: Families whose logits come from no reverse embedding call, and why (checked below as stated).
OWN_LOGITS = {
    "RWKV7CausalLM": "an untied Dense head",
    "PARSeqCausalLM": "a Dense layer of its decoder (a text recogniser)",
}
#: Families keras-inspect cannot serve by default, and why (the test checks the reason holds).
NOT_COVERED = {
    "Gemma3nCausalLM": "its logits are a matmul with a copy of the embedding table made when the "
    "model is built: no layer computes them",
    "Gemma4AssistantCausalLM": _hub.UNBUILDABLE["Gemma4AssistantCausalLM"],
}


def _close(a: Any, b: Any, tol: float = 1e-5) -> None:
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=tol, atol=tol)


def compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    if BACKEND == "jax":
        import jax

        return jax.jit(function)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    pytest.skip("compiled runs are checked with jax.jit and tf.function; torch runs eagerly")


def test_every_causal_lm_family_is_enumerated_and_counted(capsys: pytest.CaptureFixture) -> None:
    covered = [f for f in CAUSAL if f not in NOT_COVERED]
    assert {"GPT2CausalLM", "LlamaCausalLM", "GemmaCausalLM", "MistralCausalLM"} <= set(covered)
    with capsys.disabled():
        print(
            f"\ncausal LM families: {len(CAUSAL)} exported, {len(covered)} covered, not covered: "
            + ", ".join(f"{f} ({why})" for f, why in NOT_COVERED.items() if f in CAUSAL)
        )


@pytest.mark.parametrize("family", CAUSAL)
def test_causal_lm_logits_are_the_reverse_token_embedding(family: str) -> None:
    model = _hub.build(family, "causal_lm")
    x = _hub.inputs(model, length=7)
    if family in _hub.UNBUILDABLE:
        with pytest.raises(NotImplementedError):
            model(x)
        return
    logits = ki.get_logits_layer(model)
    if family in NOT_COVERED:
        # No layer's output is the model's output: an operation computes the logits.
        found = to_numpy(ki.expose(model, outputs=[logits], arguments=[])(x))
        wanted = to_numpy(model(x))
        assert found.shape != wanted.shape or not np.allclose(found, wanted, atol=1e-4)
        return
    if family in OWN_LOGITS:
        assert isinstance(logits, keras.layers.Dense), OWN_LOGITS[family]
    else:
        assert logits is model.backbone.token_embedding
        assert isinstance(logits, keras.layers.ReversibleEmbedding)
    exposed_logits, hidden = ki.expose(model)(x)
    _close(exposed_logits, model(x))
    assert len(hidden.shape) == 3 and hidden.shape[0] == 2  # PaliGemma adds its image tokens
    target = ki.get_target_layer(model)
    assert isinstance(target, keras.layers.Layer) and not isinstance(target, keras.Model)
    result = ki.gradients(model, x)
    assert tuple(result.gradients[0].shape) == tuple(hidden.shape)
    assert to_numpy(result.gradients[0]).any()


@pytest.mark.parametrize("family", _hub.families("text_classifier"))
def test_text_classifier_defaults(family: str) -> None:
    model = _hub.build(family, "text_classifier")
    x = _hub.inputs(model, length=9)
    logits, tokens = ki.expose(model)(x)
    _close(logits, model(x))
    # The default feature map is the token sequence the classifier reduces.
    assert tuple(tokens.shape) == (2, 9, _hub.HIDDEN)
    assert not isinstance(ki.get_target_layer(model), keras.Model)
    result = ki.gradients(model, x, target=1)
    assert tuple(result.gradients[0].shape) == (2, 9, _hub.HIDDEN)
    # The token embedding (the input of token attributions) is found, at its lookup, and
    # differentiated there, inside a layer without a graph too (TokenAndPositionEmbedding), at
    # a length no layer was built for.
    embedding = ki.find_layer_with(model, role="token_embedding")
    assert embedding is model.backbone.token_embedding
    at_tokens = ki.gradients(model, x, [{"role": "token_embedding"}], target=1)
    assert tuple(at_tokens.gradients[0].shape) == (2, 9, embedding.output_dim)
    assert to_numpy(at_tokens.gradients[0]).any()


@pytest.mark.parametrize("family", _hub.families("masked_lm"))
def test_masked_lm_defaults(family: str) -> None:
    model = _hub.build(family, "masked_lm")
    x = _hub.inputs(model, length=9)
    # The logits come from the head, a subclassed layer that calls the token embedding in
    # reverse; never from a layer inside it.
    logits_layer = ki.get_logits_layer(model)
    assert logits_layer in model.layers and logits_layer is not model.backbone
    logits, tokens = ki.expose(model)(x)
    _close(logits, model(x))
    assert tuple(tokens.shape) == (2, 9, _hub.HIDDEN)  # the encoder's token sequence
    # The token embedding is taken where it looks tokens up (the backbone), not in the head
    # that holds it for its reverse call.
    embedding = ki.find_layer_with(model, role="token_embedding")
    assert embedding is model.backbone.token_embedding
    (chosen,) = [c for c in ki.summary(model).chosen if c.role == "token_embedding"]
    assert chosen.path[0] == model.backbone.name
    # Attributions to the embedded tokens for one masked position's vocabulary unit.
    result = ki.gradients(
        model, x, [{"role": "token_embedding"}], target=lambda scores: scores[:, 0, 3]
    )
    assert tuple(result.gradients[0].shape) == (2, 9, embedding.output_dim)
    assert to_numpy(result.gradients[0]).any()


def _seq2seq(family: str) -> Any:
    import keras_hub

    keras.utils.set_random_seed(0)
    shared = dict(vocabulary_size=_hub.VOCAB, num_layers=1, num_heads=2, hidden_dim=_hub.HIDDEN,
                  intermediate_dim=2 * _hub.HIDDEN)  # fmt: skip
    if family == "BartSeq2SeqLM":
        backbone = keras_hub.models.BartBackbone(**shared, max_sequence_length=32)
    else:
        backbone = keras_hub.models.T5Backbone(**shared, key_value_dim=8)
    return getattr(keras_hub.models, family)(backbone=backbone, preprocessor=None)


@pytest.mark.parametrize("family", ["BartSeq2SeqLM", "T5Seq2SeqLM"])
def test_encoder_decoder_defaults_and_either_side_s_tokens(family: str) -> None:
    model = _seq2seq(family)
    rng = np.random.default_rng(0)
    x = {
        "encoder_token_ids": rng.integers(1, _hub.VOCAB, (2, 6)),
        "encoder_padding_mask": np.ones((2, 6), "int32"),
        "decoder_token_ids": rng.integers(1, _hub.VOCAB, (2, 5)),
        "decoder_padding_mask": np.ones((2, 5), "int32"),
    }
    embedding = model.backbone.token_embedding
    assert ki.get_logits_layer(model) is embedding  # called in reverse at the top
    logits, hidden = ki.expose(model)(x)
    _close(logits, model(x))
    assert tuple(hidden.shape) == (2, 5, _hub.HIDDEN)  # the decoder's final hidden states
    # One embedding looks up both sides' tokens: the role is its last call (the decoder's), and
    # the encoder's lookup is its first call inside the backbone.
    path = f"{model.backbone.name}/{embedding.name}"
    score = lambda scores: scores[:, -1, 3]  # noqa: E731
    decoder = ki.gradients(model, x, [{"role": "token_embedding"}], target=score).gradients[0]
    encoder = ki.gradients(model, x, [{"name": path, "node": 0}], target=score).gradients[0]
    assert tuple(decoder.shape) == (2, 5, _hub.HIDDEN) and to_numpy(decoder).any()
    assert tuple(encoder.shape) == (2, 6, _hub.HIDDEN) and to_numpy(encoder).any()


@pytest.mark.parametrize("family", _hub.families("image_classifier"))
def test_vision_transformer_defaults(family: str) -> None:
    model = _hub.build(family, "image_classifier")
    x = _hub.inputs(model)
    logits, tokens = ki.expose(model)(x)
    _close(logits, model(x))
    assert len(tokens.shape) == 3  # tokens, before the model reduces them
    assert not isinstance(ki.get_target_layer(model), keras.Model)
    result = ki.gradients(model, x, target=0)
    assert to_numpy(result.gradients[0]).any()


# -- the reverse projection identity, at any sequence length ------------------------------------

IDENTITY_FAMILIES = ["GPT2CausalLM", "LlamaCausalLM"]  # tied, untied


def _reverse_row(model: Any, unit: int) -> np.ndarray:
    embedding = model.backbone.token_embedding
    if embedding.tie_weights:
        return to_numpy(embedding.embeddings)[unit]
    return to_numpy(embedding.reverse_embeddings)[:, unit]


@pytest.mark.parametrize("family", IDENTITY_FAMILIES)
@pytest.mark.parametrize("how", ["eager", "compiled"])
def test_gradient_at_final_hidden_states_is_the_reverse_projection_row(family: str, how: str) -> None:
    model = _hub.build(family, "causal_lm")
    unit = 5
    run = lambda x: ki.gradients(model, x, target=lambda logits: logits[:, -1, unit])  # noqa: E731
    call = compiled(lambda x: run(x).gradients[0]) if how == "compiled" else (lambda x: run(x).gradients[0])
    row = _reverse_row(model, unit)
    for length in (5, 9):
        x = _hub.inputs(model, length=length, seed=length)
        gradient = to_numpy(call(x))
        assert gradient.shape == (2, length, _hub.HIDDEN)
        np.testing.assert_allclose(gradient[:, -1], np.broadcast_to(row, (2, _hub.HIDDEN)), atol=1e-5)
        assert not gradient[:, :-1].any()


def test_shapes_inferred_per_length_are_kept_with_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    from keras_inspect.signals import edits

    monkeypatch.setattr(edits, "SHAPES_KEPT", 3)  # the bound, made small enough to reach
    model = _hub.build("GPT2CausalLM", "causal_lm")
    kept = inspect_model(model).cache("edit_shapes")
    for length in range(2, 9):
        result = ki.gradients(model, _hub.inputs(model, length=length, batch=1), target=0)
        assert tuple(result.gradients[0].shape) == (1, length, _hub.HIDDEN)
        assert len(kept) == min(length - 1, 3)


# -- integrated gradients at the token embeddings -------------------------------------------------


def _continuation_score(token: int) -> Callable[[Any], Any]:
    """The log-probability of ``token`` after the prompt (a score per example)."""
    return lambda logits: ops.log_softmax(logits[:, -1, :], axis=-1)[:, token]


def token_attributions(model: Any, x: dict, token: int, steps: int) -> tuple[np.ndarray, float]:
    """Layer integrated gradients at the token embeddings, every step in one batched call:
    per-token attributions of one prompt, and the difference of the scores at the prompt and at
    the baseline (the embeddings of token 0, the padding token, at every position)."""
    embedding = {"role": "token_embedding"}
    embed = ki.expose(model, arguments=embedding, outputs=[])
    values = to_numpy(embed(x))
    baseline = to_numpy(embed({**x, "token_ids": np.zeros_like(x["token_ids"])}))
    alphas = (np.arange(steps, dtype="float32") + 0.5) / steps  # midpoints
    path = baseline + alphas[:, None, None] * (values - baseline)
    batch = {k: np.repeat(v, steps, axis=0) for k, v in x.items()}
    # A dict descriptor is no dict key: edits take (descriptor, values) pairs too.
    result = ki.gradients(model, batch, embedding, _continuation_score(token), replace=[(embedding, path)])
    grads = to_numpy(result.gradients[0]).mean(axis=0)
    attributions = ((values - baseline)[0] * grads).sum(axis=-1)
    ends = ki.gradients(
        model,
        {k: np.repeat(v, 2, axis=0) for k, v in x.items()},
        embedding,
        _continuation_score(token),
        replace=[(embedding, np.concatenate([values, baseline]))],
    )
    scores = to_numpy(ends.scores)
    return attributions, float(scores[0] - scores[1])


@pytest.mark.parametrize("family", ["LlamaCausalLM", "GPT2CausalLM"])
def test_integrated_gradients_at_token_embeddings_are_complete(family: str) -> None:
    model = _hub.build(family, "causal_lm")
    x = _hub.inputs(model, length=6, batch=1, seed=3)
    attributions, difference = token_attributions(model, x, token=11, steps=64)
    assert attributions.shape == (6,)
    assert abs(difference) > 1e-3  # something to attribute
    assert abs(attributions.sum() - difference) <= 0.01 * abs(difference)


# -- interventions --------------------------------------------------------------------------------


def _last_block(model: Any) -> str:
    """The path of a language model's last decoder block (a direct sub-layer of its backbone)."""
    blocks = [e.name for e in ki.walk(model) if len(e.path) == 2 and "Decoder" in type(e.layer).__name__]
    return blocks[-1]


def test_patching_a_signal_with_its_own_value_changes_nothing() -> None:
    model = _hub.build("GPT2CausalLM", "causal_lm")
    x = _hub.inputs(model, length=6)
    block = _last_block(model)
    value = ki.expose(model, arguments=block, outputs=[])(x)
    # "token_embedding" at the top level is its reverse call: the logits, read after the edit.
    same = ki.intervene(model, x, ["token_embedding"], replace={block: value})
    _close(same.outputs, model(x), tol=1e-6)
    _close(same.signals[0], model(x), tol=1e-6)


def test_patching_the_last_block_from_run_a_into_run_b_gives_run_a_s_logits() -> None:
    model = _hub.build("GPT2CausalLM", "causal_lm")
    a, b = _hub.inputs(model, length=6, seed=1), _hub.inputs(model, length=6, seed=2)
    block = _last_block(model)
    from_a = ki.expose(model, arguments=block, outputs=[])(a)
    patched = ki.intervene(model, b, replace={block: from_a})
    _close(patched.outputs, model(a), tol=1e-5)
    assert not np.allclose(to_numpy(model(a)), to_numpy(model(b)), atol=1e-4)


@pytest.mark.parametrize("how", ["eager", "compiled"])
def test_an_intervention_and_its_gradient_compile(how: str) -> None:
    model = _hub.build("LlamaCausalLM", "causal_lm")
    x = _hub.inputs(model, length=5)
    block = _last_block(model)
    zeros = np.zeros((2, 5, _hub.HIDDEN), "float32")

    def run(x: Any) -> Any:
        patched = ki.intervene(model, x, replace={block: zeros})
        grads = ki.gradients(model, x, block, target=3, add={block: zeros})
        return patched.outputs, grads.gradients[0]

    call = compiled(run) if how == "compiled" else run
    outputs, gradient = call(x)
    eager_outputs, eager_gradient = run(x)
    _close(outputs, eager_outputs)
    _close(gradient, eager_gradient)
    # Replacing the last block's output by zeros leaves logits that depend on no token.
    assert np.allclose(to_numpy(outputs)[0], to_numpy(outputs)[1], atol=1e-5)


def test_bad_interventions_are_explained() -> None:
    model = _hub.build("GPT2CausalLM", "causal_lm")
    x = _hub.inputs(model, length=4)
    with pytest.raises(ValueError, match="at least one edit"):
        ki.intervene(model, x)
    with pytest.raises(ValueError, match=r"shape \(2, 4, 3\)"):
        ki.intervene(model, x, replace={"token_embedding": np.zeros((2, 4, 3), "float32")})
    with pytest.raises(TypeError, match="floating point"):
        ki.intervene(model, x, replace={_last_block(model): np.zeros((2, 4, _hub.HIDDEN), "int32")})
    with pytest.raises(TypeError, match="map signal descriptors"):
        ki.intervene(model, x, replace=[1, 2, 3])


# -- token geometry -----------------------------------------------------------------------------


def _vit(height: int, width: int) -> Any:
    keras.utils.set_random_seed(0)
    backbone = keras_hub_module().models.ViTBackbone(
        image_shape=(height, width, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32
    )
    return keras_hub_module().models.ViTImageClassifier(backbone=backbone, num_classes=3, preprocessor=None)


def keras_hub_module() -> Any:
    import keras_hub

    return keras_hub


def test_token_geometry_of_a_non_square_vit() -> None:
    model = _vit(32, 48)
    geometry = ki.token_geometry(model)
    assert (geometry.prefix_tokens, geometry.grid, geometry.patch_size) == (1, (4, 6), (8, 8))
    assert geometry.tokens == 25 and geometry.image_shape == (32, 48)
    # A block's tokens inside the encoder (reached by interception) have the same geometry.
    encoder = [e for e in ki.walk(model) if e.name.endswith("transformer_block_1")][0]
    assert ki.token_geometry(model, encoder.name).grid == (4, 6)


def test_grad_cam_on_a_vit_through_the_token_geometry_equals_the_hand_written_reshape() -> None:
    model = _vit(32, 48)
    x = np.random.default_rng(0).uniform(size=(2, 32, 48, 3)).astype("float32")
    geometry = ki.token_geometry(model)
    result = ki.gradients(model, x, geometry.signal, target=2)
    weights = ops.mean(geometry.to_spatial(result.gradients[0]), axis=(1, 2), keepdims=True)
    cam = ops.relu(ops.sum(weights * geometry.to_spatial(result.signals[0]), axis=-1))
    tokens, grads = to_numpy(result.signals[0]), to_numpy(result.gradients[0])
    by_hand_tokens = tokens[:, 1:, :].reshape(2, 4, 6, 16)
    by_hand_grads = grads[:, 1:, :].reshape(2, 4, 6, 16)
    by_hand = np.maximum((by_hand_grads.mean(axis=(1, 2), keepdims=True) * by_hand_tokens).sum(-1), 0)
    _close(cam, by_hand, tol=1e-6)
    assert to_numpy(geometry.prefix(result.signals[0])).shape == (2, 1, 16)


def test_token_geometry_refuses_what_is_no_patch_sequence() -> None:
    model = _vit(32, 32)
    with pytest.raises(ValueError, match="tokens"):
        ki.token_geometry(model).to_spatial(np.zeros((2, 9, 16), "float32"))
    text = _hub.build("BertTextClassifier", "text_classifier")
    with pytest.raises(ki.NoMatchingLayerError, match="patch"):
        ki.token_geometry(text)
