"""CAM (class activation mapping) on top of keras-inspect.

For a classifier that ends in global average pooling and a Dense layer, the logit of class ``c``
is ``mean over (h, w) of A[h, w] @ W[:, c]`` plus ``b[c]``, where ``A`` is the feature map the
pooling reads. So ``A @ W[:, c]`` is a map of where class ``c``'s evidence is, and its mean plus the
bias gives back the logit exactly. keras-inspect supplies ``A`` (expose's default signal, the
input of the last global pooling layer), the logits layer and its bias.

    python examples/cam.py [OUT_DIR]      # writes OUT_DIR/cam.png (default docs/img/)
"""

from __future__ import annotations

import numpy as np
from keras import ops

import keras_inspect as ki
from _digits import output_dir, peak_on_ink, report, save_figure, trained_cnn, upsample


def class_activation_maps(model, images):  # type: ignore[no-untyped-def]
    """CAMs ``(n, h, w)`` of each image's predicted class, the logits and those classes."""
    logits, features = ki.expose(model)(images)  # [logits, input of the global pooling]
    classes = ops.argmax(logits, axis=-1)
    dense = ki.get_logits_layer(model)
    class_weights = ops.take(dense.kernel, classes, axis=1)  # (channels, n)
    cams = ops.einsum("nhwk,kn->nhw", features, class_weights)
    return ops.convert_to_numpy(cams), logits, classes


def main() -> None:
    out = output_dir(__doc__.splitlines()[0])
    model, images, labels = trained_cnn()
    cams, logits, classes = class_activation_maps(model, images)

    # Sanity check 1, the CAM identity: spatial mean + class bias == logit.
    bias = ki.biases([ki.get_logits_layer(model)])[0]
    target = ops.convert_to_numpy(ki.gather_units(logits, classes[:, None]))[:, 0]
    rebuilt = cams.mean(axis=(1, 2)) + ops.convert_to_numpy(ops.take(bias, classes))
    identity_error = float(np.max(np.abs(rebuilt - target)) / np.max(np.abs(target)))
    # Sanity check 2: the hottest pixel lies on the digit's ink more often than chance.
    maps = upsample(np.maximum(cams, 0.0))
    on_ink, chance = peak_on_ink(maps, images)

    classes = ops.convert_to_numpy(classes)
    titles = [f"{labels[i]} -> {classes[i]}" for i in range(8)]
    save_figure(out / "cam.png", images[:8], maps[:8], titles)
    print(f"CAM identity, max relative error: {identity_error:.2e}")
    print(f"CAM peak on ink: {on_ink:.0%} of {len(images)} digits (chance {chance:.0%})")
    print(f"accuracy: {np.mean(classes == labels):.1%}; figure: {out / 'cam.png'}")
    report(identity_error=identity_error, peak_on_ink=on_ink, chance=chance, n=len(images),
           accuracy=float(np.mean(classes == labels)), figure=str(out / "cam.png"))


if __name__ == "__main__":
    main()
