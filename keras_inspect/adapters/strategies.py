"""Built-in adapter: the ``"reverse"`` and ``"forward"`` search strategies over graph order."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from keras_inspect.hooks.specs import hookimpl
from keras_inspect.graph.inspected import inspect_model


def forward(model: Any) -> Iterable[Any]:
    """Layers from first to last in graph order, nested ones included."""
    return iter(inspect_model(model).layers())


def reverse(model: Any) -> Iterable[Any]:
    """Layers from last to first in graph order (the default search)."""
    return reversed(inspect_model(model).layers())


@hookimpl
def keras_inspect_search_strategies() -> dict[str, Callable[[Any], Iterable[Any]]]:
    return {"forward": forward, "reverse": reverse}
