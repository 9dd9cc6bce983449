"""Shared scaffolding for the examples: digits on a larger canvas and a CNN trained in seconds.

scikit-learn's bundled 8x8 digits (no download) are placed at random positions on a noisy 32x32
canvas. The CNN learns to classify canvases that hold one digit; the examples explain canvases
that hold two held-out digits of different classes, where an explanation of class ``c`` has to
find the digit that is a ``c`` and not merely the ink. Nothing here is keras-inspect: the
examples use it themselves (``ki.gradients`` for every gradient).
Set ``KERAS_INSPECT_DIGITS_CACHE`` to a directory to train once and reuse the weights.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402


CANVAS = 32  # canvas side, in pixels
DIGIT = 8  # digit side
NOISE = 0.2  # background pixels are uniform in [0, NOISE]; ink reaches 1
CHANCE = (DIGIT + 2) ** 2 / CANVAS**2  # how often a random peak lands in a box grown by 1 pixel
# The localisation checks' bars: the trained model's maps must peak on the explained digit at
# least this often, a randomly initialised copy's at most this often.
MIN_ON_DIGIT = 0.75
MAX_RANDOM = 0.6
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "img"


def _split_digits(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scikit-learn's 1797 digits in [0, 1]: 80% for training, 20% held out, with labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    digits, labels = (data.images / 16.0).astype("float32"), data.target.astype("int32")
    order = np.random.default_rng(seed).permutation(len(digits))
    train, test = order[: int(0.8 * len(order))], order[int(0.8 * len(order)) :]
    return digits[train], labels[train], digits[test], labels[test]


def place(digits: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Canvases ``(n, CANVAS, CANVAS, 1)`` holding the ``k`` digits of each row of ``digits``
    ``(n, k, 8, 8)``, and their boxes' top-left corners ``(n, k, 2)``. Boxes stay at least two
    pixels apart, so boxes grown by one pixel do not overlap."""
    n, k = digits.shape[:2]
    corners = rng.integers(0, CANVAS - DIGIT + 1, (n, k, 2))
    while k > 1:  # redraw the canvases where two boxes come too close, until none does
        apart = np.abs(corners[:, :, None] - corners[:, None]).max(axis=-1)  # (n, k, k)
        crowded = ((apart < DIGIT + 2) & ~np.eye(k, dtype=bool)).any(axis=(1, 2))
        if not crowded.any():
            break
        corners[crowded] = rng.integers(0, CANVAS - DIGIT + 1, (int(crowded.sum()), k, 2))
    canvases = rng.uniform(0.0, NOISE, (n, CANVAS, CANVAS)).astype("float32")
    for i, j in np.ndindex(n, k):
        r, c = corners[i, j]
        box = canvases[i, r : r + DIGIT, c : c + DIGIT]
        np.maximum(box, digits[i, j], out=box)
    return canvases[..., None], corners


def build_cnn() -> keras.Model:
    """Conv-BN-ReLU blocks, global average pooling, one Dense layer: a CAM-ready classifier."""
    def block(filters: int) -> list[keras.layers.Layer]:
        return [layers.Conv2D(filters, 3, padding="same"), layers.BatchNormalization(momentum=0.9),
                layers.ReLU()]

    return keras.Sequential(
        [keras.Input((CANVAS, CANVAS, 1)), *block(8), layers.MaxPooling2D(), *block(16),
         *block(32), layers.GlobalAveragePooling2D(), layers.Dense(10, name="logits")],
        name="digits_cnn",
    )


def trained_cnn(epochs: int = 4, seed: int = 0) -> keras.Model:
    """The CNN trained on one-digit canvases: each training digit twice, at random positions."""
    keras.utils.set_random_seed(seed)
    model = build_cnn()
    cache = os.environ.get("KERAS_INSPECT_DIGITS_CACHE")
    weights = Path(cache) / f"digits_cnn_{keras.backend.backend()}.weights.h5" if cache else None
    if weights is not None and weights.exists():
        model.load_weights(weights)
        return model
    digits, labels, _, _ = _split_digits(seed)
    # Whole batches only: a last, smaller batch would make the backend compile a second step.
    keep = len(digits) * 2 // 64 * 64
    images, _ = place(np.repeat(digits, 2, axis=0)[:keep, None], np.random.default_rng(seed))
    schedule = keras.optimizers.schedules.CosineDecay(1e-2, epochs * keep // 64)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, np.repeat(labels, 2)[:keep], batch_size=64, epochs=epochs, verbose=0)
    if weights is not None:
        # Write then rename, so a concurrent reader never sees half a file.
        weights.parent.mkdir(parents=True, exist_ok=True)
        partial = weights.with_name(f"{os.getpid()}.{weights.name}")
        model.save_weights(partial)
        os.replace(partial, weights)
    return model


def held_out_pairs(seed: int = 0) -> SimpleNamespace:
    """360 canvases: each digit held out by ``trained_cnn(seed=seed)`` with another, random one
    of a different class. ``images``, ``labels`` ``(n, 2)`` and box ``corners`` ``(n, 2, 2)``."""
    _, _, digits, labels = _split_digits(seed)
    rng = np.random.default_rng(seed + 1)
    partners = [rng.choice(np.flatnonzero(labels != label)) for label in labels]
    pairs = np.stack([np.arange(len(labels)), partners], axis=1)
    images, corners = place(digits[pairs], rng)
    return SimpleNamespace(images=images, labels=labels[pairs], corners=corners)


def on_digit(method: Callable[..., np.ndarray], model: keras.Model,
             pairs: SimpleNamespace) -> tuple[float, list[np.ndarray]]:
    """How often the map ``method(model, images, classes)`` of a digit's class peaks on that
    digit, over both digits of every canvas; and the canvas-sized maps, one array per digit."""
    maps = [upsample(method(model, pairs.images, pairs.labels[:, j])) for j in (0, 1)]
    corners = np.concatenate([pairs.corners[:, 0], pairs.corners[:, 1]])
    return peak_in_box(np.concatenate(maps), corners), maps


def randomised(model: keras.Model, seed: int = 1) -> keras.Model:
    """A copy of the model with freshly initialised weights (the model-randomisation test)."""
    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(model)


def localisation(name: str, method: Callable[..., np.ndarray], model: keras.Model,
                 pairs: SimpleNamespace) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The examples' shared checks of ``method``'s maps, printed, with the maps themselves.

    Each digit's class must have its map's peak on that digit, not on the other one
    (``on_digit``); maps of three randomly initialised copies must lose the digit
    (``on_digit_random``, the model-randomisation test). ``name`` heads the printed line.
    """
    rate, maps = on_digit(method, model, pairs)
    random_rate = float(np.mean([on_digit(method, randomised(model, seed), pairs)[0]
                                 for seed in (1, 2, 3)]))
    n = 2 * len(maps[0])
    print(f"{name} peak on the digit of its class: {rate:.1%} of {n} maps (needed: "
          f">= {MIN_ON_DIGIT:.0%}; a random peak: {CHANCE:.0%}, a map blind to the class: 50%)")
    print(f"the same, random weights: {random_rate:.1%} (needed: <= {MAX_RANDOM:.0%})")
    return {"on_digit": rate, "on_digit_random": random_rate, "n": n}, maps


def upsample(maps: np.ndarray) -> np.ndarray:
    """Per-image heatmaps ``(n, h, w)`` resized to the canvas, bilinearly."""
    resized = ops.image.resize(np.asarray(maps, "float32")[..., None], (CANVAS, CANVAS))
    return ops.convert_to_numpy(resized)[..., 0]


def peak_in_box(maps: np.ndarray, corners: np.ndarray) -> float:
    """How often the hottest pixel of a canvas-sized map lies in the box at ``corners`` (one
    ``(row, column)`` per map) or within one pixel of it."""
    rows, cols = np.divmod(maps.reshape(len(maps), -1).argmax(axis=1), CANVAS)
    offsets = np.stack([rows, cols], axis=1) - corners
    return float(np.mean(np.all((offsets >= -1) & (offsets <= DIGIT), axis=1)))


def save_figure(path: Path, pairs: SimpleNamespace, name: str, maps: Sequence[np.ndarray]) -> None:
    """The first eight canvases, then each one's map of its first and of its second digit's
    class, overlaid; ``name`` is a title formatted with the class, as ``"CAM of {}"``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 8
    fig, axes = plt.subplots(3, n, figsize=(1.6 * n, 5.4))
    smooth = {"vmin": 0, "vmax": 1, "interpolation": "bilinear"}
    for i in range(n):
        image, labels = pairs.images[i, ..., 0], pairs.labels[i]
        axes[0, i].imshow(image, cmap="gray_r", **smooth)
        axes[0, i].set_title(f"{labels[0]} and {labels[1]}", fontsize=9)
        for row, (label, heat) in enumerate(zip(labels, (maps[0][i], maps[1][i])), 1):
            axes[row, i].imshow(image, cmap="gray", **smooth)
            axes[row, i].imshow(heat / (np.abs(heat).max() + 1e-12), cmap="jet", alpha=0.5,
                                **smooth)
            axes[row, i].set_title(name.format(label), fontsize=9)
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
    """The sanity checks, as one JSON line (the tests read it)."""
    print(json.dumps(metrics, sort_keys=True))
