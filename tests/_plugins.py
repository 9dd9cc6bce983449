"""Run a call with one extra plugin registered on a fresh manager and return the fault it causes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from keras_inspect import PluginError, new_plugin_manager, using_plugin_manager


def plugin_error(plugin: object, name: str, call: Callable[[], Any]) -> PluginError:
    """The ``PluginError`` that ``call`` raises while ``plugin`` is registered as ``name``."""
    pm = new_plugin_manager(entrypoints=False)
    pm.register(plugin, name=name)
    with using_plugin_manager(pm), pytest.raises(PluginError) as caught:
        call()
    return caught.value
