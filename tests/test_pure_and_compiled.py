"""Explanations as a compiled, pure and differentiable function.

- The pure form (``ki.stateless_gradients``) takes the model's weights as arguments: jitted once,
  it follows randomised weights exactly as eager calls do (the model randomisation check), and it
  can be vmapped over sets of weights. Under ``tf.function`` the variables are read at call time.
- A loss on the gradients can be differentiated with respect to the weights (double
  backpropagation), checked against central finite differences, on every backend.
- ``torch.compile`` of a Grad-CAM step equals eager.
- A target of ``n`` units per example equals ``n`` single-unit calls, from one forward pass.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
from keras import ops

import keras_inspect as ki
from conftest import to_numpy

BACKEND = keras.backend.backend()


def _cnn(seed: int = 0) -> keras.Model:
    """Smooth activations, so that second derivatives exist everywhere."""
    keras.utils.set_random_seed(seed)
    x = keras.Input((8, 8, 3), name="image")
    h = keras.layers.Conv2D(6, 3, activation="tanh", name="conv")(x)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Conv2D(6, 3, activation="softplus", name="top_conv")(h)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(x, keras.layers.Dense(4, name="logits")(pooled), name="cnn")


def _images(count: int = 3) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(count, 8, 8, 3)).astype("float32")


def _randomised(model: keras.Model, layers: tuple[str, ...], seed: int) -> list[Any]:
    """New values for the weights of ``layers``, the other trainable values unchanged."""
    rng = np.random.default_rng(seed)
    chosen = {id(v) for name in layers for v in model.get_layer(name).trainable_variables}
    return [
        ops.convert_to_tensor(rng.normal(size=v.shape).astype("float32") if id(v) in chosen else v)
        for v in model.trainable_variables
    ]


def _values(variables: list[Any]) -> list[Any]:
    """Variables' values as tensors (a compiler traces once for tensors of one kind)."""
    return [ops.convert_to_tensor(v) for v in variables]


def _relative(a: Any, b: Any) -> float:
    a, b = to_numpy(a), to_numpy(b)
    return float(np.abs(a - b).max() / np.abs(b).max())


# -- model randomisation under a compiler ---------------------------------------------------------


def test_randomising_the_top_layers_changes_the_pure_form_s_maps_as_eager_does() -> None:
    model, x = _cnn(), _images()
    explain = ki.stateless_gradients(model, target=2)
    traces: list[int] = []

    def maps(trainable: list[Any], non_trainable: list[Any], images: Any) -> Any:
        traces.append(1)
        return explain(trainable, non_trainable, images).gradients[0]

    if BACKEND == "jax":
        import jax

        compiled = jax.jit(maps)
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(maps)
    else:
        compiled = maps  # torch: the pure form eagerly (torch.compile: the test below)
    non_trainable = _values(model.non_trainable_variables)
    before = compiled(_values(model.trainable_variables), non_trainable, x)
    assert _relative(before, ki.gradients(model, x, target=2).gradients[0]) < 1e-6
    for seed, layers in enumerate((("logits",), ("logits", "top_conv"))):
        values = _randomised(model, layers, seed)
        after = compiled(values, non_trainable, x)
        for variable, value in zip(model.trainable_variables, values):
            variable.assign(value)
        eager = ki.gradients(model, x, target=2).gradients[0]
        assert _relative(after, eager) < 1e-6
        assert _relative(after, before) > 1e-2  # the maps did change
    if BACKEND in ("jax", "tensorflow"):
        assert len(traces) == 1  # one trace for every set of weights


def test_tf_function_reads_the_variables_when_called() -> None:
    if BACKEND != "tensorflow":
        pytest.skip("tf.function is TensorFlow's (JAX's and PyTorch's compilers: the tests above and below)")
    import tensorflow as tf

    model, x = _cnn(), _images()
    traces: list[int] = []

    @tf.function
    def maps(images: Any) -> Any:
        traces.append(1)
        return ki.gradients(model, images, target=1).gradients[0]

    before = maps(x)
    for variable, value in zip(model.trainable_variables, _randomised(model, ("logits",), 4)):
        variable.assign(value)
    after = maps(x)
    assert _relative(after, ki.gradients(model, x, target=1).gradients[0]) < 1e-6
    assert _relative(after, before) > 1e-2 and len(traces) == 1


def test_the_pure_form_vmaps_over_sets_of_weights() -> None:
    if BACKEND != "jax":
        pytest.skip("jax.vmap is JAX's")
    import jax

    model, x = _cnn(), _images()
    explain = ki.stateless_gradients(model, target=0)
    non_trainable = [v.value for v in model.non_trainable_variables]
    first = [v.value for v in model.trainable_variables]
    second = _randomised(model, ("logits", "top_conv"), 7)
    stacked = [jax.numpy.stack([a, b]) for a, b in zip(first, second)]
    both = jax.vmap(lambda w: explain(w, non_trainable, x).gradients[0])(stacked)
    assert _relative(both[0], explain(first, non_trainable, x).gradients[0]) < 1e-6
    assert _relative(both[1], explain(second, non_trainable, x).gradients[0]) < 1e-6


def test_the_pure_form_refuses_values_that_do_not_fit() -> None:
    model = _cnn()
    explain = ki.stateless_gradients(model)
    with pytest.raises(ValueError, match="trainable variables; received 1 values"):
        explain([model.trainable_variables[0].value], [], _images())


# -- double backpropagation -----------------------------------------------------------------------


def _loss_and_kernel_gradient(model: keras.Model, x: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
    """``sum(d logit_1 / d image * mask)`` and its gradient with respect to the Dense kernel,
    through the running backend's autodiff."""
    kernel = model.get_layer("logits").kernel

    weights = ops.convert_to_tensor(mask)  # a NumPy array times a torch tensor is NumPy's

    def loss_of(result: Any) -> Any:
        return ops.sum(result.gradients[0] * weights)

    if BACKEND == "jax":
        import jax

        explain = ki.stateless_gradients(model, model.inputs[0], target=1)
        position = next(i for i, v in enumerate(model.trainable_variables) if v is kernel)
        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss(values: list[Any]) -> Any:
            return loss_of(explain(values, non_trainable, x))

        value, grads = jax.value_and_grad(loss)([v.value for v in model.trainable_variables])
        return float(value), to_numpy(grads[position])
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss_of(ki.gradients(model, x, model.inputs[0], target=1))
        return float(value), to_numpy(tape.gradient(value, kernel.value))
    import torch

    value = loss_of(ki.gradients(model, x, model.inputs[0], target=1, differentiable=True))
    (grad,) = torch.autograd.grad(value, kernel.value)
    return float(value), to_numpy(grad)


def test_double_backpropagation_matches_central_finite_differences() -> None:
    model = _cnn(seed=3)
    x = _images(2)
    mask = np.random.default_rng(2).uniform(size=x.shape).astype("float32")
    loss, analytic = _loss_and_kernel_gradient(model, x, mask)
    kernel = model.get_layer("logits").kernel
    original = to_numpy(kernel).copy()
    step = 1e-2
    numeric = np.zeros_like(original)
    for i, j in [(0, 1), (3, 1), (5, 1), (2, 0)]:
        losses = []
        for sign in (1.0, -1.0):
            moved = original.copy()
            moved[i, j] += sign * step
            kernel.assign(moved)
            result = ki.gradients(model, x, model.inputs[0], target=1)
            losses.append(float(np.sum(to_numpy(result.gradients[0]) * mask)))
        kernel.assign(original)
        numeric[i, j] = (losses[0] - losses[1]) / (2 * step)
        np.testing.assert_allclose(analytic[i, j], numeric[i, j], rtol=2e-3, atol=1e-4)
    assert np.abs(analytic[:, 1]).max() > 1e-3  # a loss that depends on the kernel
    # The loss depends on the logits' kernel only through column 1 (the target's): a check that
    # the analytic gradient is exact where the answer is known without differences.
    assert np.abs(analytic[:, [0, 2, 3]]).max() < 1e-6


# -- torch.compile ----------------------------------------------------------------------------------


def test_torch_compile_of_a_grad_cam_step_equals_eager() -> None:
    if BACKEND != "torch":
        pytest.skip("torch.compile is PyTorch's (jax.jit and tf.function: test_gradients.py)")
    import torch

    model, x = _cnn(), torch.tensor(_images())

    def grad_cam(images: Any) -> Any:
        result = ki.gradients(model, images, target=3)
        weights = result.gradients[0].mean(dim=(1, 2), keepdim=True)
        return torch.relu((weights * result.signals[0]).sum(-1))

    eager = grad_cam(x)
    compiled = torch.compile(grad_cam)
    np.testing.assert_allclose(to_numpy(compiled(x)), to_numpy(eager), rtol=1e-5, atol=1e-6)


# -- several units per example ------------------------------------------------------------------


def test_n_units_per_example_equal_n_single_unit_calls() -> None:
    model, x = _cnn(), _images()
    units = np.array([[0, 3], [2, 2], [1, 0]], "int32")
    several = ki.gradients(model, x, ["top_conv", model.inputs[0]], target=units)
    assert tuple(several.scores.shape) == (3, 2)
    for k in range(2):
        single = ki.gradients(model, x, ["top_conv", model.inputs[0]], target=units[:, k])
        for many, one in zip(several.gradients, single.gradients):
            assert many.shape[:2] == (3, 2)
            np.testing.assert_allclose(to_numpy(many)[:, k], to_numpy(one), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(to_numpy(several.scores)[:, k], to_numpy(single.scores), rtol=1e-6)
    seed_style = ki.gradients(model, x, "top_conv", target=units[:, :1])  # (batch, 1)
    assert seed_style.gradients[0].shape[:2] == (3, 1)


def test_gather_units_reads_no_value_back_from_a_torch_tensor(monkeypatch: pytest.MonkeyPatch) -> None:
    if BACKEND != "torch":
        pytest.skip("the host synchronisation checked is PyTorch's")
    import torch

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("converted to NumPy")

    monkeypatch.setattr(ops, "convert_to_numpy", refuse)
    logits = torch.arange(12.0).reshape(3, 4)
    picked = ki.gather_units(logits, torch.tensor([[1], [3], [0]]))
    assert picked.tolist() == [[1.0], [7.0], [8.0]]
    with pytest.raises(ValueError, match="indices must lie"):
        ki.gather_units(logits, torch.tensor([[4], [0], [0]]))
