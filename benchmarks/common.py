"""What every benchmark figure shares: the results table, the timers and the machine description.

Each figure module records its rows with :func:`emit`; ``run.py`` prints them as they come and
writes the table with :func:`markdown`.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import keras_inspect as ki  # noqa: E402

SHAPE = (64, 64, 3)
APPS = keras.applications
FLAT_MODELS: dict[str, Callable[..., Any]] = {
    "EfficientNetB0": APPS.EfficientNetB0,
    "EfficientNetB3": APPS.EfficientNetB3,
    "EfficientNetB7": APPS.EfficientNetB7,
    "ResNet50V2": APPS.ResNet50V2,
    "ResNet152V2": APPS.ResNet152V2,
}
SIZES = ("EfficientNetB0", "EfficientNetB3", "EfficientNetB7")


class Row:
    """One line of the results table."""

    def __init__(
        self,
        figure: str,
        model: str,
        size: str,
        baseline: float,
        candidate: float,
        unit: str,
        target: str,
        ok: bool | None,
    ) -> None:
        self.figure, self.model, self.size = figure, model, size
        self.baseline, self.candidate, self.unit = baseline, candidate, unit
        self.target, self.ok = target, ok

    @property
    def ratio(self) -> float:
        return self.candidate / self.baseline if self.baseline else float("nan")

    def cells(self) -> list[str]:
        verdict = {True: "met", False: "MISSED", None: "-"}[self.ok]
        base = "-" if self.baseline != self.baseline else f"{self.baseline:.3g}"
        # A ratio of two memory growths near zero says nothing: those rows compare amounts.
        meaningless = self.ratio != self.ratio or self.unit == "MB"
        ratio = "-" if meaningless else f"{self.ratio:.2f}"
        return [
            self.figure, self.model, self.size, base, f"{self.candidate:.3g}", self.unit,
            ratio, self.target, verdict,
        ]


HEADER = ["figure", "model", "size", "Keras", "keras-inspect", "unit", "ratio", "target", ""]
ROWS: list[Row] = []


def emit(row: Row) -> None:
    ROWS.append(row)
    print(" | ".join(row.cells()), flush=True)


def markdown() -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in ROWS]
    return "\n".join(lines) + "\n"


def size_of(model: Any) -> str:
    nested = len(ki.walk(model))
    return f"{nested} layers, {model.count_params() / 1e6:.1f}M params"


def size_of_unwalked(model: Any) -> str:
    # Counting through the walk would warm its cache before a cold measurement.
    count = sum(1 for layer in model.layers if not isinstance(layer, keras.layers.InputLayer))
    return f"{count} layers, {model.count_params() / 1e6:.1f}M params"


def timed(fn: Callable[[], Any], clock: Callable[[], float] = time.process_time) -> float:
    """Seconds ``fn`` takes, with the cyclic garbage collector paused (as ``timeit`` does).

    CPU time of this process by default: the work measured is single-threaded Python, and CPU
    time is far less disturbed than wall time by other processes on a shared 2-core machine.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        fn()
        return clock() - start
    finally:
        if enabled:
            gc.enable()


def paired(
    baseline: Callable[[], Any],
    candidate: Callable[[], Any],
    repeats: int,
    number: int = 1,
    clock: Callable[[], float] = time.process_time,
) -> tuple[float, float]:
    """Median seconds per call of each, run alternately ``repeats`` times (``number`` calls each)."""
    base, cand = [], []
    for _ in range(repeats):
        base.append(timed(lambda: [baseline() for _ in range(number)], clock) / number)
        cand.append(timed(lambda: [candidate() for _ in range(number)], clock) / number)
    return statistics.median(base), statistics.median(cand)


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3


def fresh(name: str, **kwargs: Any) -> Any:
    gc.collect()
    return FLAT_MODELS[name](weights=None, input_shape=SHAPE, **kwargs)


@contextlib.contextmanager
def steady_threads() -> Iterator[None]:
    """On PyTorch, one intra-op thread while the figures run.

    PyTorch's OpenMP workers spin while they wait, and on a 2-core machine shared with other jobs
    they are preempted, so CPU time measures the contention: under a load of 3 on 2 cores, a
    Grad-CAM call on ResNet50V2 measured 3.1 s of CPU time with two threads and 0.21 s with one,
    and the two sides of a ``predict`` pair, which do the same work, measured 0.5x to 2.9x of each
    other. With one thread a call measures its own work; both sides run with the same setting.
    """
    if keras.backend.backend() != "torch":
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def machine() -> str:
    import importlib.metadata as md

    versions = []
    for dist in ("keras", "tensorflow-cpu", "jax", "torch"):
        try:
            versions.append(f"{dist} {md.version(dist)}")
        except md.PackageNotFoundError:
            pass
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, backend {keras.backend.backend()}, "
        + ", ".join(versions)
    )
