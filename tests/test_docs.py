"""The documentation: every hook documented and tested, samples run, the site builds strictly."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import keras_inspect as ki

# The example plugin package must be installed for the plugin tutorial's samples.
from test_plugin_package import installed  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TESTS = ROOT / "tests"
PAGES = sorted(DOCS.glob("*.md"))
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
NOT_TESTED = "# not-tested"
FILE_MARK = re.compile(r"^# file: (\S+)\n")
#: A sample that quotes lines of an example script, which tests/test_examples.py runs.
EXCERPT_MARK = re.compile(r"^# excerpt: (examples/\S+\.py)")
EXAMPLE_PACKAGE = ROOT / "examples" / "plugin-package"


HOOK_HEADING = re.compile(r"^## `(keras_inspect_\w+)\(([^)]*)\)`\n+\*([^*]+)\*", re.MULTILINE)


def _specs() -> dict[str, inspect.Signature]:
    from keras_inspect.hooks import specs as hookspecs

    return {
        name: inspect.signature(function)
        for name, function in vars(hookspecs).items()
        if name.startswith("keras_inspect_") and callable(function)
    }


HOOKS = sorted(_specs())


def _blocks(page: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(page.read_text())]


def test_the_hook_list_is_the_hookspec_module() -> None:
    from keras_inspect.hooks import specs as hookspecs

    assert len(HOOKS) >= 5
    assert set(HOOKS) == {name for name in vars(ki.plugin_manager().hook) if name.startswith("keras_inspect_")}
    for hook in HOOKS:
        assert "keras_inspect_spec" in vars(getattr(hookspecs, hook)), hook


def _documented() -> dict[str, tuple[list[str], str]]:
    """The hand-written reference: hook name -> (argument names, calling convention)."""
    text = (DOCS / "hooks.md").read_text()
    return {
        name: ([a.strip() for a in args.split(",") if a.strip()], kind.strip().rstrip("."))
        for name, args, kind in HOOK_HEADING.findall(text)
    }


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_by_hand_with_its_arguments(hook: str) -> None:
    from keras_inspect.hooks import specs as hookspecs

    documented = _documented()
    assert hook in documented, f"docs/hooks.md has no section '## `{hook}(...)`'"
    arguments, kind = documented[hook]
    assert arguments == list(_specs()[hook].parameters), (hook, arguments)
    firstresult = bool(getattr(hookspecs, hook).keras_inspect_spec.get("firstresult"))
    assert kind == ("First result" if firstresult else "Collecting"), (hook, kind)


def test_the_reference_documents_only_real_hooks() -> None:
    documented = _documented()
    assert documented, "no hook section found in docs/hooks.md"
    assert sorted(documented) == HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook: str) -> None:
    users = [
        path.name
        for path in TESTS.glob("test_*.py")
        if path.name != Path(__file__).name and hook in path.read_text()
    ]
    assert users, f"no test module mentions {hook}"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Samples register plugins and save files: give them their own manager and directory.
    monkeypatch.chdir(tmp_path)
    with ki.using_plugin_manager(ki.new_plugin_manager()):
        yield


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_python_samples_run(page: Path, isolated: None, installed: ModuleType) -> None:  # noqa: F811
    samples = [
        code
        for language, code in _blocks(page)
        if language == "python"
        and NOT_TESTED not in code
        and not FILE_MARK.match(code)
        and not EXCERPT_MARK.match(code)
    ]
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for number, code in enumerate(samples, 1):
        try:
            exec(compile(code, f"{page.name}[sample {number}]", "exec"), namespace)
        except Exception as error:
            raise AssertionError(
                f"sample {number} of {page.name} failed: {type(error).__name__}: {error}\n{code}"
            ) from error


def test_excerpts_of_the_examples_quote_them_line_by_line() -> None:
    quoted = 0
    for page in PAGES:
        for _language, code in _blocks(page):
            match = EXCERPT_MARK.match(code)
            if not match:
                continue
            quoted += 1
            source = {line.strip() for line in (ROOT / match.group(1)).read_text().splitlines()}
            for line in code.splitlines()[1:]:
                assert not line.strip() or line.strip() in source, f"{page.name}: {line!r}"
    assert quoted >= 4


def test_file_excerpts_match_the_example_package() -> None:
    excerpts = 0
    for page in PAGES:
        for _language, code in _blocks(page):
            match = FILE_MARK.match(code)
            if not match:
                continue
            excerpts += 1
            source = (EXAMPLE_PACKAGE / match.group(1)).read_text()
            body = code[match.end() :]
            assert body.strip() in source, f"{page.name}: excerpt of {match.group(1)} is stale"
    assert excerpts >= 3


def test_every_page_is_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    for page in PAGES:
        assert f": {page.name}" in config, f"{page.name} is not in mkdocs.yml's nav"


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    built = (tmp_path / "hooks" / "index.html").read_text()
    for hook in HOOKS:
        assert hook in built
