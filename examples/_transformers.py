"""Small keras-hub models for the transformer examples, built from configs (no download), and
their figures. With random weights the maps mean nothing about language or images; what the
examples check are identities that hold for any weights."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import keras
import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "img"


def causal_lm(seed: int = 0) -> Any:
    """A two-block Llama with a 64-token vocabulary."""
    import keras_hub

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.LlamaBackbone(
        vocabulary_size=64, num_layers=2, num_query_heads=2, num_key_value_heads=1,
        hidden_dim=32, intermediate_dim=64,
    )  # fmt: skip
    return keras_hub.models.LlamaCausalLM(backbone=backbone, preprocessor=None)


def vit(height: int = 32, width: int = 48, seed: int = 0) -> Any:
    """A two-block vision transformer on ``height x width`` images, 8x8 patches, 3 classes."""
    import keras_hub

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(height, width, 3), patch_size=8, num_layers=2, num_heads=2,
        hidden_dim=32, mlp_dim=64,
    )  # fmt: skip
    return keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=3, preprocessor=None)


def prompt(length: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, 64, size=(1, length)).astype("int32")
    return {"token_ids": tokens, "padding_mask": np.ones_like(tokens)}


def output_dir(description: str) -> Path:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT,
                        help="directory for the PNG figure (default: docs/img/)")
    return parser.parse_args().out


def figure(path: Path, draw: Any, size: tuple[float, float]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=size)
    draw(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return str(path)


def report(**metrics: Any) -> None:
    """The checks, as one JSON line (the tests read it)."""
    print(json.dumps(metrics, sort_keys=True))
