"""What the command line writes for people: printable text, and a backend kept quiet.

Text that comes from a model file or a plugin (layer names, class names, error messages,
warnings) goes through :func:`keras_inspect.errors.printable` (re-exported here), the project's one
escaping function; rich is never allowed to read such text as markup
(:func:`keras_inspect.errors.rich_console`).

TensorFlow writes start-up lines straight to file descriptor 2 from C++ (absl's "All log
messages before absl::InitializeLog()", CUDA driver probes, CPU feature notes), which
``TF_CPP_MIN_LOG_LEVEL`` no longer silences: :func:`quiet_backend` filters those lines out of the
descriptor while keeping everything else, Python's own stderr included.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

from keras_inspect.errors import printable, shown

__all__ = ["DEBUG_ENV", "debugging", "is_noise", "printable", "quiet_backend",
           "shown", "shown_warnings"]  # fmt: skip

DEBUG_ENV = "KERAS_INSPECT_DEBUG"
#: The longest warning message printed (a Keras warning can quote a 64 KiB member name).
WARNING_LIMIT = 1000


def _format_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int,
    line: str | None = None,
) -> str:  # fmt: skip
    # The source line is left out: it is ours or a library's, and the message says it all.
    text = shown(f"{category.__name__}: {message}", WARNING_LIMIT)
    return f"{shown(filename)}:{lineno}: {text}\n"


@contextlib.contextmanager
def shown_warnings() -> Iterator[None]:
    """Print warnings with :func:`~keras_inspect.errors.shown` while the block runs.

    Keras and plugins warn with text a file or a distribution chose (a member name, a plugin's
    error message, a version string): escaped and cut like everything else the command prints.
    """
    original = warnings.formatwarning
    warnings.formatwarning = _format_warning  # type: ignore[assignment]
    try:
        yield
    finally:
        warnings.formatwarning = original


def debugging() -> bool:
    """Whether the user asked for tracebacks and backend logs (``KERAS_INSPECT_DEBUG=1``)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


# Start-up noise of TensorFlow's C++ runtime: absl-formatted info and warning lines, CUDA probes
# on a machine without a GPU (error severity, but expected there), the pre-initialisation banner
# and the second line of the CPU feature note. Anything else written to stderr is kept.
_NOISE = re.compile(
    rb"^(?:[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "
    rb"|E\d{4} [\d:.]+ +\d+ cuda\w*\.cc:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler)"
)


def is_noise(line: bytes) -> bool:
    """Whether one line written to stderr is a backend start-up message."""
    return _NOISE.match(line) is not None


def _relay(source: int, target: int) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(source, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if not is_noise(line))
        if kept:
            with contextlib.suppress(OSError):
                os.write(target, kept)
    if pending and not is_noise(pending):
        with contextlib.suppress(OSError):
            os.write(target, pending)
    os.close(source)


def _writes_to_descriptor_2(stream: Any) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, ValueError, OSError):
        return False


@contextlib.contextmanager
def quiet_backend() -> Iterator[None]:
    """Drop the backend's start-up lines from file descriptor 2 while the block runs.

    Python's ``sys.stderr`` keeps writing to the real stderr (so a terminal stays a terminal for
    progress spinners); native writes pass through a filter thread. Nothing is filtered when
    ``KERAS_INSPECT_DEBUG`` is set.
    """
    if debugging():
        yield
        return
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        original = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:
        yield
        return
    os.dup2(write_end, 2)
    os.close(write_end)
    relay = threading.Thread(target=_relay, args=(read_end, original), daemon=True)
    relay.start()
    python_stderr = sys.stderr
    if _writes_to_descriptor_2(python_stderr):
        sys.stderr = open(  # noqa: SIM115 - closed below, after the block
            os.dup(original),
            "w",
            encoding=getattr(python_stderr, "encoding", None) or "utf-8",
            errors="backslashreplace",
            buffering=1,
        )
    try:
        yield
    finally:
        if sys.stderr is not python_stderr:
            with contextlib.suppress(Exception):
                sys.stderr.close()
            sys.stderr = python_stderr
        # Pointing descriptor 2 back closes the pipe's last writer: the relay drains and ends.
        os.dup2(original, 2)
        relay.join(timeout=10)
        if not relay.is_alive():
            os.close(original)
