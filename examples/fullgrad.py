"""FullGrad on top of keras-inspect.

A network built from ReLU, max pooling, inference-mode BatchNormalization, convolutions and Dense
layers is piecewise linear, so its output splits exactly into an input part and one part per
bias: ``f(x) = sum(x * df/dx) + sum over biased layers of sum(b * df/dz)``, ``z`` being the
signal the bias is added to. keras-inspect lists every constant a layer adds
(``layers_with_biases``, BatchNormalization's implicit one included) and cuts the model at each
``z`` (``split`` with ``link="pre_activation"``). The saliency map sums the absolute parts, each
normalised and upsampled; the script checks that the parts add up to the logit.

    python examples/fullgrad.py [OUT_DIR]  # writes OUT_DIR/fullgrad.png (default docs/img/)
"""

from __future__ import annotations

import numpy as np
from keras import ops

import keras_inspect as ki
from _digits import gradient, output_dir, report, save_figure, trained_cnn, upsample


def normalise(maps: np.ndarray) -> np.ndarray:
    low = maps.min(axis=(1, 2), keepdims=True)
    return (maps - low) / (maps.max(axis=(1, 2), keepdims=True) - low + 1e-12)


def full_grad(model, images):  # type: ignore[no-untyped-def]
    """FullGrad maps ``(n, 16, 16)``, each image's explained logit and the sum of its parts."""
    logits = model(images)
    classes = ops.argmax(logits, axis=-1)[:, None]
    target = ops.convert_to_numpy(ki.gather_units(logits, classes))[:, 0]

    def score(outputs):  # type: ignore[no-untyped-def]
        return ops.sum(ki.gather_units(outputs, classes))

    (input_grad,) = gradient(lambda x: score(model(x)), images)
    parts = images * input_grad
    maps = normalise(np.abs(parts).sum(axis=-1))
    total = parts.reshape(len(images), -1).sum(axis=1)
    for layer, bias in zip(*ki.layers_with_biases(model)):
        body, head = ki.split(model, {"layer": layer, "link": "pre_activation"})
        signal = ops.convert_to_numpy(body(images))
        (signal_grad,) = gradient(lambda z: score(head(z)), signal)
        parts = ops.convert_to_numpy(bias) * signal_grad
        total += parts.reshape(len(images), -1).sum(axis=1)
        if parts.ndim == 4:  # a spatial map (the Dense bias only enters the total)
            maps += upsample(normalise(np.abs(parts).sum(axis=-1)))
    return maps, target, total


def main() -> None:
    out = output_dir(__doc__.splitlines()[0])
    model, images, labels = trained_cnn()
    maps, target, total = full_grad(model, images[:64])

    # Sanity check: completeness, the parts add up to the logit.
    error = float(np.max(np.abs(total - target) / np.maximum(np.abs(target), 1e-6)))
    titles = [f"{labels[i]}: f={target[i]:.1f}" for i in range(8)]
    save_figure(out / "fullgrad.png", images[:8], maps[:8], titles)
    print(f"FullGrad completeness, max relative error over 64 digits: {error:.2e}")
    print(f"figure: {out / 'fullgrad.png'}")
    report(completeness_error=error, figure=str(out / "fullgrad.png"))


if __name__ == "__main__":
    main()
