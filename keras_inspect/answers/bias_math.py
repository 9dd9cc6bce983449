"""Tensor helpers shared by the adapters of both Keras flavours and by plugins.

The arithmetic is written once over a small set of tensor operations (``cast``, ``rsqrt``,
``reshape``): ``keras.ops`` for Keras 3 layers, TensorFlow's for ``tf_keras`` layers (which
always compute with TensorFlow, whatever ``KERAS_BACKEND`` says).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import keras
from keras import ops


class TensorOps(Protocol):
    """The few tensor operations the bias arithmetic needs (``keras.ops`` is one)."""

    def cast(self, x: Any, dtype: Any) -> Any: ...

    def rsqrt(self, x: Any) -> Any: ...

    def reshape(self, x: Any, shape: Any) -> Any: ...


def layer_attribute(layer: Any, name: str) -> Any:
    """``getattr(layer, name, None)``, ``None`` also where the attribute raises (some layer
    properties raise before the layer is built)."""
    try:
        return getattr(layer, name, None)
    except Exception:
        return None


def layer_rank(layer: Any) -> int | None:
    """Rank (batch axis included) of the input a built layer was built for, if known."""
    shapes = getattr(layer, "_build_shapes_dict", None)  # Keras 3
    if shapes:
        shape = next(iter(shapes.values()))
        if isinstance(shape, (tuple, list)) and all(d is None or isinstance(d, int) for d in shape):
            return len(shape)
    shape = getattr(layer, "_build_input_shape", None)  # tf_keras
    rank = getattr(shape, "rank", None)
    if isinstance(rank, int):
        return rank
    if isinstance(shape, (tuple, list)) and all(d is None or isinstance(d, int) for d in shape):
        return len(shape)
    ndim = getattr(getattr(layer, "input_spec", None), "ndim", None)
    if isinstance(ndim, int):
        return ndim
    for node in getattr(layer, "_inbound_nodes", ())[:1]:
        tensors = getattr(node, "input_tensors", ())
        if tensors:
            return len(tensors[0].shape)
    return None


def align_to_axes(
    values: Any, axes: int | Sequence[int], rank: int | None, math: TensorOps = ops
) -> Any:
    """Reshape per-channel ``values`` so they broadcast against a tensor of rank ``rank``.

    ``values`` has one dimension per entry of ``axes`` (axes of the full tensor, batch axis
    included). A vector on the last axis is returned unchanged, which is the common case.
    """
    axes = [axes] if isinstance(axes, int) else list(axes)
    if rank is None:
        return values
    positive = sorted(a % rank for a in axes)
    if positive == list(range(rank - len(positive), rank)):
        return values  # already trailing axes: broadcasts as it is
    sizes = list(values.shape)
    # One dimension per axis from the first channel axis to the last axis of the tensor.
    shape = [1] * (rank - positive[0])
    for axis, size in zip(positive, sizes):
        shape[axis - positive[0]] = size
    return math.reshape(values, shape)


def compute_dtype(layer: Any) -> str:
    """The dtype ``layer`` computes in (its policy's compute dtype)."""
    dtype = getattr(layer, "compute_dtype", None) or keras.config.floatx()
    return str(getattr(dtype, "name", dtype))


def in_compute_dtype(layer: Any, value: Any, math: TensorOps = ops) -> Any:
    """``value`` in the dtype ``layer`` computes in.

    A variable already in that dtype is returned itself, not a copy: a bias kept by the user
    then follows the layer through training.
    """
    dtype = compute_dtype(layer)
    if _is_variable(value) and _dtype_name(value) == dtype:
        return value
    return math.cast(value, dtype)


def _is_variable(value: Any) -> bool:
    if isinstance(value, keras.Variable):
        return True
    # A tf_keras layer's weights are tf.Variable objects.
    return type(value).__name__ in {"ResourceVariable", "Variable", "AutoCastVariable"}


def _dtype_name(value: Any) -> str:
    dtype = value.dtype
    return str(getattr(dtype, "name", dtype))


def batch_norm_bias(layer: Any, math: TensorOps = ops) -> Any:
    """The constant an inference-mode batch normalization adds, shaped to broadcast.

    ``beta - gamma * moving_mean / sqrt(moving_variance + epsilon)`` with the layer's own
    ``epsilon`` (``gamma = 1`` without ``scale``, ``beta = 0`` without ``center``), folded in
    float32 and returned in the layer's compute dtype, along the layer's ``axis``.
    """
    mean = math.cast(layer.moving_mean, "float32")
    variance = math.cast(layer.moving_variance, "float32")
    inverse_std = math.rsqrt(variance + float(layer.epsilon))
    gamma = math.cast(layer.gamma, "float32") if getattr(layer, "scale", True) else 1.0
    beta = math.cast(layer.beta, "float32") if getattr(layer, "center", True) else 0.0
    bias = math.cast(beta - gamma * mean * inverse_std, compute_dtype(layer))
    axis = layer.axis
    return align_to_axes(bias, axis, layer_rank(layer), math)
