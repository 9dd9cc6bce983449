"""The stock layers of each flavour of Keras, by family: what the built-in rules are written over.

A rule (a pooling layer is ``pooling``; a batch normalization adds its folded bias) is written
once, in the module of its family, over a :class:`StockLayers` value; each flavour has its own:
its classes for each family, its variable type and the tensor operations of its backend (a
tf_keras model computes with TensorFlow whatever ``KERAS_BACKEND`` says). A new stock layer
joins a family here, by name, for both flavours at once.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Iterable
from typing import Any

import attrs
import keras

from keras_inspect.adapters.tf_keras.detection import is_tf_keras_type, require_tf_keras, tf
from keras_inspect.answers.bias_math import TensorOps
from keras_inspect.graph.fused_activations import SPLITTABLE_NAMES

#: The stock class names of each family (a name a flavour lacks is skipped).
FAMILIES: dict[str, tuple[str, ...]] = {
    # A kernel and an explicit bias added last: the layers whose activation can be split off.
    "kernel": SPLITTABLE_NAMES,
    "batch_norm": ("BatchNormalization",),
    # Re-centred on statistics of each input: only ``beta`` is constant.
    "per_sample_norm": ("LayerNormalization", "GroupNormalization", "RMSNormalization"),
    "other_norm": ("UnitNormalization",),
    "pooling": (
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalAveragePooling3D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GlobalMaxPooling3D",
        "Flatten",
    ),
    # Lookups of token ids (ReversibleEmbedding derives from Embedding since Keras 3.12).
    "embedding": ("Embedding",),
    "conv2d": ("Conv2D",),
    # Their bias acts inside the recurrence, not on the output.
    "recurrent": ("RNN", "Bidirectional", "SimpleRNNCell", "LSTMCell", "GRUCell", "ConvLSTM"),
}


def pick(module: Any, names: Iterable[str]) -> tuple[type, ...]:
    """The classes of ``module`` with the given names (missing names skipped)."""
    return tuple(getattr(module, name) for name in names if hasattr(module, name))


@attrs.frozen(kw_only=True)
class StockLayers:
    """One flavour's stock layer classes by family, and what its rules compute with."""

    kernel: tuple[type, ...]
    batch_norm: tuple[type, ...]
    per_sample_norm: tuple[type, ...]
    other_norm: tuple[type, ...]
    pooling: tuple[type, ...]
    embedding: tuple[type, ...]
    conv2d: tuple[type, ...]
    recurrent: tuple[type, ...]
    layer: type
    model: type
    input_layer: type
    #: The type of a layer's own weights (a bias returned as it is stays current).
    variable: tuple[type, ...]
    math: TensorOps

    @property
    def normalization(self) -> tuple[type, ...]:
        return self.batch_norm + self.per_sample_norm + self.other_norm


def from_module(layers: Any, **rest: Any) -> StockLayers:
    """A flavour's :class:`StockLayers` from its ``layers`` module, families looked up by name;
    ``rest`` gives the other fields and may widen a family (e.g. with a private base class)."""
    families = {family: pick(layers, names) for family, names in FAMILIES.items()}
    for family in FAMILIES:
        families[family] = tuple(dict.fromkeys((*families[family], *rest.pop(family, ()))))
    return StockLayers(**families, **rest)


def stock_layers_of(layer: Any) -> StockLayers | None:
    """The stock layers of ``layer``'s flavour, or ``None`` if it is no Keras layer."""
    found = _stock_layers_of_class(type(layer))
    if found is None and isinstance(layer, keras.layers.Layer):
        return KERAS3  # a proxy whose ``__class__`` is a layer's (isinstance reads it)
    return found


@functools.lru_cache(maxsize=4096)
def _stock_layers_of_class(kind: type) -> StockLayers | None:
    # Asked by every built-in rule for every layer and question: answered once per class.
    if is_tf_keras_type(kind):
        return _tf_keras()
    return KERAS3 if issubclass(kind, keras.layers.Layer) else None


KERAS3 = from_module(
    keras.layers,
    layer=keras.layers.Layer,
    model=keras.Model,
    input_layer=keras.layers.InputLayer,
    variable=(keras.Variable,),
    math=keras.ops,
)


@functools.lru_cache(maxsize=1)
def _tf_keras() -> StockLayers:
    # Built on first use: tf_keras is optional, and imported by then (one of its layers exists).
    tf_keras = require_tf_keras()
    from tf_keras.src.layers.normalization.batch_normalization import BatchNormalizationBase
    from tf_keras.src.layers.pooling import base_global_pooling1d as p1
    from tf_keras.src.layers.pooling import base_global_pooling2d as p2
    from tf_keras.src.layers.pooling import base_global_pooling3d as p3

    return from_module(
        tf_keras.layers,
        # The private bases also cover the v1 and synchronised variants.
        batch_norm=(BatchNormalizationBase,),
        pooling=(p1.GlobalPooling1D, p2.GlobalPooling2D, p3.GlobalPooling3D),
        layer=tf_keras.layers.Layer,
        model=tf_keras.Model,
        input_layer=tf_keras.layers.InputLayer,
        variable=(tf().Variable,),
        math=types.SimpleNamespace(cast=tf().cast, rsqrt=tf().math.rsqrt, reshape=tf().reshape),
    )
