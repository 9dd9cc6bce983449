"""The features built on the signal engine (:mod:`keras_inspect.engine`).

- ``expose``: ``expose`` and ``endpoints``, models and tensors for signals anywhere.
- ``split``: ``split``, a model cut in two at a signal.
- ``gradients``: ``gradients``, a score's gradient at any signals, in one pass.
- ``interventions``: ``intervene``, a run with signals replaced or offset.
- ``edits``: the values of edits, given ones and zeros shaped for the inputs at hand.
- ``scores``: which score a gradient is taken of (the target).
- ``autodiff``: one backward pass with the running backend's own autodiff.
- ``token_geometry``: which tokens of a vision transformer's signal are patches, on which grid.
"""
