"""How keras-inspect reads Keras 2 (``tf_keras``) models: the tf_keras flavour adapter.

Keras 2 keeps a functional graph much like Keras 3 but under other names: ``layer._inbound_nodes``
holds ``Node`` objects with ``call_args``/``call_kwargs``, ``keras_inputs`` and ``outputs``; a
``Functional`` (and a ``Sequential`` built on an input, which is a ``Functional``) lists its nodes
in ``_nodes_by_depth`` and marks them in ``_network_nodes``; a symbolic tensor names its producer
in ``_keras_history = (layer, node_index, tensor_index)``. This module is the only place of the
library that reads those attributes.

``tf_keras`` is optional: nothing here imports it until a tf_keras object is met, so
``import keras_inspect`` works without it (and without TensorFlow).
"""

from __future__ import annotations

import importlib
import sys
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from keras_inspect import hookimpl
from keras_inspect.framework.errors import EndpointError
from keras_inspect.framework.flavour import Substitute
from keras_inspect.framework.requirements import MissingDependencyError, require  # noqa: F401

MODULE_PREFIX = "tf_keras"
_LINEAR_NAMES = frozenset({"linear", "identity", None})
# type -> whether it comes from tf_keras (weak: classes made at run time may go away).
_tf_keras_types: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def require_tf_keras() -> Any:
    """The ``tf_keras`` module, or a :class:`MissingDependencyError` naming the extra."""
    return require("tf_keras", "tf-keras", "Reading Keras 2 (tf_keras) models")


def _tf() -> Any:
    # tf_keras objects exist only once TensorFlow is imported, so this never imports it anew.
    return importlib.import_module("tensorflow")


def is_tf_keras_type(cls: type) -> bool:
    """Whether ``cls`` is (or derives from) a class defined by ``tf_keras``."""
    known = _tf_keras_types.get(cls)
    if known is None:
        known = any(
            (getattr(base, "__module__", "") or "").split(".")[0] == MODULE_PREFIX
            for base in cls.__mro__
        )
        _tf_keras_types[cls] = known
    return known


def is_tf_keras_object(obj: Any) -> bool:
    """Whether ``obj`` is an instance of a tf_keras class (never imports tf_keras)."""
    if MODULE_PREFIX not in sys.modules:
        return False
    return is_tf_keras_type(type(obj))


def _graph_model(layer: Any) -> Any | None:
    """``layer`` itself if it is a tf_keras graph network (Functional, built Sequential)."""
    if getattr(layer, "_is_graph_network", False) and hasattr(layer, "_nodes_by_depth"):
        return layer
    return None


def _node_key(layer: Any, index: int) -> str:
    # The key tf_keras's Functional uses in `_network_nodes` for the index-th call of a layer.
    return f"{layer.name}_ib-{index}"


class TfKerasFlavour:
    """The :class:`~keras_inspect.framework.flavour.ModelFlavour` of Keras 2 (``tf_keras``)."""

    name = "tf_keras"

    def is_layer(self, obj: Any) -> bool:
        if not is_tf_keras_object(obj):
            return False
        return isinstance(obj, require_tf_keras().layers.Layer)

    def has_graph(self, layer: Any) -> bool:
        return _graph_model(layer) is not None

    def children(self, layer: Any) -> Sequence[Any]:
        tf_keras = require_tf_keras()
        if _graph_model(layer) is not None:
            # A Functional's `layers` are its graph's layers in topological order (a
            # Sequential's leave out its input layer already).
            return [
                child
                for child in layer.layers
                if not isinstance(child, tf_keras.layers.InputLayer)
            ]
        if isinstance(layer, tf_keras.Sequential):
            return list(layer.layers)
        flatten = getattr(layer, "_flatten_layers", None)
        if flatten is None:
            return []
        return list(flatten(include_self=False, recursive=False))

    def calls(self, layer: Any, container: Any) -> Sequence[Any]:
        nodes = list(getattr(layer, "_inbound_nodes", []))
        graph = _graph_model(container)
        if graph is None:
            return nodes
        members = graph._network_nodes
        return [node for i, node in enumerate(nodes) if _node_key(layer, i) in members]

    def call_tensors(self, call: Any, link: str) -> list[Any]:
        if link == "input":
            return list(call.keras_inputs)
        return list(_tf().nest.flatten(call.outputs))

    def tensor_origin(self, tensor: Any) -> tuple[Any, Any] | None:
        history = getattr(tensor, "_keras_history", None)
        layer = getattr(history, "layer", None)
        if layer is None or not is_tf_keras_object(layer):
            return None
        nodes = layer._inbound_nodes
        if not 0 <= history.node_index < len(nodes):
            return None
        return layer, nodes[history.node_index]

    def inputs(self, model: Any) -> list[Any]:
        return list(_tf().nest.flatten(model.inputs))

    def outputs(self, model: Any) -> list[Any]:
        return list(_tf().nest.flatten(model.outputs))

    def input_structure(self, model: Any) -> Any:
        structure = getattr(model, "_nested_inputs", None)
        if structure is None:
            structure = model.inputs
        if isinstance(structure, (list, tuple)) and len(structure) == 1:
            # A model built on a one-element input list is called with the bare tensor too.
            return structure[0]
        return structure

    def call_model(self, model: Any, args: tuple, kwargs: dict) -> Any:
        tf = _tf()
        flat = tf.nest.flatten(args[0] if len(args) == 1 else list(args))
        structure = self.input_structure(model)
        return model(tf.nest.pack_sequence_as(structure, flat), **kwargs)

    def outputs_of_call(self, result: Any) -> list[Any]:
        return list(_tf().nest.flatten(result))

    def pack_outputs(self, model: Any, flat: Sequence[Any]) -> Any:
        structure = getattr(model, "_nested_outputs", None)
        if structure is None:
            return list(flat)
        return _tf().nest.pack_sequence_as(structure, list(flat))

    def build_model(self, inputs: Any, outputs: Any, name: str | None = None) -> Any:
        return require_tf_keras().Model(inputs=inputs, outputs=outputs, name=name)

    def retrace(
        self,
        model: Any,
        inputs: Sequence[Any],
        substitutes: Mapping[int, Substitute],
        seeds: Mapping[int, Any] | None = None,
    ) -> dict[int, Any]:
        graph = _graph_model(model)
        if graph is None:
            raise TypeError(f"{model.name!r} has no functional graph to re-trace.")
        tf = _tf()
        tensors: dict[int, Any] = {}
        for old, new in zip(self.inputs(graph), inputs):
            tensors[id(old)] = new
        tensors.update(seeds or {})
        for depth in sorted(graph._nodes_by_depth, reverse=True):
            for node in graph._nodes_by_depth[depth]:
                if node.is_input:
                    continue
                keras_inputs = node.keras_inputs
                old_outputs = tf.nest.flatten(node.outputs)
                if any(id(t) not in tensors for t in keras_inputs) or (
                    seeds and all(id(t) in tensors for t in old_outputs)
                ):
                    continue
                substitute = substitutes.get(id(node), substitutes.get(id(node.layer)))
                if substitute is None and all(tensors[id(t)] is t for t in keras_inputs):
                    # Upstream of every substitution nothing changed: keep the original
                    # tensors rather than calling the layer again (no new node on it).
                    for old in old_outputs:
                        tensors[id(old)] = old
                    continue
                args, kwargs = _fill_in(tf, node, tensors)
                if substitute is not None:
                    result = substitute(args, kwargs)
                else:
                    result = node.layer(*args, **kwargs)
                for old, new in zip(old_outputs, tf.nest.flatten(result)):
                    tensors[id(old)] = new
        return tensors

    def activation_of(self, layer: Any) -> Any | None:
        activation = getattr(layer, "activation", None)
        if activation is None or not callable(activation):
            return None
        if getattr(activation, "__name__", None) in _LINEAR_NAMES:
            return None
        return activation

    def new_input(self, like: Any) -> Any:
        return require_tf_keras().Input(shape=tuple(like.shape[1:]), dtype=like.dtype)

    def split_activation(
        self, layer: Any, args: tuple, kwargs: dict, tag: str = ""
    ) -> tuple[Any, Any]:
        from keras_inspect.adapters.tf_keras_preactivation import is_splittable, pre_activation

        if not is_splittable(layer):
            raise EndpointError(
                f"Cannot split the fused activation of {layer.name!r} "
                f"({type(layer).__name__}): only tf_keras layers whose call ends with their "
                "activation (Dense, EinsumDense, convolutions) are supported. Expose its output "
                "instead."
            )
        pre = pre_activation(layer, tag)(*args, **kwargs)
        return pre, self.apply_activation(layer, pre, tag)

    def apply_activation(self, layer: Any, tensor: Any, tag: str = "") -> Any:
        activation = require_tf_keras().layers.Activation(
            layer.activation, name=f"{layer.name}_activation{tag}", dtype=layer.dtype_policy
        )
        return activation(tensor)


def _fill_in(tf: Any, node: Any, tensors: Mapping[int, Any]) -> tuple[tuple, dict]:
    """A node's call arguments with each symbolic tensor replaced by its new counterpart."""
    flat = list(node._flat_arguments)
    for _key, position in node._keras_inputs_ids_and_indices:
        flat[position] = tensors[id(flat[position])]
    args, kwarg_values = tf.nest.pack_sequence_as(
        (node.call_args, list(node.call_kwargs.values())), flat
    )
    return tuple(args), dict(zip(node.call_kwargs.keys(), kwarg_values))


FLAVOUR = TfKerasFlavour()


@hookimpl
def keras_inspect_model_flavour(model: Any) -> TfKerasFlavour | None:
    if is_tf_keras_object(model):
        return FLAVOUR
    return None
