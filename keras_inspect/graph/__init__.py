"""Reading a model: the graph reader base class each flavour of Keras subclasses, the graph-order
walk, the inspected-model view that owns every per-model cache, and endpoint descriptors.

Above the plugin system (the flavour hook chooses a model's reader); below the answers and the
signal engine, which take an inspected model, never the raw one.
"""
