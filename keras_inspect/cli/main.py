"""The ``keras-inspect`` command (also ``python -m keras_inspect``).

``keras-inspect summary MODEL`` prints what keras-inspect finds in a model; ``keras-inspect graph
MODEL -o FILE`` writes the same as a picture (one self-contained HTML page); ``keras-inspect
plugins`` lists the loaded plugins. Every failure is one line on stderr and a non-zero exit
status; ``KERAS_INSPECT_DEBUG=1`` shows the traceback (and the backend's own logs) instead.

Arguments and paths are checked before Keras or a backend is imported, so a mistake is reported
at once and alone; the backend's start-up lines are filtered out of stderr (see
:mod:`keras_inspect.cli.console`). Text from files and plugins is printed with its control
characters escaped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

import attrs

from keras_inspect.cli.console import (
    DEBUG_ENV,
    debugging,
    quiet_backend,
    shown,
    shown_warnings,
)  # fmt: skip
from keras_inspect.errors import rich_console

PROG = "keras-inspect"
#: Steps that take longer than this (seconds) announce themselves on stderr.
PROGRESS_DELAY = 1.0

#: The longest error line written (messages quote names and paths, which are cut already).
ERROR_LIMIT = 2000

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        # argparse's own format (usage + message) is already short; keep its exit status.
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _loading_arguments(command: argparse.ArgumentParser) -> None:
    """How a command that reads MODEL loads it (the same for every such command)."""
    command.add_argument(
        "--unsafe",
        action="store_true",
        help="allow loading code stored in the file (Lambda layers); only for files you trust",
    )
    command.add_argument(
        "--image-size",
        type=_positive_int,
        metavar="N",
        help="input side for built-in examples (default: 96)",
    )


def build_parser() -> argparse.ArgumentParser:
    from keras_inspect import __version__

    parser = _Parser(
        prog=PROG,
        description="See what keras-inspect finds in a Keras model, and which plugins it uses.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    summary = commands.add_parser(
        "summary",
        help="the layer each role search picks, the expose() defaults, and every layer",
        description=(
            "Summarise a model: the layer a search by each role picks, what expose(model) "
            "returns by default, then every layer in graph order (nested models included) with "
            "the roles it was chosen for, whether it adds a bias and its output shape."
        ),
    )
    summary.add_argument(
        "model",
        metavar="MODEL",
        help="a .keras file, or a built-in example: a keras.applications architecture in lower "
        "case (e.g. resnet50v2, mobilenetv2, efficientnetb0), built with weights=None",
    )
    summary.add_argument("--json", action="store_true", help="print the summary as JSON")
    summary.add_argument(
        "--role", metavar="ROLE", help="list every layer that plays ROLE (its candidates)"
    )
    summary.add_argument(
        "--candidates",
        action="store_true",
        help="show every role each layer can play, not only the roles a search picks it for",
    )
    _loading_arguments(summary)

    graph = commands.add_parser(
        "graph",
        help="write one self-contained HTML page picturing the model and what keras-inspect found",
        description=(
            "Write a picture of the model as one HTML file that opens offline in a browser: "
            "the layers in graph order with their connections, nested models and subclassed "
            "layers as groups that fold, each layer's roles (and the deciding plugin), bias and "
            "output shape, the expose(model) defaults, and the path each role search took."
        ),
    )
    graph.add_argument(
        "model",
        metavar="MODEL",
        help="a .keras file, or a built-in example (as for summary), e.g. mobilenetv2",
    )
    graph.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write the page; '-' writes it to stdout (default: MODEL's name with "
        "the suffix .html, in the current directory)",
    )
    _loading_arguments(graph)

    plugins = commands.add_parser(
        "plugins",
        help="loaded plugins, their distributions, versions and hooks",
        description="List every plugin keras-inspect loaded (and those that failed to load).",
    )
    plugins.add_argument("--json", action="store_true", help="print the list as JSON")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer; received {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer; received {value}")
    return value


@contextlib.contextmanager
def progress(message: str, stream: TextIO | None = None) -> Iterator[None]:
    """Announce a step on ``stream`` (stderr) if it lasts longer than :data:`PROGRESS_DELAY`.

    A terminal gets a transient rich spinner; anything else gets one plain ``message ...`` line.
    """
    stream = stream if stream is not None else sys.stderr
    status = None
    if _isatty(stream):
        try:
            from rich.text import Text
        except ImportError:
            pass
        else:
            # A Text, not a str: rich's spinner parses a str as markup whatever the console says.
            status = rich_console(stream).status(Text(message + " ..."))
    if status is not None:
        with status:
            yield
        return

    def announce() -> None:
        stream.write(f"{message} ...\n")
        stream.flush()

    timer = threading.Timer(PROGRESS_DELAY, announce)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def run_summary(args: argparse.Namespace, out: TextIO) -> int:
    from keras_inspect.cli.loading import resolve_model
    from keras_inspect.hooks.current import plugin_manager
    from keras_inspect.views.summary import summary

    with progress("loading plugins"):
        # Plugins first: a plugin package may define the custom layers the file needs.
        pm = plugin_manager()
        if args.role is not None:
            pm.check_role(args.role)
    with progress(f"loading {shown(args.model)}"):
        model = resolve_model(args.model, unsafe=args.unsafe, image_size=args.image_size)
    with progress("inspecting"):
        result = summary(model, role=args.role, candidates=args.candidates, pm=pm)
    if args.json:
        out.write(result.to_json() + "\n")
    else:
        result.print(out)
    return EXIT_OK


def graph_output(args: argparse.Namespace) -> str:
    """Where ``graph`` writes its page, checked before any backend is imported: ``"-"`` (stdout)
    or a file path in an existing directory, that is not a directory nor the model itself."""
    from pathlib import Path

    if args.output == "-":
        return "-"
    target = Path(args.output) if args.output else Path(Path(args.model).name).with_suffix(".html")
    if target.is_dir():
        raise ValueError(f"--output {str(target)!r} is a directory; expected a file name.")
    if not target.parent.is_dir():
        raise ValueError(f"cannot write {str(target)!r}: no directory {str(target.parent)!r}.")
    model = Path(args.model)
    if model.exists() and target.resolve() == model.resolve():
        raise ValueError(f"--output {str(target)!r} is the model file itself; choose another name.")
    return str(target)


def run_graph(args: argparse.Namespace, out: TextIO) -> int:
    from keras_inspect.cli.loading import resolve_model
    from keras_inspect.hooks.current import plugin_manager
    from keras_inspect.views.summary import summary

    with progress("loading plugins"):
        pm = plugin_manager()
    with progress(f"loading {shown(args.model)}"):
        model = resolve_model(args.model, unsafe=args.unsafe, image_size=args.image_size)
    from keras_inspect.views.graph_page import token_geometry_of

    with progress("inspecting"):
        page = summary(model, pm=pm).to_html(token_geometry=token_geometry_of(model))
    if args.output_path == "-":
        out.write(page)
        return EXIT_OK
    with open(args.output_path, "w", encoding="utf-8") as file:
        file.write(page)
    size = len(page.encode("utf-8"))
    out.write(f"wrote {shown(args.output_path)} ({size / 1e6:.1f} MB); open it in a browser\n")
    return EXIT_OK


def plugin_rows() -> list[dict[str, Any]]:
    """Every loaded plugin (and every plugin that failed to load) as plain data."""
    from keras_inspect import __version__
    from keras_inspect.hooks.current import plugin_manager

    rows = []
    for info in plugin_manager().plugin_infos():
        row = attrs.asdict(info)
        row["hooks"] = list(info.hooks)
        if info.builtin and info.distribution is None:
            row["distribution"], row["version"] = "keras-inspect", __version__
        rows.append(row)
    return rows


def run_plugins(args: argparse.Namespace, out: TextIO) -> int:
    rows = plugin_rows()
    if args.json:
        out.write(json.dumps(rows, indent=2) + "\n")
        return EXIT_OK
    for row in rows:
        # Names, versions and errors come from installed distributions: shown, never obeyed.
        name = shown(row["name"])
        origin = shown(f"{row['distribution']} {row['version']}")
        kind = "built-in" if row["builtin"] else "plugin"
        if row["error"] is not None:
            out.write(f"{name}  [{origin}, FAILED]\n    {_one_line(row['error'])}\n")
            continue
        out.write(f"{name}  [{origin}, {kind}]\n")
        out.write(f"    hooks: {shown(', '.join(row['hooks']) or '-', ERROR_LIMIT)}\n")
    failed = sum(row["error"] is not None for row in rows)
    out.write(f"\n{len(rows) - failed} plugins loaded, {failed} failed.\n")
    return EXIT_OK


def _one_line(error: BaseException | str) -> str:
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    if not text and isinstance(error, BaseException):
        text = type(error).__name__
    return shown(text, ERROR_LIMIT)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``keras-inspect`` console script; returns the exit status."""
    if not debugging():
        # TensorFlow's post-initialisation C++ logs (the earlier ones are filtered from stderr).
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    args = parser.parse_args(argv)
    with shown_warnings():
        return _run(args, sys.stdout)


def _run(args: argparse.Namespace, out: TextIO) -> int:
    try:
        if args.command in ("summary", "graph"):
            from keras_inspect.cli.loading import check_model_spec

            # Before any backend import: a wrong path is one line, at once.
            check_model_spec(args.model, image_size=args.image_size)
        if args.command == "graph":
            args.output_path = graph_output(args)
        with quiet_backend():
            if args.command == "summary":
                return run_summary(args, out)
            if args.command == "graph":
                return run_graph(args, out)
            return run_plugins(args, out)
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `keras-inspect summary x | head`: the reader went away; nothing left to report.
        with contextlib.suppress(Exception):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return EXIT_OK
    except SystemExit:
        raise
    except BaseException as error:
        # GeneratorExit or a custom BaseException from a plugin or a library is a failure of
        # the command like any other: one line, not a traceback.
        if debugging():
            raise
        from keras_inspect.errors import KerasInspectError

        known = isinstance(error, (KerasInspectError, ValueError, TypeError, OSError))
        prefix = "error" if known else f"unexpected {shown(type(error).__name__)}"
        sys.stderr.write(
            f"{PROG}: {prefix}: {_one_line(error)}"
            + ("" if known else f" (set {DEBUG_ENV}=1 for the traceback)")
            + "\n"
        )
        return EXIT_ERROR
