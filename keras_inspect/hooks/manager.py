"""The plugin manager: pluggy's, with keras-inspect's hooks, one typed method per question, and
the caches that live as long as the registrations.

Each question method calls its hook with keyword arguments through pluggy (see :mod:`.calls`)
and rejects an answer of the wrong kind with a :class:`PluginError` naming the plugin that gave
it. What a graph reader is, and whether one fits a model, is for the model-reading layer to
check (``keras_inspect.graph.inspected``): the plugin system knows hooks, not models.
"""

from __future__ import annotations

import threading
import types
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import pluggy

from keras_inspect.errors import PluginError, describe, did_you_mean, name_of, shorten
from keras_inspect.hooks import specs
from keras_inspect.hooks.calls import all_answers, first_answer
from keras_inspect.hooks.checks import (
    MAX_ROLES,
    MAX_STRATEGIES,
    bounded,
    invalid_plugin,
    is_numeric_tensor,
    is_pair,
    items_of,
)  # fmt: skip
from keras_inspect.hooks.registry import LayerRegistry
from keras_inspect.hooks.specs import PROJECT_NAME

#: The name under which each manager registers its :class:`LayerRegistry`.
REGISTRY_PLUGIN_NAME = "keras_inspect.registry"

Strategy = Callable[[Any], Iterable[Any]]


@attrs.frozen(kw_only=True)
class PluginInfo:
    """One loaded (or failed) plugin, as ``keras-inspect plugins`` lists it."""

    name: str
    distribution: str | None = None
    version: str | None = None
    hooks: tuple[str, ...] = ()
    builtin: bool = False
    error: str | None = None


class ManagerState:
    """Everything cached for one set of registered plugins: replaced, never cleared.

    A reader holding the previous state (from before a registration) can only ever write into
    that one, so no answer outlives the plugins that gave it.
    """

    __slots__ = ("lock", "models", "owners", "readers", "roles", "strategies", "strategy_owners")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.roles: frozenset[str] | None = None
        self.strategies: dict[str, Strategy] | None = None
        #: strategy name -> the plugin that offered it (the one a search uses).
        self.strategy_owners: dict[str, str] = {}
        #: ``id`` -> a graph reader a plugin returned, already checked by the reading layer.
        self.readers: dict[int, Any] = {}
        #: model -> what the reading layer resolved it to (the owner of per-model caches).
        self.models: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        #: ``(hook, implementation function)`` -> its ``(instance, plugin name)`` candidates.
        self.owners: dict[tuple[str, Any], list[tuple[Any, str]]] = {}


class InspectPluginManager(pluggy.PluginManager):
    """A pluggy ``PluginManager`` with keras-inspect's hooks and a typed method per hook."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(specs)
        self.registry = LayerRegistry(on_change=self.invalidate)
        self._builtins: set[str] = {REGISTRY_PLUGIN_NAME}
        self._distributions: dict[str, tuple[str, str]] = {}
        self._failures: list[PluginInfo] = []
        self._lock = threading.RLock()
        self._state = ManagerState()

    @property
    def state(self) -> ManagerState:
        """The caches of the current registrations (a new object after every change)."""
        return self._state

    @property
    def distributions(self) -> Mapping[str, tuple[str, str]]:
        """Plugin name -> ``(distribution, version)`` of the plugins loaded from entry points."""
        return types.MappingProxyType(self._distributions)

    def invalidate(self) -> None:
        """Drop every cached answer: called on (un)registration and by the layer registry."""
        self._state = ManagerState()

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """pluggy's ``register``; a plugin pluggy refuses is a :class:`PluginError` naming it and
        the hook (a hook wrapper that is not a generator, arguments the hook does not have)."""
        with self._lock:
            try:
                result = super().register(plugin, name)
            except pluggy.PluginValidationError as error:
                raise invalid_plugin(name or self.get_canonical_name(plugin), error) from error
            self.invalidate()
        return result

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        with self._lock:
            result = super().unregister(plugin, name)
            self.invalidate()
        return result

    def register_builtin(self, plugin: Any, name: str) -> None:
        """Register one of keras-inspect's own plugins (listed as built-in)."""
        self.register(plugin, name)
        self._builtins.add(name)

    def is_builtin(self, name: str) -> bool:
        """Whether ``name`` is one of keras-inspect's own plugins."""
        return name in self._builtins

    def register_installed(self, plugin: Any, name: str, distribution: str, version: str) -> None:
        """Register a plugin loaded from an installed distribution's entry point."""
        self.register(plugin, name)
        self._distributions[name] = (distribution, version)

    def record_failure(self, info: PluginInfo) -> None:
        """Remember a plugin that could not be loaded, for :meth:`plugin_infos`."""
        self._failures.append(info)

    def plugin_infos(self) -> list[PluginInfo]:
        """Every registered plugin (built-ins first), then the ones that failed to load."""
        infos = []
        for name, plugin in self.list_name_plugin():
            if plugin is None:
                continue
            hooks = tuple(sorted(c.name for c in self.get_hookcallers(plugin) or () if c.name))
            dist, version = self._distributions.get(name, (None, None))
            builtin = name in self._builtins
            infos.append(
                PluginInfo(
                    name=name, distribution=dist, version=version, hooks=hooks, builtin=builtin
                )
            )
        return infos + list(self._failures)

    def check(self) -> None:
        """``check_pending`` with an error that names the plugin and the misspelled hook."""
        try:
            self.check_pending()
        except pluggy.PluginValidationError as error:
            name = self.get_name(error.plugin) or self.get_canonical_name(error.plugin)
            unknown = sorted(
                c.name for c in self.get_hookcallers(error.plugin) or () if c.spec is None
            )
            hook = unknown[0] if unknown else "?"
            known = [c for c in self.hook.__dict__ if c.startswith("keras_inspect_")]
            raise PluginError(
                f"plugin {shorten(name)} implements a hook keras-inspect does not define: "
                f"{shorten(hook)}.{did_you_mean(hook, known)} Hook names start with "
                "'keras_inspect_'."
            ) from error

    # -- one method per question -------------------------------------------------------------

    def classify(self, layer: Any, role: str, entry: Any = None) -> tuple[bool, str | None]:
        """Whether ``layer`` plays ``role`` (at the place ``entry`` of a walk, if given), and
        which plugin decided (``None``: nobody did).

        Searches remember these answers per model (see ``InspectedModel``); this asks the
        plugins every time.
        """
        if not isinstance(role, str):
            raise TypeError(f"role must be a string; received {describe(role)}.")
        result, plugin = first_answer(
            self, "keras_inspect_classify_layer", layer=layer, role=role, entry=entry
        )
        if result is None:
            return False, None
        if isinstance(result, bool):
            return result, plugin
        raise PluginError(
            f"plugin {shorten(plugin)} returned {describe(result)} from keras_inspect_classify_layer "
            f"for layer {name_of(layer)!r} and role {shorten(role)}; expected True, False or None."
        )

    def layer_bias(self, layer: Any) -> tuple[Any | None, str | None]:
        """The constant ``layer`` adds to its output (or ``None``), and which plugin gave it.

        The answer is checked to be a numeric tensor; whether it broadcasts to the layer's
        output is checked where the output's shape is read (``keras_inspect.answers.biases``).
        """
        result, plugin = first_answer(self, "keras_inspect_layer_bias", layer=layer)
        if result is None:
            return None, None
        if not is_numeric_tensor(result):
            raise PluginError(
                f"plugin {shorten(plugin)} returned {describe(result)} from keras_inspect_layer_bias for "
                f"layer {name_of(layer)!r}; expected a numeric tensor (backend tensor, Keras "
                "variable or NumPy array) or None."
            )
        return result, plugin

    def flavour_answer(self, model: Any) -> tuple[Any, str | None]:
        """What the ``keras_inspect_model_flavour`` hook answers for ``model``, and who answered
        (checked by the model-reading layer, which knows what a graph reader is)."""
        return first_answer(self, "keras_inspect_model_flavour", model=model)

    def strategies(self) -> dict[str, Strategy]:
        """All named search strategies; a later-registered plugin wins a name clash."""
        return dict(self.strategy_table())

    def strategy_table(self) -> Mapping[str, Strategy]:
        """:meth:`strategies` without a copy, for searches (do not change it)."""
        state = self.state
        if state.strategies is None:
            merged: dict[str, Strategy] = {}
            owners: dict[str, str] = {}
            hook = "keras_inspect_search_strategies"
            for result, plugin in all_answers(self, hook):
                if not isinstance(result, Mapping):
                    raise PluginError(
                        f"plugin {shorten(plugin)} returned {describe(result)} from {hook}; expected a "
                        "mapping of strategy names to callables."
                    )
                for item in bounded(items_of(result), MAX_STRATEGIES, plugin, hook, "strategies"):
                    name, strategy = item if is_pair(item) else (item, None)
                    if not isinstance(name, str) or not callable(strategy):
                        raise PluginError(
                            f"plugin {shorten(plugin)} offered strategy {shorten(name)}: "
                            f"{shorten(strategy)}; expected a string name mapped to a callable "
                            "model -> iterable of layers."
                        )
                    merged[name], owners[name] = strategy, plugin
            state.strategy_owners = owners
            state.strategies = merged
        return state.strategies

    def strategy_owner(self, name: str) -> str:
        """The plugin whose strategy ``name`` searches use (``"?"`` if none offers it)."""
        self.strategy_table()
        return self.state.strategy_owners.get(name, "?")

    def roles(self) -> frozenset[str]:
        """Every role name some plugin declared."""
        state = self.state
        if state.roles is None:
            names: set[str] = set()
            hook = "keras_inspect_roles"
            for result, plugin in all_answers(self, hook):
                if isinstance(result, str) or not isinstance(result, Iterable):
                    raise PluginError(
                        f"plugin {shorten(plugin)} returned {describe(result)} from {hook}; "
                        "expected an iterable of role names."
                    )
                for role in bounded(result, MAX_ROLES, plugin, hook, "role names"):
                    if not isinstance(role, str):
                        raise PluginError(
                            f"plugin {shorten(plugin)} declared role {describe(role)}; role names must "
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
