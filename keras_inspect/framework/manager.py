"""The plugin manager: built-in adapters first, then entry points, with a typed facade.

``plugin_manager()`` returns the shared, lazily loaded manager the public API uses;
``new_plugin_manager()`` builds a fresh one (tests use it for isolation) and
``using_plugin_manager(pm)`` makes one current for a block of code in this thread/context.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .errors import PluginError, did_you_mean
from .markers import ENTRY_POINT_GROUP, PROJECT_NAME
from .registry import AdapterRegistry

DISABLE_AUTOLOAD_ENV = "KERAS_INSPECT_DISABLE_PLUGIN_AUTOLOAD"
STRICT_PLUGINS_ENV = "KERAS_INSPECT_STRICT_PLUGINS"
REGISTRY_PLUGIN_NAME = "keras_inspect.registry"

_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
# What the framework calls on a flavour adapter (keras_inspect.framework.flavour.ModelFlavour).
FLAVOUR_METHODS = (
    "is_layer", "has_graph", "children", "calls", "call_tensors", "tensor_origin", "inputs",
    "outputs", "build_model",
)  # fmt: skip


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE_WORDS


@attrs.frozen(kw_only=True)
class PluginInfo:
    """One loaded (or failed) plugin, as ``keras-inspect plugins`` lists it."""

    name: str
    distribution: str | None = None
    version: str | None = None
    hooks: tuple[str, ...] = ()
    builtin: bool = False
    error: str | None = None


class InspectPluginManager(pluggy.PluginManager):
    """A pluggy ``PluginManager`` with keras-inspect's hooks and a typed facade over them."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.registry = AdapterRegistry()
        self.builtin_names: list[str] = []
        self.distributions: dict[str, tuple[str, str]] = {}
        self.failures: list[PluginInfo] = []
        # Bumped on every (un)registration; caches keyed on it are dropped when it changes.
        self.generation = 0
        self._state = _State(0)
        self._lock = threading.RLock()

    # -- registration ------------------------------------------------------------------------

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        with self._lock:
            result = super().register(plugin, name)
            self._changed()
        return result

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        with self._lock:
            result = super().unregister(plugin, name)
            self._changed()
        return result

    def _changed(self) -> None:
        # One new state object replaces every cache at once: a reader holding the old one (from
        # before the change) can only ever write into that old one, never into the new state.
        with self._lock:
            self.generation += 1
            self._state = _State(self.generation)

    def _hookimpls(self, hook_name: str, state: _State | None = None) -> list[Any]:
        """Implementations of a hook in calling order (last registered first)."""
        table = (state or self._state).impls
        impls = table.get(hook_name)
        if impls is None:
            caller = getattr(self.hook, hook_name)
            impls = list(reversed(caller.get_hookimpls()))
            table[hook_name] = impls
        return impls

    # -- calling -----------------------------------------------------------------------------

    def first_result(self, hook_name: str, **kwargs: Any) -> tuple[Any, str | None]:
        """Call a firstresult hook; return ``(result, name of the plugin that gave it)``.

        Unlike ``pm.hook.<name>(...)``, this knows which plugin answered, so errors and
        ``summary`` can name it.
        """
        return self._first_result(self._state, hook_name, kwargs)

    def _first_result(
        self, state: _State, hook_name: str, kwargs: dict[str, Any]
    ) -> tuple[Any, str | None]:
        for impl in self._hookimpls(hook_name, state):
            if impl.hookwrapper or impl.wrapper:
                return self._call_whole(hook_name, kwargs), None
            try:
                result = impl.function(*[kwargs[name] for name in impl.argnames])
            except Exception as error:
                raise _hook_error(impl.plugin_name, hook_name, kwargs, error) from error
            if result is not None:
                return result, impl.plugin_name
        return None, None

    def all_results(self, hook_name: str, **kwargs: Any) -> list[tuple[Any, str]]:
        """Call a collecting hook; return ``(result, plugin name)`` pairs, first registered first."""
        pairs = []
        for impl in reversed(self._hookimpls(hook_name, self._state)):
            try:
                result = impl.function(*[kwargs[name] for name in impl.argnames])
            except Exception as error:
                raise _hook_error(impl.plugin_name, hook_name, kwargs, error) from error
            if result is not None:
                pairs.append((result, impl.plugin_name))
        return pairs

    def _call_whole(self, hook_name: str, kwargs: dict[str, Any]) -> Any:
        try:
            return getattr(self.hook, hook_name)(**kwargs)
        except PluginError:
            raise
        except Exception as error:
            raise _hook_error("<a hook wrapper chain>", hook_name, kwargs, error) from error

    # -- typed facade ------------------------------------------------------------------------

    def classify(self, layer: Any, role: str) -> tuple[bool, str | None]:
        """Whether ``layer`` plays ``role``, and which plugin decided (``None``: nobody did).

        Answers are remembered per layer and role until a plugin is (un)registered or the layer
        gets built, so searching a large model again costs a dictionary look-up per layer.
        """
        # The cache is consulted first: only strings are ever stored as roles, so a hit implies
        # a valid role, and the common case (a repeated search) costs two look-ups.
        try:
            hit = self._state.classified[role][id(layer)]
        except (KeyError, TypeError):
            hit = None
        if hit is not None and hit[0]() is layer and hit[1] == getattr(layer, "built", None):
            return hit[2]
        if not isinstance(role, str):
            raise TypeError(
                f"role must be a string; received {_short(role)} of type {type(role).__name__}."
            )
        return self._classifier(role)(layer)

    def _classifier(self, role: str) -> Callable[[Any], tuple[bool, str | None]]:
        """A function ``layer -> classify(layer, role)`` bound to the current state (hot loops)."""
        state = self._state
        cache = state.classified.get(role)
        if cache is None:
            cache = state.classified.setdefault(role, {})
        first_result = self._first_result
        kwargs_role = role

        def classify(layer: Any) -> tuple[bool, str | None]:
            key = id(layer)
            built = getattr(layer, "built", None)
            hit = cache.get(key)
            if hit is not None and hit[0]() is layer and hit[1] == built:
                return hit[2]
            result, plugin = first_result(
                state, "keras_inspect_classify_layer", {"layer": layer, "role": kwargs_role}
            )
            if result is None:
                answer: tuple[bool, str | None] = (False, None)
            elif isinstance(result, bool):
                answer = (result, plugin)
            else:
                raise PluginError(
                    f"plugin {plugin!r} returned {_short(result)} of type "
                    f"{type(result).__name__} from keras_inspect_classify_layer for layer "
                    f"{_layer_name(layer)!r} and role {kwargs_role!r}; expected True, False or "
                    "None."
                )
            try:
                ref = weakref.ref(layer, _forget(cache, key))
            except TypeError:
                return answer  # not weak-referenceable: not cached
            cache[key] = (ref, built, answer)
            return answer

        return classify

    def layer_bias(self, layer: Any) -> tuple[Any | None, str | None]:
        """The constant ``layer`` adds to its output (or ``None``), and which plugin gave it."""
        result, plugin = self.first_result("keras_inspect_layer_bias", layer=layer)
        if result is not None and not _is_numeric_tensor(result):
            raise PluginError(
                f"plugin {plugin!r} returned {_short(result)} of type {type(result).__name__} "
                f"from keras_inspect_layer_bias for layer {_layer_name(layer)!r}; expected a "
                "numeric tensor (backend tensor, Keras variable or NumPy array) or None."
            )
        return result, plugin

    def strategies(self) -> dict[str, Callable[[Any], Iterable[Any]]]:
        """All named search strategies; a later-registered plugin wins a name clash."""
        state = self._state
        if state.strategies is None:
            state.strategies = self._collect_strategies()
        return dict(state.strategies)

    def _collect_strategies(self) -> dict[str, Callable[[Any], Iterable[Any]]]:
        merged: dict[str, Callable[[Any], Iterable[Any]]] = {}
        for result, plugin in self.all_results("keras_inspect_search_strategies"):
            if not isinstance(result, Mapping):
                raise PluginError(
                    f"plugin {plugin!r} returned {_short(result)} of type "
                    f"{type(result).__name__} from keras_inspect_search_strategies; expected a "
                    "mapping of strategy names to callables."
                )
            for name, strategy in result.items():
                if not isinstance(name, str) or not callable(strategy):
                    raise PluginError(
                        f"plugin {plugin!r} offered strategy {name!r}: {strategy!r}; expected a "
                        "string name mapped to a callable model -> iterable of layers."
                    )
                merged[name] = strategy
        return merged

    def roles(self) -> frozenset[str]:
        """Every role name some plugin declared."""
        state = self._state
        if state.roles is None:
            state.roles = self._collect_roles()
        return state.roles

    def _collect_roles(self) -> frozenset[str]:
        names: set[str] = set()
        for result, plugin in self.all_results("keras_inspect_roles"):
            if isinstance(result, str) or not isinstance(result, Iterable):
                raise PluginError(
                    f"plugin {plugin!r} returned {_short(result)} from keras_inspect_roles; "
                    "expected an iterable of role names."
                )
            for role in result:
                if not isinstance(role, str):
                    raise PluginError(
                        f"plugin {plugin!r} declared role {role!r}; role names must be strings."
                    )
                names.add(role)
        return frozenset(names)

    def flavour(self, model: Any) -> Any | None:
        """The flavour adapter that reads ``model``'s graph, or ``None`` if none handles it."""
        state = self._state
        result, plugin = self._first_result(state, "keras_inspect_model_flavour", {"model": model})
        if result is None or id(result) in state.flavours:
            return result
        missing = [name for name in FLAVOUR_METHODS if not callable(getattr(result, name, None))]
        if missing:
            raise PluginError(
                f"plugin {plugin!r} returned {_short(result)} of type {type(result).__name__} "
                f"from keras_inspect_model_flavour for model {_layer_name(model)!r}; expected a "
                f"flavour adapter (see keras_inspect.framework.flavour.ModelFlavour), which "
                f"needs the method(s) {', '.join(missing)}."
            )
        state.flavours[id(result)] = result
        return result

    def check_role(self, role: Any) -> str:
        """Return ``role`` if some plugin declared it; raise with close matches otherwise."""
        if not isinstance(role, str):
            raise TypeError(f"role must be a string; received {role!r} of type {type(role).__name__}.")
        known = self.roles()
        if role not in known:
            raise ValueError(
                f"Unknown role {role!r}.{did_you_mean(role, known)} Known roles: "
                f"{', '.join(sorted(known))}. Plugins declare new roles with the "
                "keras_inspect_roles hook or register_layer(..., roles=...)."
            )
        return role

    # -- introspection -----------------------------------------------------------------------

    def plugin_infos(self) -> list[PluginInfo]:
        """Every registered plugin (built-ins first), then the ones that failed to load."""
        infos = []
        for name, plugin in self.list_name_plugin():
            if plugin is None:
                continue
            hooks = tuple(
                sorted(c.name for c in self.get_hookcallers(plugin) or () if c.name)
            )
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

    # -- loading -----------------------------------------------------------------------------

    def load_builtins(self) -> None:
        from keras_inspect.adapters import DEFAULT_PLUGINS

        for module_name in DEFAULT_PLUGINS:
            module = importlib.import_module(module_name)
            self.register(module, name=module_name)
            self.builtin_names.append(module_name)

    def load_entrypoints(self, *, strict: bool | None = None) -> None:
        """Register every plugin of the ``keras_inspect`` entry-point group.

        A plugin that fails to import or to validate is reported (a warning naming its
        distribution) and skipped, unless ``strict`` (default: ``$KERAS_INSPECT_STRICT_PLUGINS``)
        asks for an error.
        """
        if strict is None:
            strict = _env_flag(STRICT_PLUGINS_ENV)
        # Imported here, not at module level: it costs import time and most processes that use
        # keras-inspect never load the entry points of a second manager.
        from importlib import metadata

        seen: set[str] = set()
        for dist in metadata.distributions():
            for entry_point in dist.entry_points:
                if entry_point.group != ENTRY_POINT_GROUP or entry_point.name in seen:
                    continue
                seen.add(entry_point.name)
                if self.get_plugin(entry_point.name) is not None:
                    continue
                if self.is_blocked(entry_point.name):
                    continue
                self._load_one(entry_point, dist, strict)

    def _load_one(self, entry_point: Any, dist: Any, strict: bool) -> None:
        dist_name = dist.metadata["Name"] or "<unknown distribution>"
        version = dist.version
        try:
            plugin = entry_point.load()
        except Exception as error:
            self._fail(entry_point.name, dist_name, version, "could not be imported", error, strict)
            return
        if plugin is None:
            # An optional in-tree plugin whose library is missing exports None: nothing to do.
            return
        try:
            self.register(plugin, name=entry_point.name)
            self._check_plugin(entry_point.name, plugin)
        except Exception as error:
            with contextlib.suppress(Exception):
                self.unregister(name=entry_point.name)
            self._fail(entry_point.name, dist_name, version, "is not a valid plugin", error, strict)
            return
        self.distributions[entry_point.name] = (dist_name, version)

    def _check_plugin(self, name: str, plugin: Any) -> None:
        known = set(self.hook.__dict__)
        for caller in self.get_hookcallers(plugin) or ():
            if caller.name not in known or caller.spec is None:
                raise PluginError(
                    f"plugin {name!r} implements unknown hook {caller.name!r}."
                    f"{did_you_mean(caller.name, sorted(known))}"
                )

    def _fail(
        self, name: str, dist: str, version: str, what: str, error: Exception, strict: bool
    ) -> None:
        message = (
            f"keras-inspect plugin {name!r} from distribution {dist!r} {version} {what}: "
            f"{type(error).__name__}: {error}"
        )
        if strict:
            raise PluginError(message + f" (unset {STRICT_PLUGINS_ENV} to skip it)") from error
        warnings.warn(message + "; it was skipped.", RuntimeWarning, stacklevel=4)
        self.failures.append(
            PluginInfo(name=name, distribution=dist, version=version, error=message)
        )

    def check(self) -> None:
        """``check_pending`` with an error that names the plugin and the misspelled hook."""
        try:
            self.check_pending()
        except pluggy.PluginValidationError as error:
            raise PluginError(
                f"plugin {error.plugin!r} implements a hook keras-inspect does not define: "
                f"{error}. Hook names start with 'keras_inspect_'."
            ) from error


class _State:
    """Everything cached for one generation of the registrations (replaced, never cleared)."""

    __slots__ = ("classified", "flavours", "generation", "impls", "roles", "strategies")

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.impls: dict[str, list[Any]] = {}
        # role -> id(layer) -> (weak reference, layer.built, (answer, plugin))
        self.classified: dict[str, dict[int, tuple[Any, Any, tuple[bool, str | None]]]] = {}
        self.roles: frozenset[str] | None = None
        self.strategies: dict[str, Callable[[Any], Iterable[Any]]] | None = None
        # id -> flavour adapter already checked to have every method the framework calls.
        self.flavours: dict[int, Any] = {}


def _forget(cache: dict[int, Any], key: int) -> Callable[[Any], None]:
    def drop(ref: Any) -> None:
        # Only drop the entry of the layer that died, not of a new layer that reused its id.
        entry = cache.get(key)
        if entry is not None and entry[0] is ref:
            cache.pop(key, None)

    return drop


def _layer_name(layer: Any) -> str:
    return str(getattr(layer, "name", type(layer).__name__))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _hook_error(plugin: str, hook_name: str, kwargs: dict[str, Any], error: Exception) -> PluginError:
    if isinstance(error, PluginError):
        return error
    about = ""
    if "layer" in kwargs:
        about = f" for layer {_layer_name(kwargs['layer'])!r}"
    if "role" in kwargs:
        about += f" and role {kwargs['role']!r}"
    return PluginError(
        f"plugin {plugin!r} raised {type(error).__name__} in hook {hook_name}{about}: {error}"
    )


def _is_numeric_tensor(value: Any) -> bool:
    if isinstance(value, (str, bytes, bool)) or value is None:
        return False
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is None or dtype is None:
        return False
    text = str(getattr(dtype, "name", dtype)).lower()
    return any(kind in text for kind in ("float", "int", "bfloat", "half", "double"))


def new_plugin_manager(
    *, builtins: bool = True, entrypoints: bool | None = None, strict: bool | None = None
) -> InspectPluginManager:
    """Build a fresh, fully loaded plugin manager.

    :param builtins: register the built-in adapters (``DEFAULT_PLUGINS``) first.
    :param entrypoints: load plugins of the ``keras_inspect`` entry-point group; defaults to
        true unless ``KERAS_INSPECT_DISABLE_PLUGIN_AUTOLOAD`` is set.
    :param strict: fail on a broken entry-point plugin instead of warning and skipping it.
    """
    pm = InspectPluginManager()
    if builtins:
        pm.load_builtins()
    if entrypoints is None:
        entrypoints = not _env_flag(DISABLE_AUTOLOAD_ENV)
    if entrypoints:
        pm.load_entrypoints(strict=strict)
    # Registered last so that in-process register_layer() calls are asked first.
    pm.register(pm.registry, name=REGISTRY_PLUGIN_NAME)
    pm.check()
    return pm


_default: InspectPluginManager | None = None
_default_lock = threading.Lock()
_current: contextvars.ContextVar[InspectPluginManager | None] = contextvars.ContextVar(
    "keras_inspect_plugin_manager", default=None
)


def plugin_manager() -> InspectPluginManager:
    """The plugin manager the public API uses (loaded on first use, then shared)."""
    current = _current.get()
    if current is not None:
        return current
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = new_plugin_manager()
    return _default


def reset_plugin_manager() -> None:
    """Drop the shared manager; the next call to :func:`plugin_manager` loads a new one."""
    global _default
    with _default_lock:
        _default = None


@contextlib.contextmanager
def using_plugin_manager(pm: InspectPluginManager) -> Iterator[InspectPluginManager]:
    """Make ``pm`` the manager of the public API inside a ``with`` block (context-local)."""
    if not isinstance(pm, InspectPluginManager):
        raise TypeError(
            f"expected a manager from keras_inspect.new_plugin_manager(); received {pm!r}."
        )
    token = _current.set(pm)
    try:
        yield pm
    finally:
        _current.reset(token)
