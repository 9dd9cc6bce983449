"""Endpoint descriptors: what the user asks for, normalised to one frozen value.

Every form the public API accepts (an index into ``model.layers``, a name or path, a layer, a
dict, a symbolic tensor, an :class:`Endpoint`) becomes an :class:`Endpoint` whose ``path`` names
the layer from the top model down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Union

import attrs

from keras_inspect.errors import EndpointError, LayerNotFoundError, describe, did_you_mean, name_of, shorten
from keras_inspect.graph.inspected import InspectedModel
from keras_inspect.graph.walk import LayerEntry, split_path

Link = Literal["output", "input", "pre_activation"]
Node = Union[int, Literal["last"]]

LINKS: tuple[str, ...] = ("output", "input", "pre_activation")
DICT_KEYS = frozenset({"name", "layer", "link", "node", "index"})


def _check_link(_instance: Any, _attribute: Any, value: Any) -> None:
    if value not in LINKS:
        raise EndpointError(
            f"link must be one of {', '.join(repr(x) for x in LINKS)}; received {shorten(value)}."
        )


def _check_node(_instance: Any, _attribute: Any, value: Any) -> None:
    if value == "last" and isinstance(value, str):
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise EndpointError(
            f"node must be a call index (int) or 'last'; received {shorten(value)} of type "
            f"{type(value).__name__}."
        )


def _check_index(_instance: Any, _attribute: Any, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise EndpointError(f"index must be an int or None; received {shorten(value)}.")


@attrs.frozen(kw_only=True)
class Endpoint:
    """A signal of a model: the input or output of one call of one (possibly nested) layer.

    :ivar path: layer names from the top model down, e.g. ``("backbone", "conv5_block3_out")``;
        a string ``"backbone/conv5_block3_out"`` is accepted and split.
    :ivar link: ``"output"`` (default), ``"input"``, or ``"pre_activation"`` (the output before
        a fused activation; equal to ``"output"`` for layers without one).
    :ivar node: which call of the layer inside this model: an index (0 = first call, negative
        counts from the end) or ``"last"`` (the last call recorded in the graph that holds the
        layer, never a call made by another model built later). For a layer inside a subclassed
        layer (no graph), calls are counted during one call of that enclosing layer. A nested
        model called several times exposes the signals of its last call.
    :ivar index: for a signal made of several tensors (a multi-input layer's input), keep only
        this one; ``None`` keeps them all, flattened in order.
    """

    path: tuple[str, ...] = attrs.field(converter=split_path)
    link: Link = attrs.field(default="output", validator=_check_link)
    node: Node = attrs.field(default="last", validator=_check_node)
    index: int | None = attrs.field(default=None, validator=_check_index)

    @property
    def name(self) -> str:
        return "/".join(self.path)


def to_endpoint(view: InspectedModel, descriptor: Any) -> Endpoint:
    """Normalise one descriptor to an :class:`Endpoint` of the model (checks that it exists)."""
    reader = view.reader
    if isinstance(descriptor, Endpoint):
        endpoint = descriptor
    elif isinstance(descriptor, bool):
        raise TypeError(f"an endpoint cannot be a bool; received {descriptor}.")
    elif isinstance(descriptor, int):
        endpoint = Endpoint(path=(_layer_at(view, descriptor).name,))
    elif isinstance(descriptor, str):
        endpoint = Endpoint(path=view.entry(descriptor, inputs=True).path)
    elif isinstance(descriptor, (tuple, list)):
        raise TypeError(
            f"a tuple or list of descriptors cannot itself be an endpoint; received "
            f"{describe(descriptor)}. A nested layer is named by a path string "
            "'outer/inner', an Endpoint(path=...) or a dict {'name': ('outer', 'inner')}."
        )
    elif isinstance(descriptor, Mapping):
        endpoint = _from_dict(view, descriptor)
    elif reader.is_layer(descriptor):
        endpoint = Endpoint(path=view.entry_of(descriptor, inputs=True).path)
    elif reader.tensor_origin(descriptor) is not None:
        endpoint = _from_tensor(view, descriptor)
    else:
        raise TypeError(
            f"cannot use {describe(descriptor)} as an endpoint; expected a layer index (int), a "
            "layer name or path (str, 'outer/inner'), a layer, a symbolic tensor of the model, a "
            "dict with 'name' or 'layer' and optional 'link', 'node', 'index' keys, or a "
            "keras_inspect.Endpoint."
        )
    view.entry(endpoint.path, inputs=True)
    return endpoint


def to_endpoints(view: InspectedModel, descriptors: Any) -> list[Endpoint]:
    """Normalise one descriptor, or a list or tuple of descriptors (as the seed: a tuple is a
    list), to endpoints."""
    if isinstance(descriptors, (list, tuple)):
        return [to_endpoint(view, d) for d in descriptors]
    return [to_endpoint(view, descriptors)]


def _layer_at(view: InspectedModel, index: int) -> Any:
    layers = list(getattr(view.model, "layers", []))
    if not -len(layers) <= index < len(layers):
        raise LayerNotFoundError(
            f"Layer index {shorten(index)} is out of range: model {view.name!r} has "
            f"{len(layers)} top-level layers (valid indices {-len(layers)}..{len(layers) - 1})."
        )
    return layers[index]


def _from_dict(view: InspectedModel, descriptor: Mapping[str, Any]) -> Endpoint:
    unknown = set(descriptor) - DICT_KEYS
    if unknown:
        key = sorted(map(str, unknown))[0]
        raise EndpointError(
            f"Unknown key {shorten(key)} in endpoint {shorten(dict(descriptor))}."
            f"{did_you_mean(key, DICT_KEYS)} Expected keys: {', '.join(sorted(DICT_KEYS))}."
        )
    has_name, has_layer = "name" in descriptor, "layer" in descriptor
    if has_name == has_layer:
        raise EndpointError(
            "An endpoint dict needs exactly one of 'name' and 'layer'; received "
            f"{shorten(dict(descriptor))}."
        )
    if has_layer:
        target = descriptor["layer"]
        if isinstance(target, int) and not isinstance(target, bool):
            path = (_layer_at(view, target).name,)
        elif view.reader.is_layer(target):
            path = view.entry_of(target, inputs=True).path
        else:
            raise TypeError(
                f"'layer' in an endpoint dict must be a layer or an index; received "
                f"{describe(target)}."
            )
    else:
        path = view.entry(descriptor["name"], inputs=True).path
    return Endpoint(
        path=path,
        link=descriptor.get("link", "output"),
        node=descriptor.get("node", "last"),
        index=descriptor.get("index"),
    )


def _from_tensor(view: InspectedModel, tensor: Any) -> Endpoint:
    reader = view.reader
    layer, call = reader.tensor_origin(tensor)
    if any(t is tensor for t in reader.inputs(view.model)):
        return Endpoint(path=(layer.name,))
    tensor_name = shorten(getattr(tensor, "name", tensor))
    if not reader.is_layer(layer):
        raise EndpointError(
            f"Tensor {tensor_name} was produced by operation {name_of(layer)!r} (a "
            f"{type(layer).__name__}, not a layer); only the signals of layers are endpoints. "
            "Expose the input of the layer that consumes it instead."
        )
    try:
        entry = view.entry_of(layer)
    except LayerNotFoundError:
        raise EndpointError(
            f"Tensor {tensor_name} was produced by layer {name_of(layer)!r}, which is not part "
            f"of model {view.name!r}."
        ) from None
    calls = reader.calls(layer, entry.container)
    positions = [i for i, c in enumerate(calls) if c is call]
    if not positions:
        raise EndpointError(
            f"Tensor {tensor_name} comes from a call of layer {shorten(entry.name)} that is not part "
            f"of model {view.name!r}'s graph."
        )
    outputs = reader.call_tensors(call, "output")
    index = next((i for i, t in enumerate(outputs) if t is tensor), None)
    if len(outputs) == 1:
        index = None
    return Endpoint(path=entry.path, link="output", node=positions[0], index=index)


@attrs.frozen(kw_only=True, eq=False)
class Located:
    """An endpoint located in the graph of the model that directly holds its layer."""

    endpoint: Endpoint
    entry: LayerEntry
    call: Any
    tensors: tuple[Any, ...]


def locate(view: InspectedModel, endpoint: Endpoint) -> Located:
    """Find the call and the symbolic tensors of ``endpoint`` in its container's own graph."""
    reader = view.reader
    entry = view.entry(endpoint.path, inputs=True)
    if reader.is_input_layer(entry.layer):
        # An input layer: its input and output are the same tensor, and it has no activation.
        found = view.input_entry(entry.path)
        if found is None:
            raise EndpointError(f"Input {shorten(entry.name)} is not an input of a graph of the model.")
        if endpoint.index not in (None, 0, -1):
            raise EndpointError(
                f"Input {shorten(entry.name)} is one tensor; index {endpoint.index} is out of range."
            )
        return Located(endpoint=endpoint, entry=found[0], call=None, tensors=(found[1],))
    if not entry.in_graph:
        raise EndpointError(
            f"Layer {shorten(entry.name)} lives inside {_container_name(entry)!r}, a subclassed "
            "layer or model without a functional graph, so it has no node of its own. "
            "expose() reaches it by intercepting its call; to locate a node, use the "
            "enclosing layer instead."
        )
    calls = reader.calls(entry.layer, entry.container)
    if not calls:
        raise EndpointError(
            f"Layer {shorten(entry.name)} is never called in the graph of {_container_name(entry)!r}; "
            "it has no signal to expose."
        )
    node = endpoint.node
    if node == "last":
        call = calls[-1]
    elif -len(calls) <= node < len(calls):
        call = calls[node]
    else:
        raise EndpointError(
            f"Layer {shorten(entry.name)} is called {len(calls)} time(s) in "
            f"{_container_name(entry)!r}; node {node} is out of range "
            f"(valid: {-len(calls)}..{len(calls) - 1} or 'last')."
        )
    link = "input" if endpoint.link == "input" else "output"
    tensors = reader.call_tensors(call, link)
    if endpoint.index is not None:
        if not -len(tensors) <= endpoint.index < len(tensors):
            raise EndpointError(
                f"The {link} of layer {shorten(entry.name)} has {len(tensors)} tensor(s); index "
                f"{endpoint.index} is out of range."
            )
        tensors = [tensors[endpoint.index]]
    return Located(endpoint=endpoint, entry=entry, call=call, tensors=tuple(tensors))


def _container_name(entry: LayerEntry) -> str:
    return name_of(entry.container)
