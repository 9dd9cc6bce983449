"""``intervene``: run a model with chosen signals replaced by given values, or offset by them.

Activation patching (a signal taken from another run), ablations (zeros, means) and steering
(an offset) are all one forward pass of the model with edits at chosen signals, made where each
signal is produced so that everything downstream sees them, residual branches included. The
edited model is the one behind :func:`keras_inspect.gradients` (which takes the same
``replace=``/``add=`` arguments to differentiate there), built once per model and request; it
runs eagerly or inside ``jax.jit``/``tf.function``, on every backend.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from keras_inspect.answers.descriptors import to_endpoints
from keras_inspect.autograph import outside_compilers, plain_python
from keras_inspect.engine.building import require_graph
from keras_inspect.engine.edited import edited_model
from keras_inspect.errors import EndpointError
from keras_inspect.graph.inspected import inspect_model
from keras_inspect.signals.edits import check_values, given_edits
from keras_inspect.signals.inputs import checked_inputs


class Intervention(NamedTuple):
    """What :func:`intervene` computed (a named tuple, which compiled functions may return).

    :ivar outputs: what the model returns with the edits made, in its own structure.
    :ivar signals: the value of each requested signal in request order, as the rest of the
        model sees it (after the edits), except an edited signal's own, which is the value it
        had before its edit.
    """

    outputs: Any
    signals: list[Any]


@plain_python
def intervene(
    model: Any, inputs: Any, signals: Any = None, *, replace: Any = None, add: Any = None
) -> Intervention:
    """Run ``model`` on ``inputs`` with signals replaced (``replace=``) or offset (``add=``).

    :param model: a functional or built sequential Keras model (nested models and subclassed
        layers inside it are fine).
    :param inputs: what ``model`` takes.
    :param signals: descriptors of signals to read from the edited run (as ``expose`` takes).
    :param replace: ``{descriptor: values}`` (or ``(descriptor, values)`` pairs): each signal is
        replaced by its values, with the signal's shape (a signal of several tensors takes a
        list).
    :param add: the same form; each signal is offset by its values.
    """
    view, built, inputs, values = _plan(model, inputs, signals, replace, add)
    flat = view.reader.flatten(built.model([inputs, values], training=False))
    read = sum(built.read_sizes)
    edited = sum(built.edit_sizes)
    return Intervention(
        outputs=view.reader.pack_outputs(view.model, flat[read + edited :]),
        signals=list(flat[:read]),
    )


@outside_compilers
def _plan(
    model: Any, inputs: Any, signals: Any, replace: Any, add: Any
) -> tuple[Any, Any, Any, list[Any]]:
    """The model, the edited model, the checked inputs and the edit values of a call (Python
    about the model's structure, left alone by compilers)."""
    view = inspect_model(model)
    require_graph(view)
    reads = [] if signals is None else to_endpoints(view, signals)
    given = given_edits(view, replace, add)
    if not given:
        raise EndpointError("intervene needs at least one edit: pass replace= or add=.")
    built = edited_model(view, reads, [(item.endpoint, item.mode) for item in given])
    values = [value for item in given for value in item.values]
    names = [item.endpoint.name for item in given for _ in item.values]
    if [len(item.values) for item in given] != list(built.edit_sizes):
        sizes = ", ".join(
            f"{n}: {s}" for n, s in zip((i.endpoint.name for i in given), built.edit_sizes)
        )
        raise ValueError(f"Give one value per tensor of each edited signal ({sizes}).")
    inputs = checked_inputs(view, inputs)
    first = view.reader.flatten(inputs)[0]
    check_values(values, built.edits, names, first.shape[0] if len(first.shape) else None)
    return view, built, inputs, values
