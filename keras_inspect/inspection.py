"""The seed-compatible surface: the nine functions and two constants of the original module.

Code written for the original ``inspection`` module ports by changing its import to
``from keras_inspect import inspection`` (or importing the names from ``keras_inspect``).
"""

from __future__ import annotations

from keras_inspect.framework.biases import biases, layers_with_biases
from keras_inspect.framework.expose import endpoints, expose
from keras_inspect.framework.search import (
    find_layer_with,
    get_global_pooling_layer,
    get_logits_layer,
    get_nested_layer,
)
from keras_inspect.framework.units import gather_units

#: Axis of the units (channels) in a layer's kernel and output.
KERNEL_AXIS = -1
#: Spatial axes (height, width) of a channels-last feature map.
SPATIAL_AXIS = (-3, -2)

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
