"""Per-sample selection of units (e.g. the logit of each sample's target class)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from keras_inspect.autograph import plain_python, torch_compiling
from keras_inspect.errors import describe, shorten


@plain_python
def gather_units(tensor: Any, indices: Any, axis: int = -1, batch_dims: int = -1) -> Any:
    """Pick units of ``tensor`` along ``axis``, per sample.

    With ``indices`` of shape ``(batch, n)`` and the default ``batch_dims=-1`` (all leading
    axes of ``indices`` are batch axes), sample ``i`` keeps units ``indices[i]`` of its own row:
    the result has shape ``(batch, n)`` for a ``(batch, units)`` tensor. ``indices=None`` returns
    ``tensor`` unchanged.
    """
    if indices is None:
        return tensor
    axis = _integer_argument(axis, "axis")
    batch_dims = _integer_argument(batch_dims, "batch_dims")
    tensor = _tensor(tensor)
    indices = _integer_indices(indices)
    rank, index_rank = len(tensor.shape), len(indices.shape)
    if rank == 0:
        raise ValueError("gather_units needs a tensor of rank >= 1; received a scalar.")
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for a tensor of rank {rank}.")
    axis %= rank
    if batch_dims < 0:
        batch_dims += index_rank
    if not 0 <= batch_dims <= min(axis, index_rank):
        raise ValueError(
            f"batch_dims must be between 0 and min(axis, indices rank) = "
            f"{min(axis, index_rank)} for a tensor of rank {rank} and indices of rank "
            f"{index_rank}; received {batch_dims}."
        )
    for i in range(batch_dims):
        a, b = tensor.shape[i], indices.shape[i]
        if a is not None and b is not None and a != b:
            raise ValueError(
                f"indices and tensor disagree on batch axis {i}: {b} vs {a} "
                f"(indices shape {tuple(indices.shape)}, tensor shape {tuple(tensor.shape)})."
            )
    size = tensor.shape[axis]
    if size is not None:
        extremes = value_range(indices)
        if extremes is not None and (extremes[0] < -size or extremes[1] >= size):
            raise ValueError(
                f"indices must lie in [{-size}, {size - 1}] for axis {axis} of size "
                f"{size}; received values from {extremes[0]} to {extremes[1]}."
            )
        # Branch-free, so traced (jit/compiled) indices may be negative too.
        indices = ops.where(indices < 0, indices + size, indices)
    return _gather(tensor, indices, axis, batch_dims)


def _integer_argument(value: Any, name: str) -> int:
    """``value`` as a Python int (NumPy integers included); ``TypeError`` naming it otherwise.

    Checked here: a NumPy integer reaching TensorFlow's gather is an InvalidArgumentError, a
    float or None an error from deep inside the backend.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer; received {describe(value)}.")
    return int(value)


def _tensor(value: Any) -> Any:
    """``value`` as a backend tensor; a ragged or non-numeric Python value is our error."""
    if isinstance(value, (list, tuple)):
        try:
            array = np.asarray(value)
        except RecursionError:
            raise TypeError(f"gather_units needs a tensor; received {describe(value)}.") from None
        except ValueError as error:
            raise ValueError(
                f"gather_units needs a rectangular tensor; received {describe(value)}, which is "
                f"ragged ({error})."
            ) from None
        if array.dtype.kind not in "biuf":
            raise TypeError(f"gather_units needs a numeric tensor; received {describe(value)}.")
        value = array
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        raise TypeError(
            f"gather_units needs a tensor (an array or backend tensor); received {describe(value)}."
        )
    return ops.convert_to_tensor(value)


def _integer_indices(indices: Any) -> Any:
    """``indices`` as an integer tensor; ``TypeError`` naming the value otherwise.

    Python and NumPy values are checked with NumPy before any backend sees them, so a value a
    backend cannot convert (text, objects, floats too large for float32) gets this library's
    error rather than the backend's.
    """
    dtype = getattr(indices, "dtype", None)
    if dtype is None or isinstance(indices, np.ndarray):
        try:
            array = np.asarray(indices)
        except (Exception, RecursionError) as error:
            raise TypeError(
                f"indices must be integers (an int array or tensor); received {shorten(indices)} "
                f"of type {type(indices).__name__}, which is not an array ({error})."
            ) from error
        if array.dtype.kind not in "iu":
            raise TypeError(
                f"indices must be integers; received {shorten(indices)} of dtype {array.dtype}."
            )
        return ops.convert_to_tensor(array)
    name = keras.backend.standardize_dtype(dtype)
    if "int" not in name:
        raise TypeError(f"indices must be integers; received a tensor of dtype {name}.")
    return ops.convert_to_tensor(indices)


def value_range(x: Any) -> tuple[Any, Any] | None:
    """The smallest and largest values of ``x`` where they can be read now, without leaving
    the trace or waiting for a device: ``None`` for a traced or symbolic tensor, inside
    ``torch.compile``, for a PyTorch tensor on an accelerator (reading it would synchronise
    with the device), and for an empty one."""
    if isinstance(x, np.ndarray):
        return (x.min(), x.max()) if x.size else None
    if torch_compiling():
        return None  # reading values back would break the compiled graph
    if keras.backend.backend() == "torch":
        import torch

        if isinstance(x, torch.Tensor):
            if x.device.type != "cpu" or not x.numel():
                return None
            return x.min().item(), x.max().item()
    try:
        values = ops.convert_to_numpy(x)
    except Exception:
        return None  # a traced (jit) or symbolic tensor
    return (values.min(), values.max()) if values.size else None


def _gather(tensor: Any, indices: Any, axis: int, batch_dims: int) -> Any:
    # Flatten the index dimensions after the batch axes into one, broadcast the index over the
    # tensor's other axes, take along `axis`, then restore the index dimensions.
    shape = list(ops.shape(tensor))
    batch, middle, tail = shape[:batch_dims], shape[batch_dims:axis], shape[axis + 1 :]
    extra = list(ops.shape(indices))[batch_dims:]
    flat = ops.reshape(indices, [*batch, -1])
    flat = ops.reshape(flat, [*batch, *([1] * len(middle)), -1, *([1] * len(tail))])
    count = ops.shape(flat)[len(batch) + len(middle)]
    flat = ops.broadcast_to(flat, [*batch, *middle, count, *tail])
    picked = ops.take_along_axis(tensor, ops.cast(flat, "int32"), axis=axis)
    return ops.reshape(picked, [*batch, *middle, *extra, *tail])
