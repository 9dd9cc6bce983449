"""Built-in adapter: the ``"reverse"`` and ``"forward"`` search strategies over graph order.

Each yields layers, as the hook's contract says, and also offers ``entries(model)``, the same
order as walk entries: searches use it, so that a layer called at several places (a backbone's
token embedding, called in reverse by the language model around it) is a candidate at each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from keras_inspect.graph.inspected import inspect_model
from keras_inspect.hooks.specs import hookimpl


def _forward_entries(model: Any) -> Iterable[Any]:
    return iter(inspect_model(model).entries)


def _reverse_entries(model: Any) -> Iterable[Any]:
    return iter(inspect_model(model).reversed_entries())


def forward(model: Any) -> Iterable[Any]:
    """Layers from first to last in graph order, nested ones included."""
    return (entry.layer for entry in _forward_entries(model))


def reverse(model: Any) -> Iterable[Any]:
    """Layers from last to first in graph order (the default search); a layer comes before
    the sub-layers it calls outside any graph, whose outputs are computed before its own."""
    return (entry.layer for entry in _reverse_entries(model))


forward.entries = _forward_entries  # type: ignore[attr-defined]
reverse.entries = _reverse_entries  # type: ignore[attr-defined]


@hookimpl
def keras_inspect_search_strategies() -> dict[str, Callable[[Any], Iterable[Any]]]:
    return {"forward": forward, "reverse": reverse}
