"""Running what no edit reaches outside the autodiff: an edited model in two stages.

Everything upstream of the signals (most of a network, for Grad-CAM's feature map) does not depend
on the edits, yet an autodiff that runs the whole model pays for it: JAX traces every operation
of a function it differentiates, PyTorch records every operation on the model's weights. The
edited model is cut in two along the frontier of what depends on an edit: ``front`` computes,
from the model's inputs, every tensor the dependent part reads (and every output that depends on
no edit); ``back`` computes all outputs from those tensors and the edits. Only ``back`` runs
under the autodiff. The cut follows the dependency frontier, so unlike ``split`` it needs no
signal that every path crosses: every tensor that crosses the frontier is an output of ``front``.
"""

from __future__ import annotations

from typing import Any

import attrs

from keras_inspect.graph.reader import GraphReader, NewName


@attrs.frozen(kw_only=True, eq=False)
class TwoStages:
    """``front(inputs) -> frontier``; ``back([*frontier, edits]) -> the edited model's
    outputs``."""

    front: Any
    back: Any


def two_stages(reader: GraphReader, edited: Any, edits: list[Any], new_name: NewName) -> TwoStages:
    """The two stages of ``edited`` (inputs ``[model inputs, edits]``)."""
    graph = reader.graph_of(edited)
    dependent = {id(d) for d in edits}
    frontier: dict[int, Any] = {}
    layered = reader.nodes_by_depth(graph)
    for depth in sorted(layered, reverse=True):
        for node in layered[depth]:
            if reader.node_layer(node) is None:
                continue
            given = reader.node_tensors(node, "input")
            if not any(id(t) in dependent for t in given):
                continue
            for tensor in given:
                if id(tensor) not in dependent:
                    frontier.setdefault(id(tensor), tensor)
            dependent.update(id(t) for t in reader.node_tensors(node, "output"))
    outputs = reader.outputs(edited)
    for tensor in outputs:
        if id(tensor) not in dependent:
            frontier.setdefault(id(tensor), tensor)  # passed through the back stage
    crossing = list(frontier.values())
    model_inputs = reader.input_structure(edited)[0]
    front = reader.build_model(model_inputs, crossing, name=f"{edited.name}_front")
    # The back stage: the edited graph re-traced from new inputs standing for the crossing
    # tensors (and the edits, which stay inputs), as split builds its head.
    fresh = [reader.new_input(t, new_name("keras_inspect_frontier")) for t in crossing]
    seeds = {id(t): new for t, new in zip(crossing, fresh)}
    seeds.update((id(d), d) for d in edits)
    mapping = reader.retrace(edited, [], {}, seeds=seeds)
    back = reader.build_model(
        [*fresh, *edits], [mapping[id(t)] for t in outputs], name=f"{edited.name}_back"
    )
    return TwoStages(front=front, back=back)
