"""The signal engine and its features: one re-trace of a model in which each requested signal is
recorded or edited where it is produced.

- ``requests``: ``Request``, a signal to read and how to edit it.
- ``engine``: ``trace`` (from a graph's own inputs) and ``cut`` (from replacement values alone).
- ``substitutes``: nodes computed another way (a split activation, an intercepted layer).
- ``building``: building once per model and request; a failed build leaves nothing behind.
- ``edited``: the edited model behind gradients and interventions.
- ``stages``: what no edit reaches, run outside the autodiff.
- ``autodiff``: one backward pass with the running backend's own autodiff.
- ``expose``, ``split``, ``gradients``: the features, thin callers of the engine.
"""
