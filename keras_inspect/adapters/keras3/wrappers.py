"""The Keras 3 wrapper layers that exposed models contain: pre-activation and interception.

:class:`PreActivation` computes a layer without its fused activation, sharing its weights (an
``Activation`` layer after it restores the layer's output exactly: same operations, same order).

:class:`Intercepted` reaches layers inside subclassed layers and models (no graph) by
intercepting their calls.
A subclassed layer (keras-hub's ``ViTEncoder``, a user's ``Block``) runs its sub-layers from
Python code, so no graph records their signals. :class:`Intercepted` wraps such an enclosing
layer: while the enclosing layer runs, the ``call`` of each target sub-layer is replaced, on that
instance only, by a pass-through that records what it received and returned; the wrapper returns
the enclosing layer's outputs together with the recorded signals. Tracing the wrapper on symbolic
inputs gives those signals a place in the new model's graph; at run time the same recording runs
again (once per trace under ``jit``, every call in eager mode).

The replacement returns exactly what the original returned, so even a concurrent call of the
user's own model during the capture computes the same values; the lock only keeps two captures
from interleaving their records, and ``finally`` always restores the layers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import keras

from keras_inspect.errors import EndpointError, name_of, shorten
from keras_inspect.graph.fused_activations import (
    call_without_activation,
    fused_activation,
    stock_class,
)
from keras_inspect.graph.reader import graph_lock


@keras.saving.register_keras_serializable(package="keras_inspect")
class PreActivation(keras.layers.Wrapper):
    """Computes the wrapped layer without its fused activation, sharing its weights.

    ``Activation(layer.activation)(PreActivation(layer)(x))`` equals ``layer(x)``. Registered as
    ``keras_inspect>PreActivation``, so a model that contains it saves and loads (``import
    keras_inspect`` before ``keras.models.load_model``).
    """

    def __init__(self, layer: Any, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)

    def call(self, inputs: Any, training: Any = None) -> Any:
        if training is not None and "training" in inspect.signature(type(self.layer).call).parameters:
            return call_without_activation(self.layer, inputs, training=training)
        return call_without_activation(self.layer, inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.layer.compute_output_shape(input_shape)


def sublayer(layer: Any, path: Sequence[str]) -> Any:
    """The sub-layer of ``layer`` at ``path`` (names, one per nesting level)."""
    current = layer
    for depth, name in enumerate(path):
        children = list(current._flatten_layers(include_self=False, recursive=False))
        match = next((c for c in children if c.name == name), None)
        if match is None:
            raise EndpointError(
                f"No sub-layer named {shorten(name)} in {name_of(current)!r} (path "
                f"{shorten('/'.join(path[: depth + 1]))} below {name_of(layer)!r}); it has "
                f"{', '.join(repr(c.name) for c in children) or 'no sub-layers'}."
            )
        current = match
    return current


def _tensors(structure: Any) -> list[Any]:
    return [x for x in keras.tree.flatten(structure) if keras.ops.is_tensor(x)]


def _recorder(
    layer: Any,
    bound: Any,
    links: frozenset[str],
    records: list[dict],
    edits: dict[int, list[tuple[str, str, Any]]],
) -> Any:
    """The pass-through that replaces ``layer.call``: it records each call's signals and, at
    the calls listed in ``edits`` (call index -> ``(link, mode, value)``), edits a signal where
    it is produced (``mode`` ``"add"`` adds ``value``, ``"replace"`` puts it in the signal's
    place; the records keep the values before the edit)."""
    split = "pre_activation" in links and fused_activation(layer, keras.layers) is not None
    if split and stock_class(layer, keras.layers) is None:
        raise EndpointError(
            f"Cannot split the fused activation of {name_of(layer)!r} "
            f"({type(layer).__name__}): only stock layers whose call ends with their activation "
            "(Dense, EinsumDense, convolutions), and not subclasses that override call, can be "
            "split. Expose its output instead."
        )

    def call(*args: Any, **kwargs: Any) -> Any:
        wanted = {link: (mode, value) for link, mode, value in edits.get(len(records), ())}
        record: dict[str, list[Any]] = {"input": _tensors((args, kwargs))}
        if "input" in wanted:
            args = (_edit(args[0], wanted["input"], "input", layer), *args[1:])
        if split:
            pre = call_without_activation(layer, *args, **kwargs)
            record["pre_activation"] = [pre]
            if "pre_activation" in wanted:
                pre = _edit(pre, wanted["pre_activation"], "pre_activation", layer)
            result = layer.activation(pre)
        else:
            result = bound(*args, **kwargs)
            record["pre_activation"] = _tensors(result)
            if "pre_activation" in wanted:
                result = _edit(result, wanted["pre_activation"], "pre_activation", layer)
        record["output"] = _tensors(result)
        if "output" in wanted:
            result = _edit(result, wanted["output"], "output", layer)
        records.append(record)
        return result

    return call


def _edit(value: Any, edit: tuple[str, Any], link: str, layer: Any) -> Any:
    if not keras.ops.is_tensor(value):
        raise EndpointError(
            f"The {link} of {name_of(layer)!r} inside a subclassed layer is not one tensor, so "
            "it cannot be edited (for a gradient or an intervention); ask for a signal that is "
            "one tensor."
        )
    mode, given = edit
    return given if mode == "replace" else keras.ops.add(value, given)


@contextmanager
def recording(
    layers: dict[int, tuple[Any, frozenset[str]]],
    edits: dict[int, dict[int, list[tuple[str, str, Any]]]] | None = None,
) -> Iterator[dict[int, list[dict]]]:
    """Record every call of the given layers (``id -> (layer, links)``) inside the block,
    making the edits of ``edits`` (``id -> call index -> [(link, mode, value)]``)."""
    records: dict[int, list[dict]] = {key: [] for key in layers}
    with graph_lock:
        installed: list[tuple[Any, bool, Any]] = []
        try:
            for key, (layer, links) in layers.items():
                had_own = "call" in layer.__dict__
                previous = layer.__dict__.get("call")
                recorder = _recorder(layer, layer.call, links, records[key], (edits or {}).get(key, {}))
                # object.__setattr__: Keras's (and torch's) __setattr__ would track the function.
                object.__setattr__(layer, "call", recorder)
                installed.append((layer, had_own, previous))
            yield records
        finally:
            for layer, had_own, previous in reversed(installed):
                if had_own:
                    object.__setattr__(layer, "call", previous)
                else:
                    object.__delattr__(layer, "call")


def _pick(records: list[dict], node: Any, link: str, name: str, owner: str) -> list[Any]:
    if not records:
        raise EndpointError(
            f"Layer {name!r} was not called while {owner!r} ran, so it has no signal to expose."
        )
    if node == "last":
        return records[-1][link]
    if not -len(records) <= node < len(records):
        raise EndpointError(
            f"Layer {name!r} is called {len(records)} time(s) while {owner!r} runs; node "
            f"{node} is out of range (valid: {-len(records)}..{len(records) - 1} or 'last')."
        )
    return records[node][link]


@keras.saving.register_keras_serializable(package="keras_inspect")
class Intercepted(keras.layers.Wrapper):
    """Runs a layer and also returns signals of its sub-layers: ``(outputs, [signals...])``.

    :param layer: the enclosing layer (subclassed: no graph of its own).
    :param targets: one dict per wanted signal: ``path`` (names below ``layer``), ``link``
        (``"input"``, ``"output"`` or ``"pre_activation"``), ``node`` (which call of the
        target while ``layer`` runs once: an int or ``"last"``) and, to edit the signal where
        it is produced, ``edit``: ``"add"`` or ``"replace"`` with the next of the values
        passed as ``keras_inspect_edits`` (``node`` must then be a non-negative index).
    """

    def __init__(self, layer: Any, targets: Sequence[dict], **kwargs: Any) -> None:
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)
        self.targets = [
            {
                "path": list(t["path"]),
                "link": t["link"],
                "node": t["node"],
                "edit": t.get("edit"),
            }
            for t in targets
        ]

    def _target_layers(self) -> dict[int, tuple[Any, frozenset[str]]]:
        wanted: dict[int, tuple[Any, set[str]]] = {}
        for target in self.targets:
            layer = sublayer(self.layer, target["path"])
            wanted.setdefault(id(layer), (layer, set()))[1].add(target["link"])
        return {key: (layer, frozenset(links)) for key, (layer, links) in wanted.items()}

    def _edits(self, values: Sequence[Any]) -> dict[int, dict[int, list[tuple[str, str, Any]]]]:
        wanted: dict[int, dict[int, list[tuple[str, str, Any]]]] = {}
        given = iter(values)
        for target in self.targets:
            if target["edit"] is not None:
                layer = sublayer(self.layer, target["path"])
                calls = wanted.setdefault(id(layer), {})
                edit = (target["link"], target["edit"], next(given))
                calls.setdefault(target["node"], []).append(edit)
        return wanted

    def call(
        self, inputs: Any, *args: Any, keras_inspect_edits: Any = None, **kwargs: Any
    ) -> Any:
        layers = self._target_layers()
        edits = self._edits(keras_inspect_edits or ())
        with recording(layers, edits) as records:
            result = self.layer(inputs, *args, **kwargs)
        # How often each target's layer ran: what a later request for "last" resolves against.
        counts = [len(records[id(sublayer(self.layer, t["path"]))]) for t in self.targets]
        object.__setattr__(self, "call_counts", counts)
        taps = []
        for target in self.targets:
            layer = sublayer(self.layer, target["path"])
            try:
                picked = _pick(
                    records[id(layer)], target["node"], target["link"], layer.name, self.layer.name
                )
            except EndpointError as error:
                # Keras re-raises errors from a symbolic call under its own shape-inference
                # message; keep this one so `interceptor` can raise it as it was.
                object.__setattr__(self, "_endpoint_error", error)
                raise
            taps.append(picked)
        return result, taps

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "targets": self.targets}


def interceptor(layer: Any, targets: Sequence[dict], new_name: Callable[[str], str]) -> Any:
    """``call(args, kwargs) -> (outputs, signals)`` through :class:`Intercepted` wrappers.

    A target with an ``edit`` mode has its ``value`` (a symbolic tensor) added to, or put in
    place of, its signal where it is produced: the enclosing layer is traced once plainly, to
    count the calls its ``node`` refers to, then through a wrapper that makes the edits.
    ``new_name(base)`` names the wrappers uniquely within the model being built.
    """
    for target in targets:
        sublayer(layer, target["path"])  # fail early, with the available names
    plain = Intercepted(layer, [{**t, "edit": None} for t in targets], name=new_name(f"{layer.name}_intercepted"))
    values = [t["value"] for t in targets if t.get("edit") is not None]

    def call(args: tuple, kwargs: dict) -> tuple[Any, list[list[Any]]]:
        result, taps = _traced(plain, args, kwargs)
        if values:
            editing = [
                {**t, "node": _resolved(t["node"], count)}
                for t, count in zip(targets, plain.call_counts)
            ]
            wrapper = Intercepted(layer, editing, name=new_name(f"{layer.name}_edited"))
            result, taps = _traced(wrapper, args, {**kwargs, "keras_inspect_edits": values})
        return result, taps

    return call


def _resolved(node: Any, count: int) -> int:
    if node == "last":
        return count - 1
    return node % count if count else node


def _traced(wrapper: Intercepted, args: tuple, kwargs: dict) -> tuple[Any, list[list[Any]]]:
    object.__setattr__(wrapper, "_endpoint_error", None)
    try:
        result, taps = wrapper(*args, **kwargs)
    except Exception:
        own = getattr(wrapper, "_endpoint_error", None)
        if own is None:
            raise
        raise own from None
    return result, [list(t) if isinstance(t, (list, tuple)) else [t] for t in taps]
