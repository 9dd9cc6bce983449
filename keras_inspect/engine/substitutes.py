"""How a node is computed another way while the signal engine re-traces a graph.

A substitute computes one recorded call of a layer differently and keeps the values of the
signals it was asked for: a layer split at its fused activation, or a subclassed layer whose
sub-layers' calls are intercepted. (A nested graph model's substitute, a sub-model over its own
graph, is built by the engine itself, which traces that graph.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from keras_inspect.engine.requests import Request
from keras_inspect.errors import EndpointError, name_of, shorten
from keras_inspect.graph.inspected import InspectedModel
from keras_inspect.graph.reader import GraphReader, NewName

#: ``call(args, kwargs) -> (outputs, [values per request])``: a node computed another way.
Call = Callable[[tuple, dict], tuple[Any, list[list[Any]]]]


def chunks(flat: Sequence[Any], sizes: Sequence[int]) -> list[list[Any]]:
    """``flat`` cut into consecutive lists of the given sizes."""
    out, start = [], 0
    for size in sizes:
        out.append(list(flat[start : start + size]))
        start += size
    return out


def collecting(call: Call, sink: list, keep: list[Any] | None = None) -> Any:
    """A substitute: computes the node with ``call`` and keeps its values.

    With ``keep`` (the node's original outputs) the node's outputs are left as they were, so
    nothing downstream is called again.
    """

    def substitute(args: tuple, kwargs: dict) -> Any:
        outputs, values = call(args, kwargs)
        sink.append(values)
        return outputs if keep is None else list(keep)

    return substitute


def split_call(
    reader: GraphReader, layer: Any, edit: Callable[[Any], Any], new_name: NewName
) -> Call:
    """The layer split at its activation; values ``[[pre], [pre after its edits]]``."""

    def call(args: tuple, kwargs: dict) -> tuple[Any, list[list[Any]]]:
        pre = reader.pre_activation(layer, args, kwargs, new_name(f"{layer.name}_pre_activation"))
        after = edit(pre)
        output = reader.apply_activation(layer, after, new_name(f"{layer.name}_activation"))
        return output, [[pre], [after]]

    return call


def intercepted_call(
    view: InspectedModel, child: Any, requests: list[Request], new_name: NewName, reroute: bool
) -> Call:
    """A call of the subclassed layer ``child`` that also returns (and edits) signals of its
    sub-layers (see ``GraphReader.intercept``)."""
    for r in requests:
        if len(r.values) > 1:
            raise EndpointError(
                f"{shorten(r.endpoint.name)} inside the subclassed layer {name_of(child)!r} is "
                "made of several tensors; ask for one of them with 'index'."
            )
    targets = [
        {
            "path": list(r.rest),
            "link": r.endpoint.link,
            "node": r.endpoint.node,
            "edit": r.edit if r.values else None,
            "value": r.values[0] if r.values else None,
        }
        for r in requests
    ]
    intercepted = view.reader.intercept(child, targets, new_name)

    def call(args: tuple, kwargs: dict) -> tuple[Any, list[list[Any]]]:
        outputs, signals = intercepted(args, kwargs)
        picked = [
            list(tensors) if r.endpoint.index is None else [tensors[r.endpoint.index]]
            for r, tensors in zip(requests, signals)
        ]
        return outputs, picked

    return call
