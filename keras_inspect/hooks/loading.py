"""Loading plugins: the built-in ones first, then the ``keras_inspect`` entry points.

Built-ins are plugins like any other (pytest's ``default_plugins``, datasette's ``default_*``
modules): listed here by module name and registered first, so every plugin registered after them
is asked before them. They are imported by name when a manager is built, so the plugin system has no
import-time dependency on them.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from typing import Any

from keras_inspect.autograph import plain_python
from keras_inspect.errors import PluginError, clip, did_you_mean, printable, shorten
from keras_inspect.hooks.manager import REGISTRY_PLUGIN_NAME, InspectPluginManager, PluginInfo
from keras_inspect.hooks.specs import ENTRY_POINT_GROUP

#: The built-in plugins, in registration order.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "keras_inspect.adapters.keras3.graph",
    "keras_inspect.adapters.builtin_roles",
    "keras_inspect.adapters.strategies",
    "keras_inspect.adapters.linear",
    "keras_inspect.adapters.normalization",
    "keras_inspect.adapters.pooling",
    "keras_inspect.adapters.feature_map",
    "keras_inspect.adapters.embedding",
    "keras_inspect.adapters.fallback",
    "keras_inspect.adapters.tf_keras.graph",
)

DISABLE_AUTOLOAD_ENV = "KERAS_INSPECT_DISABLE_PLUGIN_AUTOLOAD"
STRICT_PLUGINS_ENV = "KERAS_INSPECT_STRICT_PLUGINS"
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to a true word (1, true, yes, on)."""
    return os.environ.get(name, "").strip().lower() in _TRUE_WORDS


def reserved_names() -> frozenset[str]:
    """Plugin names an entry point may not take: the built-ins' and the layer registry's."""
    return frozenset((*DEFAULT_PLUGINS, REGISTRY_PLUGIN_NAME))


def load_builtins(pm: InspectPluginManager) -> None:
    """Register every module of :data:`DEFAULT_PLUGINS`, in order."""
    for module_name in DEFAULT_PLUGINS:
        pm.register_builtin(importlib.import_module(module_name), module_name)


def load_entrypoints(pm: InspectPluginManager, *, strict: bool | None = None) -> None:
    """Register every plugin of the ``keras_inspect`` entry-point group.

    A plugin that fails to import or to validate is reported (a warning naming its
    distribution) and skipped, unless ``strict`` (default: ``$KERAS_INSPECT_STRICT_PLUGINS``)
    asks for an error.
    """
    if strict is None:
        strict = env_flag(STRICT_PLUGINS_ENV)
    # Imported here: it costs import time, and most processes never load a second manager.
    from importlib import metadata

    seen: set[str] = set()
    reserved = reserved_names()
    for dist in metadata.distributions():
        for entry_point in dist.entry_points:
            if entry_point.group != ENTRY_POINT_GROUP or entry_point.name in seen:
                continue
            seen.add(entry_point.name)
            if entry_point.name in reserved:
                _fail(pm, entry_point.name, dist, "takes the name of a built-in plugin",
                      PluginError("choose another entry-point name"), strict)  # fmt: skip
                continue
            if pm.get_plugin(entry_point.name) is not None or pm.is_blocked(entry_point.name):
                continue
            _load_one(pm, entry_point, dist, strict)


def _load_one(pm: InspectPluginManager, entry_point: Any, dist: Any, strict: bool) -> None:
    try:
        plugin = entry_point.load()
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        # SystemExit, GeneratorExit and a plugin's own BaseException too: importing a plugin
        # must neither end the host process nor leave the manager half loaded (every later call
        # would try again and fail the same way).
        _fail(pm, entry_point.name, dist, "could not be imported", error, strict)
        return
    if plugin is None:
        return  # an optional in-tree plugin whose library is missing exports None
    try:
        pm.register_installed(plugin, entry_point.name, _dist_name(dist), _version(dist))
        _check_hooks(pm, entry_point.name, plugin)
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        with contextlib.suppress(Exception):
            pm.unregister(name=entry_point.name)
        _fail(pm, entry_point.name, dist, "is not a valid plugin", error, strict)


def _check_hooks(pm: InspectPluginManager, name: str, plugin: Any) -> None:
    known = set(pm.hook.__dict__)
    for caller in pm.get_hookcallers(plugin) or ():
        if caller.name not in known or caller.spec is None:
            raise PluginError(
                f"plugin {name!r} implements unknown hook {caller.name!r}."
                f"{did_you_mean(caller.name, sorted(known))}"
            )


def _dist_name(dist: Any) -> str:
    try:
        return str(dist.metadata["Name"] or "<unknown distribution>")
    except Exception:
        return "<unreadable distribution>"


def _version(dist: Any) -> str:
    try:
        return str(dist.version)
    except Exception:
        return "<unreadable version>"


def _fail(
    pm: InspectPluginManager,
    name: str,
    dist: Any,
    what: str,
    error: BaseException,
    strict: bool,
) -> None:
    dist_name, version = _dist_name(dist), _version(dist)
    message = (
        f"keras-inspect plugin {shorten(name)} from distribution {shorten(dist_name)} "
        f"{clip(version, 40)} {what}: {clip(type(error).__name__, 80)}: {clip(str(error))}"
    )
    if strict:
        raise PluginError(message + f" (unset {STRICT_PLUGINS_ENV} to skip it)") from error
    # The distribution chose the message, version and exception: a warning is printed as it
    # is, so it is escaped here, where it is made (for every host, not only the command line).
    warnings.warn(printable(message) + "; it was skipped.", RuntimeWarning, stacklevel=5)
    pm.record_failure(PluginInfo(name=name, distribution=dist_name, version=version, error=message))


@plain_python
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
    load_plugins(pm, builtins=builtins, entrypoints=entrypoints, strict=strict)
    return pm


def load_plugins(
    pm: InspectPluginManager,
    *,
    builtins: bool = True,
    entrypoints: bool | None = None,
    strict: bool | None = None,
) -> None:
    """Load a new manager: the built-ins, the entry points, then the layer registry (last, so
    in-process registrations are asked first); then check every hook name. The one place
    that loads plugins, for :func:`new_plugin_manager` and the shared default alike."""
    if builtins:
        load_builtins(pm)
    if entrypoints is None:
        entrypoints = not env_flag(DISABLE_AUTOLOAD_ENV)
    if entrypoints:
        load_entrypoints(pm, strict=strict)
    pm.register(pm.registry, name=REGISTRY_PLUGIN_NAME)
    pm.check()
