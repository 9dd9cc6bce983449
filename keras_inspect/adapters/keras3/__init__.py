"""The Keras 3 flavour.

- ``graph``: the Keras 3 graph reader (the only module reading Keras 3's private graph records).
- ``wrappers``: ``PreActivation``, the wrapper layer of a split activation.
- ``interception``: ``Intercepted``, reaching layers inside subclassed layers without modifying
  them.
"""
