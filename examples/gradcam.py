"""Grad-CAM on top of keras-inspect.

Grad-CAM weighs each channel ``k`` of a feature map ``A`` by the spatial mean of
``d logit_c / d A_k`` and keeps the positive part of the weighted sum. keras-inspect finds the
map (``get_target_layer``: the last spatial map feeding the head) and cuts the model there
(``split``: ``head(body(x)) == model(x)``), so the gradient is one autodiff call on ``head``.
On a global-average-pooling + Dense head the weights are ``W[:, c] / (h * w)``: Grad-CAM is
``relu(CAM) / (h * w)``, which this script checks against the kernel.

    python examples/gradcam.py [OUT_DIR]  # writes OUT_DIR/gradcam.png (default docs/img/)
"""

from __future__ import annotations

import numpy as np
from keras import ops

import keras_inspect as ki
from _digits import gradient, output_dir, peak_on_ink, report, save_figure, trained_cnn, upsample


def grad_cam(model, images):  # type: ignore[no-untyped-def]
    """Grad-CAM maps ``(n, h, w)`` of each image's predicted class, the map and the classes."""
    body, head = ki.split(model, ki.get_target_layer(model))
    features = ops.convert_to_numpy(body(images))
    classes = ops.argmax(head(features), axis=-1)[:, None]

    def class_score(a):  # type: ignore[no-untyped-def]
        return ops.sum(ki.gather_units(head(a), classes))  # samples are independent

    (grads,) = gradient(class_score, features)
    channel_weights = grads.mean(axis=(1, 2), keepdims=True)
    maps = np.maximum((channel_weights * features).sum(axis=-1), 0.0)
    return maps, features, ops.convert_to_numpy(classes)[:, 0]


def main() -> None:
    out = output_dir(__doc__.splitlines()[0])
    model, images, labels = trained_cnn()
    maps, features, classes = grad_cam(model, images)

    # Sanity check 1: on this head Grad-CAM == relu(CAM) / (h * w), CAM taken from the kernel.
    kernel = ops.convert_to_numpy(ki.get_logits_layer(model).kernel)
    cams = np.einsum("nhwk,kn->nhw", features, kernel[:, classes])
    expected = np.maximum(cams, 0.0) / (features.shape[1] * features.shape[2])
    cam_error = float(np.max(np.abs(maps - expected)) / np.max(np.abs(expected)))
    # Sanity check 2: the hottest pixel lies on the digit's ink more often than chance.
    maps = upsample(maps)
    on_ink, chance = peak_on_ink(maps, images)

    titles = [f"{labels[i]} -> {classes[i]}" for i in range(8)]
    save_figure(out / "gradcam.png", images[:8], maps[:8], titles)
    print(f"Grad-CAM vs relu(CAM)/(h*w), max relative error: {cam_error:.2e}")
    print(f"Grad-CAM peak on ink: {on_ink:.0%} of {len(images)} digits (chance {chance:.0%})")
    print(f"figure: {out / 'gradcam.png'}")
    report(cam_error=cam_error, peak_on_ink=on_ink, chance=chance, n=len(images),
           figure=str(out / "gradcam.png"))


if __name__ == "__main__":
    main()
