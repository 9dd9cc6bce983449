"""The typed facade over the hooks: one method per question, answers checked at the boundary.

Each method calls its hook with keyword arguments through pluggy (see :mod:`.hook_calls`) and
rejects an answer of the wrong kind with a :class:`PluginError` naming the plugin that gave it.
Mixed into :class:`~keras_inspect.framework.manager.InspectPluginManager`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .errors import PluginError, describe, did_you_mean, name_of, shorten
from .graph_reader import GraphReader
from .hook_calls import all_answers, first_answer

if TYPE_CHECKING:
    from .manager import ManagerState

Strategy = Callable[[Any], Iterable[Any]]


class HookFacade:
    """Typed, validated calls of every hook (a mixin of the plugin manager)."""

    state: ManagerState

    def classify(self, layer: Any, role: str) -> tuple[bool, str | None]:
        """Whether ``layer`` plays ``role``, and which plugin decided (``None``: nobody did).

        Searches remember these answers per model (see ``InspectedModel``); this asks the
        plugins every time.
        """
        if not isinstance(role, str):
            raise TypeError(f"role must be a string; received {describe(role)}.")
        result, plugin = first_answer(self, "keras_inspect_classify_layer", layer=layer, role=role)  # type: ignore[arg-type]
        if result is None:
            return False, None
        if isinstance(result, bool):
            return result, plugin
        raise PluginError(
            f"plugin {plugin!r} returned {describe(result)} from keras_inspect_classify_layer "
            f"for layer {name_of(layer)!r} and role {shorten(role)}; expected True, False or None."
        )

    def layer_bias(
        self, layer: Any, reader: GraphReader | None = None
    ) -> tuple[Any | None, str | None]:
        """The constant ``layer`` adds to its output (or ``None``), and which plugin gave it.

        ``reader`` reads the layer's output shape (to check that the bias broadcasts to it);
        by default the flavour hook is asked for it.
        """
        result, plugin = first_answer(self, "keras_inspect_layer_bias", layer=layer)  # type: ignore[arg-type]
        if result is None:
            return None, None
        if not _is_numeric_tensor(result):
            raise PluginError(
                f"plugin {plugin!r} returned {describe(result)} from keras_inspect_layer_bias for "
                f"layer {name_of(layer)!r}; expected a numeric tensor (backend tensor, Keras "
                "variable or NumPy array) or None."
            )
        reader = reader if reader is not None else self.reader(layer)
        shapes = None if reader is None else reader.output_shapes(layer)
        if shapes is not None and len(shapes) == 1 and not _broadcasts(result.shape, shapes[0]):
            raise PluginError(
                f"plugin {plugin!r} returned a bias of shape {tuple(result.shape)} from "
                f"keras_inspect_layer_bias for layer {name_of(layer)!r}, whose output has shape "
                f"{shapes[0]}; a bias must broadcast to the layer's output (channels where the "
                "layer puts them, e.g. (C,) or (C, 1, 1))."
            )
        return result, plugin

    def strategies(self) -> dict[str, Strategy]:
        """All named search strategies; a later-registered plugin wins a name clash."""
        return dict(self.strategy_table())

    def strategy_table(self) -> Mapping[str, Strategy]:
        """:meth:`strategies` without a copy, for searches (do not change it)."""
        state = self.state
        if state.strategies is None:
            merged: dict[str, Strategy] = {}
            for result, plugin in all_answers(self, "keras_inspect_search_strategies"):  # type: ignore[arg-type]
                if not isinstance(result, Mapping):
                    raise PluginError(
                        f"plugin {plugin!r} returned {describe(result)} from "
                        "keras_inspect_search_strategies; expected a mapping of strategy names "
                        "to callables."
                    )
                for name, strategy in result.items():
                    if not isinstance(name, str) or not callable(strategy):
                        raise PluginError(
                            f"plugin {plugin!r} offered strategy {shorten(name)}: "
                            f"{shorten(strategy)}; expected a string name mapped to a callable "
                            "model -> iterable of layers."
                        )
                    merged[name] = strategy
            state.strategies = merged
        return state.strategies

    def roles(self) -> frozenset[str]:
        """Every role name some plugin declared."""
        state = self.state
        if state.roles is None:
            names: set[str] = set()
            for result, plugin in all_answers(self, "keras_inspect_roles"):  # type: ignore[arg-type]
                if isinstance(result, str) or not isinstance(result, Iterable):
                    raise PluginError(
                        f"plugin {plugin!r} returned {describe(result)} from keras_inspect_roles; "
                        "expected an iterable of role names."
                    )
                for role in result:
                    if not isinstance(role, str):
                        raise PluginError(
                            f"plugin {plugin!r} declared role {describe(role)}; role names must "
                            "be strings."
                        )
                    names.add(role)
            state.roles = frozenset(names)
        return state.roles

    def check_role(self, role: Any) -> str:
        """Return ``role`` if some plugin declared it; raise with close matches otherwise."""
        if not isinstance(role, str):
            raise TypeError(f"role must be a string; received {describe(role)}.")
        known = self.roles()
        if role not in known:
            raise ValueError(
                f"Unknown role {shorten(role)}.{did_you_mean(role, known)} Known roles: "
                f"{', '.join(sorted(known))}. Plugins declare new roles with the "
                "keras_inspect_roles hook or register_layer(..., roles=...)."
            )
        return role

    def reader(self, model: Any) -> GraphReader | None:
        """The graph reader of ``model``'s flavour, or ``None`` if no plugin reads it."""
        state = self.state
        result, plugin = first_answer(self, "keras_inspect_model_flavour", model=model)  # type: ignore[arg-type]
        if result is None or id(result) in state.readers:
            return result
        if not isinstance(result, GraphReader):
            methods = ", ".join(sorted(GraphReader.__abstractmethods__))
            raise PluginError(
                f"plugin {plugin!r} returned {describe(result)} from keras_inspect_model_flavour "
                f"for model {name_of(model)!r}; expected a keras_inspect.GraphReader (a subclass "
                f"implementing {methods})."
            )
        state.readers[id(result)] = result
        return result

    #: The name this method had before graph readers were one class (kept for plugins).
    flavour = reader


def _is_numeric_tensor(value: Any) -> bool:
    if isinstance(value, (str, bytes, bool)) or value is None:
        return False
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is None or dtype is None:
        return False
    text = str(getattr(dtype, "name", dtype)).lower()
    return any(kind in text for kind in ("float", "int", "bfloat", "half", "double"))


def _broadcasts(shape: Any, output: tuple[Any, ...]) -> bool:
    """Whether a constant of ``shape`` can be added to an output of shape ``output``."""
    try:
        dims = [None if d is None else int(d) for d in shape]
    except (TypeError, ValueError):
        return True  # a dynamic shape: nothing to check statically
    if len(dims) > len(output):
        return False
    for dim, out in zip(reversed(dims), reversed(output)):
        if dim is None or dim == 1 or out is None or dim == out:
            continue
        return False
    return True
