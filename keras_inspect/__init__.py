"""keras-inspect: the model-inspection layer for explainable AI on Keras.

Find the logits, pooling, normalization and feature-map layers of any Keras model (nested models
included), get the constant bias each layer adds, and build models that return intermediate
signals, all through plugins that third parties can extend.

The public names load on first use (PEP 562) when Keras is not imported yet, so that the
``keras-inspect`` command can check its arguments before a backend starts; once Keras is
imported, ``import keras_inspect`` loads them at once.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

# A missing backend is reported at once, with the extra that installs it (nothing is imported).
from keras_inspect.dependencies import (
    MissingDependencyError,
    check_backend_installed,
    import_keras,
)

check_backend_installed()

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "KERNEL_AXIS", "SPATIAL_AXIS", "biases", "endpoints", "expose", "find_layer_with",
            "gather_units", "get_global_pooling_layer", "get_logits_layer", "get_nested_layer",
            "layers_with_biases",
        ),
        "keras_inspect.inspection",
    ),
    **dict.fromkeys(
        ("plugin_manager", "reset_plugin_manager", "using_plugin_manager"),
        "keras_inspect.hooks.current",
    ),
    **dict.fromkeys(
        ("EndpointError", "KerasInspectError", "LayerNotFoundError", "NoMatchingLayerError",
         "PluginError"),
        "keras_inspect.errors",
    ),
    **dict.fromkeys(("hookimpl", "hookspec"), "keras_inspect.hooks.specs"),
    **dict.fromkeys(("InspectPluginManager", "PluginInfo"), "keras_inspect.hooks.manager"),
    **dict.fromkeys(
        ("register_layer", "unregister_layer"), "keras_inspect.hooks.register_layer"
    ),
    **dict.fromkeys(("layers_with_role", "walk"), "keras_inspect.answers.search"),
    **dict.fromkeys(("ModelSummary", "summary"), "keras_inspect.views.summary"),
    "Endpoint": "keras_inspect.graph.endpoints",
    "GraphReader": "keras_inspect.graph.reader",
    "LayerEntry": "keras_inspect.graph.walk",
    "MissingDependencyError": "keras_inspect.dependencies",
    "align_to_axes": "keras_inspect.answers.bias_math",
    "get_target_layer": "keras_inspect.answers.target_layer",
    "Gradients": "keras_inspect.signals.gradients",
    "gradients": "keras_inspect.signals.gradients",
    "stateless_gradients": "keras_inspect.signals.stateless",
    "Intervention": "keras_inspect.signals.interventions",
    "TokenGeometry": "keras_inspect.signals.token_geometry",
    "token_geometry": "keras_inspect.signals.token_geometry",
    "intervene": "keras_inspect.signals.interventions",
    "new_plugin_manager": "keras_inspect.hooks.loading",
    "split": "keras_inspect.signals.split",
}  # fmt: skip

__all__ = sorted([*_EXPORTS, "__version__"])


def _load() -> None:
    import_keras()
    # Registers the wrapper layers of exposed models with Keras' serialization, so that a saved
    # exposed model loads in a new process.
    importlib.import_module("keras_inspect.adapters.keras3.wrappers")
    module = sys.modules[__name__]
    for name, source in _EXPORTS.items():
        setattr(module, name, getattr(importlib.import_module(source), name))


def __getattr__(name: str) -> Any:
    # Only public names load the package: dunder look-ups (inspect, pickle, the import system)
    # may come while Keras itself is being imported.
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _load()
    return globals()[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if "keras" in sys.modules:
    _load()  # Keras' start-up cost is paid already: behave as an ordinary package

if TYPE_CHECKING:
    from keras_inspect.answers.bias_math import align_to_axes
    from keras_inspect.answers.search import layers_with_role, walk
    from keras_inspect.answers.target_layer import get_target_layer
    from keras_inspect.errors import (
        EndpointError,
        KerasInspectError,
        LayerNotFoundError,
        NoMatchingLayerError,
        PluginError,
    )
    from keras_inspect.graph.endpoints import Endpoint
    from keras_inspect.graph.reader import GraphReader
    from keras_inspect.graph.walk import LayerEntry
    from keras_inspect.hooks.current import (
        plugin_manager,
        reset_plugin_manager,
        using_plugin_manager,
    )
    from keras_inspect.hooks.loading import new_plugin_manager
    from keras_inspect.hooks.manager import InspectPluginManager, PluginInfo
    from keras_inspect.hooks.register_layer import register_layer, unregister_layer
    from keras_inspect.hooks.specs import hookimpl, hookspec
    from keras_inspect.inspection import (
        KERNEL_AXIS,
        SPATIAL_AXIS,
        biases,
        endpoints,
        expose,
        find_layer_with,
        gather_units,
        get_global_pooling_layer,
        get_logits_layer,
        get_nested_layer,
        layers_with_biases,
    )
    from keras_inspect.signals.gradients import Gradients, gradients
    from keras_inspect.signals.interventions import Intervention, intervene
    from keras_inspect.signals.split import split
    from keras_inspect.signals.stateless import stateless_gradients
    from keras_inspect.signals.token_geometry import TokenGeometry, token_geometry
    from keras_inspect.views.summary import ModelSummary, summary
