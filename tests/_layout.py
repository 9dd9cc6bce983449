"""A layer's output on zeros, on every machine, channels_first convolutions included.

TensorFlow runs NCHW convolutions on CPU only through oneDNN, which it enables only on CPUs with
AVX-512-class features (and never with ``TF_ENABLE_ONEDNN_OPTS=0``), and even then not in every
dtype (float16 has no NCHW kernel); elsewhere a ``channels_first`` ``Conv2D`` fails with "only
supports the NHWC tensor format on the CPU". The
bias tests compare keras-inspect's bias with the layer's own output on zeros, which must stay
computable there. Where the backend lacks the capability, the output of a ``channels_first``
layer is computed by its ``channels_last`` twin (same configuration, same weights) on the
transposed input and transposed back: the layer's own arithmetic in the layout the CPU runs,
still returned in the ``channels_first`` layout the bias must broadcast against.
"""

from __future__ import annotations

import functools
from typing import Any

import keras
import numpy as np


@functools.cache
def channels_first_convolutions_run(dtype: str) -> bool:
    """Whether this backend, on this CPU, runs ``channels_first`` convolutions (and their
    transposes) in ``dtype``: even with oneDNN, TensorFlow has NCHW kernels for some dtypes only."""
    x = np.zeros((1, 1, 1, 1), dtype)
    kernel = np.ones((1, 1, 1, 1), dtype)
    try:
        keras.ops.conv(x, kernel, data_format="channels_first")
        keras.ops.conv_transpose(x, kernel, 1, data_format="channels_first")
    except Exception as error:
        # TensorFlow names the layout it is missing ("only supports NHWC"); any other failure,
        # or one on another backend, is a real error and must surface.
        if keras.backend.backend() != "tensorflow" or "NHWC" not in str(error):
            raise
        return False
    return True


def channels_last_twin(layer: Any, shape: tuple[int, ...]) -> Any:
    """A ``channels_last`` copy of the ``channels_first`` ``layer``, built, with its weights."""
    if not layer.built:
        layer.build(shape)
    config = {**layer.get_config(), "data_format": "channels_last"}
    config.pop("name", None)
    twin = type(layer).from_config(config)
    twin.build(_channels_last_shape(shape))
    # Convolution weights do not depend on the data format; set_weights rejects any that would.
    twin.set_weights(layer.get_weights())
    return twin


def _channels_last_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], *shape[2:], shape[1])


def output_on_zeros(
    layer: Any, shape: tuple[int, ...], dtype: str = "float32", **call_arguments: Any
) -> Any:
    """``layer`` called on zeros of ``shape``, or the same numbers from its channels_last twin."""
    runs = channels_first_convolutions_run(keras.backend.standardize_dtype(dtype))
    if getattr(layer, "data_format", None) != "channels_first" or runs:
        return layer(keras.ops.zeros(shape, dtype=dtype), **call_arguments)
    twin = channels_last_twin(layer, shape)
    output = twin(keras.ops.zeros(_channels_last_shape(shape), dtype=dtype), **call_arguments)
    rank = len(output.shape)
    return keras.ops.transpose(output, (0, rank - 1, *range(1, rank - 1)))
