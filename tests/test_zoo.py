"""expose, split and get_target_layer on real keras.applications architectures (weights=None).

Each backbone is nested in a Sequential and in a Functional classifier; a layer from the middle
of the backbone is exposed through the outer model and compared with a model built on the
backbone alone, and afterwards each classifier must be exactly as it was (config, variables,
weights, trainable flags, outputs, predictions). Every backbone is built once per backend (one test per application), at the
smallest input it accepts, with a batch of two. ``KERAS_INSPECT_ZOO=VGG16,Xception`` narrows the
run to some applications.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
from keras import layers

import keras_inspect as ki
from _snapshot import Snapshot
from conftest import to_numpy

# (application, smallest input side it builds with)
ZOO = [
    ("ResNet50V2", 32),
    ("MobileNetV2", 32),
    ("MobileNetV3Small", 32),
    ("EfficientNetB0", 32),
    ("EfficientNetV2B0", 32),
    ("DenseNet121", 32),
    ("InceptionV3", 75),
    ("Xception", 71),
    ("ConvNeXtTiny", 32),
    ("VGG16", 32),
    ("NASNetMobile", 32),
]
if keras.backend.backend() == "torch":
    # Keras itself refuses to build NASNetMobile on torch ("not available with the torch
    # backend at this time due to an outstanding bug"): there is nothing to inspect.
    ZOO = [entry for entry in ZOO if entry[0] != "NASNetMobile"]

pytestmark = pytest.mark.slow


def _select(zoo: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """``KERAS_INSPECT_ZOO`` (comma-separated application names) narrows the zoo for a quick run."""
    wanted = os.environ.get("KERAS_INSPECT_ZOO", "").strip()
    if not wanted or wanted == "all":
        return zoo
    names = {name.strip() for name in wanted.split(",")}
    unknown = names - {name for name, _ in zoo}
    if unknown:
        raise ValueError(f"KERAS_INSPECT_ZOO names unknown applications: {sorted(unknown)}")
    return [entry for entry in zoo if entry[0] in names]


def _close(got: object, want: np.ndarray) -> None:
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(to_numpy(got), want, rtol=1e-4, atol=1e-4 * scale)


def _classifiers(backbone: keras.Model, shape: tuple[int, ...]) -> dict[str, keras.Model]:
    sequential = keras.Sequential(
        [keras.Input(shape), backbone, layers.GlobalAveragePooling2D(name="pool"),
         layers.Dense(4, name="logits")],
        name="sequential_classifier",
    )  # fmt: skip
    inputs = keras.Input(shape, name="image")
    pooled = layers.GlobalAveragePooling2D(name="pool")(backbone(inputs))
    functional = keras.Model(
        inputs, layers.Dense(4, name="logits")(pooled), name="functional_classifier"
    )
    return {"sequential": sequential, "functional": functional}


# One test per application, so that each backbone is built exactly once per backend whatever
# the test distribution (pytest-xdist spreads the tests of a module over workers).
@pytest.mark.parametrize(("name", "size"), _select(ZOO), ids=[n for n, _ in _select(ZOO)])
def test_application_nested_in_sequential_and_functional(name: str, size: int) -> None:
    kwargs = {"include_preprocessing": False} if name.startswith(("MobileNetV3", "EfficientNetV2")) else {}
    shape = (size, size, 3)
    backbone = getattr(keras.applications, name)(
        weights=None, include_top=False, input_shape=shape, **kwargs
    )
    mid = backbone.layers[len(backbone.layers) // 2]
    x = np.random.default_rng(0).uniform(0, 1, size=(2, *shape)).astype("float32")
    reference = keras.Model(backbone.inputs[0], [mid.output, backbone.output])
    want_mid, want_features = (to_numpy(t) for t in reference(x))
    producer = backbone.output._keras_history.operation
    classifiers = _classifiers(backbone, shape)
    before = {nesting: Snapshot(model, x) for nesting, model in classifiers.items()}

    for nesting, model in classifiers.items():
        # A layer from the middle of the backbone.
        logits, got_mid = ki.expose(model, [f"{backbone.name}/{mid.name}"])(x)
        _close(got_mid, want_mid)
        if nesting == "sequential":
            # expose(model) without arguments: the pooling input, i.e. the backbone's output.
            _close(ki.expose(model)(x)[1], want_features)
        # The Grad-CAM target is the backbone's last layer, not the backbone model.
        assert ki.get_target_layer(model) is producer, nesting
        if nesting == "functional":
            # Cut at the backbone's last layer: every path to the logits crosses it.
            body, head = ki.split(model, f"{backbone.name}/{backbone.layers[-1].name}")
            signal = body(x)
            _close(signal, want_features)
            _close(head(signal), to_numpy(logits))
        else:
            _close(logits, to_numpy(model(x)))
    for nesting, model in classifiers.items():
        before[nesting].assert_same(Snapshot(model, x), f"{name} ({nesting}) calls")


def test_target_layer_of_mobilenet_v3_with_its_own_head_skips_the_logits_conv() -> None:
    model = keras.applications.MobileNetV3Small(
        weights=None, input_shape=(32, 32, 3), classes=5, include_preprocessing=False
    )
    logits = ki.get_logits_layer(model)
    assert isinstance(logits, layers.Conv2D) and logits.kernel_size == (1, 1)
    target = ki.get_target_layer(model)
    assert target is not logits
    # The head's global pooling (the last one: squeeze-excite blocks pool too) averages the
    # target's output.
    pooling = [l for l in model.layers if isinstance(l, layers.GlobalAveragePooling2D)][-1]
    assert pooling.input is target.output
