"""Optional dependencies: which extra brings what, and clear errors when one is missing.

keras-inspect needs Keras and one backend; TensorFlow, JAX, PyTorch and tf_keras are extras. A
missing one is reported as :class:`MissingDependencyError` (both a ``KerasInspectError`` and an
``ImportError``) that names the extra to install, instead of an ``ImportError`` from deep inside
Keras.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

from keras_inspect.errors import KerasInspectError

#: The module each Keras backend imports, and the keras-inspect extra that installs it.
BACKEND_MODULES: dict[str, tuple[str, str]] = {
    "tensorflow": ("tensorflow", "tensorflow"),
    "jax": ("jax", "jax"),
    "torch": ("torch", "torch"),
}


class MissingDependencyError(KerasInspectError, ImportError):
    """An optional dependency that a feature needs is not installed."""


def _missing_backend(backend: str, module: str, extra: str) -> MissingDependencyError:
    return MissingDependencyError(
        f"Keras is set to the {backend!r} backend (KERAS_BACKEND={backend!r}, or Keras' "
        f"default), but {module!r} is not installed. Install it with "
        f"`pip install 'keras-inspect[{extra}]'`, or set KERAS_BACKEND to an installed "
        "backend (tensorflow, jax or torch)."
    )


def check_backend_installed() -> None:
    """Raise :class:`MissingDependencyError` if the backend Keras will use is not installed.

    Looks the module up without importing it, so ``import keras_inspect`` stays cheap and still
    reports a missing backend at once.
    """
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    wanted = BACKEND_MODULES.get(backend)
    if wanted is not None and importlib.util.find_spec(wanted[0]) is None:
        raise _missing_backend(backend, *wanted)


def import_keras() -> Any:
    """``import keras``; if its backend is not installed, say which one and how to get it."""
    try:
        return importlib.import_module("keras")
    except ImportError as error:
        missing = (getattr(error, "name", None) or "").split(".")[0]
        backend = os.environ.get("KERAS_BACKEND", "tensorflow")
        wanted = BACKEND_MODULES.get(backend)
        if wanted is None or missing != wanted[0]:
            raise
        raise _missing_backend(backend, *wanted) from None


def require(module: str, extra: str, feature: str) -> Any:
    """Import an optional ``module`` that ``feature`` needs, or explain how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(
            f"{feature} needs the {module!r} package, which is not installed: install it with "
            f"`pip install 'keras-inspect[{extra}]'`. (Import failed with: {error})"
        ) from None
