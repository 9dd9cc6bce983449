"""FullGrad on top of keras-inspect.

A network built from ReLU, max pooling, inference-mode BatchNormalization, convolutions and Dense
layers is piecewise linear, so its output splits exactly into an input part and one part per
bias: ``f(x) = sum(x * df/dx) + sum over biased layers of sum(b * df/dz)``, ``z`` being the
signal the bias is added to. keras-inspect lists every constant a layer adds
(``layers_with_biases``, BatchNormalization's implicit one included) and names each ``z`` (the
layer's ``"pre_activation"``); ``ki.gradients`` differentiates with respect to
all of them at once. The saliency map sums the absolute parts, each normalised and upsampled;
the script checks that the parts add up to the logit.

    python examples/fullgrad.py [OUT_DIR]  # writes OUT_DIR/fullgrad.png (default docs/img/)
"""

from __future__ import annotations

import numpy as np
from keras import ops

import keras_inspect as ki
from _digits import (held_out_pairs, output_dir, report, save_figure, trained_cnn,
                     upsample)


def normalise(maps: np.ndarray) -> np.ndarray:
    low = maps.min(axis=(1, 2), keepdims=True)
    return (maps - low) / (maps.max(axis=(1, 2), keepdims=True) - low + 1e-12)


def full_grad(model, images, classes):  # type: ignore[no-untyped-def]
    """FullGrad maps ``(n, 32, 32)`` of one class per image, that logit and the sum of its parts."""
    layers, biases = ki.layers_with_biases(model)
    signals = [model.inputs[0], *({"layer": layer, "link": "pre_activation"} for layer in layers)]
    result = ki.gradients(model, images, signals, target=classes)
    grads = [ops.convert_to_numpy(g) for g in result.gradients]
    parts = [images * grads[0]] + [ops.convert_to_numpy(b) * g for b, g in zip(biases, grads[1:])]
    total = sum(part.reshape(len(images), -1).sum(axis=1) for part in parts)
    # Spatial parts only: the Dense bias's part is one number per image.
    maps = sum(upsample(normalise(np.abs(part).sum(axis=-1))) for part in parts if part.ndim == 4)
    logits = ops.convert_to_numpy(ki.gather_units(result.outputs, classes[:, None]))[:, 0]
    return maps, logits, total


def main() -> None:
    out = output_dir(__doc__.splitlines()[0])
    model = trained_cnn()
    pairs = held_out_pairs()
    maps, logits, total = full_grad(model, pairs.images[:64], pairs.labels[:64, 0])
    # Sanity check: completeness, the parts add up to the logit (float32 rounding aside).
    error = float(np.max(np.abs(total - logits)) / np.max(np.abs(logits)))

    # The figure's second row; 64 canvases again, as the batch shape JAX has compiled for.
    other, _, _ = full_grad(model, pairs.images[:64], pairs.labels[:64, 1])
    save_figure(out / "fullgrad.png", pairs, "FullGrad of {}", [maps, other])
    print(f"FullGrad completeness, max error over 64 canvases relative to the largest logit: "
          f"{error:.1e} (needed: < 1e-4)")
    print(f"figure: {out / 'fullgrad.png'}")
    report(completeness_error=error, figure=str(out / "fullgrad.png"))


if __name__ == "__main__":
    main()
