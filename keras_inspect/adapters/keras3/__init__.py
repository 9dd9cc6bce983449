"""The Keras 3 flavour.

- ``graph``: the Keras 3 graph reader (the only module reading Keras 3's private graph records).
- ``wrappers``: the wrapper layers exposed models contain (``PreActivation``, ``Intercepted``).
"""
