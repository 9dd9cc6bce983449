"""The package's maps stay true, and its dependencies point one way.

Every module is listed by the README's "What is where", by the layout in docs/concepts.md and by
its package's docstring; a module added without a line fails here. Imports (module-level,
function-level and under ``TYPE_CHECKING`` alike) only point down the floors below, and no
modules import each other in a circle.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "keras_inspect"
README = (ROOT / "README.md").read_text()
CONCEPTS = (ROOT / "docs" / "concepts.md").read_text()

#: Floors, lowest first: a module may import its own floor and the floors below, never above.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("errors", "dependencies", "autograph"),
    ("hooks",),
    ("graph",),
    ("answers",),
    ("engine",),
    ("signals",),
    ("adapters", "plugins"),
    ("views",),
    ("inspection", "__init__"),
    ("cli", "__main__"),
)


def _modules() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" not in path.parts:
            yield path


def _dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(dotted: str) -> str:
    """The first name below ``keras_inspect`` (``__init__`` for the package itself)."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"  # the package root


def _floor(dotted: str) -> int:
    part = _part(dotted)
    return next(i for i, names in enumerate(FLOORS) if part in names)


def _imports(path: Path) -> set[str]:
    """Every keras_inspect module ``path`` imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text())
    package = _dotted(path) if path.name == "__init__.py" else _dotted(path).rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("keras_inspect"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("keras_inspect"):
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    known = any(_dotted(p) == candidate for p in _modules())
                    found.add(candidate if known else base)
    return found


def _docstring_lacks(folder: Path, name: str) -> list[str]:
    """What a sub-package's docstring fails to list (the package root keeps its map in the README)."""
    if folder == PACKAGE:
        return []
    init = folder / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    return [] if f"``{name}``" in doc else [f"{init.relative_to(PACKAGE)} lacks {name}"]


def test_every_module_is_on_every_map() -> None:
    missing = []
    for path in _modules():
        if path.name in {"__init__.py", "__main__.py"}:
            continue
        stem = path.stem
        if f"{stem}.py" not in CONCEPTS and not re.search(rf"\b{stem}/", CONCEPTS):
            missing.append(f"docs/concepts.md lacks {path.relative_to(PACKAGE)}")
        if f"`{stem}`" not in README and f"{stem}.py" not in README:
            missing.append(f"README.md lacks {path.relative_to(PACKAGE)}")
        missing += _docstring_lacks(path.parent, stem)
    for folder in sorted(p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"):
        name = folder.relative_to(PACKAGE).as_posix()
        if f"{name}/" not in CONCEPTS and f"{folder.name}/" not in CONCEPTS:
            missing.append(f"docs/concepts.md lacks the folder {name}/")
        missing += _docstring_lacks(folder.parent, folder.name)
    assert not missing, "\n".join(missing)


def test_imports_point_down_the_floors() -> None:
    upward = []
    for path in _modules():
        here = _dotted(path)
        for target in _imports(path):
            if _floor(target) > _floor(here):
                upward.append(f"{here} imports {target}")
    assert not upward, "\n".join(upward)


def test_no_modules_import_each_other_in_a_circle() -> None:
    graph = {_dotted(p): {t for t in _imports(p) if t != _dotted(p)} for p in _modules()}
    # A package's __init__ is not a module of its own in this sense when it only documents.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in graph:
                continue
            if state.get(target) == 1:
                cycle = stack[stack.index(target) :] + [target]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


@pytest.mark.parametrize(
    "folder", sorted(p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__")
)
def test_no_folder_holds_too_much(folder: Path) -> None:
    total = sum(len(p.read_text().splitlines()) for p in _modules())
    own = [p for p in folder.glob("*.py")]
    lines = sum(len(p.read_text().splitlines()) for p in folder.rglob("*.py"))
    assert len(own) <= 13, f"{folder.name} holds {len(own)} modules"
    assert lines <= 0.35 * total, f"{folder.name} holds {lines} of {total} lines"


def test_the_plugin_system_leaves_pluggy_alone() -> None:
    for path in (PACKAGE / "hooks").glob("*.py"):
        text = path.read_text()
        assert "type: ignore" not in text, path.name
        assert not re.search(r"\bimpl\.\w+\s*=[^=]", text), path.name
        assert not re.search(r"HookImpl\b", text), path.name
