"""Endpoint descriptors: what the user asks for, normalised to one frozen value.

Every form the public API accepts (an index into ``model.layers``, a name or path, a layer, a
dict, a symbolic tensor, an :class:`Endpoint`) becomes an :class:`Endpoint` whose ``path`` names
the layer from the top model down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Union

import attrs

from .errors import EndpointError, LayerNotFoundError
from .graph import LayerEntry, find_entry, find_layer_entry, require_flavour, split_path, walk

Link = Literal["output", "input", "pre_activation"]
Node = Union[int, Literal["last"]]

LINKS: tuple[str, ...] = ("output", "input", "pre_activation")
DICT_KEYS = frozenset({"name", "layer", "link", "node", "index"})


def _check_link(_instance: Any, _attribute: Any, value: Any) -> None:
    if value not in LINKS:
        raise EndpointError(
            f"link must be one of {', '.join(repr(x) for x in LINKS)}; received {value!r}."
        )


def _check_node(_instance: Any, _attribute: Any, value: Any) -> None:
    if value == "last" and isinstance(value, str):
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise EndpointError(
            f"node must be a call index (int) or 'last'; received {value!r} of type "
            f"{type(value).__name__}."
        )


def _check_index(_instance: Any, _attribute: Any, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise EndpointError(f"index must be an int or None; received {value!r}.")


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


def to_endpoint(model: Any, descriptor: Any) -> Endpoint:
    """Normalise one descriptor to an :class:`Endpoint` of ``model`` (checks that it exists)."""
    flavour = require_flavour(model)
    if isinstance(descriptor, Endpoint):
        endpoint = descriptor
    elif isinstance(descriptor, bool):
        raise TypeError(f"an endpoint cannot be a bool; received {descriptor!r}.")
    elif isinstance(descriptor, int):
        endpoint = Endpoint(path=(_layer_at(model, descriptor).name,))
    elif isinstance(descriptor, (str, tuple, list)):
        endpoint = Endpoint(path=resolve_entry(model, descriptor).path)
    elif isinstance(descriptor, Mapping):
        endpoint = _from_dict(model, descriptor)
    elif flavour.is_layer(descriptor):
        endpoint = Endpoint(path=resolve_layer_entry(model, descriptor).path)
    elif flavour.tensor_origin(descriptor) is not None:
        endpoint = _from_tensor(model, flavour, descriptor)
    else:
        raise TypeError(
            f"cannot use {_short(descriptor)} of type {type(descriptor).__name__} as an endpoint; "
            "expected a layer index (int), a layer name or path (str, tuple of str), a layer, a "
            "symbolic tensor of the model, a dict with 'name' or 'layer' and optional 'link', "
            "'node', 'index' keys, or a keras_inspect.Endpoint."
        )
    resolve_entry(model, endpoint.path)
    return endpoint


def _find_input(model: Any, name: Any) -> tuple[LayerEntry, Any] | None:
    """The entry and the tensor of an input layer named by ``name``, or ``None``.

    The walk lists the layers that compute something, so input layers are not in it; as
    endpoints they still make sense (the model's, or a nested graph model's, input tensor).
    """
    flavour = require_flavour(model)
    parts = split_path(name)
    if len(parts) == 1:
        container = model
    else:
        try:
            parent = find_entry(model, parts[:-1])
        except LayerNotFoundError:
            return None
        if not parent.in_graph:
            return None
        container = parent.layer
    if not flavour.has_graph(container):
        return None
    for tensor in flavour.inputs(container):
        origin = flavour.tensor_origin(tensor)
        if origin is not None and getattr(origin[0], "name", None) == parts[-1]:
            entry = LayerEntry(path=parts, layer=origin[0], container=container, in_graph=True)
            return entry, tensor
    return None


def resolve_entry(model: Any, name: Any) -> LayerEntry:
    """:func:`find_entry`, input layers included."""
    try:
        return find_entry(model, name)
    except LayerNotFoundError:
        found = _find_input(model, name)
        if found is None:
            raise
        return found[0]


def resolve_layer_entry(model: Any, layer: Any) -> LayerEntry:
    """:func:`find_layer_entry`, the model's own input layers included."""
    try:
        return find_layer_entry(model, layer)
    except LayerNotFoundError:
        found = _find_input(model, getattr(layer, "name", ""))
        if found is None or found[0].layer is not layer:
            raise
        return found[0]


def to_endpoints(model: Any, descriptors: Any) -> list[Endpoint]:
    """Normalise a descriptor or a list/tuple of descriptors."""
    if isinstance(descriptors, (list, tuple)) and not _is_path_tuple(descriptors, model):
        return [to_endpoint(model, d) for d in descriptors]
    return [to_endpoint(model, descriptors)]


def _is_path_tuple(value: Any, model: Any) -> bool:
    # The seed treats a list passed as `endpoints` as several endpoints, so only a tuple
    # that names a nested path is one path.
    return (
        isinstance(value, tuple)
        and len(value) > 1
        and all(isinstance(v, str) for v in value)
        and _path_exists(model, value)
    )


def _path_exists(model: Any, path: tuple[str, ...]) -> bool:
    return any(entry.path == path for entry in walk(model))


def _layer_at(model: Any, index: int) -> Any:
    layers = list(getattr(model, "layers", []))
    if not -len(layers) <= index < len(layers):
        raise LayerNotFoundError(
            f"Layer index {index} is out of range: model {model.name!r} has {len(layers)} "
            f"top-level layers (valid indices {-len(layers)}..{len(layers) - 1})."
        )
    return layers[index]


def _from_dict(model: Any, descriptor: Mapping[str, Any]) -> Endpoint:
    unknown = set(descriptor) - DICT_KEYS
    if unknown:
        from .errors import did_you_mean

        key = sorted(map(str, unknown))[0]
        raise EndpointError(
            f"Unknown key {key!r} in endpoint {dict(descriptor)!r}.{did_you_mean(key, DICT_KEYS)}"
            f" Expected keys: {', '.join(sorted(DICT_KEYS))}."
        )
    has_name, has_layer = "name" in descriptor, "layer" in descriptor
    if has_name == has_layer:
        raise EndpointError(
            f"An endpoint dict needs exactly one of 'name' and 'layer'; received {dict(descriptor)!r}."
        )
    if has_layer:
        target = descriptor["layer"]
        flavour = require_flavour(model)
        if isinstance(target, int) and not isinstance(target, bool):
            path = (_layer_at(model, target).name,)
        elif flavour.is_layer(target):
            path = resolve_layer_entry(model, target).path
        else:
            raise TypeError(
                f"'layer' in an endpoint dict must be a layer or an index; received "
                f"{_short(target)} of type {type(target).__name__}."
            )
    else:
        path = resolve_entry(model, descriptor["name"]).path
    return Endpoint(
        path=path,
        link=descriptor.get("link", "output"),
        node=descriptor.get("node", "last"),
        index=descriptor.get("index"),
    )


def _from_tensor(model: Any, flavour: Any, tensor: Any) -> Endpoint:
    layer, call = flavour.tensor_origin(tensor)
    if any(t is tensor for t in flavour.inputs(model)):
        return Endpoint(path=(layer.name,))
    if not flavour.is_layer(layer):
        raise EndpointError(
            f"Tensor {getattr(tensor, 'name', tensor)!r} was produced by operation "
            f"{getattr(layer, 'name', layer)!r} (a {type(layer).__name__}, not a layer); only "
            "the signals of layers are endpoints. Expose the input of the layer that consumes "
            "it instead."
        )
    try:
        entry = find_layer_entry(model, layer)
    except LayerNotFoundError:
        raise EndpointError(
            f"Tensor {getattr(tensor, 'name', tensor)!r} was produced by layer "
            f"{getattr(layer, 'name', layer)!r}, which is not part of model {model.name!r}."
        ) from None
    calls = flavour.calls(layer, entry.container)
    positions = [i for i, c in enumerate(calls) if c is call]
    if not positions:
        raise EndpointError(
            f"Tensor {getattr(tensor, 'name', tensor)!r} comes from a call of layer "
            f"{entry.name!r} that is not part of model {model.name!r}'s graph."
        )
    outputs = flavour.call_tensors(call, "output")
    index = next((i for i, t in enumerate(outputs) if t is tensor), None)
    if len(outputs) == 1:
        index = None
    return Endpoint(path=entry.path, link="output", node=positions[0], index=index)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@attrs.frozen(kw_only=True, eq=False)
class Located:
    """An endpoint located in the graph of the model that directly holds its layer."""

    endpoint: Endpoint
    entry: LayerEntry
    call: Any
    tensors: tuple[Any, ...]


def locate(model: Any, endpoint: Endpoint) -> Located:
    """Find the call and the symbolic tensors of ``endpoint`` in its container's own graph."""
    flavour = require_flavour(model)
    try:
        entry = find_entry(model, endpoint.path)
    except LayerNotFoundError:
        found = _find_input(model, endpoint.path)
        if found is None:
            raise
        # An input layer: its input and output are the same tensor, and it has no activation.
        entry, given = found
        if endpoint.index not in (None, 0, -1):
            raise EndpointError(
                f"Input {entry.name!r} is one tensor; index {endpoint.index} is out of range."
            ) from None
        return Located(endpoint=endpoint, entry=entry, call=None, tensors=(given,))
    if not entry.in_graph:
        raise EndpointError(
            f"Layer {entry.name!r} lives inside {_container_name(entry)!r}, a subclassed "
            "layer or model without a functional graph, so it has no node of its own. "
            "expose() reaches it by intercepting its call; to locate a node, use the "
            "enclosing layer instead."
        )
    calls = flavour.calls(entry.layer, entry.container)
    if not calls:
        raise EndpointError(
            f"Layer {entry.name!r} is never called in the graph of {_container_name(entry)!r}; "
            "it has no signal to expose."
        )
    node = endpoint.node
    if node == "last":
        call = calls[-1]
    elif -len(calls) <= node < len(calls):
        call = calls[node]
    else:
        raise EndpointError(
            f"Layer {entry.name!r} is called {len(calls)} time(s) in "
            f"{_container_name(entry)!r}; node {node} is out of range "
            f"(valid: {-len(calls)}..{len(calls) - 1} or 'last')."
        )
    link = "input" if endpoint.link == "input" else "output"
    tensors = flavour.call_tensors(call, link)
    if endpoint.index is not None:
        if not -len(tensors) <= endpoint.index < len(tensors):
            raise EndpointError(
                f"The {link} of layer {entry.name!r} has {len(tensors)} tensor(s); index "
                f"{endpoint.index} is out of range."
            )
        tensors = [tensors[endpoint.index]]
    return Located(endpoint=endpoint, entry=entry, call=call, tensors=tuple(tensors))


def _container_name(entry: LayerEntry) -> str:
    return str(getattr(entry.container, "name", entry.container))
