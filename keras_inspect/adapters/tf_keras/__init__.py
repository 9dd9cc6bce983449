"""The Keras 2 (``tf_keras``) flavour. Its layers' roles and biases come from the shared rules
(``adapters/stock.py`` lists its stock classes); nothing here imports tf_keras until a tf_keras
object is met.

- ``graph``: the tf_keras graph reader.
- ``wrappers``: the tf_keras ``PreActivation`` wrapper layer.
- ``detection``: telling tf_keras objects apart without importing tf_keras.
"""
