"""A model in which chosen signals are edited where they are produced: the basis of gradients
and interventions.

The gradient of a score with respect to an intermediate signal ``z`` is its derivative with
respect to an additive perturbation ``e`` of ``z`` where ``z`` is produced (``z + e`` at
``e = 0``): everything downstream of ``z``, residual branches that bypass the layer that consumes
it included, sees it, so this is the true partial derivative; it works the same on every backend
(JAX cannot differentiate with respect to an intermediate value of a function otherwise) and
under ``jax.jit`` and ``tf.function``. Replacing ``z`` by a value (activation patching, layer
integrated gradients, ablations) is the same construction with ``e`` in place of ``z``.

:func:`edited_model` builds, once per model and request, a functional model whose inputs are
``[model inputs, [edit value per signal tensor]]`` and whose outputs are the signals read (after
every edit), the edited signals' values (before their edits) and the model's own outputs; and the
same computation in two stages, the part no edit reaches first (see :mod:`.stages`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from keras_inspect.engine.building import built_once, connected
from keras_inspect.engine.requests import Edit, request
from keras_inspect.engine.stages import TwoStages, two_stages
from keras_inspect.engine.trace import trace
from keras_inspect.graph.endpoints import Endpoint
from keras_inspect.graph.inspected import InspectedModel


@attrs.frozen(kw_only=True, eq=False)
class EditedModel:
    """The model built by :func:`edited_model` and how to read its outputs.

    :ivar model: inputs ``[model inputs, edit values]``; outputs ``[*read signals, *edited
        signals (before their edits), *model outputs]``, flat.
    :ivar read_sizes: how many tensors each read signal has.
    :ivar edit_sizes: how many tensors each edited signal has (one, but for a multi-input
        layer's input).
    :ivar edits: the symbolic edit inputs, one per edited signal tensor (shape and dtype).
    :ivar edits_requested: the ``(endpoint, mode)`` of each edited signal, in order.
    :ivar stages: the same computation in two stages, the part no edit reaches first.
    :ivar probe: the model's inputs to the edited signals' values, unedited (their shapes for
        given inputs, when the graph leaves sizes open).
    """

    model: Any
    read_sizes: tuple[int, ...]
    edit_sizes: tuple[int, ...]
    edits: tuple[Any, ...]
    edits_requested: tuple[tuple[Endpoint, Edit], ...]
    stages: TwoStages
    probe: Any


def edited_model(
    view: InspectedModel, reads: Sequence[Endpoint], edits: Sequence[tuple[Endpoint, Edit]]
) -> EditedModel:
    """The model of ``view`` reading ``reads`` with ``edits`` made, remembered per model."""
    key = (tuple(reads), tuple(edits))
    return built_once(view, "edited", key, lambda: _build(view, list(reads), list(edits)))


def _build(
    view: InspectedModel, reads: list[Endpoint], edits: list[tuple[Endpoint, Edit]]
) -> EditedModel:
    reader = view.reader
    new_name = view.new_names()
    # The edited signals' symbolic shapes and dtypes, from the same engine (cached).
    groups = connected(view, [endpoint for endpoint, _ in edits])
    values = [[reader.new_input(t, new_name("keras_inspect_edit")) for t in g] for g in groups]
    requests = [request(endpoint) for endpoint in reads]
    requests += [request(e, mode, v) for (e, mode), v in zip(edits, values)]
    outputs, found = trace(view, view.model, requests, new_name)
    flat_values = [value for group in values for value in group]
    built = reader.build_model(
        [reader.input_structure(view.model), flat_values],
        [*(t for group in found for t in group), *outputs],
        name=f"{view.name}_edited",
    )
    return EditedModel(
        model=built,
        read_sizes=tuple(len(g) for g in found[: len(reads)]),
        edit_sizes=tuple(len(g) for g in groups),
        edits=tuple(flat_values),
        edits_requested=tuple(edits),
        stages=two_stages(reader, built, flat_values, new_name),
        probe=reader.build_model(
            reader.input_structure(view.model),
            [t for group in groups for t in group],
            name=f"{view.name}_signals",
        ),
    )
