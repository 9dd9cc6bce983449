"""Endpoints: one signal of a model as a frozen value, and where it lies in its graph.

An :class:`Endpoint` names the input, output or pre-activation of one call of one (possibly
nested) layer by its ``path`` from the top model down; :func:`locate` finds its call and
symbolic tensors in the graph that holds the layer. Every form of descriptor the public API
accepts becomes an Endpoint in :mod:`keras_inspect.answers.descriptors`.
"""

from __future__ import annotations

from typing import Any, Literal, Union

import attrs

from keras_inspect.errors import EndpointError, name_of, shorten
from keras_inspect.graph.inspected import InspectedModel
from keras_inspect.graph.walk import LayerEntry, split_path

Link = Literal["output", "input", "pre_activation"]
Node = Union[int, Literal["last"]]

LINKS: tuple[str, ...] = ("output", "input", "pre_activation")


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
            raise EndpointError(
                f"Input {shorten(entry.name)} is not an input of a graph of the model."
            )
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
