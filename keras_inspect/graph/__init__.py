"""Reading a model: above the plugin system (the flavour hook chooses a model's reader), below the
answers and the signal engine, which take an inspected model, never the raw one.

- ``reader``: ``GraphReader``, the base class each flavour of Keras subclasses; re-tracing a graph.
- ``fused_activations``: finding a fused activation, running a layer without it.
- ``walk``: ``LayerEntry`` and the graph-order walk.
- ``inspected``: ``InspectedModel``, a model resolved once, the owner of every per-model cache.
- ``endpoints``: ``Endpoint``, and locating a signal in its graph.
"""
