"""The interface between the framework and one flavour of Keras (Keras 3, Keras 2 ``tf_keras``).

The framework's algorithms (graph walk, endpoint resolution, ``expose``) are written once against
this protocol; each flavour adapter implements it over its own Keras internals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

#: ``substitute(args, kwargs) -> outputs`` replaces one operation while a graph is re-traced.
Substitute = Callable[[tuple, dict], Any]


class ModelFlavour(Protocol):
    """What the framework needs to know about one flavour of Keras models and layers."""

    name: str

    def is_layer(self, obj: Any) -> bool:
        """Whether ``obj`` is a layer of this flavour (models are layers)."""

    def has_graph(self, layer: Any) -> bool:
        """Whether ``layer`` is a model with a static graph (Functional, built Sequential)."""

    def children(self, layer: Any) -> Sequence[Any]:
        """Direct sub-layers: in graph order for graph models, in tracking order otherwise."""

    def calls(self, layer: Any, container: Any) -> Sequence[Any]:
        """The calls (nodes) of ``layer`` recorded in ``container``'s graph, oldest first."""

    def call_tensors(self, call: Any, link: str) -> list[Any]:
        """The flat list of symbolic input (``link="input"``) or output tensors of a call."""

    def tensor_origin(self, tensor: Any) -> tuple[Any, Any] | None:
        """``(layer, call)`` that produced a symbolic tensor, or ``None``."""

    def inputs(self, model: Any) -> list[Any]:
        """The flat list of a graph model's symbolic inputs."""

    def outputs(self, model: Any) -> list[Any]:
        """The flat list of a graph model's symbolic outputs."""

    def input_structure(self, model: Any) -> Any:
        """A graph model's symbolic inputs, structured as the model takes them."""

    def call_model(self, model: Any, args: tuple, kwargs: dict) -> Any:
        """Call a graph model symbolically with the arguments recorded for another call."""

    def outputs_of_call(self, result: Any) -> list[Any]:
        """Flatten what calling a model returned into a list of tensors."""

    def pack_outputs(self, model: Any, flat: Sequence[Any]) -> Any:
        """Arrange a flat list of tensors the way ``model`` structures its outputs."""

    def build_model(self, inputs: Any, outputs: Any, name: str | None = None) -> Any:
        """A new functional model; must not call any layer."""

    def retrace(
        self,
        model: Any,
        inputs: Sequence[Any],
        substitutes: Mapping[int, Substitute],
        seeds: Mapping[int, Any] | None = None,
    ) -> dict[int, Any]:
        """Re-trace ``model``'s graph on new symbolic ``inputs``.

        Each node whose ``id`` (that call only) or whose operation's ``id`` (every call) is in
        ``substitutes`` is computed by that callable instead of by calling the operation.
        ``seeds`` maps the ``id`` of original symbolic tensors to replacements known up front
        (used to cut a graph: pass ``inputs=[]`` and seed the cut); nodes whose inputs are
        neither given nor computable are skipped. A node whose inputs are all unchanged keeps
        its original outputs (no new call). Returns a mapping from ``id`` of each original
        symbolic tensor reached to its new counterpart.
        """

    def activation_of(self, layer: Any) -> Callable[[Any], Any] | None:
        """The fused activation of ``layer`` if it has a non-linear one, else ``None``."""

    # Optional: a flavour without the methods below answers the requests that need them with
    # an EndpointError: ``split_activation``/``apply_activation`` for ``link="pre_activation"``
    # on a fused activation, ``new_input`` for ``split``, ``intercept`` for signals inside
    # subclassed layers.

    def split_activation(
        self, layer: Any, args: tuple, kwargs: dict, tag: str = ""
    ) -> tuple[Any, Any]:
        """Call ``layer`` symbolically split at its fused activation: ``(pre, output)``.

        ``output`` must equal the layer's own output numerically and the new layers must share
        the layer's weights and be serializable. ``tag`` is a suffix that keeps the new layers'
        names unique when one layer is split at several calls. Raise ``EndpointError`` if the
        layer cannot be split.
        """

    def apply_activation(self, layer: Any, tensor: Any, tag: str = "") -> Any:
        """Apply ``layer``'s fused activation to a symbolic tensor through a new layer."""

    def new_input(self, like: Any) -> Any:
        """A new symbolic model input with the shape (batch excluded) and dtype of ``like``."""

    def intercept(
        self, layer: Any, targets: Sequence[dict]
    ) -> Callable[[tuple, dict], tuple[Any, list[list[Any]]]]:
        """A callable that calls ``layer`` (no graph) symbolically, also returning signals of
        its sub-layers.

        ``targets`` are dicts with ``path`` (names below ``layer``), ``link`` and ``node``
        (which call while ``layer`` runs once). The callable takes ``(args, kwargs)`` of one
        recorded call and returns ``(outputs, signals)``: ``outputs`` structured as
        ``layer``'s own, ``signals`` one list of tensors per target. It may be called once per
        call of ``layer`` in the graph being re-traced.
        """
