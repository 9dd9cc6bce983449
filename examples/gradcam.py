"""Grad-CAM on top of keras-inspect.

Grad-CAM weighs each channel ``k`` of a feature map ``A`` by the spatial mean of
``d logit_c / d A_k`` and keeps the positive part of the weighted sum. keras-inspect finds the
map (``get_target_layer``: the last spatial map feeding the head); ``ki.gradients`` returns its
value and the gradient of the class score there, on any backend. On a
global-average-pooling + Dense head the weights are ``W[:, c] / (h * w)``: Grad-CAM is
``relu(CAM) / (h * w)``, which this script checks against the kernel. Every canvas holds two
digits: the map of either digit's class must peak on that digit, and stop doing so when the
model's weights are randomised.

    python examples/gradcam.py [OUT_DIR]  # writes OUT_DIR/gradcam.png (default docs/img/)
"""

from __future__ import annotations

import numpy as np
from keras import ops

import keras_inspect as ki
from _digits import held_out_pairs, localisation, output_dir, report, save_figure, trained_cnn


def grad_cam(model, images, classes):  # type: ignore[no-untyped-def]
    """Grad-CAM maps ``(n, h, w)``, of one class per image."""
    result = ki.gradients(model, images, ki.get_target_layer(model), target=classes)
    features = ops.convert_to_numpy(result.signals[0])
    channel_weights = ops.convert_to_numpy(result.gradients[0]).mean(axis=(1, 2), keepdims=True)
    return np.maximum((channel_weights * features).sum(axis=-1), 0.0)


def main() -> None:
    out = output_dir(__doc__.splitlines()[0])
    model = trained_cnn()
    pairs = held_out_pairs()

    # Check 1: on this head Grad-CAM == relu(CAM) / (h * w), CAM from expose and the kernel.
    classes = pairs.labels[:, 0]
    maps = grad_cam(model, pairs.images, classes)
    _, features = ki.expose(model)(pairs.images)
    kernel = ops.convert_to_numpy(ki.get_logits_layer(model).kernel)
    cams = np.einsum("nhwk,kn->nhw", ops.convert_to_numpy(features), kernel[:, classes])
    expected = np.maximum(cams, 0.0) / (cams.shape[1] * cams.shape[2])
    cam_error = float(np.max(np.abs(maps - expected)) / np.max(np.abs(expected)))
    print(f"Grad-CAM vs relu(CAM)/(h*w), max relative error: {cam_error:.1e} (needed: < 1e-4)")
    # Checks 2 and 3: each class's map peaks on its digit, and not with random weights.
    checks, maps = localisation("Grad-CAM", grad_cam, model, pairs)

    save_figure(out / "gradcam.png", pairs, "Grad-CAM of {}", maps)
    print(f"figure: {out / 'gradcam.png'}")
    report(cam_error=cam_error, **checks, figure=str(out / "gradcam.png"))


if __name__ == "__main__":
    main()
