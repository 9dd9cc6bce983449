"""Keeping TensorFlow's AutoGraph out of keras-inspect's code.

A function called inside ``tf.function`` is converted by AutoGraph unless it belongs to
TensorFlow or Keras; keras-inspect's code is plain Python about the model's structure (it runs
once per trace) and some of what it calls (``importlib``, pluggy) cannot be converted, which
AutoGraph reports as "could not transform ... Please report this to the TensorFlow team".
Public entry points carry the attribute by which AutoGraph recognises code to run unconverted
(what ``tf.autograph.experimental.do_not_convert`` sets), without importing TensorFlow: nothing
they call is converted either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])


def plain_python(function: F) -> F:
    """Mark ``function`` to be called as it is inside ``tf.function`` (see the module doc)."""
    function.autograph_info__ = None  # type: ignore[attr-defined]
    return function
