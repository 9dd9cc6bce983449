"""``summary(model)``: what keras-inspect finds in a model, layer by layer, and why.

Every row says which roles the plugins gave a layer and which plugin decided each one, so a user
who disagrees knows which plugin to override. The summary is data first (attrs records,
``to_dict``/``to_json``); printing it is a view: a rich table on a terminal, plain text otherwise.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import attrs

from keras_inspect.framework.current_manager import plugin_manager, using_plugin_manager
from keras_inspect.framework.errors import KerasInspectError
from keras_inspect.framework.inspected_model import inspect_model
from keras_inspect.framework.manager import InspectPluginManager
from keras_inspect.framework.walk import LayerEntry

Shape = tuple[Any, ...]

_BUILTIN_PREFIX = "keras_inspect.adapters."


@attrs.frozen(kw_only=True)
class RoleDecision:
    """A role a layer plays, and the plugin whose ``keras_inspect_classify_layer`` said so."""

    role: str
    plugin: str | None


@attrs.frozen(kw_only=True)
class LayerRow:
    """One layer of the summary, in graph order.

    :ivar path: layer names from the top model down.
    :ivar type: the layer's class name.
    :ivar roles: the roles it plays, each with the deciding plugin.
    :ivar has_bias: whether a plugin reported a constant the layer adds to its output.
    :ivar bias_plugin: the plugin that reported it.
    :ivar output_shapes: the symbolic shape of each output tensor (``None`` if unknown).
    :ivar in_graph: whether the layer's signals can be exposed by graph surgery.
    :ivar default_for: what ``expose(model)`` takes from this layer by default:
        ``"logits"`` (its output) and/or ``"pooling"`` (its input).
    """

    path: tuple[str, ...]
    type: str
    roles: tuple[RoleDecision, ...] = ()
    has_bias: bool = False
    bias_plugin: str | None = None
    output_shapes: tuple[Shape, ...] | None = None
    in_graph: bool = True
    default_for: tuple[str, ...] = ()

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
    """

    logits: tuple[str, ...] | None = None
    pooling: tuple[str, ...] | None = None
    feature_map_shapes: tuple[Shape, ...] | None = None
    logits_error: str | None = None
    pooling_error: str | None = None


@attrs.frozen(kw_only=True)
class ModelSummary:
    """The summary of one model; ``str()`` is a plain-text table, ``print()`` picks the best view."""

    model_name: str
    model_type: str
    flavour: str
    roles: tuple[str, ...]
    rows: tuple[LayerRow, ...]
    defaults: ExposeDefaults
    role_filter: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, dicts, strings, ints, ``None``), ready for JSON."""
        return _plain(attrs.asdict(self, recurse=True))

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        return render_text(self)

    def print(self, file: TextIO | None = None) -> None:
        """Print a rich table when ``file`` (default stdout) is a terminal, plain text otherwise."""
        file = file if file is not None else sys.stdout
        if _isatty(file):
            try:
                from rich.console import Console
            except ImportError:
                pass
            else:
                Console(file=file).print(render_rich(self))
                return
        file.write(render_text(self) + "\n")

    def __rich__(self) -> Any:
        return render_rich(self)


def summary(
    model: Any, *, role: str | None = None, pm: InspectPluginManager | None = None
) -> ModelSummary:
    """Summarise what keras-inspect finds in ``model``.

    :param model: a Keras model (nested models are walked in graph order).
    :param role: keep only the layers that play this role (an unknown role raises with close
        matches).
    :param pm: the plugin manager to ask (default: the current one).
    """
    if pm is not None and pm is not plugin_manager():
        # Searches inside (the expose defaults) ask the current manager: make it this one.
        with using_plugin_manager(pm):
            return summary(model, role=role, pm=pm)
    pm = plugin_manager()
    view = inspect_model(model, pm)
    flavour = view.reader
    if role is not None:
        pm.check_role(role)
    roles = tuple(sorted(pm.roles()))
    defaults = _defaults(model, view)
    picked: dict[tuple[str, ...], list[str]] = {}
    if defaults.logits is not None:
        picked.setdefault(defaults.logits, []).append("logits")
    if defaults.pooling is not None:
        picked.setdefault(defaults.pooling, []).append("pooling")
    rows = []
    for entry in view.entries:
        row = _row(entry, flavour, pm, roles, tuple(picked.get(entry.path, ())))
        if role is None or role in row.role_names:
            rows.append(row)
    return ModelSummary(
        model_name=str(getattr(model, "name", type(model).__name__)),
        model_type=type(model).__name__,
        flavour=str(getattr(flavour, "name", type(flavour).__name__)),
        roles=roles,
        rows=tuple(rows),
        defaults=defaults,
        role_filter=role,
    )


def _row(
    entry: LayerEntry,
    flavour: Any,
    pm: InspectPluginManager,
    roles: Iterable[str],
    default_for: tuple[str, ...],
) -> LayerRow:
    layer = entry.layer
    decisions = []
    for role in roles:
        plays, plugin = pm.classify(layer, role)
        if plays:
            decisions.append(RoleDecision(role=role, plugin=plugin))
    bias, bias_plugin = pm.layer_bias(layer)
    return LayerRow(
        path=entry.path,
        type=type(layer).__name__,
        roles=tuple(decisions),
        has_bias=bias is not None,
        bias_plugin=bias_plugin if bias is not None else None,
        output_shapes=_output_shapes(entry, flavour),
        in_graph=entry.in_graph,
        default_for=default_for,
    )


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


def _output_shapes(entry: LayerEntry, flavour: Any) -> tuple[Shape, ...] | None:
    if entry.in_graph:
        try:
            calls = flavour.calls(entry.layer, entry.container)
            if calls:
                return _shapes(flavour.call_tensors(calls[-1], "output"))
        except Exception:
            # A summary must not fail on a layer whose graph record is unusual; the shape is
            # just left unknown.
            return None
    return None


def _defaults(model: Any, view: Any) -> ExposeDefaults:
    from keras_inspect.framework.search import get_global_pooling_layer, get_logits_layer

    flavour = view.reader
    logits = pooling = None
    logits_error = pooling_error = None
    feature_map = None
    try:
        logits = view.entry_of(get_logits_layer(model)).path
    except KerasInspectError as error:
        logits_error = str(error)
    try:
        entry = view.entry_of(get_global_pooling_layer(model))
    except KerasInspectError as error:
        pooling_error = str(error)
    else:
        pooling = entry.path
        if entry.in_graph:
            try:
                calls = flavour.calls(entry.layer, entry.container)
                if calls:
                    feature_map = _shapes(flavour.call_tensors(calls[-1], "input"))
            except Exception:
                feature_map = None
    return ExposeDefaults(
        logits=logits,
        pooling=pooling,
        feature_map_shapes=feature_map,
        logits_error=logits_error,
        pooling_error=pooling_error,
    )


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


# -- rendering ---------------------------------------------------------------------------------


def short_plugin(name: str | None) -> str:
    """A plugin name as tables show it: built-in adapters without their package prefix."""
    if name is None:
        return "?"
    return name[len(_BUILTIN_PREFIX) :] if name.startswith(_BUILTIN_PREFIX) else name


def format_shapes(shapes: tuple[Shape, ...] | None) -> str:
    if shapes is None:
        return "?"
    texts = ["(" + ", ".join("None" if d is None else str(d) for d in s) + ")" for s in shapes]
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"


def _cells(row: LayerRow) -> list[str]:
    roles = ", ".join(f"{d.role} ({short_plugin(d.plugin)})" for d in row.roles) or "-"
    bias = f"yes ({short_plugin(row.bias_plugin)})" if row.has_bias else "-"
    marks = []
    if "logits" in row.default_for:
        marks.append("<- logits")
    if "pooling" in row.default_for:
        marks.append("<- pooling input")
    name = row.name + ("" if row.in_graph else " *")
    return [name, row.type, roles, bias, format_shapes(row.output_shapes), " ".join(marks)]


_HEADERS = ["layer", "type", "roles (plugin)", "bias (plugin)", "output shape", "expose default"]


def _default_lines(s: ModelSummary) -> list[str]:
    d = s.defaults
    if d.logits is not None:
        logits = f"output of {'/'.join(d.logits)!r}"
    else:
        logits = f"none ({d.logits_error})"
    if d.pooling is not None:
        pooling = f"input of {'/'.join(d.pooling)!r}, shape {format_shapes(d.feature_map_shapes)}"
    else:
        pooling = f"none ({d.pooling_error})"
    return [
        "expose(model) returns by default:",
        f"  logits:      {logits}",
        f"  feature map: {pooling}",
    ]


def _title(s: ModelSummary) -> str:
    where = f", layers playing role {s.role_filter!r}" if s.role_filter else ""
    count = f"{len(s.rows)} layer" + ("" if len(s.rows) == 1 else "s")
    return f"Model {s.model_name!r} ({s.model_type}, {s.flavour}): {count}{where}"


def _footnotes(s: ModelSummary) -> list[str]:
    notes = [f"known roles: {', '.join(s.roles)}"]
    if any(not row.in_graph for row in s.rows):
        notes.append(
            "* inside a layer without a functional graph: found by the walk, not exposable "
            "by graph surgery"
        )
    return notes


def render_text(s: ModelSummary) -> str:
    """The summary as a plain-text table (what ``str(summary)`` returns)."""
    table = [_HEADERS, *(_cells(row) for row in s.rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(_HEADERS))]
    out = io.StringIO()
    out.write(_title(s) + "\n")
    for index, line in enumerate(table):
        out.write("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() + "\n")
        if index == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")
    out.write("\n".join(["", *_default_lines(s), *_footnotes(s)]))
    return out.getvalue()


def render_rich(s: ModelSummary) -> Any:
    """The summary as a rich renderable (a table followed by the expose defaults)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(_title(s)), title_justify="left", header_style="bold")
    for header in _HEADERS:
        table.add_column(header, overflow="fold")
    for row in s.rows:
        style = "bold green" if row.default_for else None
        # Text, not str: a shape list like "[(None, 2), ...]" must not be read as rich markup.
        table.add_row(*(Text(cell) for cell in _cells(row)), style=style)
    return Group(table, Text("\n".join([*_default_lines(s), *_footnotes(s)])))
