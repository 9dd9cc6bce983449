"""Layers that add a constant to their output, and those constants."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from keras_inspect.autograph import plain_python
from keras_inspect.errors import PluginError, describe, name_of
from keras_inspect.graph.inspected import InspectedModel, inspect_model, reader_of
from keras_inspect.graph.reader import GraphReader
from keras_inspect.hooks.current import plugin_manager
from keras_inspect.hooks.manager import InspectPluginManager


def layer_bias(
    pm: InspectPluginManager, layer: Any, reader: GraphReader | None = None
) -> tuple[Any | None, str | None]:
    """``pm.layer_bias(layer)``, checked to broadcast to the layer's output (read by
    ``reader``, by default the layer's flavour's)."""
    bias, plugin = pm.layer_bias(layer)
    if bias is None:
        return None, None
    reader = reader if reader is not None else reader_of(layer, pm)
    shapes = None if reader is None else reader.output_shapes(layer)
    if shapes is not None and len(shapes) == 1 and not _broadcasts(bias.shape, shapes[0]):
        raise PluginError(
            f"plugin {plugin!r} returned a bias of shape {tuple(bias.shape)} from "
            f"keras_inspect_layer_bias for layer {name_of(layer)!r}, whose output has shape "
            f"{shapes[0]}; a bias must broadcast to the layer's output (channels where the "
            "layer puts them, e.g. (C,) or (C, 1, 1))."
        )
    return bias, plugin


def _broadcasts(shape: Any, output: tuple[Any, ...]) -> bool:
    """Whether a constant of ``shape`` can be added to an output of shape ``output``."""
    try:
        dims = [None if d is None else int(d) for d in shape]
    except (TypeError, ValueError):
        return True  # a dynamic shape: nothing to check statically
    if len(dims) > len(output):
        return False
    for dim, out in zip(reversed(dims), reversed(output)):
        if dim is None or dim == 1 or out is None or dim == out:
            continue
        return False
    return True


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
def layers_with_biases(model: Any, exclude: Iterable[Any] = (), return_biases: bool = True) -> Any:
    """The layers of ``model`` that add a constant to their output, in graph order.

    Returns ``(layers, biases)`` (two aligned lists) or, with ``return_biases=False``, ``layers``.
    Biases come from the ``keras_inspect_layer_bias`` hook, so implicit ones (an inference-mode
    BatchNormalization) are included. ``exclude`` leaves out layers (objects, names or paths).
    """
    view = inspect_model(model)
    skipped = _excluded(view, exclude)
    layers, values = [], []
    for entry in view.entries:
        if id(entry.layer) in skipped:
            continue
        bias, _plugin = layer_bias(view.pm, entry.layer, view.reader)
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
    pm = plugin_manager()
    values = []
    for layer in layers:
        bias, _plugin = layer_bias(pm, layer)
        if bias is not None:
            values.append(bias)
    return values
