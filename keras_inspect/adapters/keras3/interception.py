"""Reaching layers inside subclassed layers (no graph): :class:`Intercepted`.

A subclassed layer (keras-hub's ``ViTEncoder``, a user's ``Block``) runs its sub-layers from
Python code, so no graph records their signals. :class:`Intercepted` wraps such an enclosing
layer and runs, in its place, a *detour*: a shallow copy of it in which the path down to each
target sub-layer goes through copies too, and each target's copy calls a recorder that notes
what the layer received and returned (and makes the edits asked for) around the layer's own
``call``. Every copy shares the originals' weights and sub-layers; the user's layers are never
modified, even for the duration of a call, so another thread running the user's model at the
same time sees nothing of it. Tracing the wrapper on symbolic inputs gives the recorded signals
a place in the new model's graph; at run time the detour runs again (once per trace under a
compiler, every call in eager mode).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import keras

from keras_inspect.errors import EndpointError, name_of, shorten
from keras_inspect.graph.fused_activations import (
    call_without_activation,
    fused_activation,
    stock_class,
)


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


def detour(
    root: Any,
    targets: dict[int, tuple[Any, tuple[str, ...], frozenset[str]]],
    edits: dict[int, dict[int, list[tuple[str, str, Any]]]],
) -> tuple[Any, dict[int, list[dict]]]:
    """A copy of ``root`` whose calls of each target (``id -> (layer, path below root,
    links)``) are recorded, and edited as ``edits`` says (``id -> call index -> [(link, mode,
    value)]``); and the records, filled while the copy runs. See the module doc."""
    copies: dict[int, Any] = {}

    def copy_of(layer: Any) -> Any:
        found = copies.get(id(layer))
        if found is None:
            # object.__new__ skips Keras's own __new__ (which records constructor arguments).
            found = copies[id(layer)] = object.__new__(type(layer))
            found.__dict__.update(layer.__dict__)
        return found

    records: dict[int, list[dict]] = {}
    for key, (layer, path, links) in targets.items():
        records[key] = []
        recorder = _recorder(layer, layer.call, links, records[key], edits.get(key, {}))
        # The copy's own attribute: Keras's (and torch's) __setattr__ would track the function.
        copy_of(layer).__dict__["call"] = recorder
        chain = [root] + [sublayer(root, path[: depth + 1]) for depth in range(len(path))]
        for parent, child in zip(chain[:-1], chain[1:]):
            _rewire(copy_of(parent), child, copy_of(child), root)
    return copy_of(root), records


def _rewire(parent: Any, old: Any, new: Any, root: Any) -> None:
    """Make ``parent`` (a copy) hold ``new`` wherever it held ``old``: in an attribute, a list,
    tuple or dict (torch keeps sub-modules in a dict), copying each container changed."""
    state = parent.__dict__
    found = False
    for name, value in list(state.items()):
        swapped = _swapped(value, old, new)
        if swapped is not value:
            state[name] = swapped
            found = True
    if not found:
        raise EndpointError(
            f"{name_of(old)!r} is not held by an attribute of {name_of(parent)!r} (inside "
            f"{name_of(root)!r}), so its calls cannot be reached without changing the user's "
            "layers; expose a signal of the enclosing layer instead."
        )


def _swapped(value: Any, old: Any, new: Any, depth: int = 0) -> Any:
    if value is old:
        return new
    if depth > 2 or isinstance(value, (str, bytes)) or value is new:
        return value
    if isinstance(value, (list, tuple)):
        items = [_swapped(v, old, new, depth + 1) for v in value]
        if any(a is not b for a, b in zip(items, value)):
            return tuple(items) if isinstance(value, tuple) else list(items)
        return value
    if isinstance(value, dict):
        items = {k: _swapped(v, old, new, depth + 1) for k, v in value.items()}
        if any(items[k] is not v for k, v in value.items()):
            # A dict or OrderedDict keeps its type; Keras's tracked dicts become plain ones.
            return type(value)(items) if type(value) in (dict, OrderedDict) else items
        return value
    return value


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

    def _target_layers(self) -> dict[int, tuple[Any, tuple[str, ...], frozenset[str]]]:
        wanted: dict[int, tuple[Any, tuple[str, ...], set[str]]] = {}
        for target in self.targets:
            path = tuple(target["path"])
            layer = sublayer(self.layer, path)
            wanted.setdefault(id(layer), (layer, path, set()))[2].add(target["link"])
        return {k: (layer, path, frozenset(links)) for k, (layer, path, links) in wanted.items()}

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

    def call(self, inputs: Any, *args: Any, keras_inspect_edits: Any = None, **kwargs: Any) -> Any:
        layers = self._target_layers()
        edits = self._edits(keras_inspect_edits or ())
        copy, records = detour(self.layer, layers, edits)
        result = copy(inputs, *args, **kwargs)
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

    def compute_output_spec(self, *args: Any, **kwargs: Any) -> Any:
        infer = super().compute_output_spec
        try:
            return infer(*args, **kwargs)
        except EndpointError:
            raise
        except Exception as error:
            # JAX cannot compare a symbolic length with a layer's limit (a position embedding's
            # maximum length) and PyTorch stands in a length of its own that may exceed it; the
            # wrapped layer's own output shape does not give the sub-layers' signals.
            found = _spec_by_probing(infer, args, kwargs)
            if found is None:
                raise error from None
            return found

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "targets": self.targets}


#: Pairs of lengths put in place of unknown dimensions: small enough for any length limit,
#: far enough apart that a dimension computed from them (a stride, a ceiling) differs.
_PROBE_LENGTHS = ((3, 17), (2, 3), (8, 16))


def _spec_by_probing(infer: Callable[..., Any], args: tuple, kwargs: dict) -> Any | None:
    """Output specs of ``infer`` on symbolic inputs with unknown dimensions, from two runs at
    known lengths: a dimension that differs between them is unknown, one that does not is
    fixed. ``None`` when no pair of lengths runs."""

    def at(length: int) -> Any:
        def known(value: Any) -> Any:
            if not isinstance(value, keras.KerasTensor) or None not in value.shape:
                return value
            shape = tuple(length if d is None else d for d in value.shape)
            return keras.KerasTensor(shape, dtype=value.dtype, sparse=value.sparse)

        return keras.tree.map_structure(known, (args, kwargs))

    def merged(a: Any, b: Any) -> Any:
        if not isinstance(a, keras.KerasTensor):
            return a
        shape = tuple(x if x == y else None for x, y in zip(a.shape, b.shape))
        return keras.KerasTensor(shape, dtype=a.dtype, sparse=a.sparse)

    for first, second in _PROBE_LENGTHS:
        try:
            (a_args, a_kwargs), (b_args, b_kwargs) = at(first), at(second)
            one, two = infer(*a_args, **a_kwargs), infer(*b_args, **b_kwargs)
            return keras.tree.map_structure(merged, one, two)
        except EndpointError:
            raise
        except Exception:
            continue
    return None


def interceptor(layer: Any, targets: Sequence[dict], new_name: Callable[[str], str]) -> Any:
    """``call(args, kwargs) -> (outputs, signals)`` through :class:`Intercepted` wrappers.

    A target with an ``edit`` mode has its ``value`` (a symbolic tensor) added to, or put in
    place of, its signal where it is produced: the enclosing layer is traced once plainly, to
    count the calls its ``node`` refers to, then through a wrapper that makes the edits.
    ``new_name(base)`` names the wrappers uniquely within the model being built.
    """
    for target in targets:
        sublayer(layer, target["path"])  # fail early, with the available names
    plain = Intercepted(
        layer, [{**t, "edit": None} for t in targets], name=new_name(f"{layer.name}_intercepted")
    )
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
