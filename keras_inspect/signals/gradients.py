"""``gradients``: a class score's gradient at any signal of a model, on every backend, in one pass.

Grad-CAM needs the gradient at the feature map, FullGrad at every biased layer and the input,
saliency and integrated gradients at the input: every explanation method built on keras-inspect
needs the gradient of a class score with respect to some of the signals it finds. This module
computes them for signals anywhere (nested backbones, layers bypassed by residual connections,
pre-activations, layers inside subclassed layers reached by interception) with one forward and
one backward pass, whatever the number of signals, on TensorFlow, JAX and PyTorch, eagerly or
inside ``tf.function(jit_compile=True)`` and ``jax.jit`` (see :mod:`.edited` for how), and at a
model whose signals are replaced or offset by given values (layer integrated gradients,
gradients of a patched run).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import attrs
import keras
from keras import ops

from keras_inspect.answers.descriptors import to_endpoint, to_endpoints
from keras_inspect.answers.target_layer import default_feature_map, default_logits
from keras_inspect.autograph import outside_compilers, plain_python
from keras_inspect.engine.building import require_graph
from keras_inspect.engine.edited import EditedModel, edited_model
from keras_inspect.errors import EndpointError, describe, shorten
from keras_inspect.graph.endpoints import Endpoint
from keras_inspect.graph.inspected import InspectedModel, inspect_model
from keras_inspect.signals.autodiff import value_and_gradients, without_gradients
from keras_inspect.signals.edits import Given, check_values, given_edits, zeros
from keras_inspect.signals.inputs import checked_inputs
from keras_inspect.signals.scores import nan_where_invalid, score_function


class Gradients(NamedTuple):
    """What :func:`gradients` computed in one forward and one backward pass.

    A named tuple, so that a function compiled by ``jax.jit``, ``tf.function`` or
    ``torch.compile`` may return it as it is.

    :ivar outputs: what ``model(inputs)`` returns (with the edits made), in the same structure.
    :ivar signals: the value of each requested signal, in request order (a signal made of
        several tensors, such as a multi-input layer's input, contributes each of them), before
        its own edit.
    :ivar gradients: ``d sum(scores) / d signal`` for each of ``signals``, each with its
        signal's shape; zeros where the scores do not depend on the signal. For a replaced
        signal, the gradient at the value put in its place. For ``n`` units per example, a
        unit axis after the batch axis: ``(batch, n, ...)``.
    :ivar logits: the logits the scores were taken from (the logits layer's output before a
        fused activation such as a softmax).
    :ivar scores: the target score of each example, shape ``(batch,)`` (``(batch, n)`` for
        ``n`` units per example).
    """

    outputs: Any
    signals: list[Any]
    gradients: list[Any]
    logits: Any
    scores: Any


@plain_python
def gradients(
    model: Any,
    inputs: Any,
    signals: Any = None,
    target: Any = None,
    *,
    logits: Any = None,
    replace: Any = None,
    add: Any = None,
    differentiable: bool = False,
) -> Gradients:
    """The gradient of a class score with respect to signals of ``model``, at ``inputs``.

    :param model: a functional or built sequential Keras model (Keras 3 on any backend, or a
        ``tf_keras`` model); nested models and subclassed layers inside it are fine.
    :param inputs: what ``model`` takes (arrays or backend tensors, traced ones included); sizes
        known only now (a sequence length) are fine.
    :param signals: one descriptor or a list of them, as ``expose`` accepts (names, paths
        ``"backbone/conv"``, layers, dicts with ``link`` ``"output"``/``"input"``/
        ``"pre_activation"`` and ``node``, ``{"role": ...}``, ``Endpoint`` values, the model's
        input layer or input tensor). Default: the input of the last global pooling layer
        (Grad-CAM's feature map), or a transformer's token sequence before its reduction.
    :param target: which score to differentiate: ``None`` (each example's top logit), an
        ``int`` (that unit of the logits for every example), an array with one unit per
        example (shape ``(batch,)``), an array of ``n`` units per example (shape
        ``(batch, n)``: the gradients get a unit axis after the batch axis, from one forward
        pass), or a callable ``target(logits) -> one score per example``.
    :param logits: the signal ``target`` picks units of, as one descriptor; default: the
        logits layer's pre-activation (its output before a fused activation such as softmax).
    :param replace: signals to replace by given values, ``{descriptor: values}`` (or a list of
        ``(descriptor, values)`` pairs); a replaced signal in ``signals`` gets the gradient at
        the given values (layer integrated gradients).
    :param add: signals to offset by given values, in the same form.
    :param differentiable: keep the computation differentiable with respect to the model's
        weights, for a loss on the gradients (double backpropagation). Needed on PyTorch only
        (the backward pass is then recorded); TensorFlow and JAX see through it anyway.
    :return: a :class:`Gradients`. The gradient of a signal is the true partial derivative at
        the place it is produced: everything downstream, residual branches included, sees it.
    :raises ValueError, TypeError: for an unknown signal, a target out of range, a target
        array of the wrong shape, or a callable that does not return one score per example.

    The model built for a request is remembered per model, so calling again with the same
    signals only runs it (no graph construction); the user's model is never changed.
    """
    plan = _plan(model, inputs, signals, target, logits, replace, add)
    return _run(plan, differentiable)


@attrs.frozen(kw_only=True, eq=False)
class _Plan:
    """What a call of :func:`gradients` computes with: everything but the tensor work."""

    view: InspectedModel
    built: EditedModel
    inputs: Any
    values: list[Any]
    differentiated: list[int]
    select: Any
    units: int | None
    poisons: bool


@outside_compilers
def _plan(
    model: Any, inputs: Any, signals: Any, target: Any, logits: Any, replace: Any, add: Any
) -> _Plan:
    """Resolve the model and the request, and build (or find) the edited model: Python about
    the model's structure, which compilers leave alone (see ``autograph.outside_compilers``)."""
    view = view_for_gradients(model)
    logits_at = _logits(view, logits)
    wanted = [default_feature_map(view)] if signals is None else to_endpoints(view, signals)
    if not wanted:
        raise EndpointError("gradients needs at least one signal; received an empty list.")
    given = {item.endpoint: item for item in given_edits(view, replace, add)}
    edits = [(e, given[e].mode if e in given else "add") for e in wanted]
    edits += [(e, item.mode) for e, item in given.items() if e not in wanted]
    built = edited_model(view, [logits_at], edits)
    _one_tensor_logits(view, built, logits_at)
    inputs = checked_inputs(view, inputs)
    values, differentiated = _values(view, built, inputs, [*wanted], given)
    select, units = score_function(target, built.model.outputs[0])
    return _Plan(
        view=view, built=built, inputs=inputs, values=values, differentiated=differentiated,
        select=select, units=units,
        # Only a target array picks units whose range is checked in the compiled program.
        poisons=hasattr(target, "shape") or isinstance(target, (list, tuple)),
    )  # fmt: skip


def _run(plan: _Plan, differentiable: bool) -> Gradients:
    """One forward pass, and the backward passes, of a planned call."""
    reader, built, values = plan.view.reader, plan.built, plan.values
    # What no edit reaches runs once, outside the autodiff.
    with without_gradients(differentiable):
        crossing = reader.flatten(built.stages.front(plan.inputs, training=False))

    def forward(points: list[Any]) -> tuple[Any, Any]:
        chosen = list(values)
        for position, point in zip(plan.differentiated, points):
            chosen[position] = point
        flat = reader.flatten(built.stages.back([*crossing, *chosen], training=False))
        scores = plan.select(flat[0])
        return scores, (flat, scores)

    points = [values[i] for i in plan.differentiated]
    (flat, scores), grads = value_and_gradients(
        forward, points, units=plan.units, differentiable=differentiable
    )
    count = sum(built.edit_sizes)
    if plan.poisons:
        grads = [nan_where_invalid(g, scores) for g in grads]
    return Gradients(
        outputs=reader.pack_outputs(plan.view.model, flat[1 + count :]),
        signals=[flat[1 + i] for i in plan.differentiated],
        gradients=list(grads),
        logits=flat[0],
        scores=scores,
    )


def view_for_gradients(model: Any) -> InspectedModel:
    """The model, inspected and checked to be differentiable here (a graph, this backend)."""
    view = inspect_model(model)
    require_graph(view)
    reader = view.reader
    if reader.backend() != keras.backend.backend():
        raise ValueError(
            f"Model {view.name!r} computes with {reader.backend()} ({reader.name} model) but Keras "
            f"runs the {keras.backend.backend()} backend: gradients use one backend's autodiff. "
            f"Set KERAS_BACKEND={reader.backend()} for this model."
        )
    return view


def _logits(view: InspectedModel, logits: Any) -> Endpoint:
    if logits is None:
        return Endpoint(path=default_logits(view).path, link="pre_activation")
    if isinstance(logits, (list, tuple)):
        raise TypeError(
            f"logits must be one descriptor (the signal the target picks units of); received "
            f"a {type(logits).__name__} of {len(logits)}."
        )
    return to_endpoint(view, logits)


def _one_tensor_logits(view: InspectedModel, built: EditedModel, logits: Endpoint) -> None:
    if built.read_sizes[0] != 1:
        raise EndpointError(
            f"The logits signal {shorten(logits.name)} of model {view.name!r} is made of "
            f"{built.read_sizes[0]} tensors; name one of them with 'index' "
            f"({{'name': {shorten(logits.name)}, 'index': 0}})."
        )


def _values(
    view: InspectedModel,
    built: EditedModel,
    inputs: Any,
    wanted: list[Endpoint],
    given: dict[Endpoint, Given],
) -> tuple[list[Any], list[int]]:
    """Each edit tensor's value (given, or zeros), and the flat positions of the edits of the
    requested signals, whose gradients are taken."""
    flat_inputs = view.reader.flatten(inputs)
    batch = _batch_size(flat_inputs)
    starts, position = [], 0
    for size in built.edit_sizes:
        starts.append(position)
        position += size
    values: list[Any] = [None] * position
    names: list[str] = [""] * position
    for (endpoint, _), start, size in zip(built.edits_requested, starts, built.edit_sizes):
        item = given.get(endpoint)
        for offset in range(size):
            names[start + offset] = endpoint.name
        if item is None:
            continue
        if len(item.values) != size:
            raise ValueError(
                f"Signal {shorten(endpoint.name)} is made of {size} tensor(s); {len(item.values)} "
                f"value(s) were given for it."
            )
        values[start : start + size] = item.values
    missing = [i for i, value in enumerate(values) if value is None]
    if missing:
        found = zeros(view, built, inputs, missing, batch)
        for i in missing:
            values[i] = found[i]
    check_values(values, built.edits, names, batch)
    differentiated = [
        start + offset
        for start, size in zip(starts[: len(wanted)], built.edit_sizes[: len(wanted)])
        for offset in range(size)
    ]
    return values, differentiated


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
