"""The adapter registry: declarative layer adapters on top of the hooks.

``register_layer(MyLayer, roles=("normalization",), bias=my_bias)`` records what a layer type is;
the registry answers the classification and bias hooks for instances of that type or of its
subclasses, the most specific registered class in the instance's MRO winning (as
``functools.singledispatch`` resolves types).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from .markers import hookimpl

BiasFunction = Callable[[Any], Any]


def _to_roles(value: Iterable[str] | str) -> frozenset[str]:
    if isinstance(value, str):
        value = (value,)
    roles = frozenset(value)
    for role in roles:
        if not isinstance(role, str) or not role:
            raise TypeError(f"roles must be non-empty strings; received {role!r}.")
    return roles


def _check_bias(_instance: Any, _attribute: Any, value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError(
            f"bias must be a callable layer -> tensor, or None; received {value!r} "
            f"of type {type(value).__name__}."
        )


@attrs.frozen(kw_only=True)
class LayerAdapter:
    """What the registry knows about one layer type."""

    layer_type: type = attrs.field(validator=attrs.validators.instance_of(type))
    roles: frozenset[str] = attrs.field(converter=_to_roles, factory=frozenset)
    bias: BiasFunction | None = attrs.field(default=None, validator=_check_bias)


@attrs.define
class AdapterRegistry:
    """A plugin whose hooks answer from registered :class:`LayerAdapter` records."""

    _adapters: dict[type, LayerAdapter] = attrs.field(factory=dict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)
    # Type -> resolved adapter (or None); rebuilt whenever the registrations change.
    _resolved: dict[type, LayerAdapter | None] = attrs.field(factory=dict, repr=False)

    def register(self, adapter: LayerAdapter) -> None:
        with self._lock:
            self._adapters[adapter.layer_type] = adapter
            self._resolved = {}

    def unregister(self, layer_type: type) -> LayerAdapter | None:
        with self._lock:
            adapter = self._adapters.pop(layer_type, None)
            self._resolved = {}
        return adapter

    def adapters(self) -> tuple[LayerAdapter, ...]:
        return tuple(self._adapters.values())

    def lookup(self, layer_type: type) -> LayerAdapter | None:
        """The adapter of the most specific registered class in ``layer_type``'s MRO."""
        resolved = self._resolved
        if layer_type in resolved:
            return resolved[layer_type]
        adapters = self._adapters
        found = next((adapters[k] for k in layer_type.__mro__ if k in adapters), None)
        resolved[layer_type] = found
        return found

    @hookimpl
    def keras_inspect_classify_layer(self, layer: Any, role: str) -> bool | None:
        adapter = self.lookup(type(layer))
        if adapter is None or role not in adapter.roles:
            return None
        return True

    @hookimpl
    def keras_inspect_layer_bias(self, layer: Any) -> Any | None:
        adapter = self.lookup(type(layer))
        if adapter is None or adapter.bias is None:
            return None
        return adapter.bias(layer)

    @hookimpl
    def keras_inspect_roles(self) -> list[str]:
        return sorted({role for a in self._adapters.values() for role in a.roles})
