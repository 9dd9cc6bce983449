"""Built-in adapter: roles and biases of Keras 2 (``tf_keras``) layers.

The same rules as the Keras 3 adapters, over tf_keras's classes and in TensorFlow (a tf_keras
model always computes with TensorFlow, whatever ``KERAS_BACKEND`` says, so its biases are
``tf.Tensor`` values):

- ``Dense``, ``EinsumDense`` and every convolution add their ``bias`` (a ``channels_first``
  convolution's shaped ``(C, 1, ...)``); any other layer with a ``bias`` variable adds it too,
  except recurrent layers (their bias acts inside the recurrence) and models.
- ``BatchNormalization`` adds ``beta - gamma * moving_mean / sqrt(moving_variance + epsilon)``
  with its own ``epsilon`` (the seed used 1e-7), folded in float32; layer and group
  normalization add only ``beta``.
- Roles: batch/layer/group/unit normalization are ``normalization``; global pooling and
  ``Flatten`` are ``pooling`` (the seed's classes); a layer with a kernel may produce ``logits``.

Every hook returns ``None`` at once for objects that are not tf_keras layers, and tf_keras is
imported only when one is met.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from keras_inspect import hookimpl
from keras_inspect.adapters.tf_keras_graph import _tf, is_tf_keras_object, require_tf_keras


@functools.lru_cache(maxsize=1)
def _classes() -> dict[str, tuple[type, ...]]:
    """tf_keras's layer classes by family, looked up once (tf_keras is imported by then)."""
    tf_keras = require_tf_keras()
    layers = tf_keras.layers

    def pick(*names: str) -> tuple[type, ...]:
        return tuple(getattr(layers, n) for n in names if hasattr(layers, n))

    from tf_keras.src.layers.convolutional.base_conv import Conv
    from tf_keras.src.layers.pooling.base_global_pooling1d import GlobalPooling1D
    from tf_keras.src.layers.pooling.base_global_pooling2d import GlobalPooling2D
    from tf_keras.src.layers.pooling.base_global_pooling3d import GlobalPooling3D
    from tf_keras.src.layers.normalization.batch_normalization import BatchNormalizationBase

    return {
        "dense": pick("Dense", "EinsumDense"),
        "conv": (Conv,),
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


def _rank(layer: Any) -> int | None:
    """Rank (batch axis included) of the input the layer was built for, if known."""
    shape = getattr(layer, "_build_input_shape", None)
    rank = getattr(shape, "rank", None)
    if isinstance(rank, int):
        return rank
    if isinstance(shape, (tuple, list)) and all(d is None or isinstance(d, int) for d in shape):
        return len(shape)
    ndim = getattr(getattr(layer, "input_spec", None), "ndim", None)
    return ndim if isinstance(ndim, int) else None


def _align(tf: Any, values: Any, axes: int | Sequence[int], rank: int | None) -> Any:
    """Shape per-channel ``values`` to broadcast against a rank-``rank`` output."""
    axes = [axes] if isinstance(axes, int) else list(axes)
    if rank is None:
        return values
    positive = sorted(a % rank for a in axes)
    if positive == list(range(rank - len(positive), rank)):
        return values  # trailing axes already broadcast
    sizes = list(values.shape)
    # One dimension from the first channel axis to the last axis of the output.
    shape = [1] * (rank - positive[0])
    for axis, size in zip(positive, sizes):
        shape[axis - positive[0]] = size
    return tf.reshape(values, shape)


def _compute_dtype(layer: Any) -> Any:
    return getattr(layer, "compute_dtype", None) or "float32"


def _explicit_bias(tf: Any, layer: Any) -> Any | None:
    if not getattr(layer, "use_bias", True):
        return None
    bias = getattr(layer, "bias", None)
    if bias is None:
        return None
    return tf.cast(tf.convert_to_tensor(bias), _compute_dtype(layer))


def folded_batch_norm_bias(layer: Any) -> Any:
    """The constant an inference-mode tf_keras BatchNormalization adds, shaped to broadcast."""
    tf = _tf()
    mean = tf.cast(layer.moving_mean, "float32")
    variance = tf.cast(layer.moving_variance, "float32")
    inverse_std = tf.math.rsqrt(variance + float(layer.epsilon))
    gamma = tf.cast(layer.gamma, "float32") if layer.scale else 1.0
    beta = tf.cast(layer.beta, "float32") if layer.center else 0.0
    bias = tf.cast(beta - gamma * mean * inverse_std, _compute_dtype(layer))
    return _align(tf, bias, list(layer.axis), _rank(layer))


def _beta(tf: Any, layer: Any) -> Any | None:
    beta = getattr(layer, "beta", None)
    if not getattr(layer, "center", False) or beta is None:
        return None
    axis = getattr(layer, "axis", -1)
    axes = [axis] if isinstance(axis, int) else list(axis)
    value = tf.cast(tf.convert_to_tensor(beta), _compute_dtype(layer))
    if _is(layer, "per_sample_norm") and len(axes) == len(value.shape):
        return _align(tf, value, axes, _rank(layer))
    return value


def _safe_attribute(layer: Any, name: str) -> Any:
    try:
        return getattr(layer, name, None)
    except Exception:
        # Some properties raise before the layer is built.
        return None


@hookimpl
def keras_inspect_layer_bias(layer: Any) -> Any | None:
    if not is_tf_keras_object(layer):
        return None
    tf = _tf()
    if _is(layer, "batch_norm"):
        return folded_batch_norm_bias(layer)
    if _is(layer, "per_sample_norm"):
        return _beta(tf, layer)
    if _is(layer, "conv"):
        bias = _explicit_bias(tf, layer)
        if bias is not None and getattr(layer, "data_format", None) == "channels_first":
            bias = _align(tf, bias, 1, _rank(layer))
        return bias
    if _is(layer, "dense"):
        return _explicit_bias(tf, layer)
    if _is(layer, "recurrent") or _is(layer, "model"):
        return None
    bias = _safe_attribute(layer, "bias")
    if isinstance(bias, tf.Variable):
        return tf.cast(tf.convert_to_tensor(bias), _compute_dtype(layer))
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
        return _safe_attribute(layer, "kernel") is not None and not _is(layer, "model")
    return None
