"""Built-in adapter: the ``"reverse"`` and ``"forward"`` search strategies over graph order."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from keras_inspect import hookimpl
from keras_inspect.framework.graph import walk_layers


def forward(model: Any) -> Iterable[Any]:
    """Layers from first to last in graph order, nested ones included."""
    return walk_layers(model)


def reverse(model: Any) -> Iterable[Any]:
    """Layers from last to first in graph order (the default search)."""
    return reversed(walk_layers(model))


@hookimpl
def keras_inspect_search_strategies() -> dict[str, Callable[[Any], Iterable[Any]]]:
    return {"forward": forward, "reverse": reverse}
