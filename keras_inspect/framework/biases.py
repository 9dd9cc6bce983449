"""Layers that add a constant to their output, and those constants."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .graph import walk
from .manager import plugin_manager


def _excluded(exclude: Any) -> set[int]:
    if exclude is None:
        return set()
    items = [exclude] if not isinstance(exclude, (list, tuple, set, frozenset)) else exclude
    return {id(item) for item in items}


def layers_with_biases(
    model: Any, exclude: Iterable[Any] = (), return_biases: bool = True
) -> Any:
    """The layers of ``model`` that add a constant to their output, in graph order.

    Returns ``(layers, biases)`` (two aligned lists) or, with ``return_biases=False``, ``layers``.
    Biases come from the ``keras_inspect_layer_bias`` hook, so implicit ones (an inference-mode
    BatchNormalization) are included.
    """
    skipped = _excluded(exclude)
    pm = plugin_manager()
    layers, values = [], []
    for entry in walk(model):
        if id(entry.layer) in skipped:
            continue
        bias, _plugin = pm.layer_bias(entry.layer)
        if bias is not None:
            layers.append(entry.layer)
            values.append(bias)
    if return_biases:
        return layers, values
    return layers


def biases(layers: Iterable[Any]) -> list[Any]:
    """The constant each layer adds; layers that add none are skipped, as in the reference."""
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
        raise TypeError(f"biases expects an iterable of layers; received {layers!r}.")
    pm = plugin_manager()
    values = []
    for layer in layers:
        bias, _plugin = pm.layer_bias(layer)
        if bias is not None:
            values.append(bias)
    return values
