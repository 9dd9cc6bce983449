"""Built-in adapter: the ``"feature_map"`` role and the Grad-CAM target finder.

Which spatial feature map "feeds the classifier head" is a property of the model, not of a layer:
MobileNetV3's 1x1 ``Logits`` convolution outputs a rank-4 map too, but it sits *after* the global
pooling. So the choice is split in two:

- :func:`keras_inspect_classify_layer` answers the layer-local part of the role: ``"feature_map"``
  holds for a layer whose output is a spatial map (rank >= 3) that is not statically 1x1. With
  the default ``"reverse"`` search it finds the last such layer in graph order.
- :func:`get_target_layer` uses the model: it walks the graph backwards from the logits layer
  (descending into nested models, climbing out of them), and returns the layer that produces the
  input of the first pooling layer (global pooling or ``Flatten``) fed a rank >= 3 map on that
  path, i.e. the last spatial feature map before the head (even when a small input makes it
  1x1). Without such a pooling layer it falls back to the
  nearest spatial map on the path, then to the role search.
"""

from __future__ import annotations

from typing import Any

import keras

from keras_inspect import hookimpl
from keras_inspect.framework.errors import NoMatchingLayerError
from keras_inspect.framework.graph import require_flavour
from keras_inspect.framework.manager import plugin_manager
from keras_inspect.framework.search import find_layer_with, get_logits_layer, get_nested_layer


def _spatial_dims(shape: tuple, layer: Any) -> tuple | None:
    if len(shape) < 3:
        return None
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return tuple(shape[2:])
    return tuple(shape[1:-1])


def is_spatial(shape: tuple, layer: Any = None) -> bool:
    """Whether a tensor shape is a spatial map that is not statically 1x1 (None counts as >1)."""
    dims = _spatial_dims(tuple(shape), layer)
    return dims is not None and any(d is None or d > 1 for d in dims)


def _output_shape(layer: Any) -> tuple | None:
    try:
        output = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(output, (list, tuple)):
        return None
    return tuple(output.shape)


@hookimpl
def keras_inspect_classify_layer(layer: Any, role: str) -> bool | None:
    if role != "feature_map" or not isinstance(layer, keras.layers.Layer):
        return None
    if isinstance(layer, (keras.Model, keras.layers.InputLayer)):
        return False
    shape = _output_shape(layer)
    return shape is not None and is_spatial(shape, layer)


def get_target_layer(model: Any, name: Any = None) -> Any:
    """The layer whose output is the last spatial feature map feeding the classifier head.

    This is the usual Grad-CAM target. ``name`` short-circuits the search (a layer name or a
    nested path). Nested models are searched too: for ``Sequential([backbone, pooling, dense])``
    the answer is the backbone's last layer, not the backbone itself.
    """
    if name is not None:
        return get_nested_layer(model, name)
    flavour = require_flavour(model)
    found = _trace_to_feature_map(model, flavour)
    if found is not None:
        return found
    return find_layer_with(model, role="feature_map")


def _trace_to_feature_map(model: Any, flavour: Any) -> Any | None:
    try:
        logits = get_logits_layer(model)
    except NoMatchingLayerError:
        return None
    start = _last_call_input(model, flavour, logits)
    if start is None:
        return None
    pm = plugin_manager()
    nearest_spatial = None
    tensor, stack = start
    for _ in range(100_000):  # a finite graph; the bound only guards against a cycle
        origin = flavour.tensor_origin(tensor)
        if origin is None:
            return nearest_spatial
        layer, call = origin
        if isinstance(layer, keras.layers.InputLayer):
            if not stack:
                return nearest_spatial
            # Leaving a nested model: continue with the matching argument of its call.
            container, outer_call = stack.pop()
            position = _index_of(flavour.inputs(container), tensor)
            tensor = flavour.call_tensors(outer_call, "input")[position]
            continue
        if flavour.has_graph(layer):
            # Entering a nested model: continue from the inner tensor it returns.
            position = _index_of(flavour.call_tensors(call, "output"), tensor)
            stack.append((layer, call))
            tensor = flavour.outputs(layer)[position]
            continue
        if nearest_spatial is None and is_spatial(tuple(tensor.shape), layer):
            nearest_spatial = layer
        inputs = flavour.call_tensors(call, "input")
        if not inputs:
            return nearest_spatial
        if pm.classify(layer, "pooling")[0] and len(inputs[0].shape) >= 3:
            return _producer(flavour, inputs[0], stack)
        tensor = inputs[0]
    return nearest_spatial


def _producer(flavour: Any, tensor: Any, stack: list) -> Any:
    """The non-model layer that computes ``tensor`` (looking inside nested models)."""
    while True:
        layer, call = flavour.tensor_origin(tensor)
        if flavour.has_graph(layer):
            position = _index_of(flavour.call_tensors(call, "output"), tensor)
            tensor = flavour.outputs(layer)[position]
            continue
        if isinstance(layer, keras.layers.InputLayer) and stack:
            container, outer_call = stack.pop()
            position = _index_of(flavour.inputs(container), tensor)
            tensor = flavour.call_tensors(outer_call, "input")[position]
            continue
        return layer


def _index_of(tensors: list[Any], tensor: Any) -> int:
    return next(i for i, t in enumerate(tensors) if t is tensor)


def _last_call_input(model: Any, flavour: Any, layer: Any) -> tuple[Any, list] | None:
    """The first input tensor of ``layer``'s last call, with the stack of nested calls above it."""
    from keras_inspect.framework.graph import find_layer_entry

    entry = find_layer_entry(model, layer)
    if not entry.in_graph:
        return None
    stack: list[tuple[Any, Any]] = []
    container = model
    for name in entry.path[:-1]:
        child = next(c for c in flavour.children(container) if c.name == name)
        calls = flavour.calls(child, container)
        if not calls:
            return None
        stack.append((child, calls[-1]))
        container = child
    calls = flavour.calls(layer, container)
    if not calls:
        return None
    inputs = flavour.call_tensors(calls[-1], "input")
    return (inputs[0], stack) if inputs else None
