"""``ModelSummary``, the summary of one model, and its views: plain text and rich tables (the
graph page is :mod:`keras_inspect.views.graph_page`).

Every string shown comes from a model or a plugin, so every one goes through
:func:`~keras_inspect.errors.shown`: escaped, and cut to what a terminal can show (a table cell to
:data:`CELL_LIMIT` characters, a line to :data:`LINE_LIMIT`), so a megabyte-long layer name
cannot widen every row of the table to a megabyte. The data in ``to_dict``/``to_json`` stays
exact.
By default a layer's row names a role only where a search by that role picks the layer; the
candidates view (``summary(..., candidates=True)``, ``--candidates``, or a role filter) lists
every role each layer can play, the chosen one starred.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

import attrs

from keras_inspect.errors import rich_console, shown
from keras_inspect.views.graph_data import GraphStructure
from keras_inspect.views.graph_page import iframe, render_page
from keras_inspect.views.records import (
    ExposeDefaults,
    LayerRow,
    RoleChoice,
    format_shapes,
    short_plugin,
)

#: The widest cell of a table (a nested layer's path fits; a padding bomb does not).
CELL_LIMIT = 120
#: The longest line outside the table.
LINE_LIMIT = 400

_EXPOSE_MARKS = {
    "logits": "<- logits",
    "pooling": "<- pooling input",
    "feature_map": "<- feature map",
}


def _path(path: tuple[str, ...] | None) -> str:
    return "/".join(path) if path is not None else "-"


def _candidates_view(s: ModelSummary) -> bool:
    return s.candidates or s.role_filter is not None


def _headers(s: ModelSummary) -> list[str]:
    roles = "roles (plugin), * = chosen" if _candidates_view(s) else "chosen for role"
    return ["layer", "type", roles, "bias (plugin)", "output shape", "expose default"]


def _cells(row: LayerRow, s: ModelSummary) -> list[str]:
    if _candidates_view(s):
        roles = ", ".join(
            f"{d.role}{'*' if d.role in row.chosen_for else ''} ({short_plugin(d.plugin)})"
            for d in row.roles
        )
    else:
        roles = ", ".join(row.chosen_for)
    bias = f"yes ({short_plugin(row.bias_plugin)})" if row.has_bias else "-"
    marks = " ".join(_EXPOSE_MARKS[key] for key in _EXPOSE_MARKS if key in row.default_for)
    name = row.name + ("" if row.in_graph else " *")
    cells = [name, row.type, roles or "-", bias, format_shapes(row.output_shapes), marks]
    return [shown(cell, CELL_LIMIT) for cell in cells]


def _shown_choices(s: ModelSummary) -> list[RoleChoice]:
    if s.role_filter is not None:
        return [c for c in s.chosen if c.role == s.role_filter]
    return list(s.chosen)


def _choice_lines(s: ModelSummary) -> list[str]:
    choices = _shown_choices(s)
    if not choices:
        return []
    table = [
        [
            c.role,
            _path(c.path) if c.path is not None else "none",
            c.type or "",
            f"decided by {short_plugin(c.plugin)}" if c.path is not None else "no layer plays it",
        ]
        for c in choices
    ]
    lines = ["A search by role picks (find_layer_with(model, role=...)):"]
    lines += [
        "  " + line for line in _aligned([[shown(x, CELL_LIMIT) for x in row] for row in table])
    ]
    return lines


def _default_lines(s: ModelSummary) -> list[str]:
    d = s.defaults
    if d.logits is not None:
        logits = f"output of {_path(d.logits)!r}, shape {format_shapes(d.logits_shapes)}"
    else:
        logits = f"none ({d.logits_error})"
    if d.feature_map is not None:
        pooling = (
            f"{d.feature_map_link} of {_path(d.feature_map)!r}, shape "
            f"{format_shapes(d.feature_map_shapes)}"
        )
    else:
        pooling = f"none ({d.feature_map_error or d.pooling_error})"
    if d.logits is not None and d.feature_map is not None:
        head = "expose(model) returns a model with the outputs [logits, feature map]:"
    else:
        head = "expose(model) cannot pick its defaults (pass the signals explicitly):"
    return [head, shown(f"  logits:      {logits}", LINE_LIMIT),
            shown(f"  feature map: {pooling}", LINE_LIMIT)]  # fmt: skip


def _title(s: ModelSummary) -> str:
    count = f"{len(s.rows)} layer" + ("" if len(s.rows) == 1 else "s")
    where = f" playing role {s.role_filter!r}" if s.role_filter else ""
    return shown(
        f"Model {s.model_name!r} ({s.model_type}, {s.flavour}): {count}{where}", LINE_LIMIT
    )


def _footnotes(s: ModelSummary) -> list[str]:
    notes = [shown(f"known roles: {', '.join(s.roles)}", LINE_LIMIT)]
    if not _candidates_view(s):
        notes.append(
            "A row names a role only where a search by that role picks the layer; to list every "
            "layer that can play a role: --candidates or --role ROLE (Python: "
            "summary(model, candidates=True))."
        )
    if any(not row.in_graph for row in s.rows):
        notes.append(
            "* inside a layer without a functional graph: found by the walk, not exposable "
            "by graph surgery"
        )
    return notes


def _widths(table: list[list[str]]) -> list[int]:
    return [max(len(line[i]) for line in table) for i in range(len(table[0]))]


def _aligned(table: list[list[str]]) -> list[str]:
    widths = _widths(table)
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in table]


def _geometry_lines(s: ModelSummary) -> list[str]:
    geometry = s.token_geometry
    if geometry is None:
        return []
    (rows, cols), (height, width) = geometry.grid, geometry.patch_size
    text = (
        f"token geometry: {geometry.signal.name}: {geometry.prefix_tokens} prefix token(s), then "
        f"a {rows}x{cols} grid of {height}x{width} patches of a "
        f"{geometry.image_shape[0]}x{geometry.image_shape[1]} image"
    )
    return [shown(text, LINE_LIMIT)]


def _preamble(s: ModelSummary) -> list[str]:
    choices = _choice_lines(s)
    geometry = _geometry_lines(s)
    return [
        _title(s), "", *choices, *([""] if choices else []), *_default_lines(s),
        *geometry, "",
    ]  # fmt: skip


def render_text(s: ModelSummary) -> str:
    """The summary as plain text (what ``str(summary)`` returns)."""
    table = [_headers(s), *(_cells(row, s) for row in s.rows)]
    header, *body = _aligned(table)
    rule = "  ".join("-" * w for w in _widths(table))
    return "\n".join([*_preamble(s), header, rule, *body, "", *_footnotes(s)])


def render_rich(s: ModelSummary) -> Any:
    """The summary as a rich renderable: the searches' picks, the expose defaults, the table."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(header_style="bold")
    for header in _headers(s):
        table.add_column(header, overflow="fold")
    for row in s.rows:
        style = "bold green" if row.chosen_for else None
        # Text, not str: a shape list like "[(None, 2), ...]" must not be read as rich markup.
        table.add_row(*(Text(cell) for cell in _cells(row, s)), style=style)
    return Group(Text("\n".join(_preamble(s))), table, Text("\n".join(_footnotes(s))))


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
    #: The token geometry of the default feature map (a vision transformer's patch tokens:
    #: :class:`~keras_inspect.TokenGeometry`), or ``None``.
    token_geometry: Any = attrs.field(default=None, eq=False)

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
        (see :mod:`keras_inspect.views.graph_page`)."""
        return render_page(self, token_geometry=token_geometry)

    def _repr_html_(self) -> str:
        # Notebooks: the page in a sandboxed frame, so its styles and script stay its own.
        return iframe(self.to_html())


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
