"""The seed's ``inspection`` behaviour, re-implemented to compare keras-inspect with.

keras-inspect's seed-compatible functions are checked against what the original module did on
Keras 2. That module imported Keras 2.9-2.12's private ``keras.engine`` modules, which no longer
exist, so its algorithms are written again here for ``tf_keras`` (Keras 2.x, same engine):

- searches iterate ``model._flatten_layers(include_self=False)`` (reversed by default) and test
  candidates with ``isinstance`` and ``hasattr``;
- a name is followed with ``get_layer`` one step at a time (a tuple or list is a path);
- endpoints come from ``get_input_at``/``get_output_at``, with ``node="last"`` meaning
  ``len(layer._inbound_nodes) - 1``, and any link other than ``"input"`` read as the output;
- ``expose`` reads a ``str`` or ``tuple`` ``arguments`` as one name, lists everything else, and
  builds a model over the original model's inputs;
- a normalization layer's bias is ``beta - gamma * mean / sqrt(variance + 1e-7)``.

The search functions also run on Keras 3 models (``_flatten_layers`` exists there too); the
endpoint functions need Keras 2's ``get_output_at``.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tf_keras
from tf_keras.src.layers.normalization.batch_normalization import BatchNormalizationBase
from tf_keras.src.layers.pooling.base_global_pooling1d import GlobalPooling1D
from tf_keras.src.layers.pooling.base_global_pooling2d import GlobalPooling2D
from tf_keras.src.layers.pooling.base_global_pooling3d import GlobalPooling3D

#: The original's epsilon for folding a normalization layer, whatever the layer's own.
FOLD_EPSILON = 1e-7

KERNEL_AXIS = -1
SPATIAL_AXIS = (-3, -2)
NORMALIZATION_LAYERS = (BatchNormalizationBase, tf_keras.layers.LayerNormalization)
POOLING_LAYERS = (tf_keras.layers.Flatten, GlobalPooling1D, GlobalPooling2D, GlobalPooling3D)


def as_list(item: Any) -> list[Any]:
    """A list stays as it is, a tuple or set becomes a list, anything else is wrapped."""
    if isinstance(item, list):
        return item
    if isinstance(item, (tuple, set)):
        return list(item)
    return [item]


def get_nested_layer(model: Any, name: Any) -> Any:
    layer = model
    for step in as_list(name):
        layer = layer.get_layer(step)
    return layer


def find_layer_with(
    model: Any,
    name: Any = None,
    properties: Any = None,
    klass: Any = None,
    search_reversed: bool = True,
) -> Any:
    if name is None and properties is None and klass is None:
        raise ValueError("the seed needs one of name, properties or klass")
    if name is not None:
        return get_nested_layer(model, name)
    candidates = list(model._flatten_layers(include_self=False))
    if search_reversed:
        candidates.reverse()
    for layer in candidates:
        if klass and not isinstance(layer, klass):
            continue
        if properties and not all(hasattr(layer, p) for p in properties):
            continue
        return layer
    raise ValueError(f"the seed found no layer with klass={klass} and properties={properties}")


def get_logits_layer(model: Any, name: Any = None) -> Any:
    return find_layer_with(model, name, properties=["kernel"])


def get_global_pooling_layer(model: Any, name: Any = None) -> Any:
    return find_layer_with(model, name, klass=POOLING_LAYERS)


def endpoints(model: Any, endpoints: Any) -> list[Any]:  # the seed's parameter name
    found = []
    for descriptor in endpoints:
        if isinstance(descriptor, int):
            descriptor = {"layer": model.layers[descriptor]}
        elif isinstance(descriptor, tf_keras.layers.Layer):
            descriptor = {"layer": descriptor}
        elif isinstance(descriptor, str):
            descriptor = {"name": descriptor}
        if not isinstance(descriptor, dict):
            raise ValueError(
                f"an endpoint is an int, a str, a layer or a dict; received {type(descriptor)}"
            )
        if "layer" in descriptor:
            layer = descriptor["layer"]
        else:
            layer = get_nested_layer(model, descriptor["name"])
        node = descriptor.get("node", "last")
        if node == "last":
            node = len(layer._inbound_nodes) - 1
        if descriptor.get("link", "output") == "input":
            found.append(layer.get_input_at(node))
        else:
            found.append(layer.get_output_at(node))
    return found


def expose(model: Any, arguments: Any = None, outputs: Any = None) -> Any:
    if outputs is None:
        outputs = get_logits_layer(model)
    if isinstance(arguments, (str, tuple)):
        arguments = {"name": arguments}
    if arguments is None:
        arguments = {"layer": get_global_pooling_layer(model), "link": "input"}
    tensors = endpoints(model, as_list(outputs) + as_list(arguments))
    return tf_keras.Model(inputs=model.inputs, outputs=tensors)


def gather_units(tensor: Any, indices: Any, axis: int = -1, batch_dims: int = -1) -> Any:
    if indices is None:
        return tensor
    return tf.gather(tensor, indices, axis=axis, batch_dims=batch_dims)


def biases(layers: Any) -> list[Any]:
    found = []
    for layer in layers:
        if isinstance(layer, NORMALIZATION_LAYERS):
            scale = layer.gamma / tf.sqrt(layer.moving_variance + FOLD_EPSILON)
            found.append(layer.beta - layer.moving_mean * scale)
        elif hasattr(layer, "bias") and layer.bias is not None:
            found.append(layer.bias)
    return found


def layers_with_biases(model: Any, exclude: Any = (), return_biases: bool = True) -> Any:
    chosen = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if layer not in exclude
        and (
            isinstance(layer, NORMALIZATION_LAYERS)
            or (hasattr(layer, "bias") and layer.bias is not None)
        )
    ]
    if return_biases:
        return chosen, biases(chosen)
    return chosen
