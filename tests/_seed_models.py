"""Small models for the seed-parity tests, built with a Keras module passed in.

Each builder takes ``tf_keras`` or ``keras`` (Keras 3), so that one topology can be built in both
and the seed's layer order compared with keras-inspect's in each. Weights are given fixed random
values where a test computes with them.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

#: The seed's nine functions, by name.
SEED_FUNCTIONS = (
    "get_nested_layer",
    "get_logits_layer",
    "get_global_pooling_layer",
    "find_layer_with",
    "endpoints",
    "expose",
    "gather_units",
    "layers_with_biases",
    "biases",
)


def randomise(model: Any, seed: int = 0) -> Any:
    """Fixed random weights (variances positive): values that make wrong folds visible."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "variance" in variable.name:
            value = rng.uniform(0.5, 2.0, size=shape)
        else:
            value = rng.normal(0.0, 0.5, size=shape)
        variable.assign(value.astype("float32"))  # every model here keeps float32 weights
    return model


def guide_nested(keras: ModuleType) -> Any:
    """The guide's example: a Sequential backbone (c1, c2, gmp) inside a Sequential, then head."""
    layers = keras.layers
    backbone = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            layers.Conv2D(4, 3, name="c1"),
            layers.Conv2D(6, 3, name="c2"),
            layers.GlobalMaxPooling2D(name="gmp"),
        ],
        name="backbone",
    )
    model = keras.Sequential([keras.Input((16, 16, 3)), backbone, layers.Dense(2, name="head")])
    return randomise(model)


def fused_model(keras: ModuleType) -> Any:
    """A convolution with a fused ReLU, then Flatten (a pooling layer, as in the seed)."""
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(2, 3, activation="relu", name="conv"),
            layers.Flatten(name="flat"),
            layers.Dense(2, name="dense"),
        ]
    )
    return randomise(model, seed=1)


def tuple_model(keras: ModuleType) -> Any:
    """conv -> gap -> logits -> probs, as in the seed's ``expose(m, "gap", ("logits", "probs"))``."""
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(2, 3, name="conv"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(3, name="logits"),
            layers.Softmax(name="probs"),
        ]
    )
    return randomise(model, seed=2)


def shared_between_models(keras: ModuleType) -> tuple[Any, Any]:
    """A Dense called by ``first``, then by ``later`` (a model built afterwards)."""
    shared = keras.layers.Dense(3, name="shared")
    a = keras.Input((3,))
    first = keras.Model(a, shared(a))
    b = keras.Input((3,))
    later = keras.Model(b, shared(keras.layers.Dense(3, name="before_shared")(b)))
    return first, later


def randomised_batch_norm(shape: tuple[int, ...], **options: Any) -> Any:
    """A built tf_keras BatchNormalization with non-trivial statistics."""
    import tf_keras

    model = tf_keras.Sequential([tf_keras.Input(shape), tf_keras.layers.BatchNormalization(**options)])
    return randomise(model, seed=3).layers[0]


# -- topologies in which to compare the seed's layer order with keras-inspect's -------------------


def _skip(keras: ModuleType) -> Any:
    layers, inputs = keras.layers, keras.Input((4,))
    skip = layers.Dense(4, name="skip")(inputs)
    x = layers.Dense(4, name="x2")(layers.Dense(4, name="x1")(inputs))
    return keras.Model(inputs, layers.Add(name="add")([skip, x]))


def _created_late_called_early(keras: ModuleType) -> Any:
    late, early = keras.layers.Dense(3, name="late"), keras.layers.Dense(3, name="early")
    inputs = keras.Input((3,))
    return keras.Model(inputs, late(early(inputs)))


def _shared(keras: ModuleType) -> Any:
    shared, inputs = keras.layers.Dense(3, name="shared"), keras.Input((3,))
    return keras.Model(inputs, shared(keras.layers.Dense(3, name="mid")(shared(inputs))))


def _nested_functional(keras: ModuleType) -> Any:
    layers, inputs = keras.layers, keras.Input((3,))
    x = layers.Dense(3, name="in_b")(layers.Dense(3, name="in_a")(inputs))
    inner = keras.Model(inputs, x, name="inner")
    outer_inputs = keras.Input((3,))
    x = layers.Dense(3, name="post")(inner(layers.Dense(3, name="pre")(outer_inputs)))
    return keras.Model(outer_inputs, x)


def _nested_called_twice(keras: ModuleType) -> Any:
    layers, inputs = keras.layers, keras.Input((3,))
    x = layers.Dense(3, name="t_b")(layers.Dense(3, name="t_a")(inputs))
    tower = keras.Model(inputs, x, name="tower")
    outer_inputs = keras.Input((3,))
    return keras.Model(outer_inputs, tower(tower(outer_inputs)))


def _three_levels(keras: ModuleType) -> Any:
    layers = keras.layers
    core = keras.Sequential(
        [keras.Input((4,)), layers.Dense(4, name="core_a"), layers.Dense(4, name="core_b")], name="core"
    )
    inputs = keras.Input((4,))
    x = layers.Dense(4, name="mid_b")(core(layers.Dense(4, name="mid_a")(inputs)))
    mid = keras.Model(inputs, x, name="mid")
    return keras.Sequential([keras.Input((4,)), layers.Dense(4, name="top_a"), mid], name="top")


def _subclassed_block(keras: ModuleType) -> Any:
    layers = keras.layers

    class Block(layers.Layer):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.first = layers.Dense(3, name="blk_first")
            self.second = layers.Dense(3, name="blk_second")

        def call(self, x: Any) -> Any:
            return self.second(self.first(x))

    inputs = keras.Input((3,))
    return keras.Model(inputs, layers.Dense(2, name="post")(Block(name="block")(inputs)))


def _bidirectional(keras: ModuleType) -> Any:
    layers, inputs = keras.layers, keras.Input((5, 3))
    recurrent = layers.Bidirectional(layers.LSTM(4, name="lstm"), name="bidi")(inputs)
    return keras.Model(inputs, layers.Dense(2, name="post")(recurrent))


TOPOLOGIES: dict[str, Callable[[ModuleType], Any]] = {
    "skip connection": _skip,
    "created late, called early": _created_late_called_early,
    "shared layer": _shared,
    "nested functional": _nested_functional,
    "nested model called twice": _nested_called_twice,
    "three levels": _three_levels,
    "subclassed layer holding two": _subclassed_block,
    "bidirectional": _bidirectional,
    "guide's example": guide_nested,
}
