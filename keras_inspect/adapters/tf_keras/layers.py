"""Built-in adapter: roles and biases of Keras 2 (``tf_keras``) layers.

The same rules as the Keras 3 adapters, over tf_keras's classes and in TensorFlow (a tf_keras
model always computes with TensorFlow, whatever ``KERAS_BACKEND`` says, so its biases are
TensorFlow tensors or the layers' own variables):

- ``Dense``, ``EinsumDense`` and every convolution add their ``bias`` (a ``channels_first``
  convolution's shaped ``(C, 1, ...)``); any other layer with a ``bias`` variable adds it too,
  except recurrent layers (their bias acts inside the recurrence) and models.
- ``BatchNormalization`` adds ``beta - gamma * moving_mean / sqrt(moving_variance + epsilon)``
  with its own ``epsilon`` (the seed used 1e-7); layer and group normalization add only ``beta``.
- Roles: batch/layer/group/unit normalization are ``normalization``; global pooling and
  ``Flatten`` are ``pooling`` (the seed's classes); a layer with a kernel may produce ``logits``.

Every hook returns ``None`` at once for objects that are not tf_keras layers.
"""

from __future__ import annotations

import functools
import types
from typing import Any

from keras_inspect.graph.fused_activations import SPLITTABLE_NAMES
from keras_inspect.hooks.specs import hookimpl
from keras_inspect.answers.bias_math import (
    align_to_axes,
    batch_norm_bias,
    in_compute_dtype,
    layer_attribute,
    layer_rank,
)

from .detection import is_tf_keras_object, require_tf_keras, tf


@functools.lru_cache(maxsize=1)
def _math() -> types.SimpleNamespace:
    """TensorFlow's versions of the operations the shared bias arithmetic uses."""
    return types.SimpleNamespace(cast=tf().cast, rsqrt=tf().math.rsqrt, reshape=tf().reshape)


@functools.lru_cache(maxsize=1)
def _classes() -> dict[str, tuple[type, ...]]:
    """tf_keras's layer classes by family, looked up once (tf_keras is imported by then)."""
    tf_keras = require_tf_keras()
    layers = tf_keras.layers

    def pick(*names: str) -> tuple[type, ...]:
        return tuple(getattr(layers, n) for n in names if hasattr(layers, n))

    from tf_keras.src.layers.normalization.batch_normalization import BatchNormalizationBase
    from tf_keras.src.layers.pooling.base_global_pooling1d import GlobalPooling1D
    from tf_keras.src.layers.pooling.base_global_pooling2d import GlobalPooling2D
    from tf_keras.src.layers.pooling.base_global_pooling3d import GlobalPooling3D

    return {
        "kernel": pick(*SPLITTABLE_NAMES),
        "batch_norm": (BatchNormalizationBase,),
        "per_sample_norm": pick("LayerNormalization", "GroupNormalization"),
        "normalization": (BatchNormalizationBase,)
        + pick("LayerNormalization", "GroupNormalization", "UnitNormalization"),
        "pooling": (GlobalPooling1D, GlobalPooling2D, GlobalPooling3D, layers.Flatten),
        "recurrent": pick("RNN", "Bidirectional", "SimpleRNNCell", "LSTMCell", "GRUCell"),
        "model": (tf_keras.Model,),
    }


def _is(layer: Any, family: str) -> bool:
    return isinstance(layer, _classes()[family])


def _kernel_bias(layer: Any) -> Any | None:
    bias = getattr(layer, "bias", None)
    if not getattr(layer, "use_bias", True) or bias is None:
        return None
    bias = in_compute_dtype(layer, bias, _math())
    if getattr(layer, "data_format", None) == "channels_first":
        bias = align_to_axes(bias, 1, layer_rank(layer), _math())
    return bias


def _beta(layer: Any) -> Any | None:
    beta = getattr(layer, "beta", None)
    if not getattr(layer, "center", False) or beta is None:
        return None
    axis = getattr(layer, "axis", -1)
    axes = [axis] if isinstance(axis, int) else list(axis)
    value = in_compute_dtype(layer, beta, _math())
    if len(axes) == len(value.shape):
        return align_to_axes(value, axes, layer_rank(layer), _math())
    return value


@hookimpl
def keras_inspect_layer_bias(layer: Any) -> Any | None:
    if not is_tf_keras_object(layer):
        return None
    if _is(layer, "batch_norm"):
        return batch_norm_bias(layer, _math())
    if _is(layer, "per_sample_norm"):
        return _beta(layer)
    if _is(layer, "kernel"):
        return _kernel_bias(layer)
    if _is(layer, "recurrent") or _is(layer, "model"):
        return None
    bias = layer_attribute(layer, "bias")
    if isinstance(bias, tf().Variable):
        return in_compute_dtype(layer, bias, _math())
    return None


@hookimpl
def keras_inspect_classify_layer(layer: Any, role: str) -> bool | None:
    if not is_tf_keras_object(layer):
        return None
    if role == "normalization":
        return _is(layer, "normalization") or None
    if role == "pooling":
        return _is(layer, "pooling") or None
    if role == "logits":
        # Decided here either way, as the seed's `hasattr(layer, "kernel")` was.
        return layer_attribute(layer, "kernel") is not None and not _is(layer, "model")
    return None
