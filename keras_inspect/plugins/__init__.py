"""Optional in-tree plugins, each enabled by its entry point and using only the public hooks.

- ``keras_hub``: keras-hub's own layer types (normalization variants, poolers, reversible
  embeddings and heads).
"""
