"""Which score a gradient is taken of: one floating-point score per example, from the logits.

A target array of shape ``(batch, n)`` picks ``n`` units of each example: the scores have shape
``(batch, n)`` and the gradients a unit axis (``(batch, 1)`` too, the seed's convention).

A target is checked as far as its values can be seen: eagerly, an out-of-range unit is a
``ValueError``; inside ``jax.jit`` or ``tf.function`` a traced unit's value is unknown until the
compiled program runs, so an example whose unit is out of range gets a NaN score and NaN
gradients (never another unit's: indices are not wrapped), and its other units are unharmed.
A callable's scores must be a floating-point backend tensor with one score per example, since
nothing else carries a gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_inspect.answers.units import value_range
from keras_inspect.errors import describe

Score = Callable[[Any], Any]

_TARGET_KINDS = (
    "None, an int, an array of one unit per example (shape (batch,) or (batch, 1)), or a "
    "callable logits -> one floating-point score per example"
)


def score_function(target: Any, logits: Any) -> tuple[Score, int | None]:
    """``logits -> scores`` for ``target``, given the symbolic ``logits`` (their shape and
    dtype), and how many units each example has scores for (``None``: one score, shape
    ``(batch,)``; ``n``: shape ``(batch, n)``). Checks what can be checked now."""
    rank = len(logits.shape)
    units = logits.shape[-1] if rank > 1 else None
    if callable(target):
        return (lambda values: _checked(target(values), values)), None
    if rank == 1:
        # (batch,) logits are one score per example already (a regression or ranking output).
        if target is None:
            return (lambda values: values), None
        raise TypeError(
            f"the logits have shape {tuple(logits.shape)}: one score per example, with no unit "
            f"axis to pick from; pass target=None (the score itself) or a callable, not "
            f"{describe(target)}."
        )
    if target is None:
        return (lambda values: _per_example(ops.max(values, axis=-1))), None
    if isinstance(target, (int, np.integer)) and not isinstance(target, (bool, np.bool_)):
        unit = int(target)
        if units is not None and not -units <= unit < units:
            raise ValueError(
                f"target {unit} is out of range: the logits have {units} units (valid "
                f"{-units}..{units - 1})."
            )
        return (lambda values: _per_example(ops.take(values, unit, axis=-1))), None
    indices = _indices(target, units)
    if len(indices.shape) == 1:
        return (lambda values: _gather_checked(values, ops.reshape(indices, (-1, 1)))[:, 0]), None
    return (lambda values: _gather_checked(values, indices)), indices.shape[1]


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
        raise TypeError(f"a target tensor must hold integer units; received dtype {target.dtype}.")
    shape = tuple(target.shape)
    if len(shape) not in (1, 2) or (len(shape) == 2 and not isinstance(shape[1], int)):
        raise ValueError(
            f"a target array must hold one unit per example, shape (batch,), or n units per "
            f"example, shape (batch, n); received shape {shape}."
        )
    extremes = value_range(target) if units is not None else None
    if extremes is not None and (extremes[0] < -units or extremes[1] >= units):
        raise ValueError(
            f"target units must lie in {-units}..{units - 1} (the logits have {units} "
            f"units); received values from {extremes[0]} to {extremes[1]}."
        )
    return ops.convert_to_tensor(target)


def _gather_checked(logits: Any, indices: Any) -> Any:
    """``scores[i, k] = logits[i, ..., indices[i, k]]`` summed over the axes between; NaN for an
    index outside the unit axis (see the module doc), so a traced index that is out of range
    cannot pick another unit."""
    units = ops.shape(logits)[-1]
    rank = len(logits.shape)
    batch, count = logits.shape[0], indices.shape[0]
    if isinstance(batch, int) and isinstance(count, int) and batch != count:
        raise ValueError(
            f"a target array must hold units for each example: {batch} examples, received "
            f"units for {count}."
        )
    indices = ops.cast(indices, "int32")
    valid = ops.logical_and(indices >= -units, indices < units)
    safe = ops.where(valid, ops.where(indices < 0, indices + units, indices), 0)
    middle = [1] * (rank - 2)
    n = indices.shape[1]
    where = ops.broadcast_to(ops.reshape(safe, [-1, *middle, n]), [*ops.shape(logits)[:-1], n])
    picked = ops.take_along_axis(logits, where, axis=-1)
    picked = ops.sum(picked, axis=tuple(range(1, rank - 1))) if rank > 2 else picked
    # NaN for an out-of-range unit; the gradients of a NaN score are made NaN after the
    # backward pass (see ``nan_where_invalid``): a NaN inside it would reach the other units'.
    return ops.where(valid, picked, ops.cast(float("nan"), picked.dtype))


def nan_where_invalid(gradient: Any, scores: Any) -> Any:
    """``gradient`` with NaN wherever its score is NaN (a unit out of range, see the module
    doc): ``scores`` is ``(batch,)`` or ``(batch, n)``, ``gradient`` ``(batch, [n,] ...)``."""
    invalid = ops.isnan(scores)
    shape = [*invalid.shape, *([1] * (len(gradient.shape) - len(invalid.shape)))]
    return ops.where(ops.reshape(invalid, shape), ops.cast(float("nan"), gradient.dtype), gradient)


def _per_example(scores: Any) -> Any:
    # Logits with more axes than (batch, units), such as per-token logits: sum each example's.
    rank = len(scores.shape)
    return scores if rank == 1 else ops.sum(scores, axis=tuple(range(1, rank)))


def _checked(scores: Any, logits: Any) -> Any:
    """A callable's scores: a floating-point backend tensor of shape (batch,)."""
    shape = getattr(scores, "shape", None)
    batch = logits.shape[0]
    if (
        shape is None
        or len(shape) != 1
        or (isinstance(batch, int) and isinstance(shape[0], int) and shape[0] != batch)
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
