"""Which score a gradient is taken of: one floating-point score per example, from the logits.

A target is checked as far as its values can be seen: eagerly, an out-of-range unit is a
``ValueError``; inside ``jax.jit`` or ``tf.function`` a traced unit's value is unknown until the
compiled program runs, so an example whose unit is out of range gets a NaN score and NaN
gradients (never another unit's: indices are not wrapped). A callable's scores must be a
floating-point backend tensor with one score per example, since nothing else carries a gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_inspect.answers.units import is_concrete
from keras_inspect.errors import describe

Score = Callable[[Any], Any]

_TARGET_KINDS = (
    "None, an int, an array of one unit per example (shape (batch,) or (batch, 1)), or a "
    "callable logits -> one floating-point score per example"
)


def score_function(target: Any, logits: Any) -> Score:
    """``logits -> scores (batch,)`` for ``target``, given the symbolic ``logits`` (their shape
    and dtype); checks what can be checked now."""
    rank = len(logits.shape)
    units = logits.shape[-1] if rank > 1 else None
    if callable(target):
        return lambda values: _checked(target(values), values)
    if rank == 1:
        # (batch,) logits are one score per example already (a regression or ranking output).
        if target is None:
            return lambda values: values
        raise TypeError(
            f"the logits have shape {tuple(logits.shape)}: one score per example, with no unit "
            f"axis to pick from; pass target=None (the score itself) or a callable, not "
            f"{describe(target)}."
        )
    if target is None:
        return lambda values: _per_example(ops.max(values, axis=-1))
    if isinstance(target, (int, np.integer)) and not isinstance(target, (bool, np.bool_)):
        unit = int(target)
        if units is not None and not -units <= unit < units:
            raise ValueError(
                f"target {unit} is out of range: the logits have {units} units (valid "
                f"{-units}..{units - 1})."
            )
        return lambda values: _per_example(ops.take(values, unit, axis=-1))
    indices = _indices(target, units)
    return lambda values: _per_example(_gather_checked(values, indices))


def _indices(target: Any, units: int | None) -> Any:
    """A target array as a rank-1 integer tensor, its values checked where they can be read."""
    array_like = hasattr(target, "shape") or isinstance(target, (list, tuple))
    if isinstance(target, (str, bytes, bool, np.bool_)) or not array_like:
        raise TypeError(f"target must be {_TARGET_KINDS}; received {describe(target)}.")
    if not hasattr(target, "dtype") or isinstance(target, np.ndarray):
        try:
            target = np.asarray(target)
        except (ValueError, RecursionError):
            raise TypeError(
                f"a target array must hold integer units; received {describe(target)}."
            ) from None
        if target.dtype.kind not in "iu":
            raise TypeError(
                f"a target array must hold integer units; received {describe(target)} of "
                f"dtype {target.dtype}."
            )
    elif "int" not in keras.backend.standardize_dtype(target.dtype):
        raise TypeError(
            f"a target tensor must hold integer units; received dtype {target.dtype}."
        )
    shape = tuple(target.shape)
    if len(shape) == 2 and shape[1] == 1:
        target = ops.reshape(ops.convert_to_tensor(target), (-1,))  # the seed's (batch, 1)
    elif len(shape) != 1:
        raise ValueError(
            f"a target array must hold one unit per example, shape (batch,) or (batch, 1); "
            f"received shape {shape}."
        )
    if units is not None and is_concrete(target):
        values = ops.convert_to_numpy(target)
        if values.size and (values.min() < -units or values.max() >= units):
            raise ValueError(
                f"target units must lie in {-units}..{units - 1} (the logits have {units} "
                f"units); received values from {values.min()} to {values.max()}."
            )
    return ops.convert_to_tensor(target)


def _gather_checked(logits: Any, indices: Any) -> Any:
    """``logits[i, ..., indices[i]]``; NaN for an index outside the unit axis (see the module
    doc), so a traced index that is out of range cannot pick another unit."""
    units = ops.shape(logits)[-1]
    rank = len(logits.shape)
    indices = ops.cast(indices, "int32")
    valid = ops.logical_and(indices >= -units, indices < units)
    safe = ops.where(valid, ops.where(indices < 0, indices + units, indices), 0)
    where = ops.broadcast_to(
        ops.reshape(safe, [-1, *([1] * (rank - 1))]), [*ops.shape(logits)[:-1], 1]
    )
    picked = ops.take_along_axis(logits, where, axis=-1)[..., 0]
    poison = ops.cast(ops.where(valid, 1.0, float("nan")), logits.dtype)
    return picked * ops.reshape(poison, [-1, *([1] * (rank - 2))])


def _per_example(scores: Any) -> Any:
    # Logits with more axes than (batch, units), such as per-token logits: sum each example's.
    rank = len(scores.shape)
    return scores if rank == 1 else ops.sum(scores, axis=tuple(range(1, rank)))


def _checked(scores: Any, logits: Any) -> Any:
    """A callable's scores: a floating-point backend tensor of shape (batch,)."""
    shape = getattr(scores, "shape", None)
    batch = logits.shape[0]
    if shape is None or len(shape) != 1 or (
        isinstance(batch, int) and isinstance(shape[0], int) and shape[0] != batch
    ):
        raise ValueError(
            "a target callable must return one score per example, shape "
            f"({batch},), from the logits of shape {tuple(logits.shape)}; it returned "
            f"{describe(scores) if shape is None else 'shape ' + str(tuple(shape))}."
        )
    if isinstance(scores, np.ndarray) or not ops.is_tensor(scores):
        raise TypeError(
            "a target callable must return a backend tensor computed from the logits (a "
            f"gradient flows through it); it returned {describe(scores)}."
        )
    dtype = keras.backend.standardize_dtype(scores.dtype)
    if "float" not in dtype:
        raise TypeError(
            f"a target callable must return floating-point scores (a gradient flows through "
            f"them); it returned dtype {dtype}. An argmax or a comparison picks units: return "
            "the logits at those units instead."
        )
    return scores
