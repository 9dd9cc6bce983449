"""Image-retrieval layers for Keras, and the keras-inspect plugin that knows them."""

from keras_inspect_retrieval.layers import FrozenBatchNormalization, GeMPooling2D

__version__ = "0.2.0"

__all__ = ["FrozenBatchNormalization", "GeMPooling2D", "__version__"]
