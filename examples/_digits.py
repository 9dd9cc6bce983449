"""Shared scaffolding for the examples: a small CNN trained in seconds on scikit-learn's digits.

Nothing here is keras-inspect: data, a model, a gradient for the current backend, and a figure.
The recipes (``cam.py``, ``gradcam.py``, ``fullgrad.py``) keep only the explanation method.
Set ``KERAS_INSPECT_DIGITS_CACHE`` to a directory to train once and reuse the weights.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402

SIZE = 16  # the 8x8 digits, upsampled twice: the 8x8 CAM then sits on a 16x16 image
INK = 0.5  # a pixel brighter than this (images scaled to [0, 1]) is ink
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "img"


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as float32 images ``(n, 16, 16, 1)`` in [0, 1], and their labels."""
    from sklearn.datasets import load_digits as sklearn_digits

    data = sklearn_digits()
    small = data.images[..., None].astype("float32") / 16.0
    images = ops.image.resize(small, (SIZE, SIZE), interpolation="bilinear")
    return np.clip(ops.convert_to_numpy(images), 0.0, 1.0), data.target.astype("int32")


def build_cnn() -> keras.Model:
    """Conv-BN-ReLU blocks, global average pooling, one Dense layer: a CAM-ready classifier."""
    def block(filters: int) -> list[keras.layers.Layer]:
        return [layers.Conv2D(filters, 3, padding="same"), layers.BatchNormalization(momentum=0.9),
                layers.ReLU()]

    return keras.Sequential(
        [keras.Input((SIZE, SIZE, 1)), *block(16), layers.MaxPooling2D(), *block(32),
         *block(32), layers.GlobalAveragePooling2D(), layers.Dense(10, name="logits")],
        name="digits_cnn",
    )


def trained_cnn(epochs: int = 5, seed: int = 0) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """The CNN trained on 80% of the digits; returns it with the 20% held-out images and labels."""
    keras.utils.set_random_seed(seed)
    images, labels = load_digits()
    order = np.random.default_rng(seed).permutation(len(images))
    cut = int(0.8 * len(images))
    train, test = order[:cut], order[cut:]
    model = build_cnn()
    cache = os.environ.get("KERAS_INSPECT_DIGITS_CACHE")
    weights = Path(cache) / f"digits_cnn_{keras.backend.backend()}.weights.h5" if cache else None
    if weights is not None and weights.exists():
        model.load_weights(weights)
        return model, images[test], labels[test]
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(1e-2, epochs * -(-len(train) // 64))
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(images[train], labels[train], batch_size=64, epochs=epochs, verbose=0)
    if weights is not None:
        # Write then rename, so a concurrent reader never sees half a file.
        weights.parent.mkdir(parents=True, exist_ok=True)
        partial = weights.with_name(f"{os.getpid()}.{weights.name}")
        model.save_weights(partial)
        os.replace(partial, weights)
    return model, images[test], labels[test]


def gradient(scalar: Callable[..., Any], *args: np.ndarray) -> list[np.ndarray]:
    """d scalar(*args) / d args, with the current backend's own autodiff."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(a) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            value = scalar(*tensors)
        grads = tape.gradient(value, tensors)
    elif backend == "jax":
        import jax

        grads = jax.grad(scalar, argnums=tuple(range(len(args))))(*args)
    elif backend == "torch":
        import torch

        tensors = [torch.tensor(a, requires_grad=True) for a in args]
        grads = torch.autograd.grad(scalar(*tensors), tensors)
    else:
        raise ValueError(f"no gradient for Keras backend {backend!r}")
    return [ops.convert_to_numpy(g) for g in grads]


def upsample(maps: np.ndarray) -> np.ndarray:
    """Per-image heatmaps ``(n, h, w)`` resized to the images' size, bilinearly."""
    resized = ops.image.resize(maps[..., None].astype("float32"), (SIZE, SIZE))
    return ops.convert_to_numpy(resized)[..., 0]


def peak_on_ink(maps: np.ndarray, images: np.ndarray) -> tuple[float, float]:
    """How often the hottest pixel of each (upsampled) map lies on ink, and the chance rate."""
    ink = images[..., 0] > INK
    flat = maps.reshape(len(maps), -1).argmax(axis=1)
    hits = ink.reshape(len(ink), -1)[np.arange(len(ink)), flat]
    return float(hits.mean()), float(ink.mean())


def save_figure(path: Path, images: np.ndarray, maps: np.ndarray, titles: Sequence[str]) -> None:
    """Rows: input, heatmap, overlay; one column per digit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    fig, axes = plt.subplots(3, n, figsize=(1.6 * n, 5.0), squeeze=False)
    smooth = {"vmin": 0, "vmax": 1, "interpolation": "bilinear"}
    for i in range(n):
        heat = maps[i] / (np.abs(maps[i]).max() + 1e-12)
        axes[0, i].imshow(images[i, ..., 0], cmap="gray_r", **smooth)
        axes[0, i].set_title(titles[i], fontsize=8)
        axes[1, i].imshow(heat, cmap="jet", **smooth)
        axes[2, i].imshow(images[i, ..., 0], cmap="gray", **smooth)
        axes[2, i].imshow(heat, cmap="jet", alpha=0.5, **smooth)
    for ax, label in zip(axes[:, 0], ("input", "heatmap", "overlay")):
        ax.set_ylabel(label)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def output_dir(description: str) -> Path:
    """The output directory from the command line (default: docs/img/)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT,
                        help="directory for the PNG figure (default: docs/img/)")
    return parser.parse_args().out


def report(**metrics: Any) -> None:
    """The sanity check, as one JSON line (the tests read it)."""
    print(json.dumps(metrics, sort_keys=True))
