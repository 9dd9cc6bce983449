"""Runs keras-inspect's public functions inside ``tf.function`` and reports what AutoGraph logged.

Run by test_seed_tracing.py in a fresh interpreter (AutoGraph converts each function once per
process and logs a failed conversion then, so a process that has used keras-inspect in a traced
function before could hide a message): ``python _traced_probe.py PHASE [PHASE ...]``.

The plugin manager is loaded first, eagerly. Each phase, in order, searches a new model inside a
``tf.function``, then eagerly:

- ``keras3``, ``tf_keras``: a model of that flavour;
- ``first-use``: a Keras 3 model, after dropping the plugin manager, so that the first call
  into keras-inspect loads it while tracing (as when an explanation method wrapped in
  ``tf.function`` is the first user).

A phase reports only what it adds (a conversion that failed in an earlier phase may not be
logged again). Prints one JSON object on its last line: per phase, the messages logged while
tracing and, per function, whether the traced result equals the eager one; then the messages
of a control function that AutoGraph cannot convert.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from typing import Any

import numpy as np
import tensorflow as tf



class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


def loop_with_else() -> int:
    """AutoGraph cannot convert a for/else: proves that its message would be captured."""
    total = 0
    for step in range(3):
        total += step
    else:
        total += 10
    return total


def build(module: Any) -> Any:
    layers = module.layers
    inputs = module.Input((8, 8, 3), name="image")
    x = layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return module.Model(inputs, layers.Dense(3, name="logits")(x), name="probe")


def searches(model: Any, module: Any) -> dict[str, Any]:
    """Every public function that returns layers, tensors or models (not numbers)."""
    import keras_inspect as ki
    from keras_inspect import inspection

    return {
        "get_nested_layer": inspection.get_nested_layer(model, "conv"),
        "get_logits_layer": inspection.get_logits_layer(model),
        "get_global_pooling_layer": inspection.get_global_pooling_layer(model),
        "find_layer_with": inspection.find_layer_with(model, klass=module.layers.Conv2D),
        "find_layer_with(role)": inspection.find_layer_with(model, role="normalization"),
        "layers_with_biases": inspection.layers_with_biases(model, return_biases=False),
        "layers_with_role": ki.layers_with_role(model, "pooling"),
        "get_target_layer": ki.get_target_layer(model),
        "endpoints": inspection.endpoints(model, ["conv", {"name": "logits", "link": "input"}]),
        "expose": inspection.expose(model),
        "split": ki.split(model, "gap"),
    }


def numbers(model: Any, images: Any, indices: Any) -> list[Any]:
    from keras_inspect import inspection

    picked = inspection.gather_units(model(images, training=False), indices)
    return [picked, *inspection.biases([model.get_layer(n) for n in ("conv", "bn", "logits")])]


def _close(a: Any, b: Any) -> bool:
    return bool(np.allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6))


def compare(traced: dict[str, Any], eager: dict[str, Any], model: Any, x: np.ndarray) -> dict[str, bool]:
    same = {}
    for name, value in eager.items():
        if name == "expose":
            same[name] = all(_close(a, b) for a, b in zip(traced[name](x), value(x)))
        elif name == "split":
            (body, head), (eager_body, eager_head) = traced[name], value
            same[name] = _close(body(x), eager_body(x)) and _close(head(body(x)), model(x))
        elif isinstance(value, list):
            same[name] = len(value) == len(traced[name]) and all(
                a is b for a, b in zip(traced[name], value)
            )
        else:
            same[name] = traced[name] is value
    return same


def phase(name: str, recorder: Recorder) -> dict[str, Any]:
    import keras_inspect

    if name == "first-use":
        keras_inspect.reset_plugin_manager()
    module = importlib.import_module("tf_keras" if name == "tf_keras" else "keras")
    model = build(module)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    indices = np.asarray([[0], [2]])
    traced: dict[str, Any] = {}

    @tf.function
    def step(images: Any, chosen: Any) -> list[Any]:
        traced.update(searches(model, module))
        return numbers(model, images, chosen)

    recorder.messages.clear()
    traced_numbers = step(tf.constant(x), tf.constant(indices))
    during = list(recorder.messages)
    same = compare(traced, searches(model, module), model, x)
    eager_numbers = numbers(model, tf.constant(x), tf.constant(indices))
    same["gather_units"] = _close(traced_numbers[0], eager_numbers[0])
    same["biases"] = len(traced_numbers) == len(eager_numbers) == 4 and all(
        _close(a, b) for a, b in zip(traced_numbers[1:], eager_numbers[1:])
    )
    return {"during": during, "same": same}


def main(*names: str) -> None:
    recorder = Recorder()
    for logger in ("tensorflow", "absl"):
        logging.getLogger(logger).addHandler(recorder)
    import keras_inspect

    keras_inspect.plugin_manager()
    phases = {}
    for name in names:
        print(f"---- {name} ----", file=sys.stderr, flush=True)  # cuts stderr into phases
        phases[name] = phase(name, recorder)
    print("---- control ----", file=sys.stderr, flush=True)
    recorder.messages.clear()
    assert tf.function(loop_with_else)() == 13
    print(json.dumps({"phases": phases, "control": recorder.messages}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
