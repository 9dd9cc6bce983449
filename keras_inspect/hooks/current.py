"""Which plugin manager the public API asks: the shared default, or one made current.

``plugin_manager()`` returns the manager made current with ``using_plugin_manager(pm)`` in this
thread or context, else the shared default, loaded on first use. ``reset_plugin_manager()``
drops the default (and with it every cache it owns).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

from keras_inspect.autograph import plain_python
from keras_inspect.errors import describe
from keras_inspect.hooks.loading import load_plugins
from keras_inspect.hooks.manager import InspectPluginManager

_default: InspectPluginManager | None = None
# Re-entrant, and the manager being loaded is published to its own thread: an entry-point
# plugin that calls plugin_manager() or register_layer() while it is imported gets that
# manager instead of waiting for itself for ever. Other threads wait until it is complete.
_default_lock = threading.RLock()
_loading: InspectPluginManager | None = None
_current: contextvars.ContextVar[InspectPluginManager | None] = contextvars.ContextVar(
    "keras_inspect_plugin_manager", default=None
)


@plain_python
def plugin_manager() -> InspectPluginManager:
    """The plugin manager the public API uses (loaded on first use, then shared)."""
    current = _current.get()
    if current is not None:
        return current
    default = _default
    if default is not None:
        return default
    with _default_lock:
        if _default is not None:
            return _default
        if _loading is not None:
            return _loading  # this very thread is loading it (the lock is re-entrant)
        return _load_default()


def _load_default() -> InspectPluginManager:
    global _default, _loading
    pm = InspectPluginManager()
    _loading = pm
    try:
        load_plugins(pm)
    finally:
        _loading = None
    _default = pm
    return pm


@plain_python
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
            f"expected a manager from keras_inspect.new_plugin_manager(); received {describe(pm)}."
        )
    token = _current.set(pm)
    try:
        yield pm
    finally:
        _current.reset(token)
