"""Built-in adapter: the spatial roles of a layer, ``"feature_map"`` and ``"patch_embedding"``.

``"feature_map"`` holds for a layer whose output is a spatial map (rank >= 3) that is not
statically 1x1; with the default ``"reverse"`` search it finds the last such layer in graph
order. Which spatial map feeds the classifier head is a property of the model, not of a layer:
:func:`keras_inspect.get_target_layer` answers that by walking the graph from the logits.

``"patch_embedding"`` holds for a 2D convolution whose kernel equals its strides (each output
position sees one patch of the image, no overlap): how a vision transformer cuts an image into
tokens. Its strides are the patch size (see :func:`keras_inspect.token_geometry`).
"""

from __future__ import annotations

from typing import Any

from keras_inspect.adapters.stock import stock_layers_of
from keras_inspect.answers.target_layer import is_spatial
from keras_inspect.hooks.specs import hookimpl


def _output_shape(layer: Any) -> tuple | None:
    try:
        output = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(output, (list, tuple)):
        return None
    return tuple(output.shape)


def _patchifies(layer: Any) -> bool:
    strides = tuple(getattr(layer, "strides", ()) or ())
    kernel = tuple(getattr(layer, "kernel_size", ()) or ())
    transposed = hasattr(layer, "output_padding")  # tf_keras derives Conv2DTranspose from Conv2D
    return len(strides) == 2 and strides == kernel and max(strides) > 1 and not transposed


@hookimpl
def keras_inspect_classify_layer(layer: Any, role: str) -> bool | None:
    if role not in ("feature_map", "patch_embedding"):
        return None
    stock = stock_layers_of(layer)
    if stock is None:
        return None
    if role == "patch_embedding":
        return True if isinstance(layer, stock.conv2d) and _patchifies(layer) else None
    if isinstance(layer, (stock.model, stock.input_layer)):
        return False
    shape = _output_shape(layer)
    return shape is not None and is_spatial(shape, layer)
