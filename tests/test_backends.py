"""Backend-specific behaviour: own tensor types, real autodiff, and tracing compilers.

The suite runs once per Keras backend, so each test here dispatches on ``keras.backend.backend()``
to that backend's own tools: every test runs (none is skipped) in every run.
Gradients come from each backend's own machinery (``tf.GradientTape``, ``jax.grad``,
``torch.autograd``) and are checked against math identities, not stored numbers:

- completeness of a piecewise-linear network (ReLU, inference BatchNorm, convolutions, global
  average pooling, dense): ``f(x) = <df/dx, x> + sum_l <df/db_l, b_l>`` where ``b_l`` are the
  constants from :func:`keras_inspect.biases` and ``df/db_l`` is the gradient w.r.t. the variable
  that adds ``b_l`` (``bias``, or a BatchNorm's ``beta``). A wrong bias (e.g. the seed's BatchNorm
  epsilon) breaks it.
- Grad-CAM's premise: the gradient of logit ``c`` w.r.t. the pooled feature map is
  ``W[:, c] / (H * W)`` at every position.

Also here: results are the backend's own tensors, the same explanation step gives the same
numbers under the backend's tracing compiler, and ``import keras_inspect`` works with only the
running backend installed (a subprocess that hides the other backends and tf_keras).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
from conftest import images, to_numpy
from keras import layers

import keras_inspect as ki

BACKEND = keras.backend.backend()
SHAPE = (16, 16, 3)
# Far from the seed's hard-coded 1e-7, so a fold with the wrong epsilon breaks completeness.
EPSILON = 0.05


def _randomize(model: keras.Model, seed: int) -> keras.Model:
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "variance" in variable.path:
            value = rng.uniform(0.2, 2.0, size=shape)
        else:
            value = rng.normal(0.0, 0.5, size=shape)
        variable.assign(value.astype(variable.dtype))
    return model


@pytest.fixture(scope="module")
def cnn() -> keras.Model:
    """conv1 (fused relu) -> bn -> conv2 -> relu -> gap -> logits."""
    inputs = keras.Input(SHAPE)
    x = layers.Conv2D(4, 3, activation="relu", name="conv1", kernel_initializer="zeros")(inputs)
    x = layers.BatchNormalization(epsilon=EPSILON, name="bn")(x)
    x = layers.Conv2D(6, 3, name="conv2", kernel_initializer="zeros")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(5, name="logits", kernel_initializer="zeros")(x)
    return _randomize(keras.Model(inputs, outputs, name="cnn"), seed=1)


@pytest.fixture(scope="module")
def nested() -> keras.Model:
    """A functional backbone inside a Sequential, pooled and classified outside it."""
    inputs = keras.Input(SHAPE)
    x = layers.Conv2D(4, 3, name="b_conv1", kernel_initializer="zeros")(inputs)
    x = layers.BatchNormalization(epsilon=EPSILON, name="b_bn")(x)
    x = layers.Activation("relu", name="b_relu")(x)
    x = layers.Conv2D(6, 3, name="b_conv2", kernel_initializer="zeros")(x)
    backbone = keras.Model(inputs, x, name="backbone")
    model = keras.Sequential(
        [
            keras.Input(SHAPE),
            backbone,
            layers.GlobalAveragePooling2D(name="avg_pool"),
            layers.Dense(5, name="predictions", kernel_initializer="zeros"),
        ],
        name="nested",
    )
    return _randomize(model, seed=2)


def _native_type() -> type:
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.Tensor
    if BACKEND == "jax":
        import jax

        return jax.Array
    if BACKEND == "torch":
        import torch

        return torch.Tensor
    raise AssertionError(f"unexpected backend {BACKEND}")


def _bias_variables(model: keras.Model) -> tuple[list[Any], list[Any]]:
    """Per layer with a constant: the variable whose gradient is the constant's, the constant."""
    layers_, values = ki.layers_with_biases(model)
    variables = []
    for layer in layers_:
        if isinstance(layer, layers.BatchNormalization):
            variables.append(layer.beta)  # d(output)/d(beta) = d(output)/d(folded constant)
        else:
            variables.append(layer.bias)
    return variables, values


def _targets(logits: np.ndarray) -> np.ndarray:
    return np.argsort(logits, axis=-1)[:, -2:-1].astype("int32")  # each sample's runner-up


# -- each backend's own gradient of sum_i logit_{i, target_i} ------------------------------------

Gradients = Callable[[keras.Model, np.ndarray, np.ndarray, list[Any]], tuple[Any, Any, list[Any]]]


def _tf_gradients(model, x, targets, variables):  # type: ignore[no-untyped-def]
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.reduce_sum(ki.gather_units(model(x, training=False), targets))
    grad_x, *grad_vars = tape.gradient(score, [x, *[v.value for v in variables]])
    return score, grad_x, grad_vars


def _jax_gradients(model, x, targets, variables):  # type: ignore[no-untyped-def]
    import jax
    import jax.numpy as jnp

    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]
    positions = [
        next(i for i, w in enumerate(model.trainable_variables) if w is v) for v in variables
    ]

    def score_of(x, trainable):  # type: ignore[no-untyped-def]
        logits, _ = model.stateless_call(trainable, frozen, x, training=False)
        return jnp.sum(ki.gather_units(logits, targets))

    score, (grad_x, grad_trainable) = jax.jit(jax.value_and_grad(score_of, argnums=(0, 1)))(
        jnp.asarray(x), trainable
    )
    return score, grad_x, [grad_trainable[i] for i in positions]


def _torch_gradients(model, x, targets, variables):  # type: ignore[no-untyped-def]
    import torch

    x = torch.tensor(x, requires_grad=True)
    score = ki.gather_units(model(x, training=False), torch.as_tensor(targets)).sum()
    grad_x, *grad_vars = torch.autograd.grad(score, [x, *[v.value for v in variables]])
    return score, grad_x, grad_vars


GRADIENTS: dict[str, Gradients] = {
    "tensorflow": _tf_gradients,
    "jax": _jax_gradients,
    "torch": _torch_gradients,
}


@pytest.mark.parametrize("fixture", ["cnn", "nested"])
def test_biases_complete_the_input_gradient(fixture, request) -> None:
    model = request.getfixturevalue(fixture)
    x = images(3, shape=SHAPE, seed=11)
    targets = _targets(to_numpy(model(x, training=False)))
    variables, constants = _bias_variables(model)
    assert any(isinstance(c, _native_type()) for c in constants)
    score, grad_x, grad_vars = GRADIENTS[BACKEND](model, x, targets, variables)
    assert isinstance(grad_x, _native_type())
    from_input = float(np.sum(to_numpy(grad_x) * x))
    from_biases = sum(
        float(np.sum(to_numpy(g) * np.reshape(to_numpy(b), to_numpy(g).shape)))
        for g, b in zip(grad_vars, constants)
    )
    total = from_input + from_biases
    np.testing.assert_allclose(total, float(to_numpy(score)), rtol=1e-5, atol=1e-5)
    # The seed's fold (epsilon 1e-7) would miss by far more than the tolerance.
    layers_ = ki.layers_with_biases(model, return_biases=False)
    shift = 0.0
    for layer, grad in zip(layers_, grad_vars):
        if isinstance(layer, layers.BatchNormalization):
            gamma, mean, var = (
                to_numpy(v) for v in (layer.gamma, layer.moving_mean, layer.moving_variance)
            )
            delta = gamma * mean * (1 / np.sqrt(var + layer.epsilon) - 1 / np.sqrt(var + 1e-7))
            shift += float(np.sum(to_numpy(grad) * delta))
    assert abs(shift) > 10 * (1e-5 + 1e-5 * abs(float(to_numpy(score))))


def test_grad_cam_gradient_at_the_exposed_feature_map(nested) -> None:
    """The gradient at the nested feature map is the backend's own tensor and obeys the
    Grad-CAM identity (global average pooling then Dense: W[:, c] / (H * W))."""
    x = images(2, shape=SHAPE, seed=3)
    target = 2
    result = ki.gradients(nested, x, ki.Endpoint(path=("avg_pool",), link="input"), target=target)
    (grad,) = result.gradients
    assert isinstance(grad, _native_type())
    kernel = to_numpy(nested.get_layer("predictions").kernel)
    height, width = grad.shape[1:3]
    expected = np.broadcast_to(kernel[:, target] / (height * width), tuple(grad.shape))
    np.testing.assert_allclose(to_numpy(grad), expected, rtol=1e-5, atol=1e-7)


# -- the backend's own tensors -------------------------------------------------------------------


def test_results_are_the_backends_own_tensors(nested) -> None:
    native = _native_type()
    exposed = ki.expose(nested)
    logits, features = exposed(images(2, shape=SHAPE))
    assert isinstance(logits, native) and isinstance(features, native)
    for layer, bias in zip(*ki.layers_with_biases(nested)):
        # A layer's own bias variable comes back itself (it follows training); a computed
        # constant (the folded BatchNormalization) is the backend's own tensor.
        own = getattr(layer, "bias", None)
        assert bias is own if isinstance(own, keras.Variable) else isinstance(bias, native)
    picked = ki.gather_units(logits, np.array([[0], [4]], "int32"))
    assert isinstance(picked, native)
    np.testing.assert_array_equal(to_numpy(picked)[:, 0], to_numpy(logits)[[0, 1], [0, 4]])


# -- tracing compilers ---------------------------------------------------------------------------


def _explain(exposed: keras.Model, layers_: list[Any]) -> Callable[[Any, Any], Any]:
    """What an XAI method does per batch: run the exposed model, pick units, read biases."""

    def run(x, indices):  # type: ignore[no-untyped-def]
        logits, features = exposed(x, training=False)
        picked = ki.gather_units(logits, indices)
        cam = ki.gather_units(features, indices, axis=-1, batch_dims=1)
        # Layers' own bias variables come back as they are; a compiled function returns the
        # values it computed with (a Keras variable cannot leave jax.jit, as anywhere in Keras).
        return picked, cam, [keras.ops.convert_to_tensor(b) for b in ki.biases(layers_)]

    return run


@pytest.fixture(scope="module")
def traced_case(cnn):  # type: ignore[no-untyped-def]
    exposed = ki.expose(cnn, arguments="conv2")
    layers_ = ki.layers_with_biases(cnn, return_biases=False)
    x = images(2, shape=SHAPE, seed=5)
    # Negative indices exercise gather_units' branch-free wrap-around under tracing.
    indices = np.array([[-1, 0], [2, -3]], "int32")
    eager = [to_numpy(t) for t in _flat(_explain(exposed, layers_)(x, indices))]
    return exposed, layers_, x, indices, eager


def _flat(result: Any) -> list[Any]:
    picked, cam, biases = result
    return [picked, cam, *biases]


def _assert_same(traced: Any, eager: list[np.ndarray]) -> None:
    flat = _flat(traced)
    assert all(isinstance(t, _native_type()) for t in flat)
    for got, want in zip(flat, eager, strict=True):
        np.testing.assert_allclose(to_numpy(got), want, rtol=1e-5, atol=1e-6)


def _under_tf_function_with_xla(exposed, layers_, x, indices):  # type: ignore[no-untyped-def]
    import tensorflow as tf

    compiled = tf.function(_explain(exposed, layers_), jit_compile=True)
    return compiled(tf.constant(x), tf.constant(indices))


def _under_jax_jit(exposed, layers_, x, indices):  # type: ignore[no-untyped-def]
    import jax

    return jax.jit(_explain(exposed, layers_))(x, indices)


def _under_torch_compile(exposed, layers_, x, indices):  # type: ignore[no-untyped-def]
    """torch.compile without Inductor: its C++ code generation works on this CPU build but costs
    ~50 s per compile, too slow for the suite, so Dynamo's graph capture is checked with the
    ``aot_eager`` backend (AOTAutograd traces the captured graph too) for gather_units, which
    compiles to one graph (``fullgraph=True``) even with negative indices, and with the ``eager``
    backend for the whole explanation step. There ``biases()`` asks the plugin manager, a
    context variable that Dynamo cannot trace, so it runs after a graph break."""
    import torch

    torch._dynamo.reset()
    one_graph = torch.compile(ki.gather_units, backend="aot_eager", fullgraph=True)
    values = torch.arange(12.0).reshape(2, 6)
    picked = one_graph(values, torch.as_tensor(indices))
    expected = np.take_along_axis(values.numpy(), indices % 6, axis=-1)
    np.testing.assert_array_equal(picked.numpy(), expected)
    compiled = torch.compile(_explain(exposed, layers_), backend="eager")
    return compiled(torch.as_tensor(x), torch.as_tensor(indices))


TRACERS = {
    "tensorflow": _under_tf_function_with_xla,
    "jax": _under_jax_jit,
    "torch": _under_torch_compile,
}


def test_under_the_backends_tracing_compiler(traced_case) -> None:
    exposed, layers_, x, indices, eager = traced_case
    _assert_same(TRACERS[BACKEND](exposed, layers_, x, indices), eager)


# -- optional dependencies -----------------------------------------------------------------------

# Runs first in a fresh interpreter: hides packages from every import finder, so that both
# `import x` and `importlib.util.find_spec("x")` behave as if `x` were not installed.
HIDE_PACKAGES = """
import sys

class Hide:
    def __init__(self, finder, names):
        self.finder, self.names = finder, names

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            return None
        find = getattr(self.finder, "find_spec", None)
        return None if find is None else find(name, path, target)

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)

sys.meta_path[:] = [Hide(finder, set(HIDDEN)) for finder in sys.meta_path]
"""

ONLY_THIS_BACKEND = """
import keras
import keras_inspect as ki
from keras_inspect.adapters.tf_keras.detection import require_tf_keras
from keras_inspect.adapters.tf_keras.graph import READER as FLAVOUR

assert keras.backend.backend() == BACKEND, keras.backend.backend()
hidden = sorted(m for m in sys.modules if m.split(".")[0] in HIDDEN)
assert not hidden, hidden
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="out")])
assert ki.get_logits_layer(model).name == "out"
from keras_inspect.graph.inspected import reader_of
assert reader_of(model).name == "keras3"
assert "tf_keras" not in sys.modules  # asking every flavour did not import it
for feature in (require_tf_keras, lambda: FLAVOUR.build_model([], [])):
    try:
        feature()
    except ki.MissingDependencyError as error:
        assert isinstance(error, ImportError) and isinstance(error, ValueError)
        print("MESSAGE:", error)
    else:
        raise AssertionError("a tf_keras feature worked without tf_keras")
"""

OTHER_BACKENDS = {
    "tensorflow": ("jax", "jaxlib", "torch", "tf_keras"),
    "jax": ("tensorflow", "torch", "tf_keras"),
    "torch": ("tensorflow", "jax", "jaxlib", "tf_keras"),
}


def _run_hidden(code: str, hidden: tuple[str, ...], backend: str) -> subprocess.CompletedProcess:
    prelude = f"HIDDEN = {hidden!r}\nBACKEND = {backend!r}\n" + HIDE_PACKAGES
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )


def test_import_with_only_this_backend_installed() -> None:
    """Only the running backend is "installed" (the others are checked in their own runs)."""
    result = _run_hidden(ONLY_THIS_BACKEND, OTHER_BACKENDS[BACKEND], BACKEND)
    assert result.returncode == 0, result.stderr[-3000:]
    messages = [line for line in result.stdout.splitlines() if line.startswith("MESSAGE:")]
    assert len(messages) == 2
    for message in messages:
        assert "tf_keras" in message and "pip install 'keras-inspect[tf-keras]'" in message


def test_a_missing_backend_is_named_with_its_extra() -> None:
    missing = "jax" if BACKEND != "jax" else "torch"
    result = _run_hidden("import keras_inspect\n", (missing, "jaxlib"), missing)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("keras_inspect.dependencies.MissingDependencyError:"), last
    assert f"KERAS_BACKEND={missing!r}" in last
    assert f"pip install 'keras-inspect[{missing}]'" in last
