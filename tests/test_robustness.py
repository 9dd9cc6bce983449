"""Property-based robustness: bad endpoint descriptors, layer paths, unit indices and plugin answers.

Every public call either succeeds or raises ``ValueError``/``TypeError`` (keras-inspect's own
errors are ``ValueError`` subclasses) whose message names the bad value; never an
``AttributeError``, ``IndexError`` or ``KeyError``, nor an error from inside Keras.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_inspect
from conftest import to_numpy
from keras_inspect import Endpoint, PluginError, hookimpl, new_plugin_manager, using_plugin_manager

FORBIDDEN = (AttributeError, IndexError, KeyError)


def call_cleanly(fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """Run ``fn``; return its result or the ``ValueError``/``TypeError`` it raised.

    Any other exception (including the forbidden look-up errors, which subclass neither) fails
    the test with the offending call in the traceback.
    """
    try:
        return fn(), None
    except (ValueError, TypeError) as error:
        assert not isinstance(error, FORBIDDEN)
        assert str(error), f"{type(error).__name__} without a message"
        assert _raised_by_us(error), f"error from inside a library: {error!r}"
        return None, error


def _raised_by_us(error: BaseException) -> bool:
    """Whether the frame that raised ``error`` is keras-inspect's (not Keras' or a backend's)."""
    tb = error.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last is None or "keras_inspect" in last or "attr" in last


def names_value(message: str, value: Any) -> bool:
    """Whether ``message`` names ``value`` (its repr, its text, or a shortened repr).

    A long repr is cut in its middle, so its first 30 characters are what any shortening keeps.
    """
    text = repr(value)
    return (
        text in message
        or str(value) in message
        or text[:30] in message
        or (isinstance(value, str) and any(p and repr(p) in message for p in value.split("/")))
    )


def model_names(model: keras.Model) -> list[str]:
    return [entry.name for entry in keras_inspect.walk(model)]


# -- endpoint descriptors and layer paths ------------------------------------------------------

NAME_PARTS = ["image", "conv1", "bn1", "relu1", "conv2", "gap", "logits", "backbone", "b_conv1",
              "b_bn", "b_relu", "b_conv2", "avg_pool", "predictions", "shared", "concat", "head"]


@st.composite
def mutated_names(draw: st.DrawFn) -> str:
    """Real layer names and paths, near misses of them, and arbitrary text."""
    kind = draw(st.sampled_from(["real", "path", "typo", "text", "slashes"]))
    if kind == "real":
        return draw(st.sampled_from(NAME_PARTS))
    if kind == "path":
        parts = draw(st.lists(st.sampled_from(NAME_PARTS), min_size=1, max_size=3))
        return "/".join(parts)
    if kind == "typo":
        name = draw(st.sampled_from(NAME_PARTS))
        at = draw(st.integers(0, len(name)))
        return name[:at] + draw(st.text(max_size=2)) + name[at + 1 :]
    if kind == "slashes":
        return draw(st.sampled_from(["", "/", "//", "a//b", "/conv1", "conv1/", "backbone//b_bn"]))
    return draw(st.text(max_size=12))


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-20, 20),
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=4),
    st.just(object()),
    st.just(Ellipsis),
    st.complex_numbers(max_magnitude=2),
)
dict_values = st.one_of(scalars, mutated_names(), st.sampled_from(["output", "input", "last"]))
descriptor_dicts = st.dictionaries(
    st.sampled_from(["name", "layer", "link", "node", "index", "nmae", "Link", 3]),
    dict_values,
    max_size=4,
)
descriptors = st.one_of(
    scalars,
    mutated_names(),
    st.tuples(mutated_names(), mutated_names()),
    st.lists(st.one_of(mutated_names(), st.integers(-8, 8)), max_size=3),
    descriptor_dicts,
    st.builds(
        dict,
        name=mutated_names(),
        link=st.one_of(st.sampled_from(["output", "input", "pre_activation"]), scalars),
        node=st.one_of(st.integers(-3, 3), st.just("last"), scalars),
        index=st.one_of(st.none(), st.integers(-3, 3), scalars),
    ),
)


@pytest.fixture(scope="module")
def models(cnn: keras.Model, nested: keras.Model, shared_model: keras.Model) -> dict[str, Any]:
    return {"cnn": cnn, "nested": nested, "shared": shared_model}


@settings(max_examples=600)
@given(which=st.sampled_from(["cnn", "nested", "shared"]), descriptor=descriptors)
def test_endpoint_descriptors_succeed_or_fail_cleanly(
    models: dict[str, Any], which: str, descriptor: Any
) -> None:
    model = models[which]
    tensors, error = call_cleanly(lambda: keras_inspect.endpoints(model, descriptor))
    if error is None:
        assert all(hasattr(t, "shape") for t in tensors)
        assert tensors or descriptor == []
    elif isinstance(descriptor, (str, int)) and not isinstance(descriptor, bool):
        assert names_value(str(error), descriptor) or _names_layer_at(model, descriptor, error)


def _names_layer_at(model: keras.Model, index: Any, error: BaseException) -> bool:
    # An index that points at an InputLayer is refused naming that layer rather than the index
    # (see docs/robustness.md).
    layers = model.layers
    return isinstance(index, int) and -len(layers) <= index < len(layers) and (
        repr(layers[index].name) in str(error)
    )


@settings(max_examples=500)
@given(which=st.sampled_from(["cnn", "nested", "shared"]), path=mutated_names())
def test_layer_paths_resolve_or_fail_naming_the_path(
    models: dict[str, Any], which: str, path: str
) -> None:
    model = models[which]
    layer, error = call_cleanly(lambda: keras_inspect.get_nested_layer(model, path))
    if error is None:
        entry = next(e for e in keras_inspect.walk(model) if e.layer is layer)
        # The path names the layer exactly, or a single name picks the unique nested layer.
        assert entry.name == path or (entry.path[-1] == path and "/" not in path)
    else:
        assert names_value(str(error), path), (path, str(error))
    # find_layer_with(name=...) is the same look-up and must agree.
    same, other = call_cleanly(lambda: keras_inspect.find_layer_with(model, name=path))
    assert same is layer and type(other) is type(error)


@settings(max_examples=300)
@given(
    outputs=st.one_of(st.none(), descriptors),
    arguments=st.one_of(st.none(), st.lists(st.sampled_from(["conv2", "gap", "relu1", 1]), max_size=2)),
)
def test_expose_arguments_succeed_or_fail_cleanly(
    cnn: keras.Model, outputs: Any, arguments: Any
) -> None:
    exposed, error = call_cleanly(lambda: keras_inspect.expose(cnn, arguments=arguments, outputs=outputs))
    if error is not None:
        return
    # One output per descriptor (every signal of this model is one tensor), in order, and the
    # defaults are the logits and the input of the pooling layer.
    count = lambda d, default: 1 if d is None else (len(d) if isinstance(d, (list, tuple)) else 1)  # noqa: E731
    assert len(exposed.outputs) == count(outputs, 1) + count(arguments, 1)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    values = keras.tree.flatten(exposed(x))
    if outputs is None:
        np.testing.assert_allclose(to_numpy(values[0]), to_numpy(cnn(x)), rtol=1e-5, atol=1e-6)
    if arguments is None:
        pooled = keras.Model(cnn.inputs[0], cnn.get_layer("gap").input)(x)
        np.testing.assert_allclose(to_numpy(values[-1]), to_numpy(pooled), rtol=1e-5, atol=1e-6)
    else:
        for descriptor, value in zip(arguments, values[-len(arguments) or len(values):]):
            layer = cnn.layers[descriptor] if isinstance(descriptor, int) else cnn.get_layer(descriptor)
            reference = keras.Model(cnn.inputs[0], layer.output)(x)
            np.testing.assert_allclose(to_numpy(value), to_numpy(reference), rtol=1e-5, atol=1e-6)


def _references(nested: keras.Model) -> dict[tuple[str, str], keras.Model]:
    """For each valid (path, link) of the nested model, a model computing that signal, built
    from the layers' own graphs (not through keras-inspect)."""
    backbone = nested.get_layer("backbone")
    conv, relu = backbone.get_layer("b_conv2"), backbone.get_layer("b_relu")
    pool = nested.get_layer("avg_pool")
    inner = lambda tensor: keras.Sequential([keras.Input(nested.inputs[0].shape[1:]), keras.Model(backbone.inputs[0], tensor)])  # noqa: E731
    return {
        ("backbone/b_conv2", "output"): inner(conv.output),
        ("backbone/b_conv2", "pre_activation"): inner(conv.output),
        ("backbone/b_conv2", "input"): inner(relu.output),
        ("avg_pool", "output"): keras.Model(nested.inputs[0], pool.output),
        ("avg_pool", "pre_activation"): keras.Model(nested.inputs[0], pool.output),
        ("avg_pool", "input"): keras.Model(nested.inputs[0], pool.input),
        ("backbone", "output"): keras.Model(nested.inputs[0], pool.input),
        ("backbone", "pre_activation"): keras.Model(nested.inputs[0], pool.input),
        ("backbone", "input"): keras.Model(nested.inputs[0], nested.inputs[0]),
    }


@settings(max_examples=100)
@given(
    endpoint=st.builds(
        Endpoint,
        path=st.sampled_from(["conv1", "backbone/b_conv2", "avg_pool", "backbone"]),
        link=st.sampled_from(["output", "input", "pre_activation"]),
        node=st.one_of(st.just("last"), st.integers(-3, 3)),
        index=st.one_of(st.none(), st.integers(-3, 3)),
    )
)
def test_valid_endpoint_values_resolve_or_fail_cleanly(nested: keras.Model, endpoint: Endpoint) -> None:
    tensors, error = call_cleanly(lambda: keras_inspect.endpoints(nested, [endpoint]))
    # Each layer here is called once, with one input tensor: node 0/-1/"last" and index
    # None/0/-1 are the only valid ones, and "conv1" is no layer of this model.
    valid = (
        endpoint.name != "conv1"
        and endpoint.node in ("last", 0, -1)
        and endpoint.index in (None, 0, -1)
    )
    assert (error is None) == valid, (endpoint, error)
    if error is None:
        (tensor,) = tensors
        x = np.random.default_rng(1).normal(size=(2, 16, 16, 3)).astype("float32")
        reference = _references(nested)[(endpoint.name, endpoint.link)](x)
        got = keras.Model(nested.inputs[0], tensor)(x)
        np.testing.assert_allclose(to_numpy(got), to_numpy(reference), rtol=1e-5, atol=1e-6)


@settings(max_examples=200)
@given(
    path=st.one_of(scalars, mutated_names(), st.lists(scalars, max_size=2)),
    link=st.one_of(st.sampled_from(["output", "input"]), scalars, st.text(max_size=6)),
    node=st.one_of(st.just("last"), st.integers(-2, 2), scalars, st.text(max_size=4)),
    index=st.one_of(st.none(), st.integers(-2, 2), scalars),
)
def test_endpoint_constructor_rejects_bad_fields_cleanly(
    path: Any, link: Any, node: Any, index: Any
) -> None:
    endpoint, error = call_cleanly(lambda: Endpoint(path=path, link=link, node=node, index=index))
    if error is not None:
        return
    # What was accepted is kept exactly, the path split into names.
    expected_path = tuple(path.split("/")) if isinstance(path, str) else tuple(path)
    assert endpoint.path == expected_path and all(isinstance(p, str) and p for p in endpoint.path)
    assert endpoint.link == link and link in ("output", "input", "pre_activation")
    assert endpoint.node == node and (node == "last" or type(node) is int)
    assert endpoint.index == index and (index is None or type(index) is int)


# -- gather_units ------------------------------------------------------------------------------

small_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple)


@settings(max_examples=300)
@given(
    tensor_shape=small_shapes,
    index_shape=small_shapes,
    data=st.data(),
    axis=st.integers(-4, 3),
    batch_dims=st.integers(-3, 3),
    dtype=st.sampled_from(["int32", "int64", "float32", "bool"]),
)
def test_gather_units_matches_numpy_or_fails_cleanly(
    tensor_shape: tuple[int, ...],
    index_shape: tuple[int, ...],
    data: st.DataObject,
    axis: int,
    batch_dims: int,
    dtype: str,
) -> None:
    tensor = np.arange(int(np.prod(tensor_shape)), dtype="float32").reshape(tensor_shape)
    values = data.draw(
        st.lists(st.integers(-4, 4), min_size=int(np.prod(index_shape)),
                 max_size=int(np.prod(index_shape)))
    )
    indices = np.array(values).reshape(index_shape).astype(dtype)
    result, error = call_cleanly(
        lambda: keras_inspect.gather_units(tensor, indices, axis=axis, batch_dims=batch_dims)
    )
    if error is not None:
        return
    expected = _reference_gather(tensor, indices, axis, batch_dims)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(result), expected)


def _reference_gather(tensor: np.ndarray, indices: np.ndarray, axis: int, batch_dims: int) -> np.ndarray:
    """Per-sample take along ``axis``: what gather_units promises, written with plain loops."""
    axis %= tensor.ndim
    if batch_dims < 0:
        batch_dims += indices.ndim
    if batch_dims == 0:
        return np.take(tensor, indices, axis=axis)
    return np.stack(
        [
            _reference_gather(tensor[i], indices[i], axis - 1, batch_dims - 1)
            for i in range(tensor.shape[0])
        ]
    )


# Values every backend converts to a tensor (JAX refuses strings, TensorFlow huge floats).
convertible = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(width=32),
    st.complex_numbers(max_magnitude=2, width=64), st.lists(st.floats(width=32), max_size=2),
)


@settings(max_examples=100)
@given(indices=convertible)
def test_gather_units_rejects_non_integer_indices(indices: Any) -> None:
    tensor = np.zeros((2, 3), "float32")
    result, error = call_cleanly(lambda: keras_inspect.gather_units(tensor, indices))
    if indices is None:
        assert result is tensor
    elif isinstance(indices, int) and not isinstance(indices, bool):
        pass  # a scalar index: accepted or refused by the batch_dims rule, both cleanly
    else:
        assert error is not None, f"gather_units accepted {indices!r}"


@pytest.mark.parametrize(
    "indices",
    [object(), Ellipsis, "ab", b"", [1e300]],
    ids=["object", "ellipsis", "text", "bytes", "huge-float"],
)
def test_gather_units_indices_some_backends_cannot_convert(indices: Any) -> None:
    # Each backend converts a different subset of these (TensorFlow: text, not objects or huge
    # floats; JAX and PyTorch: huge floats, not text), so they are checked before any backend
    # sees them: the error is always keras-inspect's own and names the value.
    with pytest.raises(TypeError) as caught:
        keras_inspect.gather_units(np.zeros((2, 3), "float32"), indices)
    assert _raised_by_us(caught.value), caught.value
    assert names_value(str(caught.value), indices), caught.value


# -- plugin return values ----------------------------------------------------------------------

plugin_values = st.one_of(
    scalars,
    st.text(max_size=4),
    st.lists(st.one_of(st.booleans(), st.text(max_size=3), st.floats()), max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=4), st.integers()), scalars, max_size=2),
    st.sampled_from([np.bool_(True), np.float32(1.0), np.array(["a"]), np.zeros(2, "float32"),
                     np.zeros(2, "complex64"), np.array([object()]), frozenset({"x"})]),
)


class AnswersWith:
    """A plugin that answers every hook with the same, arbitrary value."""

    def __init__(self, value: Any) -> None:
        self.value = value

    @hookimpl(tryfirst=True)
    def keras_inspect_classify_layer(self, layer: Any, role: str) -> Any:
        return self.value

    @hookimpl(tryfirst=True)
    def keras_inspect_layer_bias(self, layer: Any) -> Any:
        return self.value

    @hookimpl
    def keras_inspect_search_strategies(self) -> Any:
        return self.value

    @hookimpl
    def keras_inspect_roles(self) -> Any:
        return self.value


@pytest.fixture(scope="module")
def base_pm() -> Iterator[Any]:
    pm = new_plugin_manager(entrypoints=False)
    with using_plugin_manager(pm):
        yield pm


@settings(max_examples=400)
@given(value=plugin_values, call=st.sampled_from(["search", "biases", "strategies", "roles"]))
def test_plugin_answers_of_any_type_are_used_or_rejected_naming_the_plugin(
    cnn: keras.Model, base_pm: Any, value: Any, call: str
) -> None:
    base_pm.register(AnswersWith(value), name="arbitrary")
    try:
        result, error = call_cleanly(
            {
                "search": lambda: keras_inspect.get_global_pooling_layer(cnn),
                "biases": lambda: keras_inspect.layers_with_biases(cnn),
                "strategies": base_pm.strategies,
                "roles": base_pm.roles,
            }[call]
        )
    finally:
        base_pm.unregister(name="arbitrary")
    if error is not None:
        assert isinstance(error, PluginError), repr(error)
        assert "'arbitrary'" in str(error), str(error)
    elif call == "search":
        assert value is None or value is True
    elif call == "biases" and value is not None:
        assert all(np.shape(b) == np.shape(value) for b in result[1])


def test_the_plugin_manager_is_unchanged_after_bad_answers(cnn: keras.Model, base_pm: Any) -> None:
    # After the examples above registered and unregistered hundreds of plugins.
    assert base_pm.get_plugin("arbitrary") is None
    assert keras_inspect.get_global_pooling_layer(cnn).name == "gap"
    assert re.search("logits", ",".join(sorted(base_pm.roles())))
