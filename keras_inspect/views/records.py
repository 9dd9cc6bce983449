"""The records a model summary is made of, and how their values are written for people.

Plain data (attrs records): :class:`RoleDecision`, :class:`RoleChoice`, :class:`LayerRow`,
:class:`ExposeDefaults`. The views (text, rich tables, the graph page) and ``to_dict`` read them.
"""

from __future__ import annotations

from typing import Any

import attrs

_BUILTIN_PREFIX = "keras_inspect.adapters."

Shape = tuple[Any, ...]

#: Roles listed first, in this order; other roles (declared by plugins) follow by name.
ROLE_ORDER = ("logits", "pooling", "normalization", "feature_map")


@attrs.frozen(kw_only=True)
class RoleDecision:
    """A role a layer plays, and the plugin whose ``keras_inspect_classify_layer`` said so."""

    role: str
    plugin: str | None


@attrs.frozen(kw_only=True)
class RoleChoice:
    """The layer a search by one role picks (``find_layer_with(model, role=role)``).

    :ivar role: the role searched for.
    :ivar path: the chosen layer's path, ``None`` when no layer plays the role.
    :ivar type: the chosen layer's class name.
    :ivar plugin: the plugin that decided the chosen layer plays the role.
    :ivar error: the search's message when it found no layer.
    """

    role: str
    path: tuple[str, ...] | None = None
    type: str | None = None
    plugin: str | None = None
    error: str | None = None


@attrs.frozen(kw_only=True)
class LayerRow:
    """One layer of the summary, in graph order.

    :ivar path: layer names from the top model down.
    :ivar type: the layer's class name.
    :ivar roles: every role it plays (it is a candidate for), each with the deciding plugin.
    :ivar has_bias: whether a plugin reported a constant the layer adds to its output.
    :ivar bias_plugin: the plugin that reported it.
    :ivar output_shapes: the symbolic shape of each output tensor (``None`` if unknown).
    :ivar in_graph: whether the layer's signals can be exposed by graph surgery.
    :ivar default_for: what ``expose(model)`` takes from this layer by default:
        ``"logits"`` (its output), ``"pooling"`` (its input) and/or ``"feature_map"`` (its
        output, where no pooling layer feeds the logits: a transformer's token sequence).
    :ivar chosen_for: the roles for which a search picks this layer (see :class:`RoleChoice`).
    """

    path: tuple[str, ...]
    type: str
    roles: tuple[RoleDecision, ...] = ()
    has_bias: bool = False
    bias_plugin: str | None = None
    output_shapes: tuple[Shape, ...] | None = None
    in_graph: bool = True
    default_for: tuple[str, ...] = ()
    chosen_for: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return "/".join(self.path)

    @property
    def role_names(self) -> tuple[str, ...]:
        return tuple(decision.role for decision in self.roles)


@attrs.frozen(kw_only=True)
class ExposeDefaults:
    """What ``expose(model)`` returns without arguments, or why it cannot.

    :ivar logits: path of the logits layer (its output is the first output).
    :ivar pooling: path of the last global pooling layer (a search by role picks it).
    :ivar feature_map: path of the layer whose ``feature_map_link`` (``"input"`` of the global
        pooling layer that feeds the logits; for a transformer without one, ``"output"`` of the
        layer producing its token sequence) is the second output.
    :ivar feature_map_link: which signal of that layer.
    :ivar feature_map_shapes: shapes of the feature map's tensors.
    :ivar logits_error: the message of the search error when no logits layer is found.
    :ivar pooling_error: the same for the pooling layer.
    :ivar feature_map_error: why there is no default feature map, if there is none.
    :ivar logits_shapes: shapes of the logits layer's output tensors.
    """

    logits: tuple[str, ...] | None = None
    pooling: tuple[str, ...] | None = None
    feature_map_shapes: tuple[Shape, ...] | None = None
    logits_error: str | None = None
    pooling_error: str | None = None
    logits_shapes: tuple[Shape, ...] | None = None
    feature_map: tuple[str, ...] | None = None
    feature_map_link: str | None = None
    feature_map_error: str | None = None


def short_plugin(name: str | None) -> str:
    """A plugin name as tables show it: built-in adapters without their package prefix."""
    if name is None:
        return "?"
    return name[len(_BUILTIN_PREFIX) :] if name.startswith(_BUILTIN_PREFIX) else name


def format_shapes(shapes: tuple[Shape, ...] | None) -> str:
    if shapes is None:
        return "?"
    texts = ["(" + ", ".join("None" if d is None else str(d) for d in s) + ")" for s in shapes]
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
