"""``summary(model)``: what keras-inspect finds in a model, layer by layer, and why.

A summary says first what the searches pick: for each role, the layer ``find_layer_with(model,
role=...)`` returns, and what ``expose(model)`` returns without arguments. Then every layer in
graph order, with every role the plugins give it and which plugin decided each one, so a user who
disagrees knows which plugin to override. The summary is data (attrs records,
``to_dict``/``to_json``, :mod:`.records`); printing it is a view (:mod:`.model_summary`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from keras_inspect.answers.biases import layer_bias
from keras_inspect.answers.search import role_decisions
from keras_inspect.answers.target_layer import default_feature_map
from keras_inspect.autograph import plain_python
from keras_inspect.errors import KerasInspectError
from keras_inspect.graph.inspected import inspect_model
from keras_inspect.hooks.current import plugin_manager, using_plugin_manager
from keras_inspect.hooks.manager import InspectPluginManager
from keras_inspect.views.graph_data import graph_structure
from keras_inspect.views.graph_page import token_geometry_of
from keras_inspect.views.model_summary import ModelSummary, render_rich, render_text
from keras_inspect.views.records import (
    ROLE_ORDER,
    ExposeDefaults,
    LayerRow,
    RoleChoice,
    RoleDecision,
    Shape,
    format_shapes,
    short_plugin,
)

# The records and views are re-exported: summary's users import them from here.
__all__ = [
    "ExposeDefaults", "LayerRow", "ModelSummary", "RoleChoice", "RoleDecision", "format_shapes",
    "render_rich", "render_text", "short_plugin", "summary",
]  # fmt: skip


@plain_python
def summary(
    model: Any,
    *,
    role: str | None = None,
    candidates: bool = False,
    pm: InspectPluginManager | None = None,
) -> ModelSummary:
    """Summarise what keras-inspect finds in ``model``.

    :param model: a Keras model (nested models are walked in graph order).
    :param role: keep only the layers that play this role (an unknown role raises with close
        matches); the views then list the candidates for it.
    :param candidates: make the views list every role of every layer, not only the roles for
        which a search picks the layer (the data always holds both).
    :param pm: the plugin manager to ask (default: the current one).
    """
    if pm is not None and pm is not plugin_manager():
        # The searches inside ask the current manager: make it this one.
        with using_plugin_manager(pm):
            return summary(model, role=role, candidates=candidates, pm=pm)
    pm = plugin_manager()
    flavour_name, facts = _layer_facts(model, pm, role)
    roles = tuple(sorted(pm.roles()))
    ordered = [r for r in ROLE_ORDER if r in roles] + [r for r in roles if r not in ROLE_ORDER]
    view = inspect_model(model, pm)
    by_path = {fact.row.path: fact for fact in facts}
    chosen = tuple(_choose(view, r, by_path) for r in ordered)
    picked = {c.role: c.fact for c in chosen}
    defaults = _defaults(view, chosen, picked, facts)
    every = []
    for fact in facts:
        chosen_for = tuple(r for r in ordered if picked[r] is fact)
        default_for = tuple(r for r in ("logits", "pooling") if r in chosen_for)
        if defaults.feature_map_link == "output" and fact.row.path == defaults.feature_map:
            default_for += ("feature_map",)  # a transformer's token sequence, say
        every.append(attrs.evolve(fact.row, default_for=default_for, chosen_for=chosen_for))
    rows = [row for row in every if role is None or role in row.role_names]
    return ModelSummary(
        model_name=str(getattr(model, "name", type(model).__name__)),
        model_type=type(model).__name__,
        flavour=flavour_name,
        roles=roles,
        rows=tuple(rows),
        defaults=defaults,
        role_filter=role,
        chosen=tuple(c.choice for c in chosen),
        candidates=candidates,
        graph=graph_structure(view, ordered, every),
        token_geometry=token_geometry_of(model),
    )


@attrs.frozen(kw_only=True, eq=False)
class _Fact:
    """What the framework says about one layer, before the searches are run."""

    layer: Any
    row: LayerRow
    input_shapes: tuple[Shape, ...] | None


@attrs.frozen(kw_only=True, eq=False)
class _Chosen:
    choice: RoleChoice
    layer: Any = None
    fact: _Fact | None = None

    @property
    def role(self) -> str:
        return self.choice.role


def _choose(view: Any, role: str, by_path: dict[tuple[str, ...], _Fact]) -> _Chosen:
    """What ``find_layer_with(model, role=role)`` returns, as the user would call it, at the
    place where the search found it (a layer called in several models plays a role at one)."""
    from keras_inspect.answers.search import find_entry

    try:
        entry = find_entry(view, role)  # find_layer_with's search, with the place it found
    except KerasInspectError as error:
        return _Chosen(choice=RoleChoice(role=role, error=str(error)))
    layer = entry.layer
    fact = by_path.get(entry.path)
    if fact is None:  # a plugin strategy may pick an input layer, which has no row
        name = str(getattr(layer, "name", type(layer).__name__))
        choice = RoleChoice(role=role, path=(name,), type=type(layer).__name__)
        return _Chosen(choice=choice, layer=layer)
    plugin = next((d.plugin for d in fact.row.roles if d.role == role), None)
    choice = RoleChoice(role=role, path=fact.row.path, type=fact.row.type, plugin=plugin)
    return _Chosen(choice=choice, layer=layer, fact=fact)


def _defaults(
    view: Any, chosen: tuple[_Chosen, ...], picked: dict[str, _Fact | None], facts: list[_Fact]
) -> ExposeDefaults:
    """What ``expose(model)`` takes by default: the logits the role search picks, and the
    feature map ``default_feature_map`` finds (the same functions ``expose`` calls)."""
    found = {c.role: c.choice for c in chosen}
    logits, pooling = found.get("logits"), found.get("pooling")
    logits_fact = picked.get("logits")
    by_path = {fact.row.path: fact for fact in facts}
    try:
        endpoint = default_feature_map(view)
    except KerasInspectError as error:
        endpoint, feature_error = None, str(error)
    else:
        feature_error = None
    fact = by_path.get(endpoint.path) if endpoint is not None else None
    shapes = None
    if fact is not None:
        shapes = fact.input_shapes if endpoint.link == "input" else fact.row.output_shapes
        if shapes is not None and endpoint.index is not None:
            shapes = (shapes[endpoint.index],)
    return ExposeDefaults(
        logits=logits.path if logits else None,
        pooling=pooling.path if pooling else None,
        feature_map_shapes=shapes,
        logits_error=(logits.error if logits else "no plugin declares the role 'logits'"),
        pooling_error=(pooling.error if pooling else "no plugin declares the role 'pooling'"),
        logits_shapes=logits_fact.row.output_shapes if logits_fact else None,
        feature_map=endpoint.path if endpoint is not None else None,
        feature_map_link=endpoint.link if endpoint is not None else None,
        feature_map_error=feature_error,
    )


# -- what keras-inspect reads of each layer --------------------------------------------------------
# The only place that uses the library's internals (walk, reader, classify, layer_bias).


def _layer_facts(model: Any, pm: InspectPluginManager, role: str | None) -> tuple[str, list[_Fact]]:
    view = inspect_model(model, pm)
    reader = view.reader
    if role is not None:
        pm.check_role(role)
    roles = sorted(pm.roles())
    facts = []
    for entry in view.entries:
        layer = entry.layer
        decisions = [
            RoleDecision(role=name, plugin=plugin)
            for name, plugin in role_decisions(view, entry, roles)
        ]
        bias, bias_plugin = layer_bias(pm, layer, reader)
        row = LayerRow(
            path=entry.path,
            type=type(layer).__name__,
            roles=tuple(decisions),
            has_bias=bias is not None,
            bias_plugin=bias_plugin if bias is not None else None,
            output_shapes=_call_shapes(entry, reader, "output"),
            in_graph=entry.in_graph,
        )
        inputs = _call_shapes(entry, reader, "input")
        facts.append(_Fact(layer=layer, row=row, input_shapes=inputs))
    return str(getattr(reader, "name", type(reader).__name__)), facts


def _call_shapes(entry: Any, reader: Any, which: str) -> tuple[Shape, ...] | None:
    """Shapes of the input or output tensors of the layer's last call in its graph."""
    if not entry.in_graph:
        return None
    try:
        calls = reader.calls(entry.layer, entry.container)
        return _shapes(reader.call_tensors(calls[-1], which)) if calls else None
    except Exception:
        # A summary must not fail on a layer whose graph record is unusual; the shape is just
        # left unknown.
        return None


def _shape(tensor: Any) -> Shape | None:
    shape = getattr(tensor, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError):
        return None


def _shapes(tensors: Iterable[Any]) -> tuple[Shape, ...] | None:
    shapes = tuple(_shape(t) for t in tensors)
    if not shapes or any(s is None for s in shapes):
        return None
    return shapes  # type: ignore[return-value]
