"""Answers about a model's layers.

- ``search``: ``walk``, ``find_layer_with``, ``layers_with_role``, strategies and the role cache.
- ``descriptors``: every form of endpoint descriptor the public API accepts, as an ``Endpoint``.
- ``biases``: ``layers_with_biases`` and ``biases``, checked to broadcast to each layer's output.
- ``bias_math``: the bias arithmetic (batch-norm folding, ``align_to_axes``), for both flavours.
- ``target_layer``: ``get_target_layer``, the spatial map that feeds the classifier head; the
  default logits and feature map of ``expose`` and ``gradients``.
- ``units``: ``gather_units``, per-sample selection of units.
"""
