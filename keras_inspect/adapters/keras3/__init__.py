"""The Keras 3 flavour: its graph reader and the wrapper layers it adds to exposed models."""
