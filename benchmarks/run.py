"""keras-inspect against native Keras: every figure is a ratio to a baseline timed in this process.

Run with ``make bench`` (or ``python benchmarks/run.py``); ``--quick`` skips the largest models,
``--only 1,4`` runs some figures, ``--markdown FILE`` writes the results table. Figures:

1. ``expose()`` on a flat model vs ``keras.Model(inputs, outputs)`` over the same tensors
   (cold: a fresh model each run; cached: the same model again).
2. ``expose()`` of a layer in the middle of a nested backbone vs the expert's hand-written
   sub-model workaround.
3. ``predict`` (batch 16) of the exposed model vs the original model.
4. Role search and bias extraction through the plugin hooks vs hard-coded ``isinstance`` loops.
5. ``import keras_inspect`` on top of ``import keras`` (subprocesses).
6. Resident memory growth over 100 ``expose()`` calls on ResNet50V2.
7. Grad-CAM through ``gradients()`` vs the hand-written gradient on the running backend (batch 16,
   EfficientNetB0 and ResNet50V2, eager and compiled), and its memory growth over 100 calls.
8. FullGrad through ``gradients()`` (ResNet50V2, the input and every biased layer) vs one
   hand-written forward and backward pass.
9. Token attributions (layer integrated gradients, 64-token prompt, 32 steps) on a small Llama
   vs keras-hub's own interception differentiated by hand, eager and compiled.
10. An intervention through ``intervene()`` vs the plain forward pass.
11. Resident memory over 100 attribution calls of random prompt lengths.

Figures 1-6 are in this module, 7 and 8 in ``gradient_figures.py`` (their hand-written baselines
in ``handwritten.py``), 9-11 in ``transformer_figures.py``, the shared table and timers in
``common.py``.

Timings are medians of this process's CPU time (all threads), with the garbage collector paused:
on a shared machine wall time mostly measures the other processes. A baseline and its candidate
are run alternately so that whatever disturbs one run disturbs both.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
from typing import Any

# common comes first: it quiets TensorFlow's start-up logging before Keras is imported.
from common import (
    APPS, FLAT_MODELS, HEADER, ROWS, SHAPE, SIZES, Row, emit, fresh, machine, markdown, ms,
    paired, rss_mb, size_of, size_of_unwalked, steady_threads, timed,
)
from gradient_figures import figure_fullgrad, figure_gradcam, figure_gradient_memory
from transformer_figures import (
    figure_intervention, figure_lengths_memory, figure_token_attributions,
)

import keras
import numpy as np

import keras_inspect as ki


# -- figure 1 -------------------------------------------------------------------------------


def figure_expose_flat(names: list[str], repeats: int) -> None:
    for name in names:
        base_cold, cand_cold, base_warm, cand_warm = [], [], [], []
        size = ""
        for _ in range(repeats):
            model = fresh(name)
            size = size or size_of_unwalked(model)
            wanted = [model.output, model.get_layer("avg_pool").input]
            # Cold: the first call on a model never seen, plugin manager already loaded.
            base_cold.append(timed(lambda: keras.Model(model.inputs, wanted)))
            cand_cold.append(timed(lambda: ki.expose(model)))
            base_warm.append(timed(lambda: keras.Model(model.inputs, wanted)))
            cand_warm.append(timed(lambda: ki.expose(model)))
            del model
        emit(Row("1 expose flat, cold", name, size, ms(base_cold), ms(cand_cold), "ms",
                 "<= 1.5", ms(cand_cold) <= 1.5 * ms(base_cold)))
        emit(Row("1 expose flat, cached", name, size, ms(base_warm), ms(cand_warm), "ms",
                 "<= 1.5", ms(cand_warm) <= 1.5 * ms(base_warm)))


# -- figure 2 -------------------------------------------------------------------------------


def nested(name: str) -> tuple[Any, Any, Any, Any]:
    gc.collect()
    backbone = FLAT_MODELS[name](weights=None, include_top=False, input_shape=SHAPE)
    gap = keras.layers.GlobalAveragePooling2D(name="gap")
    head = keras.layers.Dense(10, name="head")
    model = keras.Sequential([keras.Input(SHAPE), backbone, gap, head], name="classifier")
    layers = [layer for layer in backbone.layers if not isinstance(layer, keras.layers.InputLayer)]
    middle = layers[len(layers) // 2]
    return model, backbone, (gap, head), middle


def expert_workaround(backbone: Any, head: tuple[Any, Any], middle: Any) -> Any:
    sub = keras.Model(backbone.inputs, [backbone.output, middle.output])
    new_input = keras.Input(SHAPE)
    features, signal = sub(new_input)
    logits = head[1](head[0](features))
    return keras.Model(new_input, [logits, signal])


def figure_expose_nested(names: list[str], repeats: int) -> None:
    for name in names:
        base_cold, cand_cold, base_warm, cand_warm = [], [], [], []
        size = ""
        for _ in range(repeats):
            model, backbone, head, middle = nested(name)
            size = size or (
                f"{len(backbone.layers)}+2 layers, {model.count_params() / 1e6:.1f}M params"
            )
            path = f"{backbone.name}/{middle.name}"
            base_cold.append(timed(lambda: expert_workaround(backbone, head, middle)))
            cand_cold.append(timed(lambda: ki.expose(model, arguments=[path])))
            base_warm.append(timed(lambda: expert_workaround(backbone, head, middle)))
            cand_warm.append(timed(lambda: ki.expose(model, arguments=[path])))
            del model, backbone, head, middle
        emit(Row("2 expose nested, cold", name, size, ms(base_cold), ms(cand_cold), "ms",
                 "<= 1.5", ms(cand_cold) <= 1.5 * ms(base_cold)))
        emit(Row("2 expose nested, cached", name, size, ms(base_warm), ms(cand_warm), "ms",
                 "<= 1.5", ms(cand_warm) <= 1.5 * ms(base_warm)))


# -- figure 3 -------------------------------------------------------------------------------


def figure_forward(names: list[str], repeats: int) -> None:
    batch = np.random.default_rng(0).random((16, *SHAPE), dtype=np.float32)
    for name in names:
        for kind in ("flat", "nested"):
            if kind == "flat":
                model = fresh(name)
                exposed = ki.expose(model)
                size = size_of(model)
            else:
                model, backbone, _head, middle = nested(name)
                exposed = ki.expose(model, arguments=[f"{backbone.name}/{middle.name}"])
                size = f"{len(ki.walk(model))} layers, {model.count_params() / 1e6:.1f}M params"
            # The first predict traces and compiles; only later calls are timed.
            model.predict(batch, batch_size=16, verbose=0)
            exposed.predict(batch, batch_size=16, verbose=0)
            # CPU time of all the process's threads: the backend computes on several threads,
            # and the question is whether the exposed model does more work. On a loaded machine
            # wall time swung by +-50% between identical calls; CPU time by a few percent.
            base, cand = paired(
                lambda: model.predict(batch, batch_size=16, verbose=0),
                lambda: exposed.predict(batch, batch_size=16, verbose=0),
                2 * repeats,
            )
            emit(Row(f"3 predict, {kind}", name, size, base * 1e3, cand * 1e3, "ms",
                     "<= 1.05", cand <= 1.05 * base))
            del model, exposed


# -- figure 4 -------------------------------------------------------------------------------


def expert_bias(layer: Any) -> Any:
    """What a hand-written FullGrad bias loop computes for stock layers."""
    ops = keras.ops
    if isinstance(layer, keras.layers.BatchNormalization):
        gamma = layer.gamma if layer.scale else 1.0
        beta = layer.beta if layer.center else 0.0
        return beta - gamma * layer.moving_mean / ops.sqrt(layer.moving_variance + layer.epsilon)
    if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                          keras.layers.SeparableConv2D)) and layer.use_bias:
        return ops.convert_to_tensor(layer.bias)
    return None


def figure_search(names: list[str], repeats: int) -> None:
    dense, gap, bn = (keras.layers.Dense, keras.layers.GlobalAveragePooling2D,
                      keras.layers.BatchNormalization)
    for name in names:
        gc.collect()
        if name == "NASNetMobile":
            model = APPS.NASNetMobile(weights=None, input_shape=SHAPE)
        else:
            model = FLAT_MODELS[name](weights=None, input_shape=SHAPE)
        size = size_of_unwalked(model)
        pm = ki.plugin_manager()

        def last(kind: type) -> Any:
            for layer in reversed(model.layers):
                if isinstance(layer, kind):
                    return layer
            return None

        def every_bn() -> list[Any]:
            return [layer for layer in model.layers if isinstance(layer, bn)]

        def every_normalization() -> list[Any]:
            return ki.layers_with_role(model, "normalization")

        def classify_each_layer() -> list[Any]:
            plays = pm.classify
            return [e.layer for e in ki.walk(model) if plays(e.layer, "normalization")[0]]

        def expert_biases() -> list[Any]:
            found = []
            for layer in model.layers:
                value = expert_bias(layer)
                if value is not None:
                    found.append(value)
            return found

        # The first search of a model: its walk and the classifications are not cached yet.
        cold = timed(lambda: ki.get_logits_layer(model)) * 1e3
        assert ki.get_logits_layer(model) is last(dense)
        assert ki.get_global_pooling_layer(model) is last(gap)
        assert every_normalization() == every_bn() == classify_each_layer()
        searches = (
            ("4 logits search", lambda: last(dense), lambda: ki.get_logits_layer(model)),
            ("4 pooling search", lambda: last(gap), lambda: ki.get_global_pooling_layer(model)),
            ("4 all layers with a role", every_bn, every_normalization),
        )
        emit(Row("4 logits search, first call", name, size, float("nan"), cold, "ms",
                 "< 5 ms", cold < 5))
        for label, base_fn, cand_fn in searches:
            base, cand = paired(base_fn, cand_fn, repeats, number=100)
            emit(Row(label, name, size, base * 1e3, cand * 1e3, "ms", "<= 2, < 5 ms",
                     cand <= 2 * base and cand < 5e-3))
        # For information: one plugin-manager call per layer, the cost layers_with_role pays
        # once per model and role.
        base, cand = paired(every_bn, classify_each_layer, repeats, number=100)
        emit(Row("4 classify each layer (info)", name, size, base * 1e3, cand * 1e3, "ms", "-",
                 None))
        base, cand = paired(expert_biases, lambda: ki.layers_with_biases(model), repeats)
        emit(Row("4 bias extraction", name, size, base * 1e3, cand * 1e3, "ms", "<= 2",
                 cand <= 2 * base))
        del model


# -- figure 5 -------------------------------------------------------------------------------

# CPU time of the import (see ``timed``); keras is imported first in both probes.
IMPORT_PROBE = (
    "import time, keras; start = time.process_time(); import keras_inspect; "
    "print(time.process_time() - start)"
)
KERAS_PROBE = (
    "import time; start = time.process_time(); import keras; print(time.process_time() - start)"
)


def figure_import(repeats: int) -> None:
    # As installed packages are: from cached bytecode (written to a scratch directory, not the
    # tree), even where PYTHONDONTWRITEBYTECODE is set; the first run of each probe writes it.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "keras-inspect-bench-pyc")

    def probe(code: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        return float(out.stdout.strip().splitlines()[-1])

    probe(IMPORT_PROBE)
    base, cand = [], []
    for _ in range(repeats):
        base.append(probe(KERAS_PROBE))
        cand.append(probe(IMPORT_PROBE))
    emit(Row("5 import keras_inspect after keras", "-", "-", ms(base), ms(cand), "ms",
             "< 50 ms", ms(cand) < 50))


# -- figure 6 -------------------------------------------------------------------------------


def figure_memory(calls: int = 100) -> None:
    model = APPS.ResNet50V2(weights=None, input_shape=SHAPE)
    size = size_of(model)
    wanted = [model.output, model.get_layer("avg_pool").input]
    # One call of each first: Keras and the plugins allocate their one-time state here.
    keras.Model(model.inputs, wanted)
    ki.expose(model)
    gc.collect()
    start = rss_mb()
    for _ in range(calls):
        keras.Model(model.inputs, wanted)
    gc.collect()
    native = rss_mb() - start
    start = rss_mb()
    for _ in range(calls):
        ki.expose(model)
    gc.collect()
    grown = rss_mb() - start
    emit(Row(f"6 RSS growth, {calls} calls", "ResNet50V2", size, native, grown, "MB",
             "< 50 MB", grown < 50))


# -- main -----------------------------------------------------------------------------------


def run_figures(figures: set[int], quick: bool, repeats: int) -> None:
    sizes = list(SIZES[:2] if quick else SIZES)
    flat = sizes + ([] if quick else ["ResNet152V2"])
    if 5 in figures:
        figure_import(repeats)
    if 4 in figures:
        # Keras does not build NASNetMobile on the torch backend.
        extra = [] if keras.backend.backend() == "torch" else ["NASNetMobile"]
        figure_search(sizes + extra, repeats)
    if 1 in figures:
        figure_expose_flat(flat, repeats)
    if 2 in figures:
        figure_expose_nested(sizes, repeats)
    if 3 in figures:
        figure_forward(sizes, repeats)
    if 6 in figures:
        figure_memory()
    if 7 in figures:
        figure_gradcam(repeats)
    if 8 in figures:
        figure_fullgrad(repeats)
    if 7 in figures:
        figure_gradient_memory()
    if 9 in figures:
        figure_token_attributions(repeats)
    if 10 in figures:
        figure_intervention(repeats)
    if 11 in figures:
        figure_lengths_memory()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per median (default 5)")
    parser.add_argument("--quick", action="store_true", help="skip the largest models")
    parser.add_argument("--only", default="1,2,3,4,5,6,7,8,9,10,11", help="figures to run, e.g. 1,4")
    parser.add_argument("--markdown", help="also write the results table to this file")
    args = parser.parse_args(argv)
    figures = {int(x) for x in args.only.split(",") if x.strip()}
    print(f"# machine: {machine()}; input shape {SHAPE}; medians of {args.repeats} runs")
    print(" | ".join(HEADER))
    ki.plugin_manager()  # loaded once, as in any process that uses the library
    with steady_threads():
        run_figures(figures, args.quick, args.repeats)
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(f"Machine: {machine()}; input shape {SHAPE}.\n\n" + markdown())
    scored = [row for row in ROWS if row.ok is not None]
    missed = [row for row in scored if row.ok is False]
    print(f"# {len(scored) - len(missed)} of {len(scored)} figures with a target within it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
