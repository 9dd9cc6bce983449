"""Generate the hook reference from the docstrings of ``keras_inspect.framework.hookspecs``.

Used two ways: as an MkDocs hook (``hooks:`` in mkdocs.yml), it replaces the marker
``<!-- hook-reference -->`` in ``hooks.md`` while the site is built; ``tests/test_docs.py``
imports :func:`render` to check that every hook is documented. No network, no MkDocs plugin.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

MARKER = "<!-- hook-reference -->"

_ROLE = re.compile(r":(?:func|class|data|meth|attr|mod):`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")
_FIELD = re.compile(r"^:(param (\w+)|return|raises?(?: (\w+))?):\s*(.*)$")


def hookspecs() -> list[tuple[str, Any, dict[str, Any]]]:
    """``(name, function, spec options)`` of every hook, in source order."""
    from keras_inspect.framework import hookspecs as module
    from keras_inspect.framework.markers import PROJECT_NAME

    found = []
    for name, function in vars(module).items():
        options = getattr(function, f"{PROJECT_NAME}_spec", None)
        if name.startswith("keras_inspect_") and options is not None:
            found.append((name, function, dict(options)))
    found.sort(key=lambda item: inspect.getsourcelines(item[1])[1])
    return found


def _markdown(text: str) -> str:
    text = _ROLE.sub(lambda m: f"`{m.group(1).split('.')[-1]}`", text)
    return _LITERAL.sub(lambda m: f"`{m.group(1)}`", text)


def _docstring_to_markdown(doc: str) -> str:
    """Paragraphs stay paragraphs; ``:param x:``/``:return:`` fields become a definition list."""
    lines = inspect.cleandoc(doc).splitlines()
    body: list[str] = []
    fields: list[tuple[str, list[str]]] = []
    for line in lines:
        match = _FIELD.match(line.strip())
        if match:
            kind, param, raised, text = match.groups()
            if param:
                label = f"`{param}`"
            elif kind.startswith("raise"):
                label = f"Raises `{raised}`" if raised else "Raises"
            else:
                label = "Returns"
            fields.append((label, [text]))
        elif fields and line.startswith("    ") and line.strip():
            fields[-1][1].append(line.strip())
        elif fields and not line.strip():
            body.append("")
            fields_done = _fields(fields)
            body[-1:-1] = fields_done
            fields = []
        else:
            body.append(line)
    if fields:
        body.extend(["", *_fields(fields)])
    return _markdown("\n".join(body).strip())


def _fields(fields: list[tuple[str, list[str]]]) -> list[str]:
    return [f"- **{label}**: {' '.join(parts)}" for label, parts in fields] + [""]


def _annotation(value: Any) -> str:
    # Annotations are strings here (the module uses postponed evaluation); show them unquoted.
    return value if isinstance(value, str) else inspect.formatannotation(value)


def _signature(function: Any) -> str:
    signature = inspect.signature(function)
    params = [
        p.name if p.annotation is inspect.Parameter.empty else f"{p.name}: {_annotation(p.annotation)}"
        for p in signature.parameters.values()
    ]
    text = f"({', '.join(params)})"
    if signature.return_annotation is not inspect.Signature.empty:
        text += f" -> {_annotation(signature.return_annotation)}"
    return text


def render() -> str:
    """The Markdown of the hook reference: one section per hook."""
    out = []
    for name, function, options in hookspecs():
        signature = _signature(function)
        kind = (
            "first result: calling stops at the first plugin that returns a value other than "
            "`None`"
            if options.get("firstresult")
            else "collecting: every plugin is called and the results are merged"
        )
        out.append(f"## `{name}`\n")
        out.append(f"```python\n@hookimpl\ndef {name}{signature}: ...\n```\n")
        out.append(f"*Calling convention: {kind}.*\n")
        out.append(_docstring_to_markdown(function.__doc__ or "") + "\n")
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs event: fill the marker of the reference page."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render())
