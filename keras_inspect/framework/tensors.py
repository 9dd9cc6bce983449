"""Small tensor helpers shared by adapters and plugins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops


def layer_rank(layer: Any) -> int | None:
    """Rank (batch axis included) of the input a built layer was built for, if known."""
    shapes = getattr(layer, "_build_shapes_dict", None)
    if shapes:
        shape = next(iter(shapes.values()))
        if isinstance(shape, (tuple, list)) and all(
            d is None or isinstance(d, int) for d in shape
        ):
            return len(shape)
    spec = getattr(layer, "input_spec", None)
    ndim = getattr(spec, "ndim", None)
    if isinstance(ndim, int):
        return ndim
    for node in getattr(layer, "_inbound_nodes", ())[:1]:
        tensors = getattr(node, "input_tensors", ())
        if tensors:
            return len(tensors[0].shape)
    return None


def align_to_axes(values: Any, axes: int | Sequence[int], rank: int | None) -> Any:
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
    sizes = list(ops.shape(values))
    # One dimension per axis from the first channel axis to the last axis of the tensor.
    shape = [1] * (rank - positive[0])
    for axis, size in zip(positive, sizes):
        shape[axis - positive[0]] = size
    return ops.reshape(values, shape)


def in_compute_dtype(layer: Any, value: Any) -> Any:
    """``value`` as a backend tensor in the dtype ``layer`` computes in."""
    dtype = getattr(layer, "compute_dtype", None) or keras.config.floatx()
    return ops.cast(value, dtype)
