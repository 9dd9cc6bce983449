"""The values of edits: what an intervention gives (``replace=``, ``add=``), and the zeros at which
a gradient is taken, shaped for the inputs at hand.

A signal's shape may be known only at call time (a text model's sequence length, an image
model built for any size): its zeros are then shaped by inferring the signal's shape from the
inputs' shapes (once per input shape, remembered with a bound), or, where even that is unknown
(a trace with unknown dimensions), from the signal's value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import keras
from keras import ops

from keras_inspect.answers.descriptors import to_endpoint
from keras_inspect.errors import EndpointError, describe, shorten
from keras_inspect.graph.endpoints import Endpoint
from keras_inspect.graph.inspected import InspectedModel
from keras_inspect.signals.autodiff import without_gradients
from keras_inspect.signals.inputs import fits

#: How many input shapes the inferred signal shapes are remembered for, per edited model.
SHAPES_KEPT = 64


@attrs.frozen(kw_only=True, eq=False)
class Given:
    """An edit with its values: ``mode`` ``"replace"`` puts them in the signal's place,
    ``"add"`` adds them to it."""

    endpoint: Endpoint
    mode: str
    values: tuple[Any, ...]


def given_edits(view: InspectedModel, replace: Any, add: Any) -> list[Given]:
    """The edits of ``replace=`` and ``add=`` (a mapping or pairs of descriptor -> values; a
    signal of several tensors takes a list of values)."""
    given = []
    for mode, argument in (("replace", replace), ("add", add)):
        for descriptor, values in _pairs(argument, mode):
            endpoint = to_endpoint(view, descriptor)
            listed = values if isinstance(values, (list, tuple)) else [values]
            tensors = tuple(_tensor(v, endpoint, mode) for v in listed)
            given.append(Given(endpoint=endpoint, mode=mode, values=tensors))
    seen: dict[Endpoint, str] = {}
    for item in given:
        if item.endpoint in seen:
            raise EndpointError(
                f"Signal {shorten(item.endpoint.name)} is given twice ({seen[item.endpoint]} and "
                f"{item.mode}); give each signal one edit."
            )
        seen[item.endpoint] = item.mode
    return given


def _pairs(argument: Any, mode: str) -> list[tuple[Any, Any]]:
    if argument is None:
        return []
    if isinstance(argument, Mapping):
        return list(argument.items())
    if isinstance(argument, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 for p in argument
    ):
        return [tuple(p) for p in argument]
    raise TypeError(
        f"{mode}= must map signal descriptors to values (a dict, or a list of (descriptor, "
        f"values) pairs for descriptors that are dicts); received {describe(argument)}."
    )


def _tensor(value: Any, endpoint: Endpoint, mode: str) -> Any:
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
        raise TypeError(
            f"The values to {mode} at {shorten(endpoint.name)} must be an array or tensor; "
            f"received {describe(value)}."
        )
    return ops.convert_to_tensor(value)


def check_values(
    values: Sequence[Any], edits: Sequence[Any], signal_names: Sequence[str], batch: Any = None
) -> None:
    """Each given value must fit its signal: same rank, same known dimensions, the inputs'
    batch size (``batch``, if known), a float dtype."""
    for value, edit, name in zip(values, edits, signal_names):
        first = tuple(value.shape)[0] if len(value.shape) else None
        if isinstance(batch, int) and isinstance(first, int) and first != batch:
            raise ValueError(
                f"The values for signal {shorten(name)} hold {first} examples; the inputs hold "
                f"{batch}."
            )
        expected = tuple(edit.shape)
        shape = tuple(value.shape)
        if not fits(shape, expected):
            raise ValueError(
                f"The values for signal {shorten(name)} have shape {shape}; the signal has "
                f"shape {expected} (None: any size)."
            )
        if "float" not in keras.backend.standardize_dtype(value.dtype):
            raise TypeError(
                f"The values for signal {shorten(name)} must be floating point (the signal "
                f"is {edit.dtype}); received dtype {value.dtype}."
            )


def zeros(
    view: InspectedModel, built: Any, inputs: Any, wanted: Sequence[int], batch: Any
) -> dict[int, Any]:
    """Zeros shaped like the edited signals at positions ``wanted`` (flat edit indices), for
    ``inputs``."""
    edits = built.edits
    shapes = {i: tuple(edits[i].shape[1:]) for i in wanted}
    if any(None in shape for shape in shapes.values()):
        inferred = _inferred_shapes(view, built, inputs)
        if inferred is None:
            return _from_values(built, inputs, wanted)
        shapes = {i: inferred[i] for i in wanted}
    return {i: ops.zeros((batch, *shapes[i]), dtype=edits[i].dtype) for i in wanted}


def _inferred_shapes(view: InspectedModel, built: Any, inputs: Any) -> list[tuple] | None:
    """The edited signals' shapes (batch excluded) for inputs of these shapes, or ``None`` where
    they cannot be known before the signals are computed."""
    flat = view.reader.flatten(inputs)
    signature = (id(built), *((tuple(x.shape), str(x.dtype)) for x in flat))
    cache = view.cache("edit_shapes")
    found = cache.get(signature)
    if found is None:
        if any(d is None for x in flat for d in tuple(x.shape)[1:]) or view.reader.name != "keras3":
            return None
        specs = keras.tree.map_structure(
            lambda x: keras.KerasTensor(
                tuple(x.shape), dtype=keras.backend.standardize_dtype(x.dtype)
            ),
            inputs,
        )
        try:
            outputs = built.probe.compute_output_spec(specs)
        except Exception:
            return None  # a layer that cannot infer its shape: the values will tell
        found = [tuple(t.shape[1:]) for t in keras.tree.flatten(outputs)]
        if any(None in shape for shape in found):
            return None
        cache[signature] = found
        while len(cache) > SHAPES_KEPT:
            del cache[next(iter(cache))]
    return found


def _from_values(built: Any, inputs: Any, wanted: Sequence[int]) -> dict[int, Any]:
    """Zeros like the signals' values themselves, computed once without gradients."""
    with without_gradients():
        values = keras.tree.flatten(built.probe(inputs, training=False))
    return {i: ops.zeros_like(values[i]) for i in wanted}
