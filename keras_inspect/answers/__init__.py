"""Answers about a model's layers: role searches and strategies, biases and their arithmetic,
the Grad-CAM target layer, and per-sample unit selection."""
