"""The Keras 2 (``tf_keras``) flavour: its graph reader, its layers' roles and biases, and the
wrapper layer it adds to exposed models. Nothing here imports tf_keras until a tf_keras object
is met."""
