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
    ) -> dict[int, Any]:
        """Re-trace ``model``'s graph on new symbolic ``inputs``.

        Each node whose operation's ``id`` is in ``substitutes`` is computed by that callable
        instead of by calling the operation. Returns a mapping from ``id`` of each original
        symbolic tensor to its new counterpart.
        """

    def activation_of(self, layer: Any) -> Callable[[Any], Any] | None:
        """The fused activation of ``layer`` if it has a non-linear one, else ``None``."""
