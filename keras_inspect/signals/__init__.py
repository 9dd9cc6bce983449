"""The signal engine and its features: one re-trace of a model in which each requested signal is
recorded or edited, and ``expose``, ``split`` and ``gradients`` built on it."""
