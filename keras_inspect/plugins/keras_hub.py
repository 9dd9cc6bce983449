"""keras-hub's own layer types, for keras-inspect (enabled by the ``keras_hub`` entry point).

keras-hub builds its models from stock Keras layers (which the built-in adapters know) plus its
own: a dozen RMS/"layer norm" variants written from scratch, pooling layers of its multimodal
models, a masked-LM head whose bias is private, and ``ReversibleEmbedding``, whose reverse call
turns hidden states into vocabulary logits.

The hooks recognise a keras-hub layer by the classes of its MRO that are defined in a
``keras_hub`` module, by name, so that this plugin never imports keras-hub itself (loading the
plugin stays free) and keeps working when keras-hub moves a class between its private modules.
Without keras-hub installed, the module defines no hook: loading it registers a plugin that does
nothing.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

import keras

from keras_inspect.adapters.embedding import called_in_reverse
from keras_inspect.answers.bias_math import (
    align_to_axes,
    in_compute_dtype,
    layer_attribute,
    layer_rank,
)
from keras_inspect.hooks.specs import hookimpl

#: Whether keras-hub can be imported here (checked without importing it).
AVAILABLE = importlib.util.find_spec("keras_hub") is not None

#: keras-hub normalization layers that do not subclass a Keras normalization layer. All of them
#: divide by a statistic of each input, so none adds a constant unless it has an offset weight.
NORMALIZATION_CLASSES = frozenset(
    {
        "RMSNormalization",  # keras_hub.layers, and the Gemma/Gemma3/Gemma4/SD3 variants
        "Gemma3nRMSNorm",
        "EdRecRMSNormalization",
        "LlamaLayerNorm",
        "MistralLayerNormalization",
        "MixtralLayerNormalization",
        "Phi3LayerNorm",
        "QwenLayerNorm",
        "QwenMoeLayerNorm",
        "Qwen3LayerNorm",
        "Qwen3MoeLayerNorm",
        "Qwen3_5LayerNorm",
        "GptOssLayerNormalization",
        "T5LayerNorm",
        "RoformerNorm",
        "Gemma4VNorm",
        "QKNorm",
    }
)

#: keras-hub layers that reduce a sequence (or an image's patches) to one vector per example.
POOLING_CLASSES = frozenset(
    {
        "CLIPVisionPooler",  # the class token
        "CLIPTextPooler",  # the end-of-text token
        "MetaCLIP2VisionPooler",
        "MetaCLIP2TextPooler",
        "Gemma3MeanPooling",
        "Gemma4MeanPooling",
        "Gemma4VisionAveragePooling",
        "MultiHeadAttentionPooling",  # one learned query attending to every token
        "SigLIPMultiHeadAttentionPooling",
        "SelectAdaptivePool2d",  # MobileNetV5's global pooling
        "VideoPrismAttenTokenPoolingLayer",
    }
)

#: Heads that produce vocabulary logits themselves (other heads are recognised by what they
#: hold: see ``_is_vocabulary_head``).
LOGITS_CLASSES = frozenset({"MaskedLMHead"})

# Offset weights a normalization variant may carry, in the order they are looked for.
_OFFSET_NAMES = ("beta", "bias", "offset")


def keras_hub_classes(layer: Any) -> frozenset[str]:
    """Names of the classes in ``type(layer).__mro__`` that keras-hub defines."""
    return _classes_of(type(layer))


@functools.lru_cache(maxsize=1024)
def _classes_of(layer_type: type) -> frozenset[str]:
    # Asked for every layer and role of every search: resolved once per class.
    return frozenset(
        cls.__name__
        for cls in layer_type.__mro__
        if (getattr(cls, "__module__", None) or "").split(".", 1)[0] == "keras_hub"
    )


def _is_reversible_embedding(layer: Any) -> bool:
    # keras_hub.layers.ReversibleEmbedding subclasses the Keras one since Keras 3.12; older
    # keras-hub releases define it themselves.
    core = getattr(keras.layers, "ReversibleEmbedding", None)
    if core is not None and isinstance(layer, core):
        return True
    return "ReversibleEmbedding" in keras_hub_classes(layer)


def _reversed_here(layer: Any, entry: Any) -> bool:
    """Whether ``layer`` is called in reverse (hidden states -> logits) at ``entry``'s place, or
    anywhere when asked about the layer alone."""
    calls = entry.calls if entry is not None else getattr(layer, "_inbound_nodes", ())
    return called_in_reverse(calls)


def _is_vocabulary_head(layer: Any, names: frozenset[str]) -> bool:
    """Whether ``layer`` is a head that calls the token embedding it holds in reverse: its
    output has one unit per token of the vocabulary. Such heads are subclassed layers (their
    reverse call is recorded in no graph), one class per family; an embedding layer that holds
    the token embedding to look tokens up (``TokenAndPositionEmbedding``) outputs hidden
    states instead."""
    if names & LOGITS_CLASSES:
        return True
    if isinstance(layer, keras.Model) or any(name.endswith("Embedding") for name in names):
        return False  # a backbone holds the token embedding too, and outputs hidden states
    embedding = layer_attribute(layer, "token_embedding")
    if embedding is None or not _is_reversible_embedding(embedding):
        return False
    vocabulary = getattr(embedding, "input_dim", None)
    try:
        units = tuple(layer.output.shape)[-1]
    except (AttributeError, ValueError, IndexError):  # never called on a symbolic input
        return False
    return isinstance(vocabulary, int) and units == vocabulary


def _offset(layer: Any) -> Any | None:
    for name in _OFFSET_NAMES:
        value = getattr(layer, name, None)
        if isinstance(value, keras.Variable):
            rank = layer_rank(layer)
            return align_to_axes(in_compute_dtype(layer, value), -1, rank)
    return None


if AVAILABLE:

    @hookimpl
    def keras_inspect_classify_layer(layer: Any, role: str, entry: Any) -> bool | None:
        if role == "logits" and _is_reversible_embedding(layer):
            # An embedding lookup is not a logits layer; its reverse (tied) projection is.
            return _reversed_here(layer, entry)
        if role == "token_embedding" and entry is not None:
            if called_in_reverse(entry.calls):
                return False
            # keras-hub's text backbones (and TokenAndPositionEmbedding) name their token
            # embedding: the other embeddings beside it (segments, positions) are not. A
            # masked-LM head names it too, to call it in reverse.
            container = entry.container
            own = layer_attribute(container, "token_embedding")
            if not isinstance(own, keras.layers.Layer):
                return None
            return layer is own and not _is_vocabulary_head(container, keras_hub_classes(container))
        names = keras_hub_classes(layer)
        if not names:
            return None
        if role == "normalization" and names & NORMALIZATION_CLASSES:
            return True
        if role == "pooling" and names & POOLING_CLASSES:
            return True
        if role == "logits" and _is_vocabulary_head(layer, names):
            return True
        return None

    @hookimpl
    def keras_inspect_layer_bias(layer: Any) -> Any | None:
        names = keras_hub_classes(layer)
        if not names:
            return None
        if names & NORMALIZATION_CLASSES:
            return _offset(layer)
        if names & LOGITS_CLASSES:
            # MaskedLMHead keeps its output bias private (``_bias``), added last: x @ W + b.
            bias = getattr(layer, "_bias", None)
            return in_compute_dtype(layer, bias) if isinstance(bias, keras.Variable) else None
        return None
