"""The inputs a feature runs a model on, checked against the model's own inputs first.

A backend that meets text, a ragged list or mismatched batch sizes fails deep inside a model that
keras-inspect built (its errors name ``'cnn_edited_front'``, not the user's model). Checked here,
such inputs are one ``TypeError`` or ``ValueError`` that names the model and its inputs.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from keras_inspect.errors import describe, shorten
from keras_inspect.graph.inspected import InspectedModel


def checked_inputs(view: InspectedModel, inputs: Any) -> Any:
    """``inputs`` as backend tensors, once checked to fit the model's inputs."""
    reader = view.reader
    wanted = reader.inputs(view.model)
    names = ", ".join(shorten(getattr(t, "name", "?")) for t in wanted)
    try:
        given = reader.flatten(inputs)
    except Exception as error:
        raise TypeError(
            f"Model {view.name!r} takes {names}; received {describe(inputs)} ({error})."
        ) from None
    if len(given) != len(wanted):
        raise ValueError(
            f"Model {view.name!r} takes {len(wanted)} input(s) ({names}); received "
            f"{len(given)} in {describe(inputs)}."
        )
    batches = set()
    for value, spec in zip(given, wanted):
        shape = _shape(value, spec, view.name)
        expected = tuple(spec.shape)
        if not fits(shape, expected):
            raise ValueError(
                f"Input {shorten(spec.name)} of model {view.name!r} has shape {expected} (None: "
                f"any size); received shape {shape}."
            )
        if shape and isinstance(shape[0], int):
            batches.add(shape[0])
    if len(batches) > 1:
        raise ValueError(
            f"The inputs of model {view.name!r} must share one batch size; received batch sizes "
            f"{sorted(batches)}."
        )
    return keras.tree.map_structure(ops.convert_to_tensor, inputs)


def fits(shape: tuple[Any, ...], expected: tuple[Any, ...]) -> bool:
    """Whether a value of ``shape`` fits a signal of shape ``expected`` (the batch axis, and
    any ``None``, match any size)."""
    return len(shape) == len(expected) and all(
        e is None or s is None or int(s) == int(e) for s, e in zip(shape[1:], expected[1:])
    )


def _shape(value: Any, spec: Any, model: str) -> tuple[Any, ...]:
    """The shape of an input, which must be numbers (an array, a backend tensor)."""
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        try:
            value = np.asarray(value)
        except (ValueError, RecursionError):
            raise ValueError(
                f"Input {shorten(spec.name)} of model {model!r} must be a rectangular array; "
                f"received {describe(value)}."
            ) from None
    kind = getattr(value.dtype, "kind", None)
    if kind in ("U", "S", "O") or "string" in str(value.dtype):
        raise TypeError(
            f"Input {shorten(spec.name)} of model {model!r} must hold numbers "
            f"({spec.dtype}); received {describe(value)} of dtype {value.dtype}."
        )
    return tuple(value.shape)
