"""The framework: hooks, plugin manager, adapter registry, graph walk, endpoints, expose."""
