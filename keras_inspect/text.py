"""Text that reaches a terminal: shown, never obeyed, and never longer than a screen can use.

Names from a model file or a plugin, and the messages of their errors and warnings, may hold
characters a terminal acts on instead of showing: an escape sequence retitles or clears it, a
carriage return or newline forges a line, a bidirectional override shows text in another order
than it is stored, and an invisible character (a zero-width space, a tag character, a byte-order
mark, a variation selector) makes two different names look the same (``conv\\u200b1`` and
``conv1``). :func:`printable` spells every such character out as a visible escape. It is the one
escaping function of the project: tables, error lines, warnings and progress messages all use
it. It lives at the bottom of the package (no imports from keras-inspect) so that the plugin
system can use it as well as the command line.
"""

from __future__ import annotations

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
