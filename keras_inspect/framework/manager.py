"""The plugin manager: pluggy's, with keras-inspect's hooks, registration and caches.

Registration is guarded by a lock and wraps each implementation so that hook calls can name the
plugin that answered or failed (:mod:`.hook_calls`); the typed calls live in :mod:`.hook_facade`,
the loading of built-in and entry-point plugins in :mod:`.plugin_loader`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .errors import PluginError
from .hook_calls import attribute_implementations
from .hook_facade import HookFacade
from .hookspecs import PROJECT_NAME
from .layer_registry import LayerRegistry

#: The name under which each manager registers its :class:`LayerRegistry`.
REGISTRY_PLUGIN_NAME = "keras_inspect.registry"


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

    __slots__ = ("lock", "models", "readers", "roles", "strategies")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.roles: frozenset[str] | None = None
        self.strategies: dict[str, Callable[[Any], Iterable[Any]]] | None = None
        # id -> a graph reader a plugin returned, already checked to be one.
        self.readers: dict[int, Any] = {}
        # model -> its InspectedModel (see inspected_model.py), the owner of per-model caches.
        self.models: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


class InspectPluginManager(HookFacade, pluggy.PluginManager):
    """A pluggy ``PluginManager`` with keras-inspect's hooks and a typed facade over them."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.registry = LayerRegistry(on_change=self.invalidate)
        self.builtin_names: list[str] = []
        self.distributions: dict[str, tuple[str, str]] = {}
        self.failures: list[PluginInfo] = []
        self._lock = threading.RLock()
        self._state = ManagerState()

    @property
    def state(self) -> ManagerState:
        """The caches of the current registrations (a new object after every change)."""
        return self._state

    def invalidate(self) -> None:
        """Drop every cached answer: called on (un)registration and by the layer registry."""
        self._state = ManagerState()

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        with self._lock:
            result = super().register(plugin, name)
            if result is not None:
                attribute_implementations(self, plugin)
            self.invalidate()
        return result

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        with self._lock:
            result = super().unregister(plugin, name)
            self.invalidate()
        return result

    def plugin_infos(self) -> list[PluginInfo]:
        """Every registered plugin (built-ins first), then the ones that failed to load."""
        infos = []
        for name, plugin in self.list_name_plugin():
            if plugin is None:
                continue
            hooks = tuple(sorted(c.name for c in self.get_hookcallers(plugin) or () if c.name))
            dist, version = self.distributions.get(name, (None, None))
            infos.append(
                PluginInfo(
                    name=name,
                    distribution=dist,
                    version=version,
                    hooks=hooks,
                    builtin=name in self.builtin_names or name == REGISTRY_PLUGIN_NAME,
                )
            )
        return infos + list(self.failures)

    def check(self) -> None:
        """``check_pending`` with an error that names the plugin and the misspelled hook."""
        try:
            self.check_pending()
        except pluggy.PluginValidationError as error:
            raise PluginError(
                f"plugin {error.plugin!r} implements a hook keras-inspect does not define: "
                f"{error}. Hook names start with 'keras_inspect_'."
            ) from error
