"""The signal engine: one re-trace of a model in which each requested signal is recorded or
edited (added to, or replaced) where it is produced; the features in :mod:`keras_inspect.signals`
are its callers.

- ``requests``: ``Request``, a signal to read and how to edit it.
- ``trace``: ``trace`` (from a graph's own inputs) and ``cut`` (from replacement values alone).
- ``substitutes``: nodes computed another way (a split activation, an intercepted layer).
- ``building``: building once per model and request; a failed build leaves nothing behind.
- ``edited``: the edited model behind gradients and interventions.
- ``stages``: what no edit reaches, run outside the autodiff.
"""
