"""A model as keras-inspect reads it: resolved once at the public boundary, then passed down.

:func:`inspect_model` turns the user's model into an :class:`InspectedModel`: its graph reader
(which flavour of Keras built it), its walk, the layer lookups by path, and every cache about the
model (classifications, exposed signals, split halves, gradient models). Functions below the
public API take that object, never the raw model, so the model is resolved once per call.

The object is the one owner of per-model caches. It lives in the plugin manager's state, weakly
keyed on the model, so registering or unregistering a plugin, or ``reset_plugin_manager()``,
drops every cache at once; and a change of the model's layers (``Sequential.add``) drops them
at the next call.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, cast

from keras_inspect.errors import (
    KerasInspectError,
    LayerNotFoundError,
    PluginError,
    clip,
    describe,
    did_you_mean,
    name_of,
    shorten,
)
from keras_inspect.graph.reader import GraphReader, NewName
from keras_inspect.graph.walk import (
    LayerEntry,
    graph_signature,
    same_signature,
    split_path,
    walk_graph,
)
from keras_inspect.hooks.current import plugin_manager
from keras_inspect.hooks.manager import InspectPluginManager


class InspectedModel:
    """One model, its graph reader, its walk and its caches (see the module docstring)."""

    def __init__(self, model: Any, reader: GraphReader, pm: InspectPluginManager) -> None:
        self._model = weakref.ref(model)
        self.reader = reader
        self.pm = pm
        self.name = name_of(model)
        #: Held while keras-inspect computes something cached here, so that two threads
        #: asking for the same thing build it once.
        self.lock = threading.RLock()
        self._signature: tuple[Any, ...] | None = None
        self._entries: tuple[LayerEntry, ...] = ()
        self._layers: tuple[Any, ...] = ()
        self._members: frozenset[int] = frozenset()
        #: What is derived from the walk on first use (see :meth:`_per_walk`).
        self._derived: dict[str, Any] = {}
        self._by_path: dict[tuple[str, ...], LayerEntry] = {}
        self._caches: dict[str, dict[Any, Any]] = {}

    @property
    def model(self) -> Any:
        model = self._model()
        if model is None:  # only a caller that dropped its model can see this
            raise ReferenceError(f"model {self.name!r} no longer exists")
        return model

    def refresh(self) -> InspectedModel:
        """Re-walk if the model's layers changed since the last call (dropping every cache)."""
        model = self.model
        signature = graph_signature(self.reader, model)
        if self._signature is None or not same_signature(self._signature, signature):
            with self.lock:
                if self._signature is not None and same_signature(self._signature, signature):
                    return self  # another thread walked it while this one waited
                entries = walk_graph(self.reader, model)
                self._entries = entries
                self._layers = tuple(entry.layer for entry in entries)
                self._members = frozenset(id(layer) for layer in self._layers)
                self._derived = {}
                self._by_path = {entry.path: entry for entry in entries}
                self._caches = {}
                self._signature = signature
        return self

    @property
    def entries(self) -> tuple[LayerEntry, ...]:
        """Every layer in graph order (see :func:`keras_inspect.walk`)."""
        return self._entries

    def reversed_entries(self) -> tuple[LayerEntry, ...]:
        """:attr:`entries` from last to first, except that a layer comes before the sub-layers
        it calls itself (outside any graph): its output is computed after theirs, so it is
        nearer the model's output than any of them (a language-model head before the dense
        layer inside it). A nested graph model still comes after its layers: its output is
        its last layer's."""

        def compute() -> tuple[LayerEntry, ...]:
            entries = self._entries
            if all(entry.in_graph for entry in entries):  # nothing to move
                return tuple(reversed(entries))
            return _owners_before_their_calls(entries)

        return self._per_walk("reversed", compute)

    def _per_walk(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()``, remembered until the next re-walk: what only some calls need is
        derived from the walk when first asked for, not by every walk."""
        derived = self._derived
        found = derived.get(key)
        if found is None:
            with self.lock:  # not interleaved with a re-walk, which starts a new mapping
                derived = self._derived
                found = derived.get(key)
                if found is None:
                    found = derived[key] = compute()
        return found

    def layers(self) -> tuple[Any, ...]:
        """The layers of :attr:`entries`, in graph order."""
        return self._layers

    def has_layer(self, layer: Any) -> bool:
        """Whether ``layer`` is one of the walked layers (by identity)."""
        return id(layer) in self._members

    def graph_members(self) -> list[Any]:
        """The walked layers, and the input layers and operations of every graph of the model:
        what symbolic calls on the model's tensors add nodes to."""

        def compute() -> tuple[Any, ...]:
            members = {id(layer): layer for layer in self._layers}
            reader = self.reader
            for container, _ in self._graphs():
                for operation in reader.graph_layers(reader.graph_of(container)):
                    members.setdefault(id(operation), operation)
            return tuple(members.values())

        return list(self._per_walk("graph members", compute))

    def new_names(self) -> NewName:
        """A source of layer names unused in the model, for one model being built on it.

        Keras names new operations from a per-process counter, not from the model: in a
        freshly loaded model an anonymous ``add`` of keras-inspect's would collide with the
        model's own ``add``, and a user's layer may be called ``fc_activation``. Every name
        handed out here avoids every layer, operation and input name of the model, and the
        earlier names.
        """
        taken = {getattr(layer, "name", "") for layer in self.graph_members()}
        taken.update(getattr(t, "name", "") for t in self.reader.inputs(self.model))

        def new_name(base: str) -> str:
            name, count = base, 0
            while name in taken:
                count += 1
                name = f"{base}_{count}"
            taken.add(name)
            return name

        return new_name

    def cache(self, kind: str) -> dict[Any, Any]:
        """The cache of one kind of answer about this model (dropped when its layers change)."""
        found = self._caches.get(kind)
        if found is None:
            with self.lock:
                found = self._caches.setdefault(kind, {})
        return found

    def cache_keys(self) -> dict[str, set[Any]]:
        """The keys of every cache, to forget later what a failed request added."""
        with self.lock:
            return {kind: set(cache) for kind, cache in self._caches.items()}

    def forget_since(self, keys: dict[str, set[Any]]) -> None:
        """Drop every cache entry added since :meth:`cache_keys` returned ``keys``."""
        with self.lock:
            for kind, cache in self._caches.items():
                for key in set(cache) - keys.get(kind, set()):
                    cache.pop(key, None)

    # -- finding layers -----------------------------------------------------------------------

    def entry(self, name: Any, *, inputs: bool = False) -> LayerEntry:
        """The entry at a name or path; raises with close matches.

        Each step of a path first looks for a direct sub-layer of that name, so
        ``("backbone", "conv1")`` and ``"backbone/conv1"`` are exact. A single name that is not
        a direct sub-layer is looked up among all nested layers and must be unique there.
        """
        parts = split_path(name)
        entry = self._by_path.get(parts)
        if entry is not None:
            return entry
        if len(parts) == 1:
            nested = [e for e in self._entries if e.path[-1] == parts[0]]
            if len(nested) == 1:
                return nested[0]
            if len(nested) > 1:
                raise LayerNotFoundError(
                    f"Layer name {shorten(parts[0])} is ambiguous in model {self.name!r}: it "
                    f"names {', '.join(repr(e.name) for e in nested)}. Pass the full path."
                )
        found = self.input_entry(parts) if inputs else None
        if found is not None:
            return found[0]
        operation = self.operation_entry(parts) if inputs else None
        if operation is not None:
            return operation
        raise self._not_found(parts)

    def _not_found(self, parts: tuple[str, ...]) -> LayerNotFoundError:
        # Report the first step that fails, with the names available at that level.
        for depth in range(1, len(parts) + 1):
            if parts[:depth] in self._by_path:
                continue
            step = parts[depth - 1]
            siblings = [e.path[-1] for e in self._entries if e.path[:-1] == parts[: depth - 1]]
            where = f"model {self.name!r}" if depth == 1 else shorten("/".join(parts[: depth - 1]))
            hint = did_you_mean(step, siblings)
            if not hint:
                nested = {e.path[-1] for e in self._entries} - {step}
                hint = did_you_mean(step, nested).replace(
                    "Did you mean", "Nested layers with a close name:"
                )
            return LayerNotFoundError(
                f"No layer named {shorten(step)} in {where} (path {shorten('/'.join(parts))})."
                f"{hint}"
            )
        return LayerNotFoundError(
            f"No layer at path {shorten('/'.join(parts))} in model {self.name!r}."
        )

    def entry_of(self, layer: Any, *, inputs: bool = False) -> LayerEntry:
        """The entry of a layer object; raises if it is not part of the model.

        A layer called at several places (in several nested models) is taken at the last one
        in graph order, as a layer's signal is taken at its last call. With ``inputs``, input
        layers are entries too (they are endpoints, not walked layers).
        """
        # Later entries overwrite earlier ones: the last place wins.
        last = self._per_walk("last entry", lambda: {id(e.layer): e for e in self._entries})
        entry = last.get(id(layer))
        if entry is not None:
            return entry
        found = self.input_entry((name_of(layer),)) if inputs else None
        if found is not None and found[0].layer is layer:
            return found[0]
        raise LayerNotFoundError(f"Layer {name_of(layer)!r} is not part of model {self.name!r}.")

    def _graphs(self) -> list[tuple[Any, tuple[str, ...]]]:
        """Every graph model of the model (itself first), with its path."""
        reader = self.reader
        # Only a model has a graph: the cheap test first (a miss of has_graph's attribute
        # look-ups is slow on PyTorch, whose modules resolve missing attributes themselves).
        nested = [
            (e.layer, e.path)
            for e in self._entries
            if e.in_graph and reader.is_model(e.layer) and reader.has_graph(e.layer)
        ]
        return [(self.model, ()), *nested]

    def operation_entry(self, parts: tuple[str, ...]) -> LayerEntry | None:
        """An operation that is no layer (a ``keras.ops`` call recorded in a graph: a slice, a
        ``tanh``) at ``parts``, or ``None``. The walk lists layers only; as endpoints,
        operations' outputs are signals too (a language model's logits after a slice)."""
        container = self._container_at(parts)
        if container is None:
            return None
        reader = self.reader
        for operation in reader.graph_layers(reader.graph_of(container)):
            if not reader.is_layer(operation) and getattr(operation, "name", None) == parts[-1]:
                calls = tuple(reader.calls(operation, container))
                return LayerEntry(
                    path=parts, layer=operation, container=container, in_graph=True, calls=calls
                )
        return None

    def _container_at(self, parts: tuple[str, ...]) -> Any | None:
        """The graph model that holds ``parts[-1]``, or ``None``."""
        if len(parts) == 1:
            container = self.model
        else:
            parent = self._by_path.get(parts[:-1])
            if parent is None or not parent.in_graph:
                return None
            container = parent.layer
        return container if self.reader.has_graph(container) else None

    def input_entry(self, parts: tuple[str, ...]) -> tuple[LayerEntry, Any] | None:
        """The entry and the tensor of the input layer at ``parts``, or ``None``.

        The walk lists the layers that compute something, so input layers are not in it; as
        endpoints they still make sense (the model's, or a nested graph model's, input tensor).
        """
        reader = self.reader
        container = self._container_at(parts)
        if container is None:
            return None
        for tensor in reader.inputs(container):
            origin = reader.tensor_origin(tensor)
            if origin is not None and getattr(origin[0], "name", None) == parts[-1]:
                entry = LayerEntry(path=parts, layer=origin[0], container=container, in_graph=True)
                return entry, tensor
        return None


def reader_of(obj: Any, pm: InspectPluginManager | None = None) -> GraphReader | None:
    """The graph reader of ``obj``'s flavour of Keras (a model or a layer), or ``None`` if no
    plugin reads it; a plugin's answer that is not a :class:`GraphReader` is its error."""
    pm = pm or plugin_manager()
    state = pm.state
    result, plugin = pm.flavour_answer(obj)
    if result is None:
        return None
    known = state.readers.get(id(result))
    if known is not None:
        return known
    if not isinstance(result, GraphReader):
        methods = ", ".join(sorted(GraphReader.__abstractmethods__))
        raise PluginError(
            f"plugin {plugin!r} returned {describe(result)} from keras_inspect_model_flavour "
            f"for model {name_of(obj)!r}; expected a keras_inspect.GraphReader (a subclass "
            f"implementing {methods})."
        )
    # A plugin's reader answers for its failures; keras-inspect's own readers are trusted.
    answering = result if pm.is_builtin(plugin or "") else _Answerable(result, plugin or "?")
    state.readers[id(result)] = answering
    return cast(GraphReader, answering)


class _Answerable:
    """A plugin's graph reader, whose failures are reported as the plugin's: an error raised by
    one of its methods (its own, or the base class's running over them) becomes a
    :class:`PluginError` naming the plugin, the method and the model."""

    def __init__(self, reader: GraphReader, plugin: str) -> None:
        self.reader = reader
        self.plugin = plugin

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.reader, name)
        if not callable(value):
            return value

        def answered(*args: Any, **kwargs: Any) -> Any:
            try:
                return value(*args, **kwargs)
            except KerasInspectError:
                raise
            except Exception as error:
                about = name_of(args[0]) if args else "?"
                raise PluginError(
                    f"the graph reader of plugin {self.plugin!r} raised {type(error).__name__} in "
                    f"{name}() (reading {about!r}): {clip(str(error))}"
                ) from error

        return answered


def inspect_model(model: Any, pm: InspectPluginManager | None = None) -> InspectedModel:
    """The :class:`InspectedModel` of ``model``; ``TypeError`` if it is not a Keras model."""
    pm = pm or plugin_manager()
    state = pm.state
    try:
        view = state.models.get(model)
    except TypeError:  # not hashable, or no weak references: no cache either
        view = None
    if view is None:
        reader = reader_of(model, pm)
        if reader is None or not reader.is_model(model):
            raise TypeError(
                "expected a Keras model (keras.Model or keras.Sequential, or a tf_keras model); "
                f"received {describe(model)}."
            )
        view = InspectedModel(model, reader, pm)
        try:
            with state.lock:
                view = state.models.setdefault(model, view)
        except TypeError:
            pass
    return view.refresh()


def _owners_before_their_calls(entries: tuple[LayerEntry, ...]) -> tuple[LayerEntry, ...]:
    # The walk is depth-first, each layer right before what it holds: a layer's sub-tree is the
    # run of deeper entries that follows it.
    out: list[LayerEntry] = []

    def visit(lo: int, hi: int, depth: int) -> None:
        starts = [i for i in range(lo, hi) if len(entries[i].path) == depth]
        for start, end in reversed(list(zip(starts, [*starts[1:], hi]))):
            inside = start + 1 < end
            owner_first = inside and not entries[start + 1].in_graph
            if owner_first:
                out.append(entries[start])
            visit(start + 1, end, depth + 1)
            if not owner_first:
                out.append(entries[start])

    visit(0, len(entries), 1)
    return tuple(out)
