"""The layer registry: declarative records of layer types, answering the hooks for them.

``register_layer(MyLayer, roles=("normalization",), bias=my_bias)`` records what a layer type is;
the registry (a plugin of every manager) answers the classification and bias hooks for instances
of that type or of its subclasses, the most specific registered class in the instance's MRO
winning (as ``functools.singledispatch`` resolves types).
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from keras_inspect.errors import describe
from keras_inspect.hooks.specs import hookimpl

BiasFunction = Callable[[Any], Any]


def _to_roles(value: Iterable[str] | str) -> frozenset[str]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise TypeError(f"roles must be role names (str); received {describe(value)}.")
    roles = frozenset(value)
    for role in roles:
        if not isinstance(role, str) or not role:
            raise TypeError(f"roles must be non-empty strings; received {describe(role)}.")
    return roles


def _check_bias(_instance: Any, _attribute: Any, value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError(
            f"bias must be a callable layer -> tensor, or None; received {describe(value)}."
        )


@attrs.frozen(kw_only=True)
class LayerRecord:
    """What the registry knows about one layer type: its roles and how to get its bias."""

    layer_type: type = attrs.field(validator=attrs.validators.instance_of(type))
    roles: frozenset[str] = attrs.field(converter=_to_roles, factory=frozenset)
    bias: BiasFunction | None = attrs.field(default=None, validator=_check_bias)


class LayerRegistry:
    """A plugin whose hooks answer from registered :class:`LayerRecord` values.

    The records are an immutable mapping replaced on every change, so a search reading them in
    one thread never sees the mapping change under it while another thread registers.
    """

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self._records: Mapping[type, LayerRecord] = types.MappingProxyType({})
        self._resolved: dict[type, LayerRecord | None] = {}
        self._lock = threading.Lock()
        self._on_change = on_change

    def register(self, record: LayerRecord) -> None:
        """Add (or replace) the record of ``record.layer_type``."""
        with self._lock:
            self._replace({**self._records, record.layer_type: record})

    def unregister(self, layer_type: type) -> LayerRecord | None:
        """Forget the record of ``layer_type``; return it (``None`` if there was none)."""
        with self._lock:
            remaining = dict(self._records)
            record = remaining.pop(layer_type, None)
            self._replace(remaining)
        return record

    def _replace(self, records: dict[type, LayerRecord]) -> None:
        self._records = types.MappingProxyType(records)
        self._resolved = {}
        if self._on_change is not None:
            self._on_change()

    def lookup(self, layer_type: type) -> LayerRecord | None:
        """The record of the most specific registered class in ``layer_type``'s MRO."""
        resolved = self._resolved
        if layer_type in resolved:
            return resolved[layer_type]
        records = self._records
        found = next((records[k] for k in layer_type.__mro__ if k in records), None)
        resolved[layer_type] = found
        return found

    @hookimpl
    def keras_inspect_classify_layer(self, layer: Any, role: str) -> bool | None:
        record = self.lookup(type(layer))
        if record is None or role not in record.roles:
            return None
        return True

    @hookimpl
    def keras_inspect_layer_bias(self, layer: Any) -> Any | None:
        record = self.lookup(type(layer))
        if record is None or record.bias is None:
            return None
        return record.bias(layer)

    @hookimpl
    def keras_inspect_roles(self) -> list[str]:
        return sorted({role for record in self._records.values() for role in record.roles})
