"""Keeping compilers that trace Python (TensorFlow's AutoGraph, PyTorch's TorchDynamo) out of
keras-inspect's own code.

A function called inside ``tf.function`` is converted by AutoGraph unless it belongs to
TensorFlow or Keras; keras-inspect's code is plain Python about the model's structure (it runs
once per trace) and some of what it calls (``importlib``, pluggy) cannot be converted, which
AutoGraph reports as "could not transform ... Please report this to the TensorFlow team".
Public entry points carry the attribute by which AutoGraph recognises code to run unconverted
(what ``tf.autograph.experimental.do_not_convert`` sets), without importing TensorFlow: nothing
they call is converted either.

``torch.compile`` traces Python too, and fails inside frozen attrs classes and Keras' model
building; the structural part of a call (resolving the model, building what it needs) is run by
:func:`outside_compilers`, which TorchDynamo leaves to plain Python, while the tensor work around
it is compiled.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., object])


def plain_python(function: F) -> F:
    """Mark ``function`` to be called as it is inside ``tf.function`` (see the module doc)."""
    function.autograph_info__ = None  # type: ignore[attr-defined]
    return function


def torch_compiling() -> bool:
    """Whether ``torch.compile`` is tracing the calling code (never imports torch itself)."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and bool(torch.compiler.is_compiling())


def outside_compilers(function: F) -> F:
    """``function``, run as plain Python when ``torch.compile`` traces its caller (the traced
    graph breaks around it), and unconverted by AutoGraph."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        if torch_compiling():
            import torch

            return torch.compiler.disable(function)(*args, **kwargs)
        return function(*args, **kwargs)

    return plain_python(call)  # type: ignore[return-value]
