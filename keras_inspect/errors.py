"""Errors raised by keras-inspect, how their messages quote what the user passed, and how text
reaches a terminal.

Every error a user can trigger is a ``ValueError`` or a ``TypeError`` (or one of the subclasses
below), with a message that names the offending value and says what was expected. Values are
quoted through :func:`shorten`, so a ten-million-character name makes a short message, not a
twenty-megabyte one.

Names from a model file or a plugin, and the messages of their errors and warnings, may hold
characters a terminal acts on instead of showing: an escape sequence retitles or clears it, a
carriage return or newline forges a line, a bidirectional override shows text in another order
than it is stored, and an invisible character (a zero-width space, a tag character, a byte-order
mark, a variation selector) makes two different names look the same (``conv\\u200b1`` and
``conv1``). :func:`printable` spells every such character out as a visible escape. It is the one
escaping function of the project (tables, error lines, warnings and progress messages all use
it), kept here at the bottom of the package so that the plugin system can use it as well as the
command line; :func:`shown` also cuts what it returns to what a terminal can use.
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


# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt) that Python's
# str.isprintable() still calls printable: combining grapheme joiner, Hangul fillers, Khmer
# inherent vowels, Mongolian variation selectors, variation selectors and their supplement,
# musical formatting marks and the shorthand format controls. Fonts draw nothing for them.
_IGNORABLE_RANGES = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)  # fmt: skip

#: The longest text :func:`shown` lets through (a terminal line or two, with room to spare).
SHOWN_LIMIT = 300


def _ignorable(code: int) -> bool:
    return any(low <= code <= high for low, high in _IGNORABLE_RANGES)


def _visible(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _hidden(char: str) -> bool:
    # isprintable() is False for every control, format (bidi, zero-width, tags, BOM), surrogate,
    # private-use, unassigned and separator character except the plain space.
    return not char.isprintable() or _ignorable(ord(char))


def printable(text: object) -> str:
    """``text`` with every character a terminal would act on, or draw as nothing, escaped.

    Controls (C0, DEL, C1), format characters (bidirectional controls, zero-width characters,
    tag characters, the byte-order mark), line and paragraph separators, spaces other than
    U+0020, surrogates, private-use and unassigned code points, and the other default-ignorable
    characters become ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN``. Letters, marks, digits,
    punctuation and symbols of every script are kept.
    """
    value = str(text)
    if value.isascii() and value.isprintable():
        return value
    return "".join(_visible(c) if _hidden(c) else c for c in value)


def shown(text: object, limit: int = SHOWN_LIMIT) -> str:
    """:func:`printable` of ``text``, at most ``limit`` characters long, saying when it was cut.

    The limit holds for what the terminal receives (escapes included), and only the part that
    can be shown is escaped: a ten-megabyte name costs no more than a short one.
    """
    value = str(text)
    head = printable(value[: limit + 1])  # escaping only lengthens: this prefix is enough
    if len(value) <= limit and len(head) <= limit:
        return head
    note = f"... [{len(value)} characters]"
    return head[: max(limit - len(note), 0)] + note


def rich_console(file: Any) -> Any:
    """A rich ``Console`` on ``file`` that never reads the text it prints as markup.

    Paths, names and messages come from the user, a file or a plugin: ``[/]`` would crash
    rich's markup parser, ``[link=...]`` would print a hyperlink, ``:emoji:`` codes and
    highlighting would change what is shown. Styles are given as objects, never in strings.
    """
    from rich.console import Console

    return Console(file=file, markup=False, emoji=False, highlight=False)
