"""Generate the hook reference from the docstrings of ``keras_inspect.framework.hookspecs``.

Used two ways: as an MkDocs hook (``hooks:`` in mkdocs.yml), it replaces the marker
``<!-- hook-reference -->`` in ``hooks.md`` while the site is built; ``tests/test_docs.py``
imports :func:`render` to check that every hook is documented. No network, no MkDocs plugin.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any, NamedTuple

MARKER = "<!-- hook-reference -->"
HOOKSPECS = Path(__file__).resolve().parents[2] / "keras_inspect" / "framework" / "hookspecs.py"

_ROLE = re.compile(r":(?:func|class|data|meth|attr|mod):`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")
_FIELD = re.compile(r"^:(param (\w+)|return|raises?(?: (\w+))?):\s*(.*)$")


class HookDoc(NamedTuple):
    name: str
    signature: str
    docstring: str
    firstresult: bool


def hookspecs(path: Path = HOOKSPECS) -> list[HookDoc]:
    """Every hook specification of ``path``, in source order.

    The module is parsed, not imported: building the docs must not import Keras and a backend.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith("keras_inspect_"):
            continue
        spec = next((d for d in node.decorator_list if _is_hookspec(d)), None)
        if spec is None:
            continue
        firstresult = isinstance(spec, ast.Call) and any(
            k.arg == "firstresult" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in spec.keywords
        )
        found.append(
            HookDoc(
                name=node.name,
                signature=_signature(node),
                docstring=ast.get_docstring(node) or "",
                firstresult=firstresult,
            )
        )
    return found


def _is_hookspec(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Name) and target.id == "hookspec"


def _signature(node: ast.FunctionDef) -> str:
    params = [
        arg.arg if arg.annotation is None else f"{arg.arg}: {ast.unparse(arg.annotation)}"
        for arg in node.args.args
    ]
    text = f"({', '.join(params)})"
    if node.returns is not None:
        text += f" -> {ast.unparse(node.returns)}"
    return text


def _markdown(text: str) -> str:
    text = _ROLE.sub(lambda m: f"`{m.group(1).split('.')[-1]}`", text)
    return _LITERAL.sub(lambda m: f"`{m.group(1)}`", text)


def _docstring_to_markdown(doc: str) -> str:
    """Paragraphs stay paragraphs; ``:param x:``/``:return:`` fields become a bullet list."""
    body: list[str] = []
    fields: list[tuple[str, list[str]]] = []

    def flush() -> None:
        if fields:
            body.extend(f"- **{label}**: {' '.join(parts)}" for label, parts in fields)
            body.append("")
            fields.clear()

    for line in inspect.cleandoc(doc).splitlines():
        match = _FIELD.match(line.strip())
        if match:
            if not fields and body and body[-1].strip():
                body.append("")
            kind, param, raised, text = match.groups()
            if param:
                label = f"`{param}`"
            elif kind.startswith("raise"):
                label = f"Raises `{raised}`" if raised else "Raises"
            else:
                label = "Returns"
            fields.append((label, [text]))
        elif fields and line.startswith(" ") and line.strip():
            fields[-1][1].append(line.strip())
        else:
            flush()
            body.append(line)
    flush()
    return _markdown("\n".join(body).strip())


def render() -> str:
    """The Markdown of the hook reference: one section per hook."""
    out = []
    for hook in hookspecs():
        kind = (
            "first result: calling stops at the first plugin that returns a value other than "
            "`None`"
            if hook.firstresult
            else "collecting: every plugin is called and the results are merged"
        )
        out.append(f"## `{hook.name}`\n")
        out.append(f"```python\n@hookimpl\ndef {hook.name}{hook.signature}: ...\n```\n")
        out.append(f"*Calling convention: {kind}.*\n")
        out.append(_docstring_to_markdown(hook.docstring) + "\n")
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs event: fill the marker of the reference page."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render())
