"""Telling tf_keras objects apart without importing tf_keras, and importing it when one is met.

``tf_keras`` is optional: ``import keras_inspect`` works without it (and without TensorFlow).
An object is a tf_keras object if a class of its MRO is defined in a ``tf_keras`` module; such an
object exists only once tf_keras (and so TensorFlow) is imported.
"""

from __future__ import annotations

import importlib
import sys
import weakref
from typing import Any

from keras_inspect.dependencies import require

MODULE_PREFIX = "tf_keras"
# type -> whether it comes from tf_keras (weak: classes made at run time may go away).
_tf_keras_types: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()


def require_tf_keras() -> Any:
    """The ``tf_keras`` module, or a :class:`MissingDependencyError` naming the extra."""
    return require("tf_keras", "tf-keras", "Reading Keras 2 (tf_keras) models")


def tf() -> Any:
    """TensorFlow, already imported by tf_keras whenever a tf_keras object exists."""
    return importlib.import_module("tensorflow")


def is_tf_keras_type(cls: type) -> bool:
    """Whether ``cls`` is (or derives from) a class defined by ``tf_keras``."""
    known = _tf_keras_types.get(cls)
    if known is None:
        known = any(
            (getattr(base, "__module__", "") or "").split(".")[0] == MODULE_PREFIX
            for base in cls.__mro__
        )
        _tf_keras_types[cls] = known
    return known


def is_tf_keras_object(obj: Any) -> bool:
    """Whether ``obj`` is an instance of a tf_keras class (never imports tf_keras)."""
    if MODULE_PREFIX not in sys.modules:
        return False
    return is_tf_keras_type(type(obj))
