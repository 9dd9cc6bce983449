"""Hook specifications of keras-inspect.

Every hook a plugin may implement is declared here, prefixed ``keras_inspect_``. A plugin is any
module or object with functions of these names decorated with :data:`keras_inspect.hookimpl`; it
may implement any subset of the hooks and accept any subset of each hook's arguments.

The docstrings below are the contract; ``docs/hooks.md`` documents each hook by hand for plugin
authors, and a test checks that page against the signatures here. The plugin system knows no
more of a model than these contracts say: a flavour's graph reader is a
:class:`keras_inspect.GraphReader`, which the model-reading layer above checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pluggy

from keras_inspect.hooks.calls import ImplementationMarker

#: The one name of the project in pluggy: markers, manager and entry-point group.
PROJECT_NAME = "keras_inspect"
ENTRY_POINT_GROUP = "keras_inspect"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a plugin's hook implementations; re-exported as ``keras_inspect.hookimpl``. (pluggy's
#: own ``HookimplMarker("keras_inspect")`` works too; this one lets errors and ``summary``
#: name the plugin that answered.)
hookimpl = ImplementationMarker(PROJECT_NAME)


@hookspec(firstresult=True)
def keras_inspect_classify_layer(layer: Any, role: str, entry: Any) -> bool | None:
    """Decide whether ``layer`` plays ``role`` in a model.

    Asked once per layer, place and role when searching (``find_layer_with(..., role=...)``,
    ``get_logits_layer``, ``get_global_pooling_layer``) and when summarising a model.

    :param layer: a layer object (Keras 3, or Keras 2 for the ``tf_keras`` adapter). Nested models
        are layers too and are asked like any other layer.
    :param role: the role being asked about, an open string. Built-in roles are
        ``"normalization"``, ``"pooling"``, ``"logits"``, ``"feature_map"`` and
        ``"token_embedding"``; plugins add their own by implementing :func:`keras_inspect_roles`.
    :param entry: where the layer is asked about: a :class:`keras_inspect.LayerEntry` (its
        ``path``, its ``container`` and the ``calls`` recorded there), or ``None`` when the layer
        is asked about alone. A layer called in two models may play a role at one place only
        (a token embedding looks tokens up inside a backbone, and produces logits where a
        language model calls it in reverse). Implementations that do not need it leave it out
        of their signature.
    :return: ``True`` if the layer plays the role, ``False`` if it decidedly does not (the question
        is settled, no later plugin is asked), or ``None`` for "no opinion, ask the next plugin".

    Stops at the first non-``None`` result. Plugins registered later are asked first, so a
    third-party plugin overrides the built-in adapters; use ``tryfirst=True`` to be asked before
    the other third-party plugins, ``trylast=True`` for a fallback.
    """


@hookspec(firstresult=True)
def keras_inspect_layer_bias(layer: Any) -> Any | None:
    """Return the constant that ``layer`` adds to its output, independent of its input.

    Used by ``layers_with_biases`` and ``biases`` (FullGrad-style attributions need every bias).

    :param layer: a layer object.
    :return: a tensor (a backend tensor, a Keras variable or a NumPy array) broadcastable to the
        layer's output: its channel dimension sits where the layer puts channels (a
        ``channels_first`` convolution returns shape ``(C, 1, 1)``), in the layer's compute dtype.
        Implicit biases count: an inference-mode BatchNormalization adds
        ``beta - gamma * moving_mean / sqrt(moving_variance + epsilon)``. Return ``None`` when the
        layer adds no constant or when the plugin has no opinion.

    Stops at the first non-``None`` result. A value that is not a numeric tensor is rejected with
    an error naming the plugin.
    """


@hookspec
def keras_inspect_search_strategies() -> Mapping[str, Callable[[Any], Iterable[Any]]] | None:
    """Offer named strategies that order a model's layers for a search.

    A strategy is a callable ``strategy(model) -> iterable of layers``; ``find_layer_with``
    returns the first layer of that iterable that matches the search. Built-in strategies are
    ``"reverse"`` (last to first in graph order, the default; a layer before the sub-layers it
    calls outside any graph) and ``"forward"``.

    :return: a mapping of strategy names to callables, or ``None``. Called on every plugin; the
        mappings are merged, a plugin registered later wins a name clash.
    """


@hookspec
def keras_inspect_roles() -> Iterable[str] | None:
    """Declare the role names a plugin can classify.

    Roles are open strings; declaring them lets keras-inspect reject a misspelled role (with close
    matches) instead of silently finding nothing, and lets ``summary`` list them.

    :return: an iterable of role names, or ``None``. Called on every plugin; the names are merged.
    """


@hookspec(firstresult=True)
def keras_inspect_model_flavour(model: Any) -> Any | None:
    """Choose the graph reader that reads ``model``: which flavour of Keras built it.

    Keras 3 and Keras 2 (``tf_keras``) keep their graphs differently; each built-in flavour
    answers for the models it knows, through one :class:`~keras_inspect.GraphReader` subclass.

    :param model: the object passed to a public function as a model (it may be anything; each
        flavour decides whether it is a model it reads).
    :return: a :class:`~keras_inspect.GraphReader` instance, or ``None`` when the plugin does not
        read this kind of object. Anything else is rejected with an error naming the plugin.

    Stops at the first non-``None`` result. The built-in Keras 3 reader answers last
    (``trylast``), so a plugin can supply its own reader for some models.
    """
