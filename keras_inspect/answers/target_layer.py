"""``get_target_layer``: the last spatial feature map feeding the classifier head (Grad-CAM's).

Which spatial map feeds the head is a property of the model, not of a layer: MobileNetV3's 1x1
``Logits`` convolution outputs a rank-4 map too, but it sits *after* the global pooling. So the
graph is walked backwards from the logits layer (descending into nested models, climbing out of
them) to the first pooling layer fed a rank >= 3 map; the layer producing that map is the
answer, even when a small input makes it 1x1. Without such a pooling layer the nearest spatial
map on the path is taken, then the ``"feature_map"`` role search.
"""

from __future__ import annotations

from typing import Any

import attrs

from keras_inspect.answers.search import classifier, find_entry, find_in
from keras_inspect.autograph import plain_python
from keras_inspect.errors import NoMatchingLayerError
from keras_inspect.graph.endpoints import Endpoint
from keras_inspect.graph.inspected import InspectedModel, inspect_model


def spatial_dims(shape: tuple[Any, ...], layer: Any = None) -> tuple[Any, ...] | None:
    """The spatial dimensions of a feature map of ``shape`` produced by ``layer``, if any."""
    if len(shape) < 3:
        return None
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return tuple(shape[2:])
    return tuple(shape[1:-1])


def is_spatial(shape: tuple[Any, ...], layer: Any = None) -> bool:
    """Whether a tensor shape is a spatial map that is not statically 1x1 (None counts as >1)."""
    dims = spatial_dims(tuple(shape), layer)
    return dims is not None and any(d is None or d > 1 for d in dims)


@plain_python
def get_target_layer(model: Any, name: Any = None) -> Any:
    """The layer whose output is the last spatial feature map feeding the classifier head.

    This is the usual Grad-CAM target. ``name`` short-circuits the search (a layer name or a
    nested path). Nested models are searched too: for ``Sequential([backbone, pooling, dense])``
    the answer is the backbone's last layer, not the backbone itself.
    """
    view = inspect_model(model)
    if name is not None:
        return view.entry(name).layer
    found = _trace(view)
    if found.producer is not None or found.nearest is not None:
        return found.producer if found.producer is not None else found.nearest
    return find_in(view, role="feature_map")


def default_logits(view: InspectedModel) -> Endpoint:
    """What ``expose(model)`` returns first: the logits layer's output (at the place where it
    produces logits, for a layer called in several models), carried on to the model's output
    through the operations that make it (a slice of a language model's image tokens, a soft cap
    of its logits)."""
    entry = find_entry(view, role="logits")
    return _carried_to_output(view, entry) or Endpoint(path=entry.path)


def _carried_to_output(view: InspectedModel, entry: Any) -> Endpoint | None:
    """The last of a chain of operations (no layers) that makes a model output of ``entry``'s
    output alone, or ``None``."""
    reader = view.reader
    if len(entry.path) != 1 or not entry.calls:
        return None
    produced = reader.call_tensors(entry.calls[-1], "output")
    outputs = {id(t) for t in reader.outputs(view.model)}
    if len(produced) != 1 or id(produced[0]) in outputs:
        return None  # the usual case, known without reading the graph
    consumers: dict[int, list[Any]] = {}
    layered = reader.nodes_by_depth(reader.graph_of(view.model))
    for nodes in layered.values():
        for node in nodes:
            for tensor in reader.node_tensors(node, "input"):
                consumers.setdefault(id(tensor), []).append(node)
    tensor, last = produced[0], None
    while id(tensor) not in outputs:
        nodes = consumers.get(id(tensor), [])
        operation = reader.node_layer(nodes[0]) if len(nodes) == 1 else None
        if operation is None or reader.is_layer(operation):
            return None
        after = reader.node_tensors(nodes[0], "output")
        if len(after) != 1:
            return None
        tensor, last = after[0], operation
    return None if last is None else Endpoint(path=(last.name,))


def default_feature_map(view: InspectedModel) -> Endpoint:
    """What explanations look at by default: the input of the global pooling layer that feeds
    the logits (the feature map of CAM and Grad-CAM), else of the last one in graph order (as
    the seed did); without one, the token sequence or spatial map nearest the logits on the way
    to them, i.e. what a token reduction consumes (a vision transformer's tokens before its
    class-token slice, a text classifier's before its pooled dense layer, a causal language
    model's final hidden states)."""
    found = _trace(view)
    if found.pooling is not None:
        return Endpoint(path=view.entry_of(found.pooling).path, link="input")
    try:
        pooling = find_entry(view, role="pooling")
    except NoMatchingLayerError as error:
        if found.nearest is None:
            raise NoMatchingLayerError(
                f"{error} Model {view.name!r} has no global pooling layer, and no token sequence "
                "or spatial map leads to its logits, so there is no default feature map: name "
                "the signal to use (expose(model, arguments=...), gradients(model, x, "
                "signals=...))."
            ) from None
        outputs = view.reader.call_tensors(found.nearest_call, "output")
        index = None if len(outputs) == 1 else _index_of(outputs, found.nearest_tensor)
        return Endpoint(path=view.entry_of(found.nearest).path, index=index)
    return Endpoint(path=pooling.path, link="input")


@attrs.frozen(kw_only=True, eq=False)
class _Found:
    """What walking back from the logits met: the first global pooling layer fed a map
    (rank >= 3) and the layer producing that map, and the nearest layer producing a spatial
    map or token sequence."""

    pooling: Any = None
    producer: Any = None
    nearest: Any = None
    nearest_call: Any = None
    nearest_tensor: Any = None


def _trace(view: InspectedModel) -> _Found:
    reader = view.reader
    try:
        logits = find_entry(view, role="logits")
    except NoMatchingLayerError:
        return _Found()
    start = _last_call_input(view, logits)
    if start is None:
        return _Found()
    is_pooling = classifier(view, "pooling")
    nearest = None
    first: _Found | None = None
    tensor, stack = start
    for _ in range(100_000):  # a finite graph; the bound only guards against a cycle
        origin = reader.tensor_origin(tensor)
        if origin is None:
            break
        layer, call = origin
        if reader.is_input_layer(layer):
            if not stack:
                break
            # Leaving a nested model: continue with the matching argument of its call.
            container, outer_call = stack.pop()
            position = _index_of(reader.inputs(container), tensor)
            tensor = reader.call_tensors(outer_call, "input")[position]
            continue
        if reader.has_graph(layer):
            # Entering a nested model: continue from the inner tensor it returns.
            position = _index_of(reader.call_tensors(call, "output"), tensor)
            stack.append((layer, call))
            tensor = reader.outputs(layer)[position]
            continue
        # Operations (a slice, a reshape) are passed through: the answer is a layer.
        if nearest is None and reader.is_layer(layer) and is_spatial(tuple(tensor.shape), layer):
            nearest = (layer, call, tensor)
        inputs = reader.call_tensors(call, "input")
        if not inputs:
            break
        if is_pooling(layer)[0] and len(inputs[0].shape) >= 3:
            found = _Found(
                pooling=layer, producer=_producer(view, inputs[0], list(stack)), **_near(nearest)
            )
            if is_spatial(tuple(inputs[0].shape), layer):
                return found
            # A pooling layer fed a 1x1 map (a Flatten after a global pooling that keeps its
            # axes, and a 1x1 convolution): the pooling that made the 1x1 map may lie behind.
            first = first or found
        elif first is not None and not _one_by_one(inputs[0], layer):
            break  # left the 1x1 part of the head without meeting another pooling layer
        tensor = inputs[0]
    return first or _Found(**_near(nearest))


def _near(nearest: tuple[Any, Any, Any] | None) -> dict[str, Any]:
    if nearest is None:
        return {}
    return {"nearest": nearest[0], "nearest_call": nearest[1], "nearest_tensor": nearest[2]}


def _one_by_one(tensor: Any, layer: Any) -> bool:
    return len(tensor.shape) >= 3 and not is_spatial(tuple(tensor.shape), layer)


def _producer(view: InspectedModel, tensor: Any, stack: list) -> Any:
    """The non-model layer that computes ``tensor`` (looking inside nested models)."""
    reader = view.reader
    while True:
        layer, call = reader.tensor_origin(tensor)
        if reader.has_graph(layer):
            position = _index_of(reader.call_tensors(call, "output"), tensor)
            tensor = reader.outputs(layer)[position]
            continue
        if reader.is_input_layer(layer) and stack:
            container, outer_call = stack.pop()
            position = _index_of(reader.inputs(container), tensor)
            tensor = reader.call_tensors(outer_call, "input")[position]
            continue
        return layer


def _index_of(tensors: list[Any], tensor: Any) -> int:
    return next(i for i, t in enumerate(tensors) if t is tensor)


def _last_call_input(view: InspectedModel, entry: Any) -> tuple[Any, list] | None:
    """The first input tensor of the last call of ``entry``'s layer, with the stack of nested
    calls above it."""
    reader = view.reader
    layer = entry.layer
    if not entry.in_graph:
        return None
    stack: list[tuple[Any, Any]] = []
    container = view.model
    for name in entry.path[:-1]:
        child = next(c for c in reader.children(container) if c.name == name)
        calls = reader.calls(child, container)
        if not calls:
            return None
        stack.append((child, calls[-1]))
        container = child
    calls = reader.calls(layer, container)
    if not calls:
        return None
    inputs = reader.call_tensors(calls[-1], "input")
    return (inputs[0], stack) if inputs else None
