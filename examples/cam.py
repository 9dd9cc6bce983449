"""CAM (class activation mapping) on top of keras-inspect.

For a classifier that ends in global average pooling and a Dense layer, the logit of class ``c``
is ``mean over (h, w) of A[h, w] @ W[:, c]`` plus ``b[c]``, where ``A`` is the feature map the
pooling reads. So ``A @ W[:, c]`` is a map of where class ``c``'s evidence is, and its mean plus the
bias gives back the logit exactly. keras-inspect supplies ``A`` (expose's default signal, the
input of the last global pooling layer), the logits layer and its bias. Every canvas holds two
digits: the map of either digit's class must peak on that digit, and stop doing so when the
model's weights are randomised.

    python examples/cam.py [OUT_DIR]      # writes OUT_DIR/cam.png (default docs/img/)
"""

from __future__ import annotations

import numpy as np
from keras import ops

import keras_inspect as ki
from _digits import held_out_pairs, localisation, output_dir, report, save_figure, trained_cnn


def class_activation_maps(model, images, classes):  # type: ignore[no-untyped-def]
    """CAMs ``(n, h, w)``, of one class per image."""
    _, features = ki.expose(model)(images)  # [logits, input of the global pooling]
    class_weights = ops.take(ki.get_logits_layer(model).kernel, classes, axis=1)  # (channels, n)
    return ops.convert_to_numpy(ops.einsum("nhwk,kn->nhw", features, class_weights))


def main() -> None:
    out = output_dir(__doc__.splitlines()[0])
    model = trained_cnn()
    pairs = held_out_pairs()

    # Check 1, the CAM identity: spatial mean + class bias == logit, for any class.
    classes = pairs.labels[:, 0]
    cams = class_activation_maps(model, pairs.images, classes)
    bias = ops.convert_to_numpy(ki.biases([ki.get_logits_layer(model)])[0])
    logits = ops.convert_to_numpy(ki.gather_units(model(pairs.images), classes[:, None]))[:, 0]
    rebuilt = cams.mean(axis=(1, 2)) + bias[classes]
    identity_error = float(np.max(np.abs(rebuilt - logits)) / np.max(np.abs(logits)))
    print(f"CAM identity, max relative error: {identity_error:.1e} (needed: < 1e-4)")
    # Checks 2 and 3: each class's map peaks on its digit, and not with random weights.
    checks, maps = localisation("CAM", class_activation_maps, model, pairs)

    save_figure(out / "cam.png", pairs, "CAM of {}", [np.maximum(m, 0.0) for m in maps])
    print(f"figure: {out / 'cam.png'}")
    report(identity_error=identity_error, **checks, figure=str(out / "cam.png"))


if __name__ == "__main__":
    main()
