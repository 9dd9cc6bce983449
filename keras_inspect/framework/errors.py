"""Errors raised by keras-inspect.

Every error a user can trigger is a ``ValueError`` or a ``TypeError`` (or one of the subclasses
below), with a message that names the offending value and says what was expected.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class KerasInspectError(ValueError):
    """Base class of the value errors keras-inspect raises on purpose."""


class LayerNotFoundError(KerasInspectError):
    """A layer name, path or index does not denote a layer of the model."""


class NoMatchingLayerError(KerasInspectError):
    """A search (role, class, properties) found no layer in the model."""


class EndpointError(KerasInspectError):
    """An endpoint descriptor is malformed or cannot be resolved to a tensor."""


class PluginError(KerasInspectError):
    """A plugin failed to load, raised inside a hook, or returned a value of the wrong kind."""


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` candidates that look like ``word`` (for "did you mean" hints)."""
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.5)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A sentence suggesting close matches of ``word``, or an empty string if there are none."""
    matches = close_matches(word, candidates)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(m) for m in matches) + "?"
