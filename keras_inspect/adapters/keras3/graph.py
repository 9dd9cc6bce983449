"""How keras-inspect reads Keras 3 models: the Keras 3 graph reader.

Keras 3 keeps a functional graph as ``Node`` objects: ``layer._inbound_nodes[i]`` records one
call, a ``Functional`` (or the ``_functional`` of a built ``Sequential``) lists its nodes by depth
and their keys in ``_nodes``. This module is the only place of the library that reads those
private attributes for Keras 3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras

from keras_inspect.graph.reader import GraphReader, NewName
from keras_inspect.hooks.specs import hookimpl

from .wrappers import PreActivation, interceptor


def _graph_model(layer: Any) -> Any | None:
    """The Functional that holds ``layer``'s graph, if it has one."""
    if isinstance(layer, keras.Sequential):
        return getattr(layer, "_functional", None)
    if getattr(layer, "_nodes_by_depth", None) is not None and hasattr(layer, "_operations"):
        return layer
    return None


class Keras3GraphReader(GraphReader):
    """The :class:`~keras_inspect.GraphReader` of Keras 3."""

    name = "keras3"

    def is_layer(self, obj: Any) -> bool:
        return isinstance(obj, keras.layers.Layer)

    def is_model(self, obj: Any) -> bool:
        return isinstance(obj, keras.Model)

    def is_input_layer(self, layer: Any) -> bool:
        return isinstance(layer, keras.layers.InputLayer)

    def graph_of(self, layer: Any) -> Any | None:
        return _graph_model(layer)

    def graph_layers(self, graph: Any) -> Sequence[Any]:
        return graph._operations

    def nodes_by_depth(self, graph: Any) -> Mapping[int, Sequence[Any]]:
        return graph._nodes_by_depth

    def node_layer(self, node: Any) -> Any | None:
        return None if node.is_input else node.operation

    def node_tensors(self, node: Any, link: str) -> list[Any]:
        return list(node.input_tensors if link == "input" else node.outputs)

    def fill_in(self, node: Any, tensors: Mapping[int, Any]) -> tuple[tuple, dict]:
        args, kwargs = node.arguments.fill_in(tensors)
        return tuple(args), dict(kwargs)

    def calls(self, layer: Any, container: Any) -> Sequence[Any]:
        nodes = list(getattr(layer, "_inbound_nodes", []))
        graph = _graph_model(container)
        if graph is None:
            return nodes
        # A Functional records its calls by key, the key Keras itself builds from the operation.
        members, key = graph._nodes, id(layer)
        return [node for i, node in enumerate(nodes) if f"{key}_ib-{i}" in members]

    def tensor_origin(self, tensor: Any) -> tuple[Any, Any] | None:
        history = getattr(tensor, "_keras_history", None)
        if history is None or history.operation is None:
            return None
        operation = history.operation
        nodes = operation._inbound_nodes
        if not 0 <= history.node_index < len(nodes):
            return None
        return operation, nodes[history.node_index]

    def flatten(self, structure: Any) -> list[Any]:
        return list(keras.tree.flatten(structure))

    def pack(self, structure: Any, flat: Sequence[Any]) -> Any:
        return keras.tree.pack_sequence_as(structure, list(flat))

    def input_structure(self, model: Any) -> Any:
        structure = _graph_model(model)._inputs_struct
        if isinstance(structure, (list, tuple)) and len(structure) == 1:
            # A Sequential (and many applications) keep one input in a list, but are called
            # with the bare tensor: a new model takes the bare tensor too.
            return structure[0]
        return structure

    def output_structure(self, model: Any) -> Any | None:
        return getattr(_graph_model(model), "_outputs_struct", None)

    def build_model(self, inputs: Any, outputs: Any, name: str | None = None) -> Any:
        return keras.Model(inputs=inputs, outputs=outputs, name=name)

    def new_input(self, like: Any, name: str) -> Any:
        return keras.Input(shape=tuple(like.shape[1:]), dtype=like.dtype, name=name)

    def layers_module(self) -> Any:
        return keras.layers

    def pre_activation_layer(self, layer: Any, name: str) -> Any:
        return PreActivation(layer, name=name)

    def intercept(self, layer: Any, targets: Sequence[dict], new_name: NewName) -> Any:
        return interceptor(layer, targets, new_name)


READER = Keras3GraphReader()


@hookimpl(trylast=True)
def keras_inspect_model_flavour(model: Any) -> Keras3GraphReader | None:
    if isinstance(model, keras.layers.Layer):
        return READER
    return None
