"""Token geometry: which tokens of a vision transformer's signal are patches, and their grid.

A vision transformer cuts an image into patches (its ``patch_embedding``: a convolution whose
kernel equals its strides, or a layer a plugin gives that role, with a ``patch_size``), one token
per patch in row-major order, and puts prefix tokens before them (a class token, distillation
and register tokens). For a token signal of ``T`` tokens and an image of ``H x W`` pixels cut
into ``p x q`` patches, the grid is ``(H // p, W // q)`` and the first ``T - rows * cols`` tokens
are prefix tokens; non-square images give non-square grids. A stage that merges patches (Swin)
halves the grid, which the count of tokens tells.

:meth:`TokenGeometry.to_spatial` turns token values, or their gradients, into a spatial map
``(batch, rows, cols, channels)`` for Grad-CAM and any method written for feature maps.
"""

from __future__ import annotations

from typing import Any

import attrs
from keras import ops

from keras_inspect.answers.descriptors import to_endpoint
from keras_inspect.answers.search import find_entry
from keras_inspect.answers.target_layer import default_feature_map
from keras_inspect.autograph import plain_python
from keras_inspect.engine.building import connected
from keras_inspect.errors import NoMatchingLayerError, describe, shorten
from keras_inspect.graph.endpoints import Endpoint
from keras_inspect.graph.inspected import InspectedModel, inspect_model


@attrs.frozen(kw_only=True)
class TokenGeometry:
    """How the tokens of one signal lie on the image.

    :ivar signal: the token signal (an :class:`~keras_inspect.Endpoint`).
    :ivar tokens: how many tokens the signal has.
    :ivar prefix_tokens: how many come before the patch tokens (class, distillation, register).
    :ivar grid: ``(rows, cols)`` of the patch tokens, in row-major order after the prefix.
    :ivar patch_size: the pixels each patch token covers, ``(height, width)``.
    :ivar image_shape: the image's ``(height, width)``.
    """

    signal: Endpoint
    tokens: int
    prefix_tokens: int
    grid: tuple[int, int]
    patch_size: tuple[int, int]
    image_shape: tuple[int, int]

    def to_spatial(self, values: Any) -> Any:
        """Token values (or gradients) ``(batch, tokens, channels)`` as the patch tokens' map
        ``(batch, rows, cols, channels)``, prefix tokens left out."""
        shape = tuple(getattr(values, "shape", ()))
        if len(shape) != 3:
            raise ValueError(
                f"to_spatial takes token values of shape (batch, tokens, channels); received "
                f"{describe(values)}."
            )
        if isinstance(shape[1], int) and shape[1] != self.tokens:
            raise ValueError(
                f"The values hold {shape[1]} tokens; signal {shorten(self.signal.name)} has "
                f"{self.tokens} ({self.prefix_tokens} prefix + {self.grid[0]}x{self.grid[1]})."
            )
        patches = ops.convert_to_tensor(values)[:, self.prefix_tokens :, :]
        return ops.reshape(patches, (-1, self.grid[0], self.grid[1], shape[2]))

    def prefix(self, values: Any) -> Any:
        """The prefix tokens' values ``(batch, prefix_tokens, channels)``."""
        return ops.convert_to_tensor(values)[:, : self.prefix_tokens, :]


@plain_python
def token_geometry(model: Any, signal: Any = None, *, image_shape: Any = None) -> TokenGeometry:
    """The token geometry of ``signal`` (default: the default feature map, the tokens a vision
    transformer's classifier reduces).

    :param image_shape: ``(height, width)`` of the images, when the model accepts several sizes
        (default: the model's image input, which must then have a fixed size).
    :raises NoMatchingLayerError: when the model has no patch embedding (it is no vision
        transformer); ``ValueError`` when the signal's tokens do not fit the patch grid.
    """
    view = inspect_model(model)
    endpoint = default_feature_map(view) if signal is None else to_endpoint(view, signal)
    patching = _patch_embedding(view)
    patch = _patch_size(patching)
    image = _image_shape(view, patching, image_shape)
    tokens = _tokens(view, endpoint)
    rows, cols = image[0] // patch[0], image[1] // patch[1]
    for merged in range(6):  # patch-merging stages halve the grid
        r, c = max(rows >> merged, 1), max(cols >> merged, 1)
        if 0 <= tokens - r * c < r * c:
            return TokenGeometry(
                signal=endpoint,
                tokens=tokens,
                prefix_tokens=tokens - r * c,
                grid=(r, c),
                patch_size=(image[0] // r, image[1] // c) if merged else patch,
                image_shape=image,
            )
    raise ValueError(
        f"Signal {shorten(endpoint.name)} of model {view.name!r} has {tokens} tokens, which do "
        f"not fit a {rows}x{cols} grid of {patch[0]}x{patch[1]} patches of a {image[0]}x"
        f"{image[1]} image (after prefix tokens); it is not a sequence of patch tokens."
    )


def _patch_embedding(view: InspectedModel) -> Any:
    try:
        return find_entry(view, role="patch_embedding", strategy="forward").layer
    except NoMatchingLayerError as error:
        raise NoMatchingLayerError(
            f"{error} Token geometry needs the layer that cuts the image into patches (a "
            "convolution whose kernel equals its strides); a plugin gives a custom one the "
            "role 'patch_embedding' (with a patch_size attribute)."
        ) from None


def _patch_size(layer: Any) -> tuple[int, int]:
    size = getattr(layer, "patch_size", None) or getattr(layer, "strides", None)
    if isinstance(size, int):
        size = (size, size)
    return int(size[0]), int(size[1])


def _image_shape(view: InspectedModel, patching: Any, given: Any) -> tuple[int, int]:
    if given is not None:
        if not (isinstance(given, (tuple, list)) and len(given) >= 2):
            raise TypeError(f"image_shape must be (height, width); received {describe(given)}.")
        return int(given[0]), int(given[1])
    first = getattr(patching, "data_format", "channels_last") == "channels_first"
    for tensor in view.reader.inputs(view.model):
        shape = tuple(tensor.shape)
        if len(shape) != 4:
            continue
        height, width = shape[2:] if first else shape[1:3]
        if isinstance(height, int) and isinstance(width, int):
            return height, width
        raise ValueError(
            f"Model {view.name!r} takes images of any size; pass image_shape=(height, width) of "
            "the images at hand."
        )
    raise ValueError(f"Model {view.name!r} has no image input (rank 4); pass image_shape.")


def _tokens(view: InspectedModel, endpoint: Endpoint) -> int:
    (tensors,) = connected(view, [endpoint])
    shape = tuple(tensors[0].shape) if len(tensors) == 1 else ()
    if len(shape) != 3 or not isinstance(shape[1], int):
        raise ValueError(
            f"Signal {shorten(endpoint.name)} of model {view.name!r} is no token sequence of a "
            f"known length (its shape is {shape or 'unknown'}); name a signal of shape (batch, "
            "tokens, channels)."
        )
    return shape[1]
