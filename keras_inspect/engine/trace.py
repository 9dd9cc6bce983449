"""The signal engine: one re-trace of a model in which each requested signal is recorded, and may
be edited where it is produced.

A signal in a container's graph is one of its symbolic tensors. A signal inside a nested graph
model is reached by calling, where the nested model was called (its last call), a flat sub-model
over the nested model's *existing* graph that also returns the wanted signals (and takes their
edits as extra inputs); the enclosing graph is re-traced around that call, and only what is
downstream of a change is called again. No layer upstream of a change is called again, every
layer object (and so every weight) is shared.

Two requests need a changed call rather than an existing tensor, served by substituting one node
while its graph is re-traced (the graph reader provides both):

- ``link="pre_activation"`` on a layer with a fused activation: the node becomes the layer
  without its activation followed by the activation;
- a layer inside a subclassed layer (no graph): the enclosing layer's node becomes a wrapper that
  intercepts the inner layer's call.

An edit is ``"add"`` (``z + e``: a perturbation, whose derivative at ``e = 0`` is the gradient at
``z``, residual branches included) or ``"replace"`` (``e`` in place of ``z``: interventions). The
value reported for an edited signal is the one before its edit; for a signal only recorded, the
one everything downstream sees.

:func:`trace` starts from a container's own inputs (``expose``, ``gradients``, interventions);
:func:`cut` starts from replacement values alone, leaving out everything upstream of them
(``split``'s head).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from keras_inspect.engine.requests import Edit, Request
from keras_inspect.engine.substitutes import Call, chunks, collecting, intercepted_call, split_call
from keras_inspect.errors import EndpointError, name_of, shorten
from keras_inspect.graph.endpoints import Endpoint, locate
from keras_inspect.graph.inspected import InspectedModel
from keras_inspect.graph.reader import GraphReader, NewName


def trace(
    view: InspectedModel,
    container: Any,
    requests: Sequence[Request],
    new_name: NewName,
    *,
    reroute: bool = True,
) -> tuple[list[Any], list[list[Any]]]:
    """``container``'s graph re-traced on its own inputs with the requests' edits.

    Returns the container's flat outputs as the edits leave them (empty without ``reroute``,
    where nothing downstream of a signal is called again and no request may edit), and each
    request's values.
    """
    reader = view.reader
    substitutes: dict[int, Any] = {}
    sinks: dict[int, list[list[list[Any]]]] = {}
    found: dict[int, tuple[int, int]] = {}  # request -> (substitute key, index of its values)
    for child, positions in by_child(reader, container, requests).items():
        call = last_call(reader, child, container)
        below = [requests[p].below() for p in positions]
        make = _nested_call if reader.has_graph(child) else intercepted_call
        keep = None if reroute else reader.call_tensors(call, "output")
        substitutes[id(call)] = collecting(
            make(view, child, below, new_name, reroute), sinks.setdefault(id(call), []), keep
        )
        found.update((p, (id(call), offset)) for offset, p in enumerate(positions))

    edits: dict[int, list[tuple[Edit, Any]]] = {}
    located: dict[int, Any] = {}
    splits: dict[int, tuple[Any, Any, list[Request]]] = {}
    for position, item_request in enumerate(requests):
        if len(item_request.rest) != 1:
            continue
        item = locate(view, item_request.endpoint)
        layer = item.entry.layer
        if item_request.endpoint.link == "pre_activation" and reader.activation_of(layer):
            splits.setdefault(id(item.call), (layer, item.call, []))[2].append(item_request)
            # A split's values are [before its edits], [after them].
            found[position] = (id(item.call), 0 if item_request.edit else 1)
            continue
        located[position] = item
        for tensor, value in zip(item.tensors, item_request.values):
            edits.setdefault(id(tensor), []).append((item_request.edit or "add", value))
    for key, (layer, call, group) in splits.items():
        changes = [(r.edit, r.values[0]) for r in group if r.edit and r.values]
        keep = None if reroute else reader.call_tensors(call, "output")
        split = split_call(reader, layer, _editor(reader, changes, new_name), new_name)
        substitutes[key] = collecting(split, sinks.setdefault(key, []), keep)

    before: dict[int, Any] = {}
    mapping: dict[int, Any] = {}
    if substitutes or edits:
        changed = {key: _editor(reader, changes, new_name) for key, changes in edits.items()}
        mapping = reader.retrace(
            container, reader.inputs(container), substitutes, edits=changed, before=before
        )
    values: list[list[Any]] = []
    for position, item_request in enumerate(requests):
        if position in found:
            key, offset = found[position]
            collected = collected_signal(sinks, key, offset, item_request.endpoint, container)
            values.append(_select(collected, item_request.endpoint))
        elif item_request.edit:
            tensors = located[position].tensors
            values.append([before.get(id(t), mapping.get(id(t), t)) for t in tensors])
        else:
            values.append([mapping.get(id(t), t) for t in located[position].tensors])
    outputs = [mapping.get(id(t), t) for t in reader.outputs(container)] if reroute else []
    return outputs, values


def cut(
    view: InspectedModel, container: Any, requests: Sequence[Request], new_name: NewName
) -> list[Any]:
    """``container``'s flat outputs computed from the requests' replacement values alone.

    Every output must be reached from them: a connection that bypasses the signals (a residual
    around them, another input) is an error that names the output's producer.
    """
    reader = view.reader
    seeds: dict[int, Any] = {}
    for child, positions in by_child(reader, container, requests).items():
        if not reader.has_graph(child):
            endpoint = requests[positions[0]].endpoint
            raise EndpointError(
                f"Cannot split inside {name_of(child)!r}, a subclassed layer without a graph: "
                f"its computation cannot be cut at {shorten(endpoint.name)}. Split at the output "
                f"of {name_of(child)!r} instead, or use expose() to read the signal."
            )
        call = last_call(reader, child, container)
        inner = cut(view, child, [requests[p].below() for p in positions], new_name)
        seeds.update(zip(map(id, reader.call_tensors(call, "output")), inner))
    for item_request in requests:
        if len(item_request.rest) != 1:
            continue
        item = locate(view, item_request.endpoint)
        layer = item.entry.layer
        if item_request.endpoint.link == "pre_activation" and reader.activation_of(layer):
            output = reader.call_tensors(item.call, "output")[0]
            name = new_name(f"{layer.name}_activation")
            seeds[id(output)] = reader.apply_activation(layer, item_request.values[0], name)
        else:
            seeds.update((id(t), v) for t, v in zip(item.tensors, item_request.values))
    mapping = reader.retrace(container, [], {}, seeds=seeds)
    outputs = []
    for tensor in reader.outputs(container):
        if id(tensor) not in mapping:
            origin = reader.tensor_origin(tensor)
            producer = name_of(origin[0]) if origin else "?"
            signal = shorten(requests[0].endpoint.name) if requests else "?"
            raise EndpointError(
                f"Cannot split {view.name!r} at {signal}: the output of {name_of(container)!r} "
                f"computed by layer {producer!r} can be reached without passing through that "
                "signal (a connection bypasses it, or the output does not depend on it). Choose "
                "a signal that every path to the outputs crosses, e.g. the output of a residual "
                "block rather than a layer inside it."
            )
        outputs.append(mapping[id(tensor)])
    return outputs


def by_child(
    reader: GraphReader, container: Any, requests: Sequence[Request]
) -> dict[Any, list[int]]:
    """The positions of the requests below each child of ``container`` (their ``rest`` path has
    more than one name), grouped by that child, in request order."""
    children = {child.name: child for child in reader.children(container)}
    grouped: dict[Any, list[int]] = {}
    for position, item_request in enumerate(requests):
        if len(item_request.rest) > 1:
            grouped.setdefault(children[item_request.rest[0]], []).append(position)
    return grouped


def last_call(reader: GraphReader, child: Any, container: Any) -> Any:
    """The call of ``child`` in ``container``'s graph whose signals are read and edited: a
    nested model or subclassed layer called several times is reached at its last call."""
    calls = reader.calls(child, container)
    if not calls:
        raise EndpointError(f"{name_of(child)!r} is never called in {name_of(container)!r}.")
    return calls[-1]


def collected_signal(
    sinks: dict[int, list[list[list[Any]]]],
    key: int,
    offset: int,
    endpoint: Endpoint,
    container: Any,
) -> list[Any]:
    """The tensors a substitute recorded for one signal; an error if the substitute never ran
    (the signal is not computed from the container's inputs)."""
    calls = sinks.get(key)
    if not calls:
        raise EndpointError(
            f"{shorten(endpoint.name)} lies in a part of {name_of(container)!r} that is not "
            "computed from its inputs; it cannot be reached."
        )
    return list(calls[-1][offset])


def _editor(
    reader: GraphReader, changes: Sequence[tuple[Edit, Any]], new_name: NewName
) -> Callable[[Any], Any]:
    """``value -> edited value`` for the edits requested on one tensor: a replacement (at most
    one), then every addition (several signals naming one tensor share its perturbation: the
    derivative with respect to each of ``f(z + d1 + d2)`` is ``f'(z)``)."""
    replaced = [value for mode, value in changes if mode == "replace"]
    if len(replaced) > 1:
        raise EndpointError("One signal is asked to be replaced by two values; replace it once.")
    added = [value for mode, value in changes if mode == "add"]

    def edit(value: Any) -> Any:
        result = replaced[0] if replaced else value
        for extra in added:
            result = reader.add(result, extra, new_name("keras_inspect_add"))
        return result

    return edit


def _select(tensors: list[Any], endpoint: Endpoint) -> list[Any]:
    if endpoint.index is None or endpoint.link != "pre_activation":
        return list(tensors)
    if not -len(tensors) <= endpoint.index < len(tensors):
        raise EndpointError(
            f"The pre-activation of {shorten(endpoint.name)} has {len(tensors)} tensor(s); index "
            f"{endpoint.index} is out of range."
        )
    return [tensors[endpoint.index]]


def _nested_call(
    view: InspectedModel, child: Any, requests: list[Request], new_name: NewName, reroute: bool
) -> Call:
    """A call of a sub-model over ``child``'s own graph that also returns the requests' values
    (and takes their edit values as extra inputs)."""
    reader = view.reader
    own = [
        [reader.new_input(value, new_name("keras_inspect_edit")) for value in r.values]
        for r in requests
    ]
    inner = [attrs.evolve(r, values=tuple(values)) for r, values in zip(requests, own)]
    outputs, values = trace(view, child, inner, new_name, reroute=reroute)
    sizes = [len(group) for group in values]
    flat_own = [value for group in own for value in group]
    structure = reader.input_structure(child)
    sub_model = reader.build_model(
        [structure, flat_own] if flat_own else structure,
        [*outputs, *(t for group in values for t in group)],
        name=new_name(f"{child.name}_signals"),
    )
    n_outputs = len(outputs)
    outer = [value for r in requests for value in r.values]

    def call(args: tuple, kwargs: dict) -> tuple[Any, list[list[Any]]]:
        if not args and "inputs" in kwargs:  # the model was called as model(inputs=...)
            kwargs = dict(kwargs)
            args = (kwargs.pop("inputs"),)
        flat_args = reader.flatten(args[0] if len(args) == 1 else list(args))
        given = reader.pack(structure, flat_args)
        flat = reader.flatten(sub_model([given, outer] if outer else given, **kwargs))
        result = reader.pack_outputs(child, flat[:n_outputs]) if n_outputs else None
        return result, chunks(flat[n_outputs:], sizes)

    return call
