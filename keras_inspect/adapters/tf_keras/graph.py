"""How keras-inspect reads Keras 2 (``tf_keras``) models: the tf_keras graph reader.

Keras 2 keeps a functional graph much like Keras 3 but under other names: ``layer._inbound_nodes``
holds ``Node`` objects with ``call_args``/``call_kwargs``, ``keras_inputs`` and ``outputs``; a
``Functional`` (and a ``Sequential`` built on an input, which is a ``Functional``) lists its nodes
in ``_nodes_by_depth`` and marks them in ``_network_nodes``; a symbolic tensor names its producer
in ``_keras_history = (layer, node_index, tensor_index)``. This module is the only place of the
library that reads those attributes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keras_inspect.graph.reader import GraphReader
from keras_inspect.hooks.specs import hookimpl

from .detection import is_tf_keras_object, require_tf_keras, tf
from .wrappers import pre_activation


def _graph_model(layer: Any) -> Any | None:
    """``layer`` itself if it is a tf_keras graph network (Functional, built Sequential)."""
    if getattr(layer, "_is_graph_network", False) and hasattr(layer, "_nodes_by_depth"):
        return layer
    return None


class TfKerasGraphReader(GraphReader):
    """The :class:`~keras_inspect.GraphReader` of Keras 2 (``tf_keras``)."""

    name = "tf_keras"
    input_call = "tf_keras.Input(shape)"

    def is_layer(self, obj: Any) -> bool:
        return is_tf_keras_object(obj) and isinstance(obj, require_tf_keras().layers.Layer)

    def is_model(self, obj: Any) -> bool:
        return is_tf_keras_object(obj) and isinstance(obj, require_tf_keras().Model)

    def is_input_layer(self, layer: Any) -> bool:
        return is_tf_keras_object(layer) and isinstance(layer, require_tf_keras().layers.InputLayer)

    def graph_of(self, layer: Any) -> Any | None:
        return _graph_model(layer)

    def graph_layers(self, graph: Any) -> Sequence[Any]:
        return graph.layers  # a Functional's layers are its graph's, in topological order

    def nodes_by_depth(self, graph: Any) -> Mapping[int, Sequence[Any]]:
        return graph._nodes_by_depth

    def node_layer(self, node: Any) -> Any | None:
        return None if node.is_input else node.layer

    def node_tensors(self, node: Any, link: str) -> list[Any]:
        if link == "input":
            return list(node.keras_inputs)
        return list(tf().nest.flatten(node.outputs))

    def fill_in(self, node: Any, tensors: Mapping[int, Any]) -> tuple[tuple, dict]:
        flat = list(node._flat_arguments)
        for _key, position in node._keras_inputs_ids_and_indices:
            flat[position] = tensors[id(flat[position])]
        args, kwarg_values = tf().nest.pack_sequence_as(
            (node.call_args, list(node.call_kwargs.values())), flat
        )
        return tuple(args), dict(zip(node.call_kwargs.keys(), kwarg_values))

    def calls(self, layer: Any, container: Any) -> Sequence[Any]:
        nodes = list(getattr(layer, "_inbound_nodes", []))
        graph = _graph_model(container)
        if graph is None:
            return nodes
        # The key tf_keras's Functional uses in `_network_nodes` for the i-th call of a layer.
        members = graph._network_nodes
        return [node for i, node in enumerate(nodes) if f"{layer.name}_ib-{i}" in members]

    def tensor_origin(self, tensor: Any) -> tuple[Any, Any] | None:
        history = getattr(tensor, "_keras_history", None)
        layer = getattr(history, "layer", None)
        if layer is None or not is_tf_keras_object(layer):
            return None
        nodes = layer._inbound_nodes
        if not 0 <= history.node_index < len(nodes):
            return None
        return layer, nodes[history.node_index]

    def flatten(self, structure: Any) -> list[Any]:
        return list(tf().nest.flatten(structure))

    def pack(self, structure: Any, flat: Sequence[Any]) -> Any:
        return tf().nest.pack_sequence_as(structure, list(flat))

    def input_structure(self, model: Any) -> Any:
        structure = getattr(model, "_nested_inputs", None)
        if structure is None:
            structure = model.inputs
        if isinstance(structure, (list, tuple)) and len(structure) == 1:
            # A model built on a one-element input list is called with the bare tensor too.
            return structure[0]
        return structure

    def output_structure(self, model: Any) -> Any | None:
        return getattr(model, "_nested_outputs", None)

    def build_model(self, inputs: Any, outputs: Any, name: str | None = None) -> Any:
        return require_tf_keras().Model(inputs=inputs, outputs=outputs, name=name)

    def new_input(self, like: Any, name: str) -> Any:
        return require_tf_keras().Input(shape=tuple(like.shape[1:]), dtype=like.dtype, name=name)

    def backend(self) -> str:
        return "tensorflow"

    def layers_module(self) -> Any:
        return require_tf_keras().layers

    def pre_activation_layer(self, layer: Any, name: str) -> Any:
        return pre_activation(layer, name)


READER = TfKerasGraphReader()


@hookimpl
def keras_inspect_model_flavour(model: Any) -> TfKerasGraphReader | None:
    if is_tf_keras_object(model):
        return READER
    return None
