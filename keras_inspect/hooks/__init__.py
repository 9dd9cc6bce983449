"""The plugin system: it knows pluggy, attrs and the hook contracts, nothing of models (reading a
model, :mod:`keras_inspect.graph`, asks it questions, never the reverse).

- ``specs``: the hook specifications and their contracts; the ``hookimpl``/``hookspec`` markers.
- ``calls``: calling hooks through pluggy's own caller, naming the plugin that answered or failed.
- ``manager``: ``InspectPluginManager``, one typed method per hook, and the caches of one set of
  registrations; ``checks``: what a plugin's answer must be (bounded iterables, real tensors).
- ``registry``: the layer registry, the plugin behind ``register_layer``.
- ``register_layer``: ``register_layer`` and ``unregister_layer``.
- ``loading``: the built-in plugins, entry points, and ``new_plugin_manager`` (the one loader).
- ``current``: ``plugin_manager``, ``using_plugin_manager``, ``reset_plugin_manager``.
"""
