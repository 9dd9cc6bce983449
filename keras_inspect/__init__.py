"""keras-inspect: the model-inspection layer for explainable AI on Keras.

Find the logits, pooling, normalization and feature-map layers of any Keras model (nested models
included), get the constant bias each layer adds, and build models that return intermediate
signals, all through plugins that third parties can extend.
"""

from __future__ import annotations

# First, so that a missing Keras backend is reported with the extra to install.
from keras_inspect.framework.requirements import MissingDependencyError, import_keras

import_keras()

from keras_inspect.framework.markers import hookimpl, hookspec

from keras_inspect.framework.endpoints import Endpoint
from keras_inspect.framework.errors import (
    EndpointError,
    KerasInspectError,
    LayerNotFoundError,
    NoMatchingLayerError,
    PluginError,
)
from keras_inspect.framework.graph import LayerEntry, walk
from keras_inspect.framework.manager import (
    InspectPluginManager,
    PluginInfo,
    new_plugin_manager,
    plugin_manager,
    reset_plugin_manager,
    using_plugin_manager,
)
from keras_inspect.framework.registration import register_layer, unregister_layer
from keras_inspect.framework.tensors import align_to_axes
from keras_inspect.framework.search import layers_with_role
from keras_inspect.framework.split import split
from keras_inspect.adapters.feature_map import get_target_layer
from keras_inspect.summary import ModelSummary, summary
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

__version__ = "0.1.0"

__all__ = [
    "KERNEL_AXIS",
    "SPATIAL_AXIS",
    "Endpoint",
    "EndpointError",
    "InspectPluginManager",
    "KerasInspectError",
    "LayerEntry",
    "LayerNotFoundError",
    "MissingDependencyError",
    "NoMatchingLayerError",
    "PluginError",
    "PluginInfo",
    "__version__",
    "align_to_axes",
    "biases",
    "endpoints",
    "expose",
    "find_layer_with",
    "gather_units",
    "get_global_pooling_layer",
    "get_logits_layer",
    "get_nested_layer",
    "get_target_layer",
    "hookimpl",
    "hookspec",
    "layers_with_biases",
    "layers_with_role",
    "new_plugin_manager",
    "plugin_manager",
    "register_layer",
    "reset_plugin_manager",
    "split",
    "unregister_layer",
    "using_plugin_manager",
    "walk",
    "ModelSummary",
    "summary",
]
