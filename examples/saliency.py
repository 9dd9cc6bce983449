"""Integrated gradients (a saliency map at the input) on top of keras-inspect.

Integrated gradients attribute a class score to the input pixels: the input's difference from a
baseline (a blank canvas here), times the input gradient averaged along the straight path from
the baseline to the input. ``ki.gradients`` gives the input gradient at every step of the path in
one call per step (the signal is the model's input). The attributions add up to the change of
the score from the baseline to the input, up to the error of the Riemann sum over the path,
which this script checks. Every canvas holds two digits: the map of either digit's class must
peak on that digit, and stop doing so when the model's weights are randomised.

    python examples/saliency.py [OUT_DIR]  # writes OUT_DIR/saliency.png (default docs/img/)
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from keras import ops

import keras_inspect as ki
from _digits import (DIGIT, NOISE, held_out_pairs, localisation, output_dir, report,
                     save_figure, trained_cnn)

STEPS = 32  # for the completeness check
LOCAL_STEPS = 16  # for the maps: a coarser path moves the peaks little


def integrated_gradients(model, images, classes, steps=STEPS):  # type: ignore[no-untyped-def]
    """Attributions with the shape of ``images``, of one class per image.

    The baseline is a blank canvas at the background's mean brightness, so the noise around
    the digits differs from it by as much above as below and attributes little overall.
    """
    baseline = np.full_like(images, NOISE / 2)
    total = np.zeros_like(images)
    for alpha in (np.arange(steps, dtype="float32") + 0.5) / steps:  # midpoints of the path
        path = baseline + alpha * (images - baseline)
        result = ki.gradients(model, path, model.inputs[0], target=classes)
        total += ops.convert_to_numpy(result.gradients[0])
    return (images - baseline) * total / steps


def evidence_map(model, images, classes):  # type: ignore[no-untyped-def]
    """Where the evidence for the class is, ``(n, h, w)``: the positive attributions summed over
    channels and over a digit-sized window around each pixel (single pixels are noisy)."""
    positive = np.maximum(integrated_gradients(model, images, classes, LOCAL_STEPS), 0.0)
    low, high = (DIGIT - 1) // 2, DIGIT // 2
    padded = np.pad(positive.sum(axis=-1), ((0, 0), (low, high), (low, high)))
    return sliding_window_view(padded, (DIGIT, DIGIT), axis=(1, 2)).sum(axis=(-2, -1))


def main() -> None:
    out = output_dir(__doc__.splitlines()[0])
    model = trained_cnn()
    pairs = held_out_pairs()

    # Check 1, completeness: attributions sum to score(canvas) - score(blank canvas).
    classes = pairs.labels[:64, 0]
    images = pairs.images[:64]
    attributions = integrated_gradients(model, images, classes)
    scores = [ops.convert_to_numpy(ki.gather_units(model(x), classes[:, None]))[:, 0]
              for x in (images, np.full_like(images, NOISE / 2))]
    change = scores[0] - scores[1]
    sums = attributions.reshape(len(images), -1).sum(axis=1)
    completeness_error = float(np.max(np.abs(sums - change)) / np.max(np.abs(change)))
    print(f"integrated gradients completeness ({STEPS} steps), max error relative to the largest "
          f"score change: {completeness_error:.1e} (needed: < 5e-2)")
    # Checks 2 and 3: each class's map peaks on its digit, and not with random weights.
    checks, maps = localisation("Integrated-gradients", evidence_map, model, pairs)

    save_figure(out / "saliency.png", pairs, "IG of {}", maps)
    print(f"figure: {out / 'saliency.png'}")
    report(completeness_error=completeness_error, **checks, figure=str(out / "saliency.png"))


if __name__ == "__main__":
    main()
