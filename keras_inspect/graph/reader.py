"""The base class of every graph reader: one subclass per flavour of Keras (Keras 3, ``tf_keras``).

Keras 3 and Keras 2 record a functional graph the same way in substance (layers, the nodes of
their calls, symbolic tensors pointing back at the call that produced them) under different
names. The algorithms that keras-inspect runs over a graph are written once here: re-tracing a
graph with some calls replaced, and splitting a fused activation off a layer. A flavour only
says how to read its own objects (the abstract methods), in the way Keras writes its global
pooling layers once in a base class and each concrete layer in a few lines.

A reader holds no state: everything cached about a model belongs to its
:class:`~keras_inspect.graph.inspected.InspectedModel`.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import keras

from keras_inspect.errors import EndpointError, name_of
from keras_inspect.graph.fused_activations import SPLITTABLE_NAMES, fused_activation, stock_class

#: ``substitute(args, kwargs) -> outputs`` computes one call instead of its layer while a graph
#: is re-traced.
Substitute = Callable[[tuple, dict], Any]
#: ``new_name(base) -> name``: a layer name not yet used in the model being built.
NewName = Callable[[str], str]


#: What the models being built read of the user's layers (``(layer, attribute, value)``): a model
#: built once stays right only while these hold, so its cache entry is checked against them.
_reads: contextvars.ContextVar[list[tuple[Any, str, Any]] | None] = contextvars.ContextVar(
    "keras_inspect_reads", default=None
)


@contextlib.contextmanager
def recording_reads() -> Iterator[list[tuple[Any, str, Any]]]:
    """Inside the block, what a build reads of layers (see :func:`read`) is listed; the list is
    also added to that of an enclosing block."""
    outer = _reads.get()
    found: list[tuple[Any, str, Any]] = []
    token = _reads.set(found)
    try:
        yield found
    finally:
        _reads.reset(token)
        if outer is not None:
            outer.extend(found)


def read(layer: Any, attribute: str) -> Any:
    """``getattr(layer, attribute, None)``, listed as something the model being built depends on."""
    value = getattr(layer, attribute, None)
    found = _reads.get()
    if found is not None:
        found.append((layer, attribute, value))
    return value


def still_true(reads: Sequence[tuple[Any, str, Any]]) -> bool:
    """Whether every read listed still gives the same object; adds them to the enclosing list."""
    found = _reads.get()
    if found is not None:
        found.extend(reads)
    return all(getattr(layer, attribute, None) is value for layer, attribute, value in reads)


#: Held while keras-inspect adds symbolic calls to existing layers (or intercepts their calls).
#: Keras numbers a layer's calls by appending to its list of nodes, which two threads tracing
#: the same layer at once would interleave; layers may be shared by several models, so this
#: lock is one for the process, not one per model.
graph_lock = threading.RLock()


class GraphReader(abc.ABC):
    """How keras-inspect reads the models and layers of one flavour of Keras.

    Subclass it (implementing the abstract methods) and return an instance from the
    ``keras_inspect_model_flavour`` hook to teach keras-inspect a new kind of model.
    """

    #: A short name of the flavour (``"keras3"``, ``"tf_keras"``), shown by ``summary``.
    name: ClassVar[str] = "?"
    #: How a user of this flavour builds a model input, for advice in error messages.
    input_call: ClassVar[str] = "keras.Input(shape)"

    # -- objects ----------------------------------------------------------------------------

    @abc.abstractmethod
    def is_layer(self, obj: Any) -> bool:
        """Whether ``obj`` is a layer of this flavour (models are layers)."""

    @abc.abstractmethod
    def is_model(self, obj: Any) -> bool:
        """Whether ``obj`` is a model of this flavour (what the public functions inspect)."""

    @abc.abstractmethod
    def is_input_layer(self, layer: Any) -> bool:
        """Whether ``layer`` is the input layer of a graph (it computes nothing)."""

    @abc.abstractmethod
    def graph_of(self, layer: Any) -> Any | None:
        """The object holding ``layer``'s functional graph (nodes by depth), or ``None``."""

    @abc.abstractmethod
    def graph_layers(self, graph: Any) -> Sequence[Any]:
        """The operations of a graph in topological order (input layers included)."""

    # -- nodes (calls) ------------------------------------------------------------------------

    @abc.abstractmethod
    def nodes_by_depth(self, graph: Any) -> Mapping[int, Sequence[Any]]:
        """The nodes of ``graph`` grouped by depth (the deepest are computed first)."""

    @abc.abstractmethod
    def node_layer(self, node: Any) -> Any | None:
        """The layer (or operation) a node calls; ``None`` for the node of a graph input."""

    @abc.abstractmethod
    def node_tensors(self, node: Any, link: str) -> list[Any]:
        """The flat symbolic inputs (``link="input"``) or outputs of a node."""

    @abc.abstractmethod
    def fill_in(self, node: Any, tensors: Mapping[int, Any]) -> tuple[tuple, dict]:
        """The node's call arguments with each symbolic input replaced by ``tensors[id(it)]``."""

    @abc.abstractmethod
    def calls(self, layer: Any, container: Any) -> Sequence[Any]:
        """The calls (nodes) of ``layer`` recorded in ``container``'s graph, oldest first."""

    @abc.abstractmethod
    def tensor_origin(self, tensor: Any) -> tuple[Any, Any] | None:
        """``(layer, node)`` that produced a symbolic tensor, or ``None``."""

    # -- structures and new models ------------------------------------------------------------

    @abc.abstractmethod
    def flatten(self, structure: Any) -> list[Any]:
        """The leaves of a nested structure of tensors, in order."""

    @abc.abstractmethod
    def pack(self, structure: Any, flat: Sequence[Any]) -> Any:
        """``flat`` arranged as ``structure``."""

    @abc.abstractmethod
    def input_structure(self, model: Any) -> Any:
        """A graph model's symbolic inputs, structured as the model takes them."""

    @abc.abstractmethod
    def output_structure(self, model: Any) -> Any | None:
        """A graph model's symbolic outputs as it structures them (``None``: a flat list)."""

    @abc.abstractmethod
    def build_model(self, inputs: Any, outputs: Any, name: str | None = None) -> Any:
        """A new functional model; it must not call any layer."""

    @abc.abstractmethod
    def new_input(self, like: Any, name: str) -> Any:
        """A new symbolic model input named ``name``, with the shape (batch excluded) and dtype
        of ``like``. (Named by the caller: Keras' automatic input names can repeat the model's
        own in a new graph context, and names must be unique within a model.)"""

    # -- fused activations --------------------------------------------------------------------

    @abc.abstractmethod
    def layers_module(self) -> Any:
        """The module of this flavour's stock layers (``keras.layers``, ``tf_keras.layers``)."""

    @abc.abstractmethod
    def pre_activation_layer(self, layer: Any, name: str) -> Any:
        """A new layer computing ``layer`` without its fused activation (weights shared)."""

    # -- shared behaviour ----------------------------------------------------------------------

    def children(self, layer: Any) -> list[Any]:
        """Direct sub-layers: in graph order for graph models, in tracking order otherwise."""
        if getattr(layer, "_layers", None) == []:
            return []  # a leaf (most layers, in both flavours): the walk meets hundreds of them
        graph = self.graph_of(layer)
        found = self.graph_layers(graph) if graph is not None else self.tracked_layers(layer)
        return [c for c in found if self.is_layer(c) and not self.is_input_layer(c)]

    def tracked_layers(self, layer: Any) -> Sequence[Any]:
        """The sub-layers of a layer without a graph, in tracking order (Keras' own list of
        the layers it tracks, in both flavours)."""
        flatten = getattr(layer, "_flatten_layers", None)
        return () if flatten is None else list(flatten(include_self=False, recursive=False))

    def backend(self) -> str:
        """The library this flavour's models compute with (``keras.backend.backend()`` for
        Keras 3; a tf_keras model always computes with TensorFlow)."""
        return keras.backend.backend()

    def has_graph(self, layer: Any) -> bool:
        """Whether ``layer`` is a model with a static graph (Functional, built Sequential)."""
        return self.graph_of(layer) is not None

    def call_tensors(self, call: Any, link: str) -> list[Any]:
        """The flat symbolic input or output tensors of a call (``link``: input or output)."""
        return self.node_tensors(call, "input" if link == "input" else "output")

    def inputs(self, model: Any) -> list[Any]:
        """The flat list of a graph model's symbolic inputs."""
        return self.flatten(model.inputs)

    def outputs(self, model: Any) -> list[Any]:
        """The flat list of a graph model's symbolic outputs."""
        return self.flatten(model.outputs)

    def pack_outputs(self, model: Any, flat: Sequence[Any]) -> Any:
        """Arrange a flat list of tensors the way ``model`` structures its outputs."""
        structure = self.output_structure(model)
        return list(flat) if structure is None else self.pack(structure, list(flat))

    def output_shapes(self, layer: Any) -> list[tuple[Any, ...]] | None:
        """The symbolic shapes of the outputs of ``layer``'s last call, if it was called."""
        nodes = getattr(layer, "_inbound_nodes", None) or ()
        if not nodes:
            return None
        try:
            return [tuple(t.shape) for t in self.node_tensors(nodes[-1], "output")]
        except Exception:
            return None  # an unusual record: the shape is just unknown

    @contextlib.contextmanager
    def undo_calls_on_failure(self, layers: Iterable[Any]) -> Iterator[None]:
        """Inside the block, symbolic calls add nodes to ``layers``; if the block fails, the
        nodes it added are removed again, so a failed request leaves the model as it was."""
        lists = [
            nodes
            for layer in layers
            for nodes in (
                getattr(layer, "_inbound_nodes", None),
                getattr(layer, "_outbound_nodes", None),
            )
            if isinstance(nodes, list)
        ]
        sizes = [len(nodes) for nodes in lists]
        try:
            yield
        except BaseException:
            for nodes, size in zip(lists, sizes):
                del nodes[size:]
            raise

    def retrace(
        self,
        model: Any,
        inputs: Sequence[Any],
        substitutes: Mapping[int, Substitute],
        seeds: Mapping[int, Any] | None = None,
        edits: Mapping[int, Callable[[Any], Any]] | None = None,
        before: dict[int, Any] | None = None,
    ) -> dict[int, Any]:
        """Re-trace ``model``'s graph on new symbolic ``inputs``.

        Each node whose ``id`` (that call only) or whose layer's ``id`` (every call) is in
        ``substitutes`` is computed by that callable instead of by calling the layer. ``seeds``
        maps the ``id`` of original symbolic tensors to replacements known up front (to cut a
        graph: pass ``inputs=[]`` and seed the cut); nodes whose inputs are neither given nor
        computable are skipped. ``edits`` maps the ``id`` of original tensors to a function
        that changes their new counterpart where it is produced (everything downstream sees the
        result; the value before the change is written to ``before``). A node whose inputs are
        all unchanged keeps its original outputs (no new call, no new node on the layer).
        Returns a mapping from the ``id`` of each original symbolic tensor reached to its new
        counterpart.
        """
        graph = self.graph_of(model)
        if graph is None:
            raise TypeError(f"{name_of(model)!r} has no functional graph to re-trace.")
        tensors: dict[int, Any] = {}

        def assign(old: Any, new: Any) -> None:
            edit = edits.get(id(old)) if edits else None
            if edit is not None:
                if before is not None:
                    before[id(old)] = new
                new = edit(new)
            tensors[id(old)] = new

        for old, new in zip(self.inputs(model), inputs):
            assign(old, new)
        tensors.update(seeds or {})
        layered = self.nodes_by_depth(graph)
        for depth in sorted(layered, reverse=True):
            for node in layered[depth]:
                layer = self.node_layer(node)
                if layer is None:
                    continue
                given = self.node_tensors(node, "input")
                outputs = self.node_tensors(node, "output")
                if any(id(t) not in tensors for t in given) or (
                    seeds and all(id(t) in tensors for t in outputs)
                ):
                    continue
                substitute = substitutes.get(id(node), substitutes.get(id(layer)))
                if substitute is None and all(tensors[id(t)] is t for t in given):
                    results: Sequence[Any] = outputs
                else:
                    args, kwargs = self.fill_in(node, tensors)
                    called = (
                        layer(*args, **kwargs) if substitute is None else substitute(args, kwargs)
                    )
                    results = self.flatten(called)
                for old, new in zip(outputs, results):
                    assign(old, new)
        return tensors

    def add(self, tensor: Any, other: Any, name: str) -> Any:
        """``tensor + other`` symbolically, through a new layer named ``name`` (Keras names an
        anonymous addition ``add``, which a loaded model may already use)."""
        return self.layers_module().Add(name=name, dtype=tensor.dtype)([tensor, other])

    def activation_of(self, layer: Any) -> Callable[[Any], Any] | None:
        """The fused activation of ``layer`` if it has a non-linear one, else ``None`` (a read
        the model being built depends on: a user may swap a softmax for a linear activation)."""
        read(layer, "activation")
        return fused_activation(layer, self.layers_module())

    def stock_class(self, layer: Any) -> type | None:
        """The splittable stock class whose own ``call`` ``layer`` runs (see :func:`stock_class`)."""
        return stock_class(layer, self.layers_module())

    def pre_activation(self, layer: Any, args: tuple, kwargs: dict, name: str) -> Any:
        """Call ``layer`` symbolically without its fused activation, through a new wrapper layer
        named ``name`` that shares the layer's weights and is serializable."""
        if self.stock_class(layer) is None:
            raise EndpointError(
                f"Cannot split the fused activation of {name_of(layer)!r} "
                f"({type(layer).__name__}): only stock layers whose call ends with their "
                f"activation ({', '.join(SPLITTABLE_NAMES[:4])}, ... convolutions) can be split, "
                "and not subclasses that override call. Expose its output instead, or build "
                "the layer with a separate Activation layer."
            )
        return self.pre_activation_layer(layer, name)(*args, **kwargs)

    def apply_activation(self, layer: Any, tensor: Any, name: str) -> Any:
        """Apply ``layer``'s fused activation to a symbolic tensor through a new layer."""
        activation = self.layers_module().Activation(
            read(layer, "activation"), name=name, dtype=layer.dtype_policy
        )
        return activation(tensor)

    def intercept(
        self, layer: Any, targets: Sequence[dict], new_name: NewName
    ) -> Callable[[tuple, dict], tuple[Any, list[list[Any]]]]:
        """A callable that calls ``layer`` (no graph) and also returns signals of its sub-layers.

        ``targets`` are dicts with ``path`` (names below ``layer``), ``link``, ``node`` (which
        call while ``layer`` runs once) and ``edit``: ``None`` to record the signal, ``"add"``
        or ``"replace"`` to also change it where it is produced by the symbolic tensor
        ``value``. The callable takes ``(args, kwargs)`` of one recorded call and returns
        ``(outputs, signals)``: ``outputs`` structured as ``layer``'s own, ``signals`` one list
        of tensors per target (before its edit). New layers are named with ``new_name(base)``.
        A flavour that cannot intercept calls keeps this default, which explains that.
        """
        raise EndpointError(
            f"{name_of(layer)!r} is a subclassed layer (no graph) and the {self.name} flavour "
            "cannot intercept calls inside it; expose its output instead."
        )
