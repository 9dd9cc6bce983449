"""``register_layer``: teach keras-inspect a layer type in process, without writing hooks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from keras_inspect.autograph import plain_python
from keras_inspect.errors import describe
from keras_inspect.hooks.current import plugin_manager
from keras_inspect.hooks.manager import InspectPluginManager
from keras_inspect.hooks.registry import BiasFunction, LayerRecord

T = TypeVar("T", bound=type)


@overload
def register_layer(
    layer_type: T,
    *,
    roles: Iterable[str] | str = (),
    bias: BiasFunction | None = None,
    manager: InspectPluginManager | None = None,
) -> T: ...


@overload
def register_layer(
    layer_type: None = None,
    *,
    roles: Iterable[str] | str = (),
    bias: BiasFunction | None = None,
    manager: InspectPluginManager | None = None,
) -> Callable[[T], T]: ...


@plain_python
def register_layer(
    layer_type: Any = None,
    *,
    roles: Iterable[str] | str = (),
    bias: BiasFunction | None = None,
    manager: InspectPluginManager | None = None,
) -> Any:
    """Declare the roles of ``layer_type`` and how to get its bias.

    Instances of ``layer_type`` and of its subclasses then play ``roles`` and add
    ``bias(layer)``; a registration for a subclass is more specific and wins. Registering a type
    again replaces its record. Without ``layer_type``, returns a class decorator.

    :param roles: role names (new names become known roles).
    :param bias: a callable ``layer -> tensor`` (or ``None``: no bias).
    :param manager: the plugin manager whose registry records it (default: the current one).
    """
    if layer_type is None:
        return lambda cls: register_layer(cls, roles=roles, bias=bias, manager=manager)
    if not isinstance(layer_type, type):
        raise TypeError(f"register_layer expects a layer class; received {describe(layer_type)}.")
    record = LayerRecord(layer_type=layer_type, roles=roles, bias=bias)
    (manager or plugin_manager()).registry.register(record)
    return layer_type


@plain_python
def unregister_layer(layer_type: type, *, manager: InspectPluginManager | None = None) -> bool:
    """Forget a registration made by :func:`register_layer`; ``True`` if there was one."""
    return (manager or plugin_manager()).registry.unregister(layer_type) is not None
