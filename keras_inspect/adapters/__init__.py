"""Built-in adapters: the reference behaviour for stock Keras layers, as ordinary plugins.

One module per family of Keras 3 layers (``linear``, ``normalization``, ``pooling``,
``feature_map``, ``fallback``), the built-in roles and search strategies, and one package per
flavour of Keras (``keras3``, ``tf_keras``) with its graph reader and wrapper layers. They are
listed in ``keras_inspect.framework.plugin_loader.DEFAULT_PLUGINS`` and registered first, so any
third-party plugin, registered after them, is asked before them.
"""
