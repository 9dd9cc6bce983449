"""Errors raised by keras-inspect, and how their messages quote what the user passed.

Every error a user can trigger is a ``ValueError`` or a ``TypeError`` (or one of the subclasses
below), with a message that names the offending value and says what was expected. Values are
quoted through :func:`shorten`, so a ten-million-character name makes a short message, not a
twenty-megabyte one.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable
from typing import Any


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


#: The longest quotation of a user's value in a message.
QUOTE_LIMIT = 80

# reprlib bounds the work as well as the length: a list nested 100,000 deep or a huge dict is
# never rendered in full (a plain repr() would recurse past the interpreter's limit).
_repr = reprlib.Repr()
_repr.maxlevel = 3
_repr.maxstring = QUOTE_LIMIT
_repr.maxother = QUOTE_LIMIT
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 6


def shorten(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, cut to at most ``limit`` characters, that never raises."""
    try:
        text = _repr.repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: str, limit: int = 300) -> str:
    """A message or name cut to at most ``limit`` characters (not quoted, unlike :func:`shorten`)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(value: Any) -> str:
    """A short quotation of ``value`` with its type, for "received ..." sentences."""
    kind = type(value)
    module = "" if kind.__module__ == "builtins" else kind.__module__ + "."
    return f"{shorten(value)} of type {module}{kind.__qualname__}"


def name_of(obj: Any) -> str:
    """The name of a layer or model as messages quote it (short, never raising)."""
    try:
        name = getattr(obj, "name", None)
    except Exception:
        name = None
    if not isinstance(name, str):
        name = type(obj).__name__
    return name if len(name) <= QUOTE_LIMIT else name[: QUOTE_LIMIT - 3] + "..."


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` candidates that look like ``word`` (for "did you mean" hints)."""
    if len(word) > 4 * QUOTE_LIMIT:
        return []  # nothing of that length is a misspelling, and difflib is quadratic
    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.5)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A sentence suggesting close matches of ``word``, or an empty string if there are none."""
    matches = close_matches(word, candidates)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(shorten(m) for m in matches) + "?"
