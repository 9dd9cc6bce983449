"""``summary(model)``: what keras-inspect finds in a model, layer by layer, and why.

A summary says first what the searches pick: for each role, the layer ``find_layer_with(model,
role=...)`` returns, and what ``expose(model)`` returns without arguments. Then every layer in
graph order, with every role the plugins give it and which plugin decided each one, so a user who
disagrees knows which plugin to override. The summary is data (attrs records,
``to_dict``/``to_json``); printing it is a view (:mod:`keras_inspect.cli.summary_render`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import attrs

from keras_inspect.autograph import plain_python
from keras_inspect.hooks.current import plugin_manager, using_plugin_manager
from keras_inspect.errors import KerasInspectError
from keras_inspect.graph.inspected import inspect_model
from keras_inspect.hooks.manager import InspectPluginManager
from keras_inspect.answers.biases import layer_bias
from keras_inspect.answers.search import role_decisions
from keras_inspect.cli.graph_data import GraphStructure, graph_structure
from keras_inspect.cli.summary_render import format_shapes, render_rich, render_text, short_plugin

# The views are re-exported: they used to live here.
__all__ = [
    "ExposeDefaults", "LayerRow", "ModelSummary", "RoleChoice", "RoleDecision", "format_shapes",
    "render_rich", "render_text", "short_plugin", "summary",
]  # fmt: skip

Shape = tuple[Any, ...]

#: Roles listed first, in this order; other roles (declared by plugins) follow by name.
ROLE_ORDER = ("logits", "pooling", "normalization", "feature_map")


@attrs.frozen(kw_only=True)
class RoleDecision:
    """A role a layer plays, and the plugin whose ``keras_inspect_classify_layer`` said so."""

    role: str
    plugin: str | None


@attrs.frozen(kw_only=True)
class RoleChoice:
    """The layer a search by one role picks (``find_layer_with(model, role=role)``).

    :ivar role: the role searched for.
    :ivar path: the chosen layer's path, ``None`` when no layer plays the role.
    :ivar type: the chosen layer's class name.
    :ivar plugin: the plugin that decided the chosen layer plays the role.
    :ivar error: the search's message when it found no layer.
    """

    role: str
    path: tuple[str, ...] | None = None
    type: str | None = None
    plugin: str | None = None
    error: str | None = None


@attrs.frozen(kw_only=True)
class LayerRow:
    """One layer of the summary, in graph order.

    :ivar path: layer names from the top model down.
    :ivar type: the layer's class name.
    :ivar roles: every role it plays (it is a candidate for), each with the deciding plugin.
    :ivar has_bias: whether a plugin reported a constant the layer adds to its output.
    :ivar bias_plugin: the plugin that reported it.
    :ivar output_shapes: the symbolic shape of each output tensor (``None`` if unknown).
    :ivar in_graph: whether the layer's signals can be exposed by graph surgery.
    :ivar default_for: what ``expose(model)`` takes from this layer by default:
        ``"logits"`` (its output) and/or ``"pooling"`` (its input).
    :ivar chosen_for: the roles for which a search picks this layer (see :class:`RoleChoice`).
    """

    path: tuple[str, ...]
    type: str
    roles: tuple[RoleDecision, ...] = ()
    has_bias: bool = False
    bias_plugin: str | None = None
    output_shapes: tuple[Shape, ...] | None = None
    in_graph: bool = True
    default_for: tuple[str, ...] = ()
    chosen_for: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return "/".join(self.path)

    @property
    def role_names(self) -> tuple[str, ...]:
        return tuple(decision.role for decision in self.roles)


@attrs.frozen(kw_only=True)
class ExposeDefaults:
    """What ``expose(model)`` returns without arguments, or why it cannot.

    :ivar logits: path of the logits layer (its output is the first output).
    :ivar pooling: path of the last global pooling layer (its input is the feature map).
    :ivar feature_map_shapes: shapes of that pooling layer's input tensors.
    :ivar logits_error: the message of the search error when no logits layer is found.
    :ivar pooling_error: the same for the pooling layer.
    :ivar logits_shapes: shapes of the logits layer's output tensors.
    """

    logits: tuple[str, ...] | None = None
    pooling: tuple[str, ...] | None = None
    feature_map_shapes: tuple[Shape, ...] | None = None
    logits_error: str | None = None
    pooling_error: str | None = None
    logits_shapes: tuple[Shape, ...] | None = None


@attrs.frozen(kw_only=True)
class ModelSummary:
    """The summary of one model; ``str()`` is plain text, ``print()`` picks the best view.

    :ivar chosen: for each role (built-in roles first), the layer a search by that role picks.
    :ivar candidates: whether the views list every role of every layer (candidates), rather
        than only the roles for which a search picks the layer.
    :ivar graph: what the graph page (:meth:`to_html`) draws besides the rows: every layer
        (whatever the role filter kept), its group, the connections and each search's path.
        Not part of ``to_dict``.
    """

    model_name: str
    model_type: str
    flavour: str
    roles: tuple[str, ...]
    rows: tuple[LayerRow, ...]
    defaults: ExposeDefaults
    role_filter: str | None = None
    chosen: tuple[RoleChoice, ...] = ()
    candidates: bool = False
    graph: GraphStructure | None = attrs.field(default=None, eq=False, repr=False)

    def choice(self, role: str) -> RoleChoice | None:
        """The :class:`RoleChoice` for ``role`` (``None`` for a role no plugin declared)."""
        return next((c for c in self.chosen if c.role == role), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, dicts, strings, ints, ``None``), ready for JSON."""
        return _plain(attrs.asdict(self, recurse=True, filter=lambda a, _: a.name != "graph"))

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        return render_text(self)

    def print(self, file: TextIO | None = None) -> None:
        """Print rich tables when ``file`` (default stdout) is a terminal, plain text otherwise."""
        file = file if file is not None else sys.stdout
        if _isatty(file):
            try:
                from keras_inspect.cli.console import rich_console

                console = rich_console(file)
            except ImportError:
                pass
            else:
                console.print(render_rich(self))
                return
        file.write(render_text(self) + "\n")

    def __rich__(self) -> Any:
        return render_rich(self)

    def to_html(self, *, token_geometry: Any = None) -> str:
        """The graph page: one self-contained HTML document picturing the model, its
        connections and groups, what the searches pick and the path each search took
        (see :mod:`keras_inspect.cli.graph_page`)."""
        from keras_inspect.cli.graph_page import render_page

        return render_page(self, token_geometry=token_geometry)

    def _repr_html_(self) -> str:
        # Notebooks: the page in a sandboxed frame, so its styles and script stay its own.
        from keras_inspect.cli.graph_page import iframe

        return iframe(self.to_html())


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
    by_layer = {id(fact.layer): fact for fact in facts}
    chosen = tuple(_choose(model, r, by_layer) for r in ordered)
    picked = {c.role: by_layer.get(id(c.layer)) for c in chosen}
    every = []
    for fact in facts:
        chosen_for = tuple(r for r in ordered if picked[r] is fact)
        default_for = tuple(r for r in ("logits", "pooling") if r in chosen_for)
        every.append(attrs.evolve(fact.row, default_for=default_for, chosen_for=chosen_for))
    rows = [row for row in every if role is None or role in row.role_names]
    return ModelSummary(
        model_name=str(getattr(model, "name", type(model).__name__)),
        model_type=type(model).__name__,
        flavour=flavour_name,
        roles=roles,
        rows=tuple(rows),
        defaults=_defaults(chosen, picked),
        role_filter=role,
        chosen=tuple(c.choice for c in chosen),
        candidates=candidates,
        graph=graph_structure(inspect_model(model, pm), ordered, every),
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

    @property
    def role(self) -> str:
        return self.choice.role


def _choose(model: Any, role: str, by_layer: dict[int, _Fact]) -> _Chosen:
    """What ``find_layer_with(model, role=role)`` returns, as the user would call it."""
    from keras_inspect.inspection import find_layer_with

    try:
        layer = find_layer_with(model, role=role)
    except KerasInspectError as error:
        return _Chosen(choice=RoleChoice(role=role, error=str(error)))
    fact = by_layer.get(id(layer))
    if fact is None:  # a plugin strategy may pick a layer the walk does not list
        name = str(getattr(layer, "name", type(layer).__name__))
        choice = RoleChoice(role=role, path=(name,), type=type(layer).__name__)
        return _Chosen(choice=choice, layer=layer)
    plugin = next((d.plugin for d in fact.row.roles if d.role == role), None)
    choice = RoleChoice(role=role, path=fact.row.path, type=fact.row.type, plugin=plugin)
    return _Chosen(choice=choice, layer=layer)


def _defaults(chosen: tuple[_Chosen, ...], picked: dict[str, _Fact | None]) -> ExposeDefaults:
    # expose(model) takes the logits and pooling layers that the role searches pick.
    found = {c.role: c.choice for c in chosen}
    logits, pooling = found.get("logits"), found.get("pooling")
    logits_fact, pooling_fact = picked.get("logits"), picked.get("pooling")
    return ExposeDefaults(
        logits=logits.path if logits else None,
        pooling=pooling.path if pooling else None,
        feature_map_shapes=pooling_fact.input_shapes if pooling_fact else None,
        logits_error=(logits.error if logits else "no plugin declares the role 'logits'"),
        pooling_error=(pooling.error if pooling else "no plugin declares the role 'pooling'"),
        logits_shapes=logits_fact.row.output_shapes if logits_fact else None,
    )


# -- what keras-inspect reads of each layer --------------------------------------------------------
# The only place that uses the library's internals (walk, reader, classify, layer_bias).


def _layer_facts(
    model: Any, pm: InspectPluginManager, role: str | None
) -> tuple[str, list[_Fact]]:
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


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _isatty(file: Any) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):
        return False
