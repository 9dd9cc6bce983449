"""Small keras-hub task models built from configs (no presets, no downloads), for the tests.

``families(kind)`` lists every task class keras-hub exports for a kind (``"causal_lm"``,
``"masked_lm"``, ``"text_classifier"``, ``"image_classifier"``), one name per class; ``build(family, kind)`` builds
it with a tiny random backbone and ``preprocessor=None``; ``inputs(model, length)`` makes inputs of
a given sequence length from the model's own input names, shapes and dtypes.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras
import numpy as np

import keras_hub

VOCAB, HIDDEN, CLASSES, IMAGE = 64, 16, 3, 32

_DECODER = dict(vocabulary_size=VOCAB, num_layers=2, hidden_dim=HIDDEN, intermediate_dim=2 * HIDDEN)
_GROUPED = dict(_DECODER, num_query_heads=2, num_key_value_heads=1)
_GEMMA = dict(_GROUPED, head_dim=8)
_LINEAR_ATTENTION = dict(
    layer_types=["linear_attention", "full_attention"],
    linear_num_key_heads=2,
    linear_num_value_heads=2,
    linear_key_head_dim=4,
    linear_value_head_dim=4,
)


def _blip2() -> Any:
    from keras_hub.src.models.blip2.blip2_custom_opt import BLIP2CustomOPT

    language = BLIP2CustomOPT(
        vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=HIDDEN,
        intermediate_dim=2 * HIDDEN, num_query_tokens=0, qformer_hidden_dim=HIDDEN,
        max_sequence_length=64, dropout=0.0, language_projection=None,
    )  # fmt: skip
    return keras_hub.models.BLIP2Backbone(vision_encoder=None, qformer=None, language_model=language)


def _parseq() -> Any:
    from keras_hub.src.models.parseq.parseq_tokenizer import PARSeqTokenizer

    encoder = keras_hub.models.ViTBackbone(
        image_shape=(16, 32, 3), patch_size=(4, 8), num_layers=1, num_heads=2,
        hidden_dim=HIDDEN, mlp_dim=2 * HIDDEN, use_class_token=False, name="image_encoder",
    )  # fmt: skip
    return keras_hub.models.PARSeqBackbone(
        image_encoder=encoder, vocabulary_size=PARSeqTokenizer(max_label_length=8).vocabulary_size(),
        max_label_length=8, decoder_hidden_dim=HIDDEN, num_decoder_layers=1,
        num_decoder_heads=2, decoder_mlp_dim=2 * HIDDEN,
    )  # fmt: skip


#: Backbone arguments (or a backbone factory) per causal LM family.
CAUSAL_LM: dict[str, Any] = {
    "GPT2CausalLM": dict(_DECODER, num_heads=2, max_sequence_length=64),
    "OPTCausalLM": dict(_DECODER, num_heads=2, max_sequence_length=64),
    "GPTNeoXCausalLM": dict(_DECODER, num_heads=2, max_sequence_length=64),
    "BloomCausalLM": dict(_DECODER, num_heads=2),
    "FalconCausalLM": dict(_DECODER, num_attention_heads=2),
    "LlamaCausalLM": dict(_GROUPED),
    "Llama3CausalLM": dict(_GROUPED),
    "MistralCausalLM": dict(_GROUPED, sliding_window=16),
    "MixtralCausalLM": dict(_GROUPED, num_experts=2, top_k=1, sliding_window=16),
    "Phi3CausalLM": dict(_GROUPED, max_sequence_length=64, pretraining_sequence_length=64),
    "QwenCausalLM": dict(_GROUPED),
    "QwenMoeCausalLM": dict(
        _GROUPED, moe_intermediate_dim=HIDDEN, shared_expert_intermediate_dim=HIDDEN,
        num_experts=2, top_k=1,
    ),  # fmt: skip
    "Qwen3CausalLM": dict(_GROUPED, head_dim=8),
    "Qwen3MoeCausalLM": dict(_GROUPED, head_dim=8, moe_intermediate_dim=HIDDEN, num_experts=2, top_k=1),
    "Qwen3_5CausalLM": dict(_GROUPED, head_dim=8, **_LINEAR_ATTENTION),
    "Qwen3_5MoeCausalLM": dict(
        _GROUPED, head_dim=8, moe_intermediate_dim=HIDDEN, shared_expert_intermediate_size=HIDDEN,
        num_experts=2, top_k=1, **_LINEAR_ATTENTION,
    ),  # fmt: skip
    "GptOssCausalLM": dict(_GROUPED, num_experts=2, top_k=1, head_dim=8, sliding_window=16),
    "GemmaCausalLM": dict(_GEMMA),
    "Gemma3CausalLM": dict(_GEMMA, image_size=16),
    "Gemma4CausalLM": dict(_GEMMA, image_size=16, sliding_window_size=16),
    "Gemma4AssistantCausalLM": dict(_GEMMA, image_size=16, sliding_window_size=16),
    "Gemma3nCausalLM": dict(
        text_vocab_size=VOCAB, text_hidden_size=HIDDEN, num_hidden_layers=1, pad_token_id=0,
        num_attention_heads=2, num_key_value_heads=1, head_dim=8, intermediate_size=[2 * HIDDEN],
        hidden_activation="gelu_approximate", layer_types=["full_attention"], sliding_window=16,
        rope_theta=10000.0, max_position_embeddings=64, vocab_size_per_layer_input=VOCAB,
        hidden_size_per_layer_input=2, altup_num_inputs=2, laurel_rank=1,
    ),  # fmt: skip
    "PaliGemmaCausalLM": dict(
        _GEMMA, image_size=16, vit_patch_size=8, vit_num_heads=2, vit_hidden_dim=HIDDEN,
        vit_num_layers=1, vit_intermediate_dim=2 * HIDDEN,
    ),  # fmt: skip
    "SmolLM3CausalLM": dict(
        vocabulary_size=VOCAB, hidden_dim=HIDDEN, intermediate_dim=2 * HIDDEN, num_layers=2,
        num_attention_heads=2, num_key_value_heads=1, attention_bias=False,
        attention_dropout=0.0, rope_layer_enabled_list=[True, True],
        layer_types=["attention", "attention"], mlp_bias=False, layer_norm_epsilon=1e-5,
        max_position_embeddings=64, rope_theta=10000.0, partial_rotary_factor=1.0,
    ),  # fmt: skip
    "RWKV7CausalLM": dict(
        vocabulary_size=VOCAB, hidden_size=HIDDEN, head_size=8, num_layers=2,
        intermediate_dim=2 * HIDDEN, gate_lora=8, mv_lora=8, aaa_lora=8, decay_lora=8,
    ),  # fmt: skip
    "BLIP2CausalLM": _blip2,
    "PARSeqCausalLM": _parseq,
}

_ENCODER = dict(
    vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=HIDDEN,
    intermediate_dim=2 * HIDDEN, max_sequence_length=64,
)  # fmt: skip
#: Backbone arguments per text classifier family.
TEXT_CLASSIFIER: dict[str, Any] = {
    "BertTextClassifier": _ENCODER,
    "AlbertTextClassifier": dict(_ENCODER, embedding_dim=8),
    "DistilBertTextClassifier": _ENCODER,
    "RobertaTextClassifier": _ENCODER,
    "XLMRobertaTextClassifier": _ENCODER,
    "DebertaV3TextClassifier": dict(_ENCODER, bucket_size=8),
    "FNetTextClassifier": dict(
        vocabulary_size=VOCAB, num_layers=2, hidden_dim=HIDDEN, intermediate_dim=2 * HIDDEN,
        max_sequence_length=64,
    ),  # fmt: skip
    "ESMProteinClassifier": _ENCODER,
    "RoformerV2TextClassifier": dict(
        vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=HIDDEN,
        intermediate_dim=2 * HIDDEN, head_size=8,
    ),  # fmt: skip
}

_VISION = dict(image_shape=(IMAGE, IMAGE, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=HIDDEN)
#: Backbone arguments per image classifier family (transformers; the CNNs have their own tests).
IMAGE_CLASSIFIER: dict[str, Any] = {
    "ViTImageClassifier": dict(_VISION, mlp_dim=2 * HIDDEN),
    "DeiTImageClassifier": dict(_VISION, intermediate_dim=2 * HIDDEN),
    "SwinTransformerImageClassifier": dict(
        image_shape=(IMAGE, IMAGE, 3), embed_dim=HIDDEN, depths=[1, 1], num_heads=[2, 2],
        window_size=4, patch_size=4, drop_path=0.0,
    ),  # fmt: skip
}

#: Families that are exported but cannot be built and called from a config, and why.
UNBUILDABLE = {
    "Gemma4AssistantCausalLM": "a draft model for speculative decoding: its call() raises",
}

#: Backbone arguments per masked LM family: the encoders of the text classifiers.
MASKED_LM: dict[str, Any] = {
    "AlbertMaskedLM": TEXT_CLASSIFIER["AlbertTextClassifier"],
    "BertMaskedLM": _ENCODER,
    "DebertaV3MaskedLM": TEXT_CLASSIFIER["DebertaV3TextClassifier"],
    "DistilBertMaskedLM": _ENCODER,
    "ESMMaskedPLM": _ENCODER,
    "FNetMaskedLM": TEXT_CLASSIFIER["FNetTextClassifier"],
    "RobertaMaskedLM": _ENCODER,
    "RoformerV2MaskedLM": TEXT_CLASSIFIER["RoformerV2TextClassifier"],
    "XLMRobertaMaskedLM": _ENCODER,
}

_TABLES = {
    "causal_lm": CAUSAL_LM, "masked_lm": MASKED_LM, "text_classifier": TEXT_CLASSIFIER,
    "image_classifier": IMAGE_CLASSIFIER,
}  # fmt: skip
_BASES = {
    "causal_lm": "CausalLM", "masked_lm": "MaskedLM", "text_classifier": "TextClassifier",
    "image_classifier": "ImageClassifier",
}  # fmt: skip


def families(kind: str) -> list[str]:
    """Every task class keras-hub exports for ``kind``, one name per class (the one this
    module configures, for classes exported under several names)."""
    base = getattr(keras_hub.models, _BASES[kind])
    seq2seq = keras_hub.models.Seq2SeqLM  # a CausalLM subclass, not a causal LM
    names: dict[type, list[str]] = {}
    for name in sorted(dir(keras_hub.models)):
        cls = getattr(keras_hub.models, name)
        if inspect.isclass(cls) and issubclass(cls, base) and cls is not base:
            if not issubclass(cls, seq2seq):
                names.setdefault(cls, []).append(name)
    table = _TABLES[kind]
    if kind == "image_classifier":
        return sorted(n for ns in names.values() for n in ns if n in table)
    return sorted(next((n for n in ns if n in table), ns[0]) for ns in names.values())


def build(family: str, kind: str, seed: int = 0) -> Any:
    """The task ``family`` with a tiny random backbone and no preprocessor."""
    keras.utils.set_random_seed(seed)
    task = getattr(keras_hub.models, family)
    spec = _TABLES[kind][family]
    backbone = spec() if callable(spec) else task.backbone_cls(**spec)
    extra: dict[str, Any] = {"preprocessor": None}
    if family == "PARSeqCausalLM":  # its constructor reads the tokenizer's padding id
        from keras_hub.src.models.parseq.parseq_tokenizer import PARSeqTokenizer

        extra["preprocessor"] = keras_hub.models.PARSeqCausalLMPreprocessor(
            image_converter=None, tokenizer=PARSeqTokenizer(max_label_length=8), sequence_length=8
        )
    if family == "Gemma4AssistantCausalLM":
        extra.update(
            backbone_hidden_size=HIDDEN, num_centroids=4, centroid_intermediate_top_k=2,
            use_ordered_embeddings=True,
        )  # fmt: skip
    if kind in ("text_classifier", "image_classifier"):
        extra["num_classes"] = CLASSES
    return task(backbone=backbone, **extra)


def vocabulary(model: Any) -> int:
    backbone = getattr(model, "backbone", model)
    for name in ("vocabulary_size", "vocab_size", "text_vocab_size"):
        size = getattr(backbone, name, None)
        if isinstance(size, int):
            return size
    return VOCAB


def inputs(model: Any, length: int = 8, batch: int = 2, seed: int = 0, padded: int = 0) -> Any:
    """Inputs for ``model`` with sequences of ``length`` (the last ``padded`` positions masked
    out), read from the model's own inputs: token ids, masks, segment and position ids, images."""
    rng = np.random.default_rng(seed)
    given = model.input
    named = given if isinstance(given, dict) else {None: given}
    out: dict[Any, Any] = {}
    for name, tensor in named.items():
        shape = [length if d is None else d for d in tuple(tensor.shape)[1:]]
        key = (name or "").lower()
        if "image" in key or len(shape) == 3:
            value = rng.uniform(0, 1, size=[batch, *shape]).astype("float32")
        elif "padding_mask" in key or "mask" in key:
            value = np.ones([batch, *shape], "int32")
            if padded and "padding" in key:
                value[..., -padded:] = 0
        elif "segment" in key:
            value = np.zeros([batch, *shape], "int32")
        elif "position" in key:
            value = np.broadcast_to(np.arange(shape[-1]), [batch, *shape]).astype("int32")
        else:
            value = rng.integers(1, vocabulary(model), size=[batch, *shape]).astype("int32")
        if "bool" in str(tensor.dtype):
            value = value.astype(bool)
        out[name] = value
    return out[None] if list(out) == [None] else out
