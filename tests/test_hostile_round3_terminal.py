"""Round three, the terminal: one escaping function for everything printed (tables, errors,
warnings, progress), invisible characters made visible, and rich never reading user text as
markup."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import subprocess
import sys
import unicodedata
import warnings
from pathlib import Path

import attrs
import keras
import pytest
from hypothesis import given
from hypothesis import strategies as st

import keras_inspect as ki
from conftest import FakeTerminal
from keras_inspect.cli import main as cli
from keras_inspect.cli.console import printable as console_printable
from keras_inspect.errors import printable, shown
from test_hostile_files import members_of, stored, write_zip

# What a terminal acts on or draws as nothing; a font draws every other character.
INVISIBLE = {
    "zero-width space": "\u200b", "zero-width joiner": "\u200d", "word joiner": "\u2060",
    "byte-order mark": "\ufeff", "tag letter A": "\U000e0041", "cancel tag": "\U000e007f",
    "variation selector 16": "\ufe0f", "variation selector 17": "\U000e0100",
    "soft hyphen": "\u00ad", "Hangul filler": "\u3164", "combining grapheme joiner": "\u034f",
    "Mongolian vowel separator": "\u180e", "no-break space": "\u00a0",
    "right-to-left override": "\u202e", "line separator": "\u2028", "escape": "\x1b",
    "next line (C1)": "\x85", "private use": "\ue000", "unassigned": "\U000e0080",
}  # fmt: skip


def _hidden(char: str) -> bool:
    """A check independent of the implementation's table: Unicode categories, plus the
    default-ignorable characters named above."""
    return unicodedata.category(char)[0] in "CZ" and char != " " or char in INVISIBLE.values()


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_invisible_characters_are_spelled_out(char: str) -> None:
    shown_text = printable(f"conv{char}1")
    assert shown_text != "conv1" and shown_text.startswith("conv\\") and shown_text.endswith("1")
    assert char not in shown_text
    code = ord(char)
    assert f"{code:x}" in shown_text.lower()


def test_the_command_line_uses_the_same_function() -> None:
    assert console_printable is printable


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_printable_leaves_nothing_hidden_and_keeps_visible_text(text: str) -> None:
    out = printable(text)
    assert not any(_hidden(c) for c in out)
    if not any(_hidden(c) for c in text):
        assert out == text


@pytest.mark.parametrize("text", ["Gruß 中文 ✓ layer_1", "e\u0301té", "क्षि", "👍🏽", "ｆｕｌｌ"])
def test_letters_marks_and_symbols_of_any_script_are_kept(text: str) -> None:
    assert printable(text) == text


@given(st.text(max_size=3000), st.integers(min_value=40, max_value=500))
def test_shown_is_bounded_and_says_when_it_cut(text: str, limit: int) -> None:
    out = shown(text, limit)
    assert len(out) <= limit
    assert out == printable(text) or out.endswith(f"[{len(text)} characters]")


# -- rich never reads user text as markup ------------------------------------------------------

MARKUP = ["[/]x.keras", "[link=https://example.invalid]click[/link].keras", "[bold red]x", ":smile:"]


@pytest.mark.parametrize("path", MARKUP)
def test_a_path_is_not_markup_in_the_progress_spinner(path: str) -> None:
    pytest.importorskip("rich")
    terminal = FakeTerminal()
    with cli.progress(f"loading {shown(path)}", stream=terminal):
        pass  # rich renders the status on entry: a markup error would raise here
    assert "\x1b]8;" not in terminal.getvalue()  # no hyperlink


def test_a_layer_named_like_markup_is_shown_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("rich")
    monkeypatch.setenv("COLUMNS", "300")
    name = "[link=mailto:x@example]click"  # no slash (Keras) nor dot (torch parameter names)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name=name)], name="[bold]")
    terminal = FakeTerminal()
    ki.summary(model).print(terminal)
    out = terminal.getvalue()
    assert "\x1b]8;" not in out and name in re.sub(r"\x1b\[[0-9;]*m", "", out)


# -- warnings ---------------------------------------------------------------------------------

FORGED = "\x1b]0;owned\x07\x1b[2J\nkeras-inspect: error: forged\u202e"


def _controls(text: str) -> list[str]:
    return [c for c in text if c != "\n" and _hidden(c)]


def test_keras_warnings_about_member_names_are_escaped_by_the_command_line(
    tmp_path: Path,
) -> None:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    model.save(tmp_path / "honest.keras")
    members = [stored(n, d) for n, d in members_of(tmp_path / "honest.keras").items()]
    # Keras extracts archives with assets, and warns about each member outside the directory.
    # Flagged as UTF-8 (0x800), as zipfile writes non-ASCII names.
    members.append(attrs.evolve(stored(f"../{FORGED}.txt", b"x"), flags=0x800))
    path = write_zip(tmp_path / "warns.keras", members)
    # In a fresh interpreter: pytest records warnings instead of printing them.
    env = dict(os.environ, PYTHONWARNINGS="always::UserWarning")
    env.pop("KERAS_INSPECT_DEBUG", None)
    result = subprocess.run(
        [sys.executable, "-m", "keras_inspect", "summary", str(path)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == cli.EXIT_OK, result.stderr[-2000:]
    assert "Skipping invalid path" in result.stderr and not _controls(result.stderr)
    assert "\\x1b]0;owned" in result.stderr
    lines = result.stderr.splitlines()
    assert not any(line.startswith("keras-inspect: error: forged") for line in lines)


class _HostileDistribution:
    metadata = {"Name": "keras-inspect-hostile"}
    version = "6.6.6" + FORGED

    def __init__(self, module: str) -> None:
        self.entry_points = [
            importlib.metadata.EntryPoint(name="hostile", value=module, group="keras_inspect")
        ]


def test_a_failing_plugins_warning_is_escaped_where_it_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"ki_hostile_{tmp_path.name}"
    (tmp_path / f"{module}.py").write_text(f"raise RuntimeError({FORGED!r})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: [_HostileDistribution(module)])
    monkeypatch.delenv("KERAS_INSPECT_STRICT_PLUGINS", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pm = ki.new_plugin_manager(entrypoints=True)
    (message,) = [str(w.message) for w in caught if "keras-inspect-hostile" in str(w.message)]
    assert not _controls(message) and "\\x1b]0;owned" in message and "6.6.6" in message
    assert [info.error for info in pm.plugin_infos() if info.error]  # listed as failed
    sys.modules.pop(module, None)


def test_an_unexpected_base_exception_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Odd(BaseException):
        pass

    def explode(args: object, out: object) -> int:
        raise Odd(FORGED)

    monkeypatch.setattr(cli, "run_plugins", explode)
    assert cli.main(["plugins"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected Odd" in err and not _controls(err)
