"""The README's Python examples run as written.

Every fenced block opened with ```` ```python ```` is executed, in order, in one namespace (a
later block may use names an earlier one defined), except blocks whose first line is the comment
``# not-tested``. Each run gets its own plugin manager, so plugins the examples register do not
leak into other tests.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from keras_inspect import new_plugin_manager, using_plugin_manager

README = Path(__file__).resolve().parent.parent / "README.md"
SKIP_MARKER = "# not-tested"
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of each tested ```` ```python ```` block of a Markdown text."""
    blocks = []
    for match in _FENCE.finditer(text):
        code = match.group(1)
        first_line = next((line.strip() for line in code.splitlines() if line.strip()), "")
        if first_line.lower().startswith(SKIP_MARKER):
            continue
        blocks.append((text.count("\n", 0, match.start(1)) + 1, code))
    return blocks


def test_block_extraction() -> None:
    text = (
        "intro\n```python\nx = 1\n```\n\n```sh\nmake test\n```\n"
        "```python\n# not-tested\nraise SystemExit\n```\n```python\ny = x + 1\n```\n"
    )
    assert python_blocks(text) == [(3, "x = 1\n"), (14, "y = x + 1\n")]


def test_readme_has_tested_examples() -> None:
    assert README.is_file(), f"{README} is missing"
    assert python_blocks(README.read_text(encoding="utf-8")), (
        "README.md has no tested ```python block (the quick start and the plugin example)"
    )


def test_readme_examples_run() -> None:
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    namespace: dict[str, Any] = {"__name__": "readme"}
    ran = []
    with using_plugin_manager(new_plugin_manager(entrypoints=False)):
        for line, code in blocks:
            try:
                exec(compile(code, f"{README.name}:{line}", "exec"), namespace)
            except Exception as error:  # report which block failed, with its own traceback
                pytest.fail(f"README.md block at line {line} failed: {type(error).__name__}: {error}")
            ran.append(line)
    assert ran == [line for line, _ in blocks]
