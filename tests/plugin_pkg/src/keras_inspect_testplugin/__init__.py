"""keras-inspect test plugin: the module itself is the plugin (entry point ``testplugin``).

It declares a new role (``"affine"``), classifies :class:`ChannelShift` as ``"affine"`` and
``"normalization"``, gives its bias, and offers the ``"alphabetical"`` search strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from keras import ops

import keras_inspect
from keras_inspect import hookimpl

from .layers import ChannelShift

ROLE = "affine"
STRATEGY = "alphabetical"

__all__ = ["ROLE", "STRATEGY", "ChannelShift"]


def alphabetical(model: Any) -> Iterable[Any]:
    """Every layer of ``model`` (nested ones included), sorted by name."""
    return sorted((entry.layer for entry in keras_inspect.walk(model)), key=lambda l: l.name)


@hookimpl
def keras_inspect_roles() -> tuple[str, ...]:
    return (ROLE,)


@hookimpl
def keras_inspect_classify_layer(layer: Any, role: str) -> bool | None:
    if isinstance(layer, ChannelShift) and role in (ROLE, "normalization"):
        return True
    return None


@hookimpl
def keras_inspect_layer_bias(layer: Any) -> Any | None:
    if isinstance(layer, ChannelShift):
        return ops.convert_to_tensor(layer.shift)
    return None


@hookimpl
def keras_inspect_search_strategies() -> dict[str, Callable[[Any], Iterable[Any]]]:
    return {STRATEGY: alphabetical}
