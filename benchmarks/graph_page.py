"""How long the graph page takes to build and to lay out, and how big it is.

Run from the repository root: ``python benchmarks/graph_page.py`` (``--quick`` skips the ViT-B/16,
``--no-browser`` skips the in-browser figures). For each model it reports:

- the cold ``keras_inspect.summary(model)`` (the inspection the page shows: roles, biases, shapes,
  plus the graph structure), and the graph structure alone (connections, groups, search paths);
- ``to_html()`` on that summary, and the page's size;
- in headless Chromium (Debian's, driven by Playwright, as the tests do): the time from opening
  the file until the page is drawn, and dagre's layout alone, as the page reports it; for the
  ViT, also with every group unfolded.

Models: EfficientNetB7 as ``keras-inspect graph efficientnetb7`` builds it (96x96 input, random
weights; 815 layers), and a keras-hub ViT with the ViT-B/16 architecture (12 blocks, built from
its configuration, random weights). Timings are wall-clock medians (5 runs in Python, 3 page
loads), since a person waits for the wall clock.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import keras_inspect as ki  # noqa: E402
from keras_inspect.views.graph_data import graph_structure  # noqa: E402
from keras_inspect.cli.loading import build_example  # noqa: E402
from keras_inspect.graph.inspected import inspect_model  # noqa: E402


def median_seconds(action: Callable[[], Any], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def vit_b16() -> Any:
    import keras_hub

    backbone = keras_hub.models.ViTBackbone(
        image_shape=(224, 224, 3), patch_size=16, num_layers=12, num_heads=12, hidden_dim=768,
        mlp_dim=3072,
    )  # fmt: skip
    return keras_hub.models.ViTImageClassifier(
        backbone=backbone, num_classes=1000, preprocessor=None
    )


def in_browser(page: str, unfold: bool) -> dict[str, float] | None:
    """Median time to a drawn page and dagre's layout time, in headless Chromium."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "page.html"
        file.write_text(page, encoding="utf-8")
        ready, layout, unfolded = [], [], []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"],
            )  # fmt: skip
            for _ in range(3):
                tab = browser.new_page(viewport={"width": 1280, "height": 800})
                start = time.perf_counter()
                tab.goto(file.as_uri())
                tab.wait_for_selector("body[data-ready]", timeout=120_000)
                ready.append(time.perf_counter() - start)
                layout.append(float(tab.get_attribute("body", "data-layout-ms")) / 1000)
                if unfold:
                    tab.click("#ki-unfold-all")
                    unfolded.append(float(tab.get_attribute("body", "data-layout-ms")) / 1000)
                tab.close()
            browser.close()
    figures = {"open to drawn": statistics.median(ready), "dagre layout": statistics.median(layout)}
    if unfolded:
        figures["dagre layout, all unfolded"] = statistics.median(unfolded)
    return figures


def measure(
    name: str, build: Callable[[], Any], browser: bool, unfold: bool
) -> list[tuple[str, str]]:
    start = time.perf_counter()
    model = build()
    built = time.perf_counter() - start
    start = time.perf_counter()
    summary = ki.summary(model)
    cold = time.perf_counter() - start
    view = inspect_model(model)
    roles = [choice.role for choice in summary.chosen]
    rows = summary.graph.rows
    structure = median_seconds(lambda: graph_structure(view, roles, rows))
    page = summary.to_html()
    render = median_seconds(summary.to_html)
    size = len(page.encode("utf-8"))
    lines = [
        ("layers (walk)", f"{len(rows)}"),
        ("connections", f"{len(summary.graph.edges)}"),
        ("model build (not part of the page)", f"{built:.1f} s"),
        ("summary(model), cold", f"{cold:.2f} s"),
        ("graph structure alone", f"{structure * 1000:.1f} ms"),
        ("to_html()", f"{render * 1000:.1f} ms"),
        ("page size", f"{size / 1e6:.2f} MB"),
    ]
    figures = in_browser(page, unfold) if browser else None
    if browser and figures is None:
        lines.append(("in the browser", "skipped: no Playwright or no chromium"))
    for label, seconds in (figures or {}).items():
        lines.append((f"browser: {label}", f"{seconds:.2f} s"))
    return [(name, "")] + lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the ViT-B/16")
    parser.add_argument("--no-browser", action="store_true", help="skip the in-browser figures")
    args = parser.parse_args(argv)
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, Python "
          f"{sys.version.split()[0]}")  # fmt: skip
    models: list[tuple[str, Callable[[], Any], bool]] = [
        ("EfficientNetB7 (96x96)", lambda: build_example("efficientnetb7"), False)
    ]
    if not args.quick:
        models.append(("keras-hub ViT-B/16 (224x224)", vit_b16, True))
    print("\n| figure | value |\n| --- | --- |")
    for name, build, unfold in models:
        for label, value in measure(name, build, not args.no_browser, unfold):
            print(f"| **{label}** | |" if not value else f"| {label} | {value} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
