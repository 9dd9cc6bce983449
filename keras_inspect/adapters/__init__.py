"""Built-in adapters: the reference behaviour for stock Keras layers, as ordinary plugins, listed
in ``keras_inspect.hooks.loading.DEFAULT_PLUGINS`` and registered first, so any third-party
plugin, registered after them, is asked before them.

- ``stock``: each flavour's stock layer classes by family, and its tensor operations.
- ``linear``, ``normalization``, ``pooling``, ``feature_map``, ``embedding``, ``fallback``: one
  family of rules each, written once for Keras 3 and tf_keras over ``stock``.
- ``builtin_roles``: the role names known without any plugin; ``strategies``: the ``"reverse"``
  and ``"forward"`` searches.
- ``keras3``, ``tf_keras``: one package per flavour, with its graph reader and wrapper layers.
"""
