"""A model in which chosen signals are perturbed where they are produced: the basis of gradients.

The gradient of a score with respect to an intermediate signal ``z`` is its derivative with
respect to an additive perturbation ``delta`` of ``z`` where ``z`` is produced (``z + delta``,
at ``delta = 0``). Everything downstream of ``z``, residual branches that bypass the layer that
consumes it included, sees the perturbation, so this is the true partial derivative; and it works
the same on every backend (JAX cannot differentiate with respect to an intermediate value of a
function otherwise) and under ``jax.jit`` and ``tf.function(jit_compile=True)``.

:func:`perturbed_model` builds, once per model and request, a functional model whose inputs are
``[model inputs, [delta per signal tensor]]`` and whose outputs are the logits (computed with the
perturbations), each signal's value (before its perturbation) and the model's own outputs. As in
``expose``, no layer upstream of a perturbation is called again: a nested graph model is replaced,
where it is called, by a model over its *own* graph that takes its deltas as extra inputs; a layer
inside a subclassed layer is perturbed by intercepting its call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from keras_inspect.graph.endpoints import Endpoint, locate
from keras_inspect.errors import EndpointError, name_of, shorten
from keras_inspect.graph.reader import GraphReader
from keras_inspect.graph.inspected import InspectedModel
from keras_inspect.signals.staging import TwoStages, two_stages
from keras_inspect.signals.engine import (
    built_once,
    by_child,
    call_tag,
    chunks,
    collected_signal,
    connected_groups,
    intercepted_call,
)


@attrs.frozen(kw_only=True, eq=False)
class PerturbedModel:
    """The model built by :func:`perturbed_model` and how to read its outputs.

    :ivar model: inputs ``[model inputs, deltas]``; outputs ``[logits, *signal tensors,
        *model outputs]`` (flat).
    :ivar sizes: how many tensors each requested signal has (one, but for a multi-input
        layer's input).
    :ivar deltas: the symbolic delta inputs, one per signal tensor (shape and dtype).
    :ivar stages: the same computation in two stages, the part no delta reaches first (see
        :mod:`.staging`).
    """

    model: Any
    sizes: tuple[int, ...]
    deltas: tuple[Any, ...]
    stages: TwoStages


class _Request:
    """A signal to read (and perturb, if it has deltas), relative to the current container."""

    __slots__ = ("deltas", "endpoint", "rest")

    def __init__(self, endpoint: Endpoint, rest: tuple[str, ...], deltas: list[Any]) -> None:
        self.endpoint = endpoint
        self.rest = rest
        self.deltas = deltas  # empty: read only (the logits)


def perturbed_model(view: InspectedModel, logits: Endpoint, signals: Sequence[Endpoint]) -> PerturbedModel:
    """The perturbed model of ``view``'s model for ``signals``, remembered per model."""
    key = (logits, *signals)
    return built_once(view, "perturbed", key, lambda: _build(view, logits, list(signals)))


def _build(view: InspectedModel, logits: Endpoint, signals: list[Endpoint]) -> PerturbedModel:
    reader = view.reader
    model = view.model
    # The signals' symbolic shapes and dtypes, from the same machinery as expose (cached).
    groups = connected_groups(view, signals)
    deltas = _delta_inputs(reader, groups)
    requests = [_Request(logits, logits.path, [])]
    requests += [_Request(e, e.path, d) for e, d in zip(signals, deltas)]
    outputs, values = _perturbed(view, model, reader.inputs(model), requests)
    flat_deltas = [d for group in deltas for d in group]
    built = reader.build_model(
        [reader.input_structure(model), flat_deltas],
        [*values[0], *(t for group in values[1:] for t in group), *outputs],
        name=f"{view.name}_perturbed",
    )
    return PerturbedModel(
        model=built,
        sizes=tuple(len(g) for g in groups),
        deltas=tuple(flat_deltas),
        stages=two_stages(reader, built, flat_deltas),
    )


def _perturbed(
    view: InspectedModel, container: Any, inputs: Sequence[Any], requests: list[_Request]
) -> tuple[list[Any], list[list[Any]]]:
    """``container``'s flat outputs re-traced on ``inputs`` with the requests' perturbations,
    and each request's values (before its perturbation; the logits after all of them)."""
    reader = view.reader
    substitutes: dict[int, Any] = {}
    sinks: dict[int, list[list[list[Any]]]] = {}
    pending: dict[int, tuple[int, int]] = {}  # request -> (substitute key, index of its values)
    perturb: dict[int, Any] = {}
    located: dict[int, Any] = {}

    for child, positions in by_child(reader, container, requests).items():
        calls = reader.calls(child, container)
        if not calls:
            raise EndpointError(f"{name_of(child)!r} is never called in {name_of(container)!r}.")
        below = [requests[p] for p in positions]
        sub = [_Request(r.endpoint, r.rest[1:], r.deltas) for r in below]
        make = _nested_call if reader.has_graph(child) else _intercepted_call
        key = id(calls[-1])  # a nested model called several times: its last call, as expose
        substitutes[key] = _collecting(make(view, child, sub), sinks.setdefault(key, []))
        for offset, position in enumerate(positions):
            pending[position] = (key, offset)

    split: dict[int, tuple[Any, Any, list[Any]]] = {}  # call -> (layer, call, deltas)
    for position, request in enumerate(requests):
        if len(request.rest) != 1:
            continue
        item = locate(view, request.endpoint)
        layer = item.entry.layer
        if request.endpoint.link == "pre_activation" and reader.activation_of(layer):
            key = id(item.call)
            split.setdefault(key, (layer, item.call, []))[2].extend(request.deltas)
            # Index 0 of the split's values is before the perturbation, 1 after.
            pending[position] = (key, 0 if request.deltas else 1)
            continue
        located[position] = item
        for tensor, delta in zip(item.tensors, request.deltas):
            # Two signals naming one tensor share its perturbation: the derivative with respect
            # to each delta of f(z + d1 + d2) is f'(z), the gradient of both.
            perturb[id(tensor)] = delta if id(tensor) not in perturb else perturb[id(tensor)] + delta
    for key, (layer, call, deltas) in split.items():
        tag = "_perturbed" + call_tag(reader, layer, container, call)
        substitutes[key] = _collecting(
            _split_call(reader, layer, _sum(deltas), tag), sinks.setdefault(key, [])
        )

    unperturbed: dict[int, Any] = {}
    mapping = reader.retrace(
        container, inputs, substitutes, perturb=perturb, unperturbed=unperturbed
    )
    values: list[list[Any]] = [[] for _ in requests]
    for position, (key, offset) in pending.items():
        endpoint = requests[position].endpoint
        values[position] = collected_signal(sinks, key, offset, endpoint, container)
    for position, item in located.items():
        if requests[position].deltas:  # a signal: its value before the perturbation
            values[position] = [unperturbed.get(id(t), mapping.get(id(t), t)) for t in item.tensors]
        else:  # the logits: computed with every perturbation
            values[position] = [mapping.get(id(t), t) for t in item.tensors]
    outputs = [mapping.get(id(t), t) for t in reader.outputs(container)]
    return outputs, values


def _delta_inputs(reader: GraphReader, groups: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """New inputs shaped like each tensor of ``groups``, named uniquely within one model."""
    count = iter(range(sum(len(g) for g in groups)))
    return [[reader.new_input(t, f"keras_inspect_delta_{next(count)}") for t in g] for g in groups]


def _collecting(call: Any, sink: list) -> Any:
    def substitute(args: tuple, kwargs: dict) -> Any:
        outputs, values = call(args, kwargs)
        sink.append(values)
        return outputs

    return substitute


def _sum(deltas: list[Any]) -> Any:
    total = None
    for delta in deltas:
        total = delta if total is None else total + delta
    return total


def _split_call(reader: GraphReader, layer: Any, delta: Any, tag: str) -> Any:
    """The layer split at its activation: values ``[[pre], [pre + delta]]``."""

    def call(args: tuple, kwargs: dict) -> tuple[Any, list[list[Any]]]:
        pre = reader.pre_activation(layer, args, kwargs, tag)
        after = pre if delta is None else pre + delta
        return reader.apply_activation(layer, after, tag), [[pre], [after]]

    return call


def _nested_call(view: InspectedModel, child: Any, requests: list[_Request]) -> Any:
    """A call of a sub-model over ``child``'s own graph taking its deltas as extra inputs."""
    reader = view.reader
    own = _delta_inputs(reader, [r.deltas for r in requests])
    inner = [_Request(r.endpoint, r.rest, d) for r, d in zip(requests, own)]
    outputs, values = _perturbed(view, child, reader.inputs(child), inner)
    sizes = [len(v) for v in values]
    sub_model = reader.build_model(
        [reader.input_structure(child), [d for group in own for d in group]],
        [*outputs, *(t for group in values for t in group)],
    )
    n_outputs = len(outputs)
    outer = [d for r in requests for d in r.deltas]

    def call(args: tuple, kwargs: dict) -> tuple[Any, list[list[Any]]]:
        flat_args = reader.flatten(args[0] if len(args) == 1 else list(args))
        given = reader.pack(reader.input_structure(child), flat_args)
        flat = reader.flatten(sub_model([given, outer], **kwargs))
        return reader.pack_outputs(child, flat[:n_outputs]), chunks(flat[n_outputs:], sizes)

    return call


def _intercepted_call(view: InspectedModel, child: Any, requests: list[_Request]) -> Any:
    for r in requests:
        if len(r.deltas) > 1:
            raise EndpointError(
                f"{shorten(r.endpoint.name)} inside the subclassed layer {name_of(child)!r} is "
                "made of several tensors; ask for one of them with 'index'."
            )
    return intercepted_call(
        view.reader, child, [(r.endpoint, r.rest, r.deltas[0] if r.deltas else None) for r in requests]
    )
