"""Splitting a fused activation off a Keras 3 layer, without copying or changing the layer.

``Conv2D(activation="relu")`` computes ``relu(conv(x) + b)`` in one call, so the signal before
the ReLU (which FullGrad's completeness needs) has no tensor of its own. :class:`PreActivation`
wraps the layer, shares its weights, and computes its call with the activation left out; a
``keras.layers.Activation`` after it restores the layer's output exactly (same operations in the
same order). The wrapper is registered as ``keras_inspect>PreActivation`` so a model that contains
it saves and loads (``import keras_inspect`` before ``keras.models.load_model``).
"""

from __future__ import annotations

import inspect
from typing import Any

import keras

#: Layer types whose ``call`` applies ``self.activation`` as its very last operation (checked
#: against the Keras 3 sources), so leaving it out yields the pre-activation signal.
SPLITTABLE_TYPES: tuple[type, ...] = tuple(
    getattr(keras.layers, name)
    for name in (
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
    if hasattr(keras.layers, name)
)


def is_splittable(layer: Any) -> bool:
    """Whether the fused activation of ``layer`` can be split off exactly."""
    return isinstance(layer, SPLITTABLE_TYPES) and getattr(layer, "quantization_mode", None) is None


class _WithoutActivation:
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


def _takes_training(layer: Any) -> bool:
    return "training" in inspect.signature(type(layer).call).parameters


def call_without_activation(layer: Any, *args: Any, **kwargs: Any) -> Any:
    """``layer.call(*args, **kwargs)`` with its fused activation left out."""
    return type(layer).call(_WithoutActivation(layer), *args, **kwargs)


@keras.saving.register_keras_serializable(package="keras_inspect")
class PreActivation(keras.layers.Wrapper):
    """Computes the wrapped layer without its fused activation, sharing its weights.

    ``Activation(layer.activation)(PreActivation(layer)(x))`` equals ``layer(x)``.
    """

    def __init__(self, layer: Any, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)

    def call(self, inputs: Any, training: Any = None) -> Any:
        if training is not None and _takes_training(self.layer):
            return call_without_activation(self.layer, inputs, training=training)
        return call_without_activation(self.layer, inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.layer.compute_output_shape(input_shape)


def split_call(layer: Any, args: tuple, kwargs: dict, tag: str = "") -> tuple[Any, Any]:
    """Call ``layer`` symbolically as a pre-activation part and its activation.

    Returns ``(pre_activation, output)``; ``output`` is numerically the layer's own output.
    ``tag`` keeps the names unique when one layer is split at several calls.
    """
    pre = PreActivation(layer, name=f"{layer.name}_pre_activation{tag}")(*args, **kwargs)
    return pre, activation_layer(layer, tag)(pre)


def activation_layer(layer: Any, tag: str = "") -> Any:
    """A new ``Activation`` layer applying ``layer``'s fused activation, in its dtype policy."""
    return keras.layers.Activation(
        layer.activation, name=f"{layer.name}_activation{tag}", dtype=layer.dtype_policy
    )
