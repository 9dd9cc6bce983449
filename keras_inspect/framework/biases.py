"""Layers that add a constant to their output, and those constants."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .autograph import plain_python
from .current_manager import plugin_manager
from .errors import describe
from .inspected_model import InspectedModel, inspect_model


def _excluded(view: InspectedModel, exclude: Any) -> set[int]:
    """The ids of the layers to leave out: layer objects, or names and paths of the model."""
    if exclude is None:
        return set()
    if isinstance(exclude, (list, tuple, set, frozenset)):
        items = list(exclude)
    else:
        items = [exclude]
    skipped = set()
    for item in items:
        if isinstance(item, str):
            skipped.add(id(view.entry(item).layer))
        elif view.reader.is_layer(item):
            skipped.add(id(item))
        else:
            raise TypeError(
                "exclude must hold layers of the model, or their names or paths; received "
                f"{describe(item)}."
            )
    return skipped


@plain_python
def layers_with_biases(
    model: Any, exclude: Iterable[Any] = (), return_biases: bool = True
) -> Any:
    """The layers of ``model`` that add a constant to their output, in graph order.

    Returns ``(layers, biases)`` (two aligned lists) or, with ``return_biases=False``, ``layers``.
    Biases come from the ``keras_inspect_layer_bias`` hook, so implicit ones (an inference-mode
    BatchNormalization) are included. ``exclude`` leaves out layers (objects, names or paths).
    """
    view = inspect_model(model)
    skipped = _excluded(view, exclude)
    layer_bias = view.pm.layer_bias
    layers, values = [], []
    for entry in view.entries:
        if id(entry.layer) in skipped:
            continue
        bias, _plugin = layer_bias(entry.layer, view.reader)
        if bias is not None:
            layers.append(entry.layer)
            values.append(bias)
    if return_biases:
        return layers, values
    return layers


@plain_python
def biases(layers: Iterable[Any]) -> list[Any]:
    """The constant each layer adds; layers that add none are skipped, as in the reference.

    Where a layer adds its own bias variable unchanged (a ``Dense`` computing in its variables'
    dtype), the variable itself is returned, so a list kept across training stays current;
    computed constants (a folded BatchNormalization, a cast or reshaped bias) are snapshots.
    """
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
        raise TypeError(f"biases expects an iterable of layers; received {describe(layers)}.")
    layer_bias = plugin_manager().layer_bias
    values = []
    for layer in layers:
        bias, _plugin = layer_bias(layer)
        if bias is not None:
            values.append(bias)
    return values
