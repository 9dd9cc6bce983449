"""keras-inspect: the model-inspection layer for explainable AI on Keras.

Find the logits, pooling, normalization and feature-map layers of any Keras model (nested models
included), get the constant bias each layer adds, and build models that return intermediate
signals, all through plugins that third parties can extend.
"""

from __future__ import annotations

# First, so that a missing Keras backend is reported with the extra to install.
from keras_inspect.framework.dependencies import MissingDependencyError, import_keras

import_keras()

# Registers the wrapper layers of exposed models with Keras' serialization, so that a saved
# exposed model loads after `import keras_inspect`.
import keras_inspect.adapters.keras3.wrappers  # noqa: E402,F401
from keras_inspect.framework.current_manager import (  # noqa: E402
    plugin_manager,
    reset_plugin_manager,
    using_plugin_manager,
)
from keras_inspect.framework.endpoints import Endpoint  # noqa: E402
from keras_inspect.framework.errors import (  # noqa: E402
    EndpointError,
    KerasInspectError,
    LayerNotFoundError,
    NoMatchingLayerError,
    PluginError,
)
from keras_inspect.framework.graph_reader import GraphReader  # noqa: E402
from keras_inspect.framework.hookspecs import hookimpl, hookspec  # noqa: E402
from keras_inspect.framework.manager import InspectPluginManager, PluginInfo  # noqa: E402
from keras_inspect.framework.plugin_loader import new_plugin_manager  # noqa: E402
from keras_inspect.framework.register_layer import register_layer, unregister_layer  # noqa: E402
from keras_inspect.framework.search import layers_with_role, walk  # noqa: E402
from keras_inspect.framework.split import split  # noqa: E402
from keras_inspect.framework.target import get_target_layer  # noqa: E402
from keras_inspect.framework.tensors import align_to_axes  # noqa: E402
from keras_inspect.framework.walk import LayerEntry  # noqa: E402
from keras_inspect import inspection  # noqa: E402
from keras_inspect.inspection import (  # noqa: E402
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
from keras_inspect.summary import ModelSummary, summary  # noqa: E402

__version__ = "0.1.0"

__all__ = sorted(
    [
        *inspection.__all__,
        "Endpoint",
        "EndpointError",
        "GraphReader",
        "InspectPluginManager",
        "KerasInspectError",
        "LayerEntry",
        "LayerNotFoundError",
        "MissingDependencyError",
        "ModelSummary",
        "NoMatchingLayerError",
        "PluginError",
        "PluginInfo",
        "__version__",
        "align_to_axes",
        "get_target_layer",
        "hookimpl",
        "hookspec",
        "layers_with_role",
        "new_plugin_manager",
        "plugin_manager",
        "register_layer",
        "reset_plugin_manager",
        "split",
        "summary",
        "unregister_layer",
        "using_plugin_manager",
        "walk",
    ]
)
