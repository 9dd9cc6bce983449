"""The graph page: one self-contained HTML file picturing a model with what keras-inspect found.

``keras-inspect graph MODEL -o model.html`` and ``summary(model).to_html()`` write it; a notebook
shows it inline (``ModelSummary._repr_html_``). The page holds its data, its script and its
layout engine (dagre, vendored under ``assets/`` with its license): it opens offline, and its
Content-Security-Policy forbids every network request.

Every string in the data comes from a model file or a plugin, so none is ever spliced into
markup: the data travels as JSON inside ``<script type="application/json">`` (with ``<``, ``>``
and ``&`` written as JSON escapes, so no text can close the element), and the page's script puts
it into the document with ``textContent`` only. Strings are cut to a bounded length (with a
marker saying how much was cut), and each layer carries its own name only, not its path, so a
huge name costs its bounded length once.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import attrs

from keras_inspect.errors import printable
from keras_inspect.views.records import format_shapes, short_plugin

__all__ = ["FORMAT", "LIMITS", "iframe", "page_data", "render_page", "token_geometry_of"]

#: Version of the page's data layout (``data.format``), for anyone reading the embedded JSON.
FORMAT = 1

#: The longest string kept for each kind of text; longer ones are cut, with a marker.
LIMITS = {"name": 200, "type": 120, "plugin": 120, "role": 80, "shape": 200, "message": 600}

#: Token geometry is shown as short key/value lists: at most this many signals and fields.
GEOMETRY_SIGNALS, GEOMETRY_FIELDS = 64, 16

_MARKER = re.compile(r"<!--KI:(STYLE|DAGRE|VIEW|PANEL|DATA)-->")
#: The shipped files inserted into the page's template, by marker.
_ASSETS = {
    "STYLE": "graph_page.css",
    "DAGRE": "dagre.min.js",
    "VIEW": "graph_view.js",
    "PANEL": "graph_panel.js",
}


def clip(text: Any, kind: str) -> str:
    """``text`` as the page shows it: control characters (line separators, bidirectional
    overrides, ...) made visible as for the terminal (:func:`printable`), then cut to
    ``LIMITS[kind]`` characters with a marker saying how much was cut."""
    value = printable(text)
    limit = LIMITS[kind]
    if len(value) <= limit:
        return value
    return f"{value[:limit]}\u2026 [{len(value) - limit} more characters]"


def _maybe(text: Any, kind: str) -> str | None:
    return None if text is None else clip(text, kind)


def page_data(summary: Any, *, token_geometry: Any = None) -> dict[str, Any]:
    """The page's data: plain JSON types, every string bounded (see the module docstring).

    :param summary: a :class:`~keras_inspect.views.model_summary.ModelSummary` made by
        :func:`keras_inspect.summary` (it holds the graph). Typed ``Any``: ``summary`` imports
        this module, which therefore does not import it back.
    :param token_geometry: token signals' geometry, ``{signal: {field: value}}``; default: the
        summary's own ``token_geometry`` if it has one. Nothing is shown when absent.
    """
    graph = summary.graph
    if graph is None:
        raise ValueError(
            "this summary holds no graph structure (it was not made by "
            "keras_inspect.summary(model)); make one with keras_inspect.summary(model)."
        )
    rows = graph.rows
    where = {row.path: i for i, row in enumerate(rows)}
    nodes = [
        {
            "name": clip(row.path[-1], "name"),
            "type": clip(row.type, "type"),
            "parent": parent,
            "kind": kind,
            "inGraph": row.in_graph,
            "shape": _shapes_text(row.output_shapes),
            "roles": [[clip(d.role, "role"), _plugin(d.plugin)] for d in row.roles],
            "chosenFor": [clip(r, "role") for r in row.chosen_for],
            "bias": row.has_bias,
            "biasPlugin": _plugin(row.bias_plugin),
        }
        for row, parent, kind in zip(rows, graph.parents, graph.kinds)
    ]
    paths = {p.role: p for p in graph.search_paths}
    chosen = []
    for choice in summary.chosen:
        path = paths.get(choice.role)
        chosen.append(
            {
                "role": clip(choice.role, "role"),
                "node": _answer(path, choice, where),
                "plugin": _plugin(choice.plugin),
                "error": _maybe(choice.error, "message"),
                "strategy": None if path is None else clip(path.strategy, "role"),
                "visited": [] if path is None else list(path.visited),
                "found": bool(path and path.found),
                "searchError": None if path is None else _maybe(path.error, "message"),
            }
        )
    defaults = summary.defaults
    return {
        "format": FORMAT,
        "model": {
            "name": clip(summary.model_name, "name"),
            "type": clip(summary.model_type, "type"),
            "flavour": clip(summary.flavour, "type"),
            "layers": len(rows),
            "hasGraph": graph.has_graph,
            "edgesError": _maybe(graph.edges_error, "message"),
        },
        "roles": [clip(r, "role") for r in summary.roles],
        "roleFilter": _maybe(summary.role_filter, "role"),
        "nodes": nodes,
        "terminals": [
            {"kind": t.kind, "name": clip(t.name, "name"), "shape": _shape_text(t.shape)}
            for t in graph.terminals
        ],
        "edges": [list(edge) for edge in graph.edges],
        "chosen": chosen,
        "defaults": {
            "logits": _endpoint(where, defaults.logits, defaults.logits_shapes),
            "featureMap": _endpoint(where, defaults.feature_map, defaults.feature_map_shapes),
            # The search's message, where it found no layer.
            "logitsError": None if defaults.logits else _maybe(defaults.logits_error, "message"),
            "featureMapError": (
                None if defaults.feature_map else _maybe(defaults.feature_map_error, "message")
            ),
        },
        "tokenGeometry": _geometry(
            getattr(summary, "token_geometry", None) if token_geometry is None else token_geometry,
            where,
        ),
    }


def _answer(path: Any, choice: Any, where: dict[tuple[str, ...], int]) -> int | None:
    # Where the replayed search stopped: the place of a layer walked at several places where
    # it plays the role; the summary's choice names the layer.
    if path is not None and path.found and path.visited:
        return path.visited[-1]
    return where.get(choice.path) if choice.path is not None else None


def _plugin(name: str | None) -> str | None:
    # As the summary's tables name plugins: built-in adapters without their package prefix.
    return None if name is None else clip(short_plugin(name), "plugin")


def _shape_text(shape: tuple[Any, ...] | None) -> str | None:
    return None if shape is None else _shapes_text((shape,))


def _shapes_text(shapes: Any) -> str | None:
    return None if shapes is None else clip(format_shapes(shapes), "shape")


def _endpoint(where: dict[tuple[str, ...], int], path: Any, shapes: Any) -> dict[str, Any] | None:
    if path is None:
        return None
    return {"node": where.get(tuple(path)), "shape": _shapes_text(shapes)}


def _geometry(value: Any, where: dict[tuple[str, ...], int]) -> list[dict[str, Any]]:
    """Token geometry as ``[{signal, node, fields: [[name, text]]}]``; ``[]`` when absent.

    Accepts what :func:`keras_inspect.token_geometry` returns (a ``TokenGeometry``, or a list of
    them), or a mapping from a signal (a layer path string, a tuple of names, or any label) to a
    mapping or attrs record of scalar fields, e.g. ``{"backbone/encoder": {"prefix_tokens": 1,
    "grid": (4, 4)}}``. Values are shown as text.
    """
    if value is None:
        return []
    if attrs.has(type(value)) and hasattr(value, "signal"):
        value = [value]
    if isinstance(value, (list, tuple)):
        value = {_signal(g): _fields(g) for g in value}
    if not isinstance(value, Mapping):
        raise TypeError(
            "token_geometry must be what keras_inspect.token_geometry returns, or a mapping "
            f"from a token signal to its fields; received {type(value).__name__}."
        )
    shown = []
    for signal, fields in list(value.items())[:GEOMETRY_SIGNALS]:
        if attrs.has(type(fields)):
            fields = attrs.asdict(fields)
        items = fields.items() if isinstance(fields, Mapping) else [("value", fields)]
        path = tuple(signal) if isinstance(signal, (tuple, list)) else tuple(str(signal).split("/"))
        shown.append(
            {
                "signal": clip("/".join(map(str, path)), "name"),
                "node": where.get(path),
                "fields": [
                    [clip(k, "role"), clip(_scalar(v), "shape")]
                    for k, v in list(items)[:GEOMETRY_FIELDS]
                ],
            }
        )
    return shown


def _signal(geometry: Any) -> tuple[str, ...]:
    if not attrs.has(type(geometry)) or not hasattr(geometry, "signal"):
        raise TypeError(
            "a list given as token_geometry must hold what keras_inspect.token_geometry "
            f"returns; received {type(geometry).__name__}."
        )
    return tuple(getattr(geometry.signal, "path", (str(geometry.signal),)))


def _fields(geometry: Any) -> dict[str, Any]:
    fields = attrs.asdict(geometry, recurse=False)
    signal = fields.pop("signal")
    link = getattr(signal, "link", None)
    return {"link": link, **fields} if link else fields


def _scalar(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


def _json(data: Any) -> str:
    # ASCII only; then <, > and & as JSON escapes: no text in the data can end the <script>
    # element or open a comment, and JSON.parse reads the same strings back.
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def _asset(name: str) -> str:
    return resources.files("keras_inspect.views").joinpath("assets", name).read_text("utf-8")


def render_page(summary: Any, *, token_geometry: Any = None) -> str:
    """The whole page, as one HTML document (see :func:`page_data` for the arguments)."""
    parts = {marker: _asset(name) for marker, name in _ASSETS.items()}
    for marker, text in parts.items():
        # The shipped assets are trusted, but one that could end its own element would break
        # the page in a way no test of the data would see.
        if re.search(r"</(style|script)", text, re.IGNORECASE):
            raise ValueError(f"the graph page's asset {_ASSETS[marker]} contains a closing tag")
    parts["DATA"] = _json(page_data(summary, token_geometry=token_geometry))
    # One pass over the template: nothing inserted is searched for markers again.
    return _MARKER.sub(lambda m: parts[m.group(1)], _asset("graph_page.html"))


def token_geometry_of(model: Any) -> Any:
    """The token geometry of the model's default feature map, or ``None`` where it has none
    (no patch embedding, or a signal that is no sequence of patch tokens): what the command
    shows in the page's token geometry section."""
    from keras_inspect.errors import KerasInspectError
    from keras_inspect.signals.token_geometry import token_geometry

    try:
        return token_geometry(model)
    except (KerasInspectError, ValueError, TypeError):
        return None


def iframe(page: str, *, height: int = 640) -> str:
    """``page`` inside an ``<iframe srcdoc>`` (for notebooks): its styles and scripts stay in
    their own document, and ``sandbox`` gives it an origin of its own, apart from the
    notebook's."""
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" sandbox="allow-scripts" '
        f'style="width:100%;height:{int(height)}px;border:1px solid #d0d7de;border-radius:4px">'
        "</iframe>"
    )
