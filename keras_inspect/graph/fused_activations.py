"""Fused activations: finding them, and running a layer with its activation left out.

``Conv2D(activation="relu")`` computes ``relu(conv(x) + b)`` in one call, so the signal before
the ReLU (which FullGrad's completeness needs) has no tensor of its own. The stock layers listed
below apply ``self.activation`` as the very last operation of their ``call``; running that
``call`` on a read-only view of the layer whose ``activation`` is ``None`` gives the
pre-activation signal, with nothing copied and the layer never modified. Both Keras flavours use
this; each wraps it in its own layer class.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

#: Stock layers whose ``call`` applies ``self.activation`` as its very last operation (checked
#: against the sources of Keras 3 and tf_keras), so running that ``call`` with the activation
#: left out gives the pre-activation signal.
SPLITTABLE_NAMES: tuple[str, ...] = (
    "Dense",
    "EinsumDense",
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
)

_LINEAR_NAMES = frozenset({"linear", "identity"})


def fused_activation(layer: Any, layers_module: Any) -> Callable[[Any], Any] | None:
    """The non-linear activation fused into ``layer`` (``Dense(activation="relu")``), or
    ``None``; ``layers_module`` is the flavour's ``layers`` module."""
    if isinstance(layer, layers_module.Activation):
        return None  # the activation is the layer itself, not fused into it
    activation = getattr(layer, "activation", None)
    if not callable(activation):
        return None
    if getattr(activation, "__name__", None) in _LINEAR_NAMES:
        return None
    return activation


def stock_class(layer: Any, layers_module: Any) -> type | None:
    """The splittable stock class (:data:`SPLITTABLE_NAMES` in ``layers_module``) whose own
    ``call`` ``layer`` runs, or ``None``.

    A subclass that overrides ``call`` computes something else (``super().call(x) * 2``):
    leaving its activation out of the stock ``call`` would give a wrong signal, so it is not
    splittable; nor is a quantized layer.
    """
    splittable = {getattr(layers_module, name, None) for name in SPLITTABLE_NAMES}
    # The most specific stock class: tf_keras's Conv2DTranspose derives from Conv2D.
    stock = next((cls for cls in type(layer).__mro__ if cls in splittable), None)
    if stock is None or getattr(layer, "quantization_mode", None) is not None:
        return None
    if inspect.getattr_static(type(layer), "call") is not inspect.getattr_static(stock, "call"):
        return None
    return stock


class WithoutActivation:
    """A read-only view of a layer in which ``activation`` is ``None``.

    The layer's own ``call`` is run with this view as ``self``: every attribute (kernel, bias,
    strides, bound helper methods) comes from the real layer, so nothing is copied and the
    user's layer is never modified, even for a moment (other threads keep seeing it intact).
    """

    __slots__ = ("_layer",)

    def __init__(self, layer: Any) -> None:
        object.__setattr__(self, "_layer", layer)

    def __getattr__(self, name: str) -> Any:
        if name == "activation":
            return None
        return getattr(object.__getattribute__(self, "_layer"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot set {name!r}: this is a read-only view of a layer")


def call_without_activation(layer: Any, *args: Any, **kwargs: Any) -> Any:
    """``layer.call(*args, **kwargs)`` with its fused activation left out."""
    return type(layer).call(WithoutActivation(layer), *args, **kwargs)
