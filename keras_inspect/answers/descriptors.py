"""Endpoint descriptors: what the user asks for, normalised to one :class:`Endpoint`.

Every form the public API accepts (an index into ``model.layers``, a name or path, a layer, a
dict, a symbolic tensor, an :class:`Endpoint`) becomes an Endpoint whose ``path`` names the layer
from the top model down. A dict may name the layer by the role it plays (``{"role":
"token_embedding"}``): the search by that role picks it, at the place where it plays the role.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keras_inspect.answers.search import find_entry
from keras_inspect.errors import (
    EndpointError,
    LayerNotFoundError,
    describe,
    did_you_mean,
    name_of,
    shorten,
)
from keras_inspect.graph.endpoints import Endpoint
from keras_inspect.graph.inspected import InspectedModel

DICT_KEYS = frozenset({"name", "layer", "role", "link", "node", "index"})


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
    given = [key for key in ("name", "layer", "role") if key in descriptor]
    if len(given) != 1:
        raise EndpointError(
            "An endpoint dict needs exactly one of 'name' and 'layer' (or 'role', the role the "
            f"layer plays); received {shorten(dict(descriptor))}."
        )
    if given == ["role"]:
        role = descriptor["role"]
        if not isinstance(role, str):
            raise TypeError(
                f"'role' in an endpoint dict must be a role name; received {describe(role)}."
            )
        path = find_entry(view, role=role).path
    elif given == ["layer"]:
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
