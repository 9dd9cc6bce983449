"""``stateless_gradients``: the gradient computation as a pure function of the model's weights.

A function compiled by ``jax.jit`` reads a Keras model's variables when it is traced: they become
constants of the compiled program, so a jitted ``ki.gradients`` keeps explaining the weights it
was traced with (a model randomisation check would silently get the maps of the unrandomised
model). Keras' own answer is ``model.stateless_call(trainable_values, non_trainable_values, x)``;
this is the same for explanations: the function built for a model, its signals and target takes
the values of the model's variables as arguments, so it can be jitted once and called with
changing weights, vmapped over sets of weights, and differentiated with respect to them (a loss
on explanations). The values stand for the variables while it runs (Keras' ``StatelessScope``);
nothing is assigned to the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras

from keras_inspect.autograph import plain_python
from keras_inspect.errors import describe, name_of
from keras_inspect.signals.gradients import Gradients, gradients, view_for_gradients

Explain = Callable[..., Gradients]


@plain_python
def stateless_gradients(
    model: Any,
    signals: Any = None,
    target: Any = None,
    *,
    logits: Any = None,
    differentiable: bool = False,
) -> Explain:
    """A pure form of :func:`keras_inspect.gradients` for ``model``, ``signals`` and ``target``.

    Returns ``explain(trainable_values, non_trainable_values, inputs, *, target=..., replace=None,
    add=None) -> Gradients``, with the values in the order of ``model.trainable_variables`` and
    ``model.non_trainable_variables`` (as ``model.stateless_call`` takes them). It gives what
    ``ki.gradients`` gives for a model holding those values, and reads no variable: under
    ``jax.jit`` it is traced once for any weights. Keras 3 models only (on every backend).
    """
    view = view_for_gradients(model)
    if view.reader.name != "keras3":
        raise TypeError(
            f"stateless_gradients takes Keras 3 models; {name_of(model)!r} is a {view.reader.name} "
            "model (its variables cannot be stood in for): use keras_inspect.gradients."
        )
    trainable = list(model.trainable_variables)
    non_trainable = list(model.non_trainable_variables)

    def explain(
        trainable_values: Sequence[Any],
        non_trainable_values: Sequence[Any],
        inputs: Any,
        *,
        target: Any = target,
        replace: Any = None,
        add: Any = None,
    ) -> Gradients:
        mapping = [
            *_paired(trainable, trainable_values, "trainable", model),
            *_paired(non_trainable, non_trainable_values, "non-trainable", model),
        ]
        with keras.StatelessScope(state_mapping=mapping):
            return gradients(
                model, inputs, signals, target, logits=logits, replace=replace, add=add,
                differentiable=differentiable,
            )  # fmt: skip

    return explain


def _paired(variables: list[Any], values: Any, kind: str, model: Any) -> list[tuple[Any, Any]]:
    if not isinstance(values, (list, tuple)) or len(values) != len(variables):
        count = len(values) if isinstance(values, (list, tuple)) else describe(values)
        raise ValueError(
            f"{name_of(model)!r} has {len(variables)} {kind} variables; received {count} values "
            f"(pass [v.value for v in model.{kind.replace('-', '_')}_variables], or new values "
            "in that order)."
        )
    return list(zip(variables, values))
