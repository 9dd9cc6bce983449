"""How keras-inspect reads Keras 3 models: the Keras 3 flavour adapter.

Keras 3 keeps a functional graph as ``Node`` objects: ``layer._inbound_nodes[i]`` records one call,
a ``Functional`` (or the ``_functional`` of a built ``Sequential``) lists its nodes by depth. This
module is the only place of the library that reads those private attributes for Keras 3.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from keras_inspect import hookimpl
from keras_inspect.framework.errors import EndpointError
from keras_inspect.framework.flavour import Substitute
from keras_inspect.framework.intercept import interceptor
from keras_inspect.framework.preactivation import activation_layer, is_splittable, split_call

_LINEAR_NAMES = frozenset({"linear", "identity", None})


def _graph_model(layer: Any) -> Any | None:
    """The Functional that holds ``layer``'s graph, if it has one."""
    if isinstance(layer, keras.Sequential):
        return getattr(layer, "_functional", None)
    if getattr(layer, "_nodes_by_depth", None) is not None and hasattr(layer, "_operations"):
        return layer
    return None


class Keras3Flavour:
    """The :class:`~keras_inspect.framework.flavour.ModelFlavour` of Keras 3."""

    name = "keras3"

    def __init__(self) -> None:
        # Per graph: operation id -> its nodes in that graph. Graphs are immutable once built.
        self._calls_cache: weakref.WeakKeyDictionary[Any, dict[int, list[Any]]] = (
            weakref.WeakKeyDictionary()
        )

    def is_layer(self, obj: Any) -> bool:
        return isinstance(obj, keras.layers.Layer)

    def has_graph(self, layer: Any) -> bool:
        return _graph_model(layer) is not None

    def children(self, layer: Any) -> Sequence[Any]:
        if getattr(layer, "_layers", None) == []:
            return ()  # a leaf (most layers); a graph model always tracks its layers
        graph = _graph_model(layer)
        if graph is not None:
            return [
                op
                for op in graph._operations
                if isinstance(op, keras.layers.Layer)
                and not isinstance(op, keras.layers.InputLayer)
            ]
        if isinstance(layer, keras.Sequential):
            return list(layer.layers)
        flatten = getattr(layer, "_flatten_layers", None)
        if flatten is None:
            return []
        return list(flatten(include_self=False, recursive=False))

    def _calls_by_operation(self, graph: Any) -> dict[int, list[Any]]:
        table = self._calls_cache.get(graph)
        if table is None:
            table = {}
            for depth in sorted(graph._nodes_by_depth, reverse=True):
                for node in graph._nodes_by_depth[depth]:
                    if node.operation is not None:
                        table.setdefault(id(node.operation), []).append(node)
            for nodes in table.values():
                # Oldest call first, as recorded on the operation itself.
                order = {id(n): i for i, n in enumerate(nodes[0].operation._inbound_nodes)}
                nodes.sort(key=lambda n: order.get(id(n), 0))
            self._calls_cache[graph] = table
        return table

    def calls(self, layer: Any, container: Any) -> Sequence[Any]:
        graph = _graph_model(container)
        if graph is None:
            return list(getattr(layer, "_inbound_nodes", []))
        return list(self._calls_by_operation(graph).get(id(layer), []))

    def call_tensors(self, call: Any, link: str) -> list[Any]:
        if link == "input":
            return list(call.input_tensors)
        return list(call.output_tensors)

    def tensor_origin(self, tensor: Any) -> tuple[Any, Any] | None:
        history = getattr(tensor, "_keras_history", None)
        if history is None or history.operation is None:
            return None
        operation = history.operation
        nodes = operation._inbound_nodes
        if not 0 <= history.node_index < len(nodes):
            return None
        return operation, nodes[history.node_index]

    def inputs(self, model: Any) -> list[Any]:
        return list(keras.tree.flatten(model.inputs))

    def outputs(self, model: Any) -> list[Any]:
        return list(keras.tree.flatten(model.outputs))

    def input_structure(self, model: Any) -> Any:
        structure = _graph_model(model)._inputs_struct
        if isinstance(structure, (list, tuple)) and len(structure) == 1:
            # A Sequential (and many applications) keep one input in a list, but are called
            # with the bare tensor: a new model takes the bare tensor too.
            return structure[0]
        return structure

    def call_model(self, model: Any, args: tuple, kwargs: dict) -> Any:
        # Re-pack the caller's tensors the way `model` declares its inputs, so a model built on
        # a one-element input list is called with that list (no structure warning).
        flat = keras.tree.flatten(args[0] if len(args) == 1 else list(args))
        structure = self.input_structure(model)
        return model(keras.tree.pack_sequence_as(structure, flat), **kwargs)

    def outputs_of_call(self, result: Any) -> list[Any]:
        return list(keras.tree.flatten(result))

    def pack_outputs(self, model: Any, flat: Sequence[Any]) -> Any:
        graph = _graph_model(model)
        structure = getattr(graph, "_outputs_struct", None)
        if structure is None:
            return list(flat)
        return keras.tree.pack_sequence_as(structure, list(flat))

    def build_model(self, inputs: Any, outputs: Any, name: str | None = None) -> Any:
        return keras.Model(inputs=inputs, outputs=outputs, name=name)

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
        tensors: dict[int, Any] = {}
        for old, new in zip(graph._inputs, inputs):
            tensors[id(old)] = new
        tensors.update(seeds or {})
        for depth in sorted(graph._nodes_by_depth, reverse=True):
            for node in graph._nodes_by_depth[depth]:
                if node.operation is None or node.is_input:
                    continue
                if any(id(t) not in tensors for t in node.input_tensors) or (
                    seeds and all(id(t) in tensors for t in node.outputs)
                ):
                    continue
                substitute = substitutes.get(id(node), substitutes.get(id(node.operation)))
                if substitute is None and all(tensors[id(t)] is t for t in node.input_tensors):
                    # Upstream of every substitution nothing changed: keep the original
                    # tensors instead of calling the layer again (no new node on it).
                    for old in node.outputs:
                        tensors[id(old)] = old
                    continue
                args, kwargs = node.arguments.fill_in(tensors)
                if substitute is not None:
                    result = substitute(args, kwargs)
                else:
                    result = node.operation(*args, **kwargs)
                for old, new in zip(node.outputs, keras.tree.flatten(result)):
                    tensors[id(old)] = new
        return tensors

    def activation_of(self, layer: Any) -> Any | None:
        if isinstance(layer, keras.layers.Activation):
            return None  # the activation is the layer itself, not fused into it
        activation = getattr(layer, "activation", None)
        if activation is None or not callable(activation):
            return None
        name = getattr(activation, "__name__", None)
        if name in _LINEAR_NAMES:
            return None
        return activation

    def split_activation(
        self, layer: Any, args: tuple, kwargs: dict, tag: str = ""
    ) -> tuple[Any, Any]:
        if not is_splittable(layer):
            raise EndpointError(
                f"Cannot split the fused activation of {layer.name!r} ({type(layer).__name__}): "
                "only layers whose call ends with their activation (Dense, EinsumDense, "
                "convolutions) are supported. Expose its output instead."
            )
        return split_call(layer, args, kwargs, tag)

    def apply_activation(self, layer: Any, tensor: Any, tag: str = "") -> Any:
        return activation_layer(layer, tag)(tensor)

    def new_input(self, like: Any) -> Any:
        return keras.Input(shape=tuple(like.shape[1:]), dtype=like.dtype)

    def intercept(self, layer: Any, targets: Sequence[dict]) -> Any:
        return interceptor(layer, targets)


FLAVOUR = Keras3Flavour()


@hookimpl(trylast=True)
def keras_inspect_model_flavour(model: Any) -> Keras3Flavour | None:
    if isinstance(model, keras.layers.Layer):
        return FLAVOUR
    return None
