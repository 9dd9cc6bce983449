"""The plugin system: hook specifications and markers, the plugin manager, hook calls attributed
to plugins, plugin loading, and the layer registry behind ``register_layer``.

It knows pluggy, attrs and the hook contracts, nothing of models: reading a model
(:mod:`keras_inspect.graph`) asks it questions, never the reverse.
"""
