"""Hostile input, round three, on the signal features: no silent answers.

Each test is a finding of the round (docs/robustness.md lists them): a cache that outlived an
edited activation, targets that wrapped around inside a compiler, scores that carry no gradient,
logits of one score per example, a logits signal of two tensors, a plugin's graph reader that
fails, inputs a backend would refuse from deep inside, and a failed request that left calls on the
user's layers. (Threads: test_concurrent_interception.py; colliding names: test_engine.py.)
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_inspect as ki
from conftest import to_numpy

BACKEND = keras.backend.backend()
UNITS, BATCH = 5, 3


def _dense() -> keras.Model:
    keras.utils.set_random_seed(2)
    x = keras.Input((4,), name="x")
    return keras.Model(x, keras.layers.Dense(UNITS, name="logits")(x), name="dense_model")


def _compiled(function: Any) -> Any:
    if BACKEND == "jax":
        import jax

        return jax.jit(function)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    return None


def test_a_swapped_activation_is_seen_by_the_next_call() -> None:
    x = keras.Input((4,))
    model = keras.Model(x, keras.layers.Dense(3, activation="softmax", name="out")(x))
    data = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    ki.gradients(model, data, model.inputs[0], target=0)
    ki.expose(model, arguments=[{"name": "out", "link": "pre_activation"}])
    # The common Grad-CAM idiom: remove the softmax before explaining.
    model.get_layer("out").activation = keras.activations.linear
    result = ki.gradients(model, data, model.inputs[0], target=0)
    np.testing.assert_allclose(to_numpy(result.outputs), to_numpy(model(data)), atol=1e-6)
    exposed = ki.expose(model, arguments=[{"name": "out", "link": "pre_activation"}])(data)
    np.testing.assert_allclose(to_numpy(exposed[0]), to_numpy(model(data)), atol=1e-6)


# -- targets: the answer of a reference computation, or ValueError/TypeError --------------------

def _reference(model: keras.Model, target: Any) -> np.ndarray:
    """``d logits[i, t_i] / d x``: row ``t_i`` of the kernel; NaN where ``t_i`` is outside. An
    array of shape ``(batch, n)`` gives ``(batch, n, 4)``."""
    kernel = to_numpy(model.get_layer("logits").kernel)
    units = np.asarray(target)
    picked = np.broadcast_to(units, (BATCH,) + units.shape[1:] if units.ndim else (BATCH,))
    rows = [
        np.stack([kernel[:, t] if -UNITS <= t < UNITS else np.full(4, np.nan) for t in np.atleast_1d(row)])
        for row in picked
    ]
    reference = np.stack(rows).astype("float32")
    return reference if units.ndim == 2 else reference[:, 0]


ARRAY_DTYPES = ("int32", "int64", "uint8", "float32", "bool")
SHAPES = ((BATCH,), (BATCH, 1), (BATCH, 2), (1,), (), (BATCH, 1, 1))


def _array_target(draw: Any) -> np.ndarray:
    shape = draw(st.sampled_from(SHAPES))
    dtype = draw(st.sampled_from(ARRAY_DTYPES))
    values = draw(st.lists(st.integers(-9, 9), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return np.asarray(values).reshape(shape).astype(dtype)


targets = st.one_of(
    st.integers(-12, 12),
    st.composite(_array_target)(),
    st.sampled_from(["float", "int", "bool", "numpy", "matrix", "scalar"]),
)


def _callable(kind: str) -> Any:
    return {
        "float": lambda logits: logits[:, 1],
        "int": lambda logits: keras.ops.argmax(logits, axis=-1),
        "bool": lambda logits: logits[:, 0] > 0,
        "numpy": lambda logits: np.zeros(BATCH, "float32"),
        "matrix": lambda logits: logits,
        "scalar": lambda logits: keras.ops.sum(logits),
    }[kind]


def _expected(model: keras.Model, target: Any, traced: bool) -> Any:
    """The reference answer, or the error type a call must raise."""
    if isinstance(target, str):
        return _reference(model, 1) if target == "float" else (TypeError, ValueError)
    if isinstance(target, int):
        return _reference(model, target) if -UNITS <= target < UNITS else ValueError
    if target.dtype.kind not in "iu" or target.shape not in ((BATCH,), (BATCH, 1), (BATCH, 2)):
        return (TypeError, ValueError)
    if not traced and ((target < -UNITS) | (target >= UNITS)).any():
        return ValueError
    return _reference(model, target)


def _check(answer: Any, expected: Any, call: Any) -> None:
    if isinstance(expected, np.ndarray):
        np.testing.assert_allclose(to_numpy(call()), expected, rtol=1e-5, atol=1e-6)
    else:
        with pytest.raises(expected):
            call()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=targets)
def test_targets_eagerly(target: Any) -> None:
    model = _model_once()
    x = np.random.default_rng(1).normal(size=(BATCH, 4)).astype("float32")
    chosen = _callable(target) if isinstance(target, str) else target
    expected = _expected(model, target, traced=False)
    _check(None, expected, lambda: ki.gradients(model, x, model.inputs[0], chosen).gradients[0])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=targets)
def test_targets_inside_a_compiler(target: Any) -> None:
    model = _model_once()
    x = np.random.default_rng(1).normal(size=(BATCH, 4)).astype("float32")
    if isinstance(target, np.ndarray):  # a traced argument: its values are unknown when traced
        function = _compiled(lambda x, t: ki.gradients(model, x, model.inputs[0], t).gradients[0])
        call = (lambda: function(x, target)) if function else None
    else:
        chosen = _callable(target) if isinstance(target, str) else target
        function = _compiled(lambda x: ki.gradients(model, x, model.inputs[0], chosen).gradients[0])
        call = (lambda: function(x)) if function else None
    if call is None:
        pytest.skip("compilers are jax.jit and tf.function; torch runs eagerly")
    _check(None, _expected(model, target, traced=True), call)


_MODEL: list[keras.Model] = []


def _model_once() -> keras.Model:
    if not _MODEL:
        _MODEL.append(_dense())
    return _MODEL[0]


def test_logits_of_one_score_per_example() -> None:
    x = keras.Input((4,))
    model = keras.Model(x, keras.ops.squeeze(keras.layers.Dense(1, name="score")(x), -1))
    data = np.random.default_rng(0).normal(size=(BATCH, 4)).astype("float32")
    # The default logits follow the Dense layer's output through the squeeze to the output.
    result = ki.gradients(model, data, model.inputs[0])
    assert tuple(result.logits.shape) == (BATCH,)
    kernel = to_numpy(model.get_layer("score").kernel)[:, 0]
    # Each example's own score: every row gets the kernel (no maximum across the batch).
    np.testing.assert_allclose(to_numpy(result.gradients[0]), np.tile(kernel, (BATCH, 1)), rtol=1e-5)
    with pytest.raises(TypeError, match="one score per example"):
        ki.gradients(model, data, model.inputs[0], target=0)


def test_a_logits_signal_of_two_tensors_is_refused() -> None:
    a, b = keras.Input((4,)), keras.Input((4,))
    joined = keras.layers.Concatenate(name="join")([a, b])
    model = keras.Model([a, b], keras.layers.Dense(2, name="out")(joined))
    data = [np.ones((2, 4), "float32")] * 2
    with pytest.raises(ki.EndpointError, match="2 tensors; name one"):
        ki.gradients(model, data, "out", logits={"name": "join", "link": "input"})


def test_a_plugin_s_failing_graph_reader_is_named() -> None:
    from keras_inspect.adapters.keras3.graph import Keras3GraphReader

    class Broken(Keras3GraphReader):
        def nodes_by_depth(self, graph: Any) -> Any:
            raise KeyError("depths")

    class Plugin:
        @ki.hookimpl
        def keras_inspect_model_flavour(self, model: Any) -> Any:
            return Broken()

    pm = ki.new_plugin_manager(entrypoints=False)
    pm.register(Plugin(), name="broken-reader")
    model = _dense()
    with ki.using_plugin_manager(pm), pytest.raises(ki.PluginError, match="'broken-reader'.*KeyError"):
        ki.expose(model, arguments="logits")


@pytest.mark.parametrize(
    "inputs, error, needle",
    [
        (np.array([["text"] * 4] * BATCH), TypeError, "must hold numbers"),
        (np.zeros((BATCH, 5), "float32"), ValueError, r"has shape \(None, 4\)"),
        ([np.zeros((BATCH, 4), "float32")] * 2, ValueError, "takes 1 input"),
    ],
    ids=["text", "wrong-size", "two-inputs"],
)
def test_inputs_a_backend_would_refuse_are_explained(inputs: Any, error: type, needle: str) -> None:
    model = _dense()
    with pytest.raises(error, match=needle) as caught:
        ki.gradients(model, inputs, model.inputs[0])
    assert "dense_model" in str(caught.value) and "edited" not in str(caught.value)
    with pytest.raises(error, match=needle):
        ki.intervene(model, inputs, replace={"logits": np.zeros((BATCH, UNITS), "float32")})


def test_edit_values_for_another_batch_are_refused() -> None:
    model = _dense()
    with pytest.raises(ValueError, match="hold 2 examples; the inputs hold 3"):
        ki.intervene(model, np.zeros((BATCH, 4), "float32"), replace={"logits": np.zeros((2, UNITS), "float32")})


def _calls(model: keras.Model) -> dict[int, tuple[int, int]]:
    counted: dict[int, tuple[int, int]] = {}
    for layer in [*(e.layer for e in ki.walk(model)), *model._operations]:
        counted[id(layer)] = (len(layer._inbound_nodes), len(layer._outbound_nodes))
    return counted


def test_a_failed_request_leaves_no_call_on_any_layer() -> None:
    class Odd(keras.layers.Layer):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.inner = keras.layers.Dense(4, name="inner")

        def call(self, x: Any) -> Any:
            return x  # never calls inner

        def build(self, shape: Any) -> None:
            self.inner.build(shape)

    x = keras.Input((4,), name="x")
    h = keras.layers.Dense(4, activation="relu", name="first")(x)
    model = keras.Model(x, keras.layers.Dense(2, name="out")(Odd(name="odd")(h)))
    before = _calls(model)
    with pytest.raises(ki.EndpointError, match="not called"):
        ki.expose(model, arguments=[{"name": "first", "link": "pre_activation"}, "odd/inner"])
    assert _calls(model) == before
