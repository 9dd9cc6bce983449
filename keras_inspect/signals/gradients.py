"""``gradients``: a class score's gradient at any signal of a model, on every backend, in one pass.

Grad-CAM needs the gradient at the feature map, FullGrad at every biased layer and the input,
saliency and integrated gradients at the input: every explanation method built on keras-inspect
needs the gradient of a class score with respect to some of the signals it finds. This module
computes them for signals anywhere (nested backbones, layers bypassed by residual connections,
pre-activations, layers inside subclassed layers reached by interception) with one forward and
one backward pass, whatever the number of signals, on TensorFlow, JAX and PyTorch, eagerly or
inside ``tf.function(jit_compile=True)`` and ``jax.jit`` (see :mod:`.edited` for how).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import keras
import numpy as np
from keras import ops

from keras_inspect.autograph import plain_python
from keras_inspect.signals.autodiff import value_and_gradients, without_gradients
from keras_inspect.answers.descriptors import to_endpoint, to_endpoints
from keras_inspect.graph.endpoints import Endpoint
from keras_inspect.errors import EndpointError, describe
from keras_inspect.answers.target_layer import default_feature_map, default_logits
from keras_inspect.graph.inspected import inspect_model
from keras_inspect.signals.edited import edited_model
from keras_inspect.signals.building import require_graph
from keras_inspect.answers.units import gather_units, is_concrete


@attrs.frozen(kw_only=True, eq=False)
class Gradients:
    """What :func:`gradients` computed in one forward and one backward pass.

    :ivar outputs: what ``model(inputs)`` returns, in the same structure.
    :ivar signals: the value of each requested signal, in request order (a signal made of
        several tensors, such as a multi-input layer's input, contributes each of them).
    :ivar gradients: ``d sum(scores) / d signal`` for each of ``signals``, each with its
        signal's shape; zeros where the scores do not depend on the signal.
    :ivar logits: the logits the scores were taken from (the logits layer's output before a
        fused activation such as a softmax).
    :ivar scores: the target score of each example, ``shape (batch,)``.
    """

    outputs: Any
    signals: list[Any]
    gradients: list[Any]
    logits: Any
    scores: Any


@plain_python
def gradients(
    model: Any, inputs: Any, signals: Any = None, target: Any = None, *, logits: Any = None
) -> Gradients:
    """The gradient of a class score with respect to signals of ``model``, at ``inputs``.

    :param model: a functional or built sequential Keras model (Keras 3 on any backend, or a
        ``tf_keras`` model); nested models and subclassed layers inside it are fine.
    :param inputs: what ``model`` takes (arrays or backend tensors, traced ones included).
    :param signals: one descriptor or a list of them, as ``expose`` accepts (names, paths
        ``"backbone/conv"``, layers, dicts with ``link`` ``"output"``/``"input"``/
        ``"pre_activation"`` and ``node``, ``Endpoint`` values, the model's input layer or input
        tensor). Default: the input of the last global pooling layer (Grad-CAM's feature map).
    :param target: which score to differentiate: ``None`` (each example's top logit), an
        ``int`` (that unit of the logits for every example), an array with one unit per
        example, or a callable ``target(logits) -> one score per example``.
    :param logits: the signal ``target`` picks units of, as one descriptor; default: the
        logits layer's pre-activation (its output before a fused activation such as softmax).
    :return: a :class:`Gradients`. The gradient of a signal is the true partial derivative at
        the place it is produced: everything downstream, residual branches included, sees it.
    :raises ValueError, TypeError: for an unknown signal, a target out of range, a target
        array of the wrong shape, or a callable that does not return one score per example.

    The model built for a request is remembered per model, so calling again with the same
    signals only runs it (no graph construction); the user's model is never changed.
    """
    view = inspect_model(model)
    require_graph(view)
    reader = view.reader
    if reader.backend() != keras.backend.backend():
        raise ValueError(
            f"Model {view.name!r} computes with {reader.backend()} ({reader.name} model) but Keras "
            f"runs the {keras.backend.backend()} backend: gradients use one backend's autodiff. "
            f"Set KERAS_BACKEND={reader.backend()} for this model."
        )
    if logits is None:
        logits = Endpoint(path=default_logits(view).path, link="pre_activation")
    else:
        logits = to_endpoint(view, logits)
    wanted = [default_feature_map(view)] if signals is None else to_endpoints(view, signals)
    if not wanted:
        raise EndpointError("gradients needs at least one signal; received an empty list.")
    built = edited_model(view, [logits], [(signal, "add") for signal in wanted])
    inputs = keras.tree.map_structure(ops.convert_to_tensor, inputs)
    count = sum(built.edit_sizes)
    units = built.model.outputs[0].shape[-1]
    select = _scores(target, units)
    batch = _batch_size(reader.flatten(inputs))
    zeros = [ops.zeros((batch, *_static(d, view.name)), dtype=d.dtype) for d in built.edits]

    # What no delta reaches runs once, outside the autodiff.
    with without_gradients():
        crossing = reader.flatten(built.stages.front(inputs, training=False))

    def forward(deltas: list[Any]) -> tuple[Any, Any]:
        flat = reader.flatten(built.stages.back([*crossing, *deltas], training=False))
        scores = select(flat[0])
        return ops.sum(scores), (flat, scores)

    (flat, scores), grads = value_and_gradients(forward, zeros)
    return Gradients(
        outputs=reader.pack_outputs(view.model, flat[1 + count :]),
        signals=list(flat[1 : 1 + count]),
        gradients=list(grads),
        logits=flat[0],
        scores=scores,
    )


def _batch_size(flat_inputs: list[Any]) -> Any:
    if not flat_inputs:
        raise ValueError("gradients needs inputs; received an empty structure.")
    first = flat_inputs[0]
    if not hasattr(first, "shape") or len(first.shape) == 0:
        raise TypeError(
            f"inputs must be arrays or tensors with a batch axis; received {describe(first)}."
        )
    static = first.shape[0]
    return static if isinstance(static, int) else ops.shape(first)[0]


def _static(delta: Any, model_name: str) -> tuple[int, ...]:
    shape = tuple(delta.shape[1:])
    if any(d is None for d in shape):
        raise ValueError(
            f"A signal of model {model_name!r} has a shape that is not fixed by the model "
            f"({(None, *shape)}): gradients need every dimension but the batch known when the "
            "model is built; build the model on inputs of a fixed size."
        )
    return shape


def _scores(target: Any, units: int | None) -> Callable[[Any], Any]:
    """``logits -> one score per example`` for a target; checks what can be checked now."""
    if target is None:
        return lambda logits: _per_example(ops.max(logits, axis=-1))
    if callable(target):
        return lambda logits: _checked(target(logits), logits)
    if isinstance(target, (int, np.integer)) and not isinstance(target, (bool, np.bool_)):
        unit = int(target)
        if units is not None and not -units <= unit < units:
            raise ValueError(
                f"target {unit} is out of range: the logits have {units} units (valid "
                f"{-units}..{units - 1})."
            )
        return lambda logits: _per_example(ops.take(logits, unit, axis=-1))
    indices = _target_indices(target, units)
    return lambda logits: _per_example(
        gather_units(logits, ops.reshape(indices, (-1, 1)), axis=-1)[..., 0]
    )


def _target_indices(target: Any, units: int | None) -> Any:
    array_like = hasattr(target, "shape") or isinstance(target, (list, tuple))
    if isinstance(target, (str, bytes, bool, np.bool_)) or not array_like:
        raise TypeError(
            "target must be None, an int, an array with one unit per example, or a callable "
            f"logits -> one score per example; received {describe(target)}."
        )
    if not hasattr(target, "dtype") or isinstance(target, np.ndarray):
        try:
            array = np.asarray(target)
        except (ValueError, RecursionError):
            raise TypeError(
                f"a target array must hold one integer unit per example; received "
                f"{describe(target)}."
            ) from None
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise TypeError(
                f"a target array must hold one integer unit per example (rank 1); received "
                f"{describe(target)} of shape {array.shape} and dtype {array.dtype}."
            )
        if units is not None and array.size and (array.min() < -units or array.max() >= units):
            raise ValueError(
                f"target units must lie in {-units}..{units - 1} (the logits have {units} "
                f"units); received values from {array.min()} to {array.max()}."
            )
        return ops.convert_to_tensor(array)
    if len(target.shape) != 1:
        raise ValueError(
            f"a target tensor must hold one unit per example (rank 1); received shape "
            f"{tuple(target.shape)}."
        )
    if is_concrete(target) and units is not None:
        values = ops.convert_to_numpy(target)
        if values.size and (values.min() < -units or values.max() >= units):
            raise ValueError(
                f"target units must lie in {-units}..{units - 1}; received values from "
                f"{values.min()} to {values.max()}."
            )
    return target


def _per_example(scores: Any) -> Any:
    # Logits with more axes than (batch, units), such as per-token logits: sum each example's.
    rank = len(scores.shape)
    return scores if rank == 1 else ops.sum(scores, axis=tuple(range(1, rank)))


def _checked(scores: Any, logits: Any) -> Any:
    shape = getattr(scores, "shape", None)
    batch = logits.shape[0]
    if shape is None or len(shape) != 1 or (
        isinstance(batch, int) and isinstance(shape[0], int) and shape[0] != batch
    ):
        raise ValueError(
            "a target callable must return one score per example, shape "
            f"({batch},), from the logits of shape {tuple(logits.shape)}; it returned "
            f"{describe(scores) if shape is None else 'shape ' + str(tuple(shape))}."
        )
    return scores
