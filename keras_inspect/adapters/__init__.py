"""Built-in adapters: the reference behaviour for stock Keras layers, as ordinary plugins.

They are registered first (in this order), so any third-party plugin, registered after them, is
asked before them.
"""

DEFAULT_PLUGINS: tuple[str, ...] = (
    "keras_inspect.adapters.keras3_graph",
    "keras_inspect.adapters.builtin_roles",
    "keras_inspect.adapters.strategies",
    "keras_inspect.adapters.linear",
    "keras_inspect.adapters.normalization",
    "keras_inspect.adapters.pooling",
    "keras_inspect.adapters.feature_map",
    "keras_inspect.adapters.fallback",
    "keras_inspect.adapters.tf_keras_graph",
    "keras_inspect.adapters.tf_keras_layers",
)
