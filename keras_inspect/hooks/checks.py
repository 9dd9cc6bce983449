"""What a plugin's answer must be before keras-inspect uses it, and pluggy's refusals in
keras-inspect's words.

Every iterable a plugin returns is taken through :func:`bounded` (at most a fixed number of
items, and whatever iterating raises named after the plugin); a bias must be a real numeric
tensor (:func:`is_numeric_tensor`), not an object that only looks like one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pluggy

from keras_inspect.errors import PluginError, clip, shorten

#: Most role names one plugin may declare, and most strategies it may offer: far more than any
#: plugin needs, few enough that an endless iterable is refused at once.
MAX_ROLES = 1000
MAX_STRATEGIES = 1000


def items_of(mapping: Mapping[Any, Any]) -> Iterable[Any]:
    # A generator, so that calling items() happens while bounded() iterates (and is named).
    yield from mapping.items()


def is_pair(item: Any) -> bool:
    return isinstance(item, tuple) and len(item) == 2


def bounded(items: Iterable[Any], limit: int, plugin: str, hook: str, what: str) -> list[Any]:
    """The items of an iterable ``plugin`` returned from ``hook``, at most ``limit`` of them.

    More is a :class:`PluginError` (an endless iterable such as ``itertools.cycle`` would
    hang every search), and so is whatever iterating raises, named after the plugin.
    """
    taken: list[Any] = []
    try:
        for item in items:
            if len(taken) == limit:
                raise PluginError(
                    f"plugin {shorten(plugin)} returned more than {limit} {what} from {hook}; at most "
                    f"{limit} are accepted (is the iterable endless?)."
                )
            taken.append(item)
    except (PluginError, KeyboardInterrupt):
        raise
    except BaseException as error:
        raise PluginError(
            f"plugin {shorten(plugin)} returned {what} from {hook} whose iteration raised "
            f"{type(error).__name__}: {clip(str(error))}"
        ) from error
    return taken


def invalid_plugin(name: str, error: pluggy.PluginValidationError) -> PluginError:
    """pluggy's refusal of a plugin, as keras-inspect's error naming the plugin and the hook."""
    # pluggy's message reads "Plugin 'x' for hook 'y'\nhookimpl definition: ...\n<reason>".
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    hook = next((line.split("hook", 1)[1].strip() for line in lines[:2] if "hook" in line), "?")
    reason = lines[-1] if lines else type(error).__name__
    return PluginError(
        f"plugin {shorten(name)} cannot be registered: its implementation of hook {clip(hook, 80)} "
        f"is invalid: {clip(reason)}."
    )


def is_numeric_tensor(value: Any) -> bool:
    """Whether ``value`` is a real tensor of numbers: a NumPy array or scalar, a Keras variable,
    a tensor of the running backend, or a TensorFlow tensor or variable (``tf_keras``).

    An object that merely has ``shape`` and ``dtype`` attributes is not one: the bias is used
    in arithmetic with the model's tensors, which would fail later, far from the plugin.
    """
    if isinstance(value, (np.ndarray, np.generic)):
        return _numeric_dtype(value.dtype)
    if not _is_tensor(value):
        return False
    dtype = getattr(value, "dtype", None)
    return dtype is not None and _numeric_dtype(dtype)


def _is_tensor(value: Any) -> bool:
    import keras

    if isinstance(value, keras.Variable):
        return True
    try:
        if keras.ops.is_tensor(value):
            return True
    except Exception:
        pass
    tf = sys.modules.get("tensorflow")  # only if imported already: tf_keras models imply it
    if tf is not None:
        try:
            return bool(tf.is_tensor(value) or isinstance(value, tf.Variable))
        except Exception:
            return False
    return False


def _numeric_dtype(dtype: Any) -> bool:
    text = str(getattr(dtype, "name", dtype)).lower()
    if "bool" in text or "complex" in text:
        return False
    return any(kind in text for kind in ("float", "int", "bfloat", "half", "double"))
