"""Views of a :class:`~keras_inspect.cli.summary.ModelSummary`: plain text and rich tables.

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

from typing import TYPE_CHECKING, Any

from keras_inspect.errors import shown

if TYPE_CHECKING:
    from keras_inspect.cli.summary import LayerRow, ModelSummary, RoleChoice

Shape = tuple[Any, ...]

#: The widest cell of a table (a nested layer's path fits; a padding bomb does not).
CELL_LIMIT = 120
#: The longest line outside the table.
LINE_LIMIT = 400

_BUILTIN_PREFIX = "keras_inspect.adapters."
_EXPOSE_MARKS = {"logits": "<- logits", "pooling": "<- pooling input"}


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
    marks = " ".join(_EXPOSE_MARKS[key] for key in ("logits", "pooling") if key in row.default_for)
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
    lines += ["  " + line for line in _aligned([[shown(x, CELL_LIMIT) for x in row] for row in table])]
    return lines


def _default_lines(s: ModelSummary) -> list[str]:
    d = s.defaults
    if d.logits is not None:
        logits = f"output of {_path(d.logits)!r}, shape {format_shapes(d.logits_shapes)}"
    else:
        logits = f"none ({d.logits_error})"
    if d.pooling is not None:
        pooling = f"input of {_path(d.pooling)!r}, shape {format_shapes(d.feature_map_shapes)}"
    else:
        pooling = f"none ({d.pooling_error})"
    if d.logits is not None and d.pooling is not None:
        head = "expose(model) returns a model with the outputs [logits, feature map]:"
    else:
        head = "expose(model) cannot pick its defaults (pass the signals explicitly):"
    return [head, shown(f"  logits:      {logits}", LINE_LIMIT),
            shown(f"  feature map: {pooling}", LINE_LIMIT)]  # fmt: skip


def _title(s: ModelSummary) -> str:
    count = f"{len(s.rows)} layer" + ("" if len(s.rows) == 1 else "s")
    where = f" playing role {s.role_filter!r}" if s.role_filter else ""
    return shown(f"Model {s.model_name!r} ({s.model_type}, {s.flavour}): {count}{where}", LINE_LIMIT)


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


def _preamble(s: ModelSummary) -> list[str]:
    choices = _choice_lines(s)
    return [_title(s), "", *choices, *([""] if choices else []), *_default_lines(s), ""]


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
