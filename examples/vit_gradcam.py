"""Grad-CAM on a vision transformer, through its token geometry.

``ki.token_geometry(model)`` says which tokens of the signal a ViT classifier reduces are patches
(after one class token) and on which grid (here a 4x6 grid of 8x8 patches of a 32x48 image);
``to_spatial`` turns token values and their gradients into maps ``(batch, rows, cols, channels)``,
so Grad-CAM is written as for a CNN, without a hand-written reshape (this script checks that it
equals one).

    python examples/vit_gradcam.py [OUT_DIR]  # writes OUT_DIR/vit_gradcam.png
"""

from __future__ import annotations

import numpy as np
from keras import ops

import keras_inspect as ki
from _transformers import figure, output_dir, report, vit


def grad_cam(model, images, target):  # type: ignore[no-untyped-def]
    geometry = ki.token_geometry(model)
    result = ki.gradients(model, images, geometry.signal, target=target)
    tokens = geometry.to_spatial(result.signals[0])
    weights = ops.mean(geometry.to_spatial(result.gradients[0]), axis=(1, 2), keepdims=True)
    cam = ops.relu(ops.sum(weights * tokens, axis=-1))
    return ops.convert_to_numpy(cam), geometry, result


def main() -> None:
    out = output_dir(__doc__.splitlines()[0])
    model = vit()
    images = np.random.default_rng(0).uniform(size=(4, 32, 48, 3)).astype("float32")
    cam, geometry, result = grad_cam(model, images, target=1)
    rows, cols = geometry.grid
    tokens = ops.convert_to_numpy(result.signals[0])[:, geometry.prefix_tokens :]
    grads = ops.convert_to_numpy(result.gradients[0])[:, geometry.prefix_tokens :]
    by_hand = np.maximum(
        (grads.reshape(4, rows, cols, -1).mean(axis=(1, 2), keepdims=True) * tokens.reshape(4, rows, cols, -1)).sum(-1), 0
    )

    def draw(fig):  # type: ignore[no-untyped-def]
        for i in range(4):
            axis = fig.add_subplot(1, 4, i + 1)
            axis.imshow(images[i])
            axis.imshow(np.kron(cam[i], np.ones(geometry.patch_size)), alpha=0.5, cmap="jet")
            axis.set_axis_off()
        fig.suptitle(f"Grad-CAM of class 1, {rows}x{cols} patch grid after {geometry.prefix_tokens} prefix token")

    path = figure(out / "vit_gradcam.png", draw, (10, 3.2))
    report(
        figure=path,
        grid=[rows, cols],
        prefix_tokens=geometry.prefix_tokens,
        reshape_error=float(np.abs(cam - by_hand).max()),
    )


if __name__ == "__main__":
    main()
