"""docs/migration.md, claim by claim: the seed's behaviour next to keras-inspect's.

The seed ran on Keras 2, so each claim is checked on a Keras 2 model built with ``tf_keras``:
the seed's algorithms (re-implemented in ``_seed``) and ``keras_inspect.inspection`` run on the
same model, and the test asserts that they agree where the guide says nothing changed and
differ exactly as the guide says otherwise. tf_keras computes with TensorFlow whatever
``KERAS_BACKEND`` says, so these tests run in every backend's pass.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

tf_keras = pytest.importorskip("tf_keras")

import _seed as seed  # noqa: E402  (imports tf_keras)
import tensorflow as tf  # noqa: E402
from _seed_models import (  # noqa: E402
    SEED_FUNCTIONS,
    fused_model,
    guide_nested,
    shared_between_models,
    tuple_model,
)

import keras_inspect  # noqa: E402
from keras_inspect import Endpoint, inspection  # noqa: E402

L = tf_keras.layers
pytestmark = pytest.mark.usefixtures("fresh_pm")


def _x(model: Any, batch: int = 2, rng_seed: int = 0) -> np.ndarray:
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(rng_seed).normal(size=(batch, *shape)).astype("float32")


def _values(model: Any, x: np.ndarray) -> list[np.ndarray]:
    result = model(x)
    return [np.asarray(v) for v in (result if isinstance(result, (list, tuple)) else [result])]


# -- "one import": names, parameters, the first sample ---------------------------------------


@pytest.mark.parametrize("name", SEED_FUNCTIONS)
def test_the_seeds_functions_keep_their_parameters(name: str) -> None:
    ours = inspect.signature(getattr(inspection, name)).parameters
    theirs = inspect.signature(getattr(seed, name)).parameters
    positional = [p for p in ours.values() if p.kind is not p.KEYWORD_ONLY]
    assert [(p.name, p.default) for p in positional] == [
        (p.name, p.default) for p in theirs.values()
    ]
    assert getattr(keras_inspect, name) is getattr(inspection, name)


def test_the_constants_keep_their_values() -> None:
    assert (inspection.KERNEL_AXIS, inspection.SPATIAL_AXIS) == (seed.KERNEL_AXIS, seed.SPATIAL_AXIS)


def test_the_first_sample_finds_what_the_seed_finds() -> None:
    model = tf_keras.Sequential(
        [
            tf_keras.Input((16, 16, 3)),
            L.Conv2D(4, 3, name="conv"),
            L.GlobalAveragePooling2D(name="avg_pool"),
            L.Dense(3, name="predictions"),
        ]
    )
    assert inspection.get_logits_layer(model) is seed.get_logits_layer(model)
    assert inspection.get_global_pooling_layer(model) is seed.get_global_pooling_layer(model)
    x = _x(model)
    ours, theirs = _values(inspection.expose(model), x), _values(seed.expose(model), x)
    assert [v.shape for v in ours] == [(2, 3), (2, 14, 14, 4)]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


# -- signals inside nested models ------------------------------------------------------------------


def test_signals_inside_nested_models() -> None:
    model = guide_nested(tf_keras)
    backbone = model.get_layer("backbone")
    x = _x(model)
    c2 = np.asarray(tf_keras.Model(backbone.inputs, backbone.get_layer("c2").output)(x))
    with pytest.raises(ValueError, match="Graph disconnected"):
        seed.expose(model, arguments=("backbone", "c2"))
    with pytest.raises(ValueError, match="Graph disconnected"):
        seed.expose(model)  # the pooling layer is nested too
    for exposed in (inspection.expose(model, arguments="backbone/c2"), inspection.expose(model)):
        scores, signal = _values(exposed, x)
        np.testing.assert_allclose(signal, c2, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(scores, np.asarray(model(x)), rtol=1e-5, atol=1e-6)


# -- node="last" --------------------------------------------------------------------------------


def test_node_last_counts_the_calls_inside_the_model() -> None:
    first, later = shared_between_models(tf_keras)
    for node in ("last", -1):
        (theirs,) = seed.endpoints(first, [{"name": "shared", "node": node}])
        assert theirs is later.get_layer("shared").get_output_at(1)  # the other model's call
        (ours,) = inspection.endpoints(first, [{"name": "shared", "node": node}])
        assert ours is first.outputs[0]
    with pytest.raises(ValueError, match="Graph disconnected"):
        seed.expose(first, arguments=[], outputs="shared")
    with pytest.raises(keras_inspect.EndpointError, match="valid: -1..0"):
        inspection.endpoints(first, [{"name": "shared", "node": 1}])


# -- descriptors -----------------------------------------------------------------------------------


def test_the_seeds_descriptors_name_the_same_tensors() -> None:
    model = guide_nested(tf_keras)
    head = model.get_layer("head")
    for form in (1, -1, 0, "head", head, {"name": "head"}, {"layer": head, "link": "input"}):
        (ours,), (theirs,) = inspection.endpoints(model, [form]), seed.endpoints(model, [form])
        assert ours is theirs, form


def test_descriptors_the_seed_refused() -> None:
    model = guide_nested(tf_keras)
    tensor = model.outputs[0]
    refused = {
        "symbolic tensor": ([tensor], ValueError, "KerasTensor"),
        "Endpoint": ([Endpoint(path="head")], ValueError, "Endpoint"),
        "path string": (["backbone/c1"], ValueError, "No such layer"),
        "dict with a layer index": ([{"layer": 1}], AttributeError, "_inbound_nodes"),
        "out-of-range index": ([5], IndexError, "out of range"),
        "one descriptor, no list": ("head", ValueError, "No such layer: h"),  # read letter by letter
    }
    for form, (descriptors, error, message) in refused.items():
        with pytest.raises(error, match=message):
            seed.endpoints(model, descriptors)
            pytest.fail(f"the seed accepted the {form}")
    assert inspection.endpoints(model, [tensor])[0] is tensor
    assert inspection.endpoints(model, "head")[0] is tensor
    assert inspection.endpoints(model, [{"layer": 1}])[0] is tensor
    assert inspection.endpoints(model, [Endpoint(path="head")])[0] is tensor
    (inner,) = inspection.endpoints(model, ["backbone/c1"])
    x = _x(model)
    backbone = model.get_layer("backbone")
    reference = tf_keras.Model(backbone.inputs, backbone.get_layer("c1").output)(x)
    np.testing.assert_allclose(np.asarray(tf_keras.Model(model.inputs, inner)(x)), reference, rtol=1e-5)
    with pytest.raises(keras_inspect.LayerNotFoundError, match="valid indices -2..1"):
        inspection.endpoints(model, [5])
    with pytest.raises(ValueError, match="No such layer: c3") as theirs:
        seed.endpoints(model, [{"name": ("backbone", "c3")}])
    assert "Did you mean" not in str(theirs.value)
    with pytest.raises(keras_inspect.LayerNotFoundError, match="'c3'.*Did you mean 'c2'"):
        inspection.endpoints(model, ["backbone/c3"])


def test_a_nested_layer_given_as_an_object() -> None:
    model = guide_nested(tf_keras)
    c2 = model.get_layer("backbone").get_layer("c2")
    (theirs,), (ours,) = seed.endpoints(model, [c2]), inspection.endpoints(model, [c2])
    assert theirs is c2.output  # a tensor of the nested graph, not of the model
    with pytest.raises(ValueError, match="Graph disconnected"):
        tf_keras.Model(model.inputs, theirs)
    x = _x(model)
    np.testing.assert_allclose(
        np.asarray(tf_keras.Model(model.inputs, ours)(x)),
        np.asarray(inspection.expose(model, arguments="backbone/c2")(x)[1]),
        rtol=1e-6,
    )


# -- links -----------------------------------------------------------------------------------------


def test_pre_activation_and_unknown_links() -> None:
    model = fused_model(tf_keras)
    conv_output = model.get_layer("conv").output
    for link in ("pre_activation", "outptu"):
        # The seed read every link but "input" as the output: no error, the activated signal.
        assert seed.endpoints(model, [{"name": "conv", "link": link}])[0] is conv_output
    with pytest.raises(keras_inspect.EndpointError, match="link must be one of"):
        inspection.endpoints(model, [{"name": "conv", "link": "outptu"}])
    x = _x(model, rng_seed=1)
    pre_activation = {"name": "conv", "link": "pre_activation"}
    _, before = _values(inspection.expose(model, arguments=pre_activation), x)
    _, after = _values(seed.expose(model, arguments=pre_activation), x)
    assert before.min() < 0.0 <= after.min()
    np.testing.assert_allclose(np.maximum(before, 0.0), after, rtol=1e-5, atol=1e-6)


# -- tuples ---------------------------------------------------------------------------------------


def test_a_tuple_is_several_descriptors_where_the_seed_agreed() -> None:
    model = tuple_model(tf_keras)
    x = _x(model)
    for arguments, outputs in (("gap", ("logits", "probs")), (("gap",), None)):
        ours = _values(inspection.expose(model, arguments, outputs), x)
        theirs = _values(seed.expose(model, arguments, outputs), x)
        assert len(ours) == len(theirs) == (3 if outputs else 2)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    ours, theirs = inspection.endpoints(model, ("conv", "gap")), seed.endpoints(model, ("conv", "gap"))
    assert len(ours) == len(theirs) == 2 and all(a is b for a, b in zip(ours, theirs))


def test_a_tuple_of_arguments_was_a_path_in_the_seeds_expose() -> None:
    model = tuple_model(tf_keras)
    with pytest.raises(AttributeError, match="get_layer"):
        seed.expose(model, ("conv", "gap"))  # read as the path conv -> gap
    exposed = inspection.expose(model, ("conv", "gap"))
    assert [tuple(t.shape) for t in exposed.outputs] == [(None, 3), (None, 6, 6, 2), (None, 2)]
    nested = guide_nested(tf_keras)
    with pytest.raises(ValueError, match="Graph disconnected"):
        seed.expose(nested, ("backbone", "c2"))  # a deeper path could not be exposed either
    x = _x(nested)
    as_path = _values(inspection.expose(nested, "backbone/c2"), x)[1]
    for path in ({"name": ("backbone", "c2")}, Endpoint(path=("backbone", "c2"))):
        np.testing.assert_allclose(_values(inspection.expose(nested, path), x)[1], as_path, rtol=1e-6)
    assert len(inspection.expose(nested, ("backbone", "c2")).outputs) == 3  # two descriptors
