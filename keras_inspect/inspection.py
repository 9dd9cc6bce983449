"""The seed-compatible surface: the nine functions and the constants of the original module.

Code written for the original ``inspection`` module ports by changing its import to
``from keras_inspect import inspection`` (or importing the names from ``keras_inspect``).
``POOLING_LAYERS`` and ``NORMALIZATION_LAYERS`` remain, deprecated, as read-only views of the
built-in adapters' layer types: searches ask the plugins for roles, not these tuples.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import Any

from keras_inspect.answers.biases import biases, layers_with_biases
from keras_inspect.answers.search import (
    find_layer_with,
    get_global_pooling_layer,
    get_logits_layer,
    get_nested_layer,
)
from keras_inspect.answers.units import gather_units
from keras_inspect.signals.expose import endpoints, expose

#: Axis of the units (channels) in a layer's kernel and output.
KERNEL_AXIS = -1
#: Spatial axes (height, width) of a channels-last feature map.
SPATIAL_AXIS = (-3, -2)

#: Deprecated name -> (adapter module, its tuple of layer types, the role that replaces it).
_DEPRECATED: dict[str, tuple[str, str, str]] = {
    "POOLING_LAYERS": ("keras_inspect.adapters.pooling", "POOLING_TYPES", "pooling"),
    "NORMALIZATION_LAYERS": (
        "keras_inspect.adapters.normalization",
        "NORMALIZATION_TYPES",
        "normalization",
    ),
}


def __getattr__(name: str) -> Any:
    if name not in _DEPRECATED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute, role = _DEPRECATED[name]
    warnings.warn(
        f"keras_inspect.inspection.{name} is deprecated: searches decide roles through plugins, "
        f"not this tuple. Use keras_inspect.layers_with_role(model, {role!r}) or "
        f"find_layer_with(model, role={role!r}); teach a layer type the role with "
        f"keras_inspect.register_layer(LayerType, roles={role!r}).",
        DeprecationWarning,
        stacklevel=2,
    )
    # The adapters import Keras: loaded on first use, like the rest of the package.
    return getattr(importlib.import_module(module), attribute)


class _Module(types.ModuleType):
    """Refuses to rebind the deprecated tuples: a new value would change no search."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _DEPRECATED:
            role = _DEPRECATED[name][2]
            raise AttributeError(
                f"keras_inspect.inspection.{name} is a read-only view of the built-in adapters' "
                f"types; changing it would not change any search. Teach a layer type the role "
                f"with keras_inspect.register_layer(LayerType, roles={role!r})."
            )
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        if name in _DEPRECATED:
            raise AttributeError(f"keras_inspect.inspection.{name} cannot be deleted.")
        super().__delattr__(name)


sys.modules[__name__].__class__ = _Module

__all__ = [
    "KERNEL_AXIS",
    "SPATIAL_AXIS",
    "biases",
    "endpoints",
    "expose",
    "find_layer_with",
    "gather_units",
    "get_global_pooling_layer",
    "get_logits_layer",
    "get_nested_layer",
    "layers_with_biases",
]
