"""Calling hooks through pluggy's own caller, knowing which plugin answered or failed.

Every hook call goes through ``pm.hook.<name>(...)``, so pluggy's monitoring
(``add_hookcall_monitoring``, ``enable_tracing``) sees each one. To name plugins in errors and in
``summary``, each hook implementation is wrapped once, when its plugin is registered: a failure
inside it becomes a :class:`PluginError` naming the plugin and the hook, and an answer is noted
on the innermost hook call of this thread. A hook wrapper (``wrapper=True``) is left as pluggy
runs it; what goes wrong in one is attributed to the hook's wrappers by name.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import pluggy

from .errors import PluginError, clip, describe, name_of, shorten

#: What a hook call collected: ``(plugin name, answer)`` for each non-``None`` answer, in order.
Answers = list[tuple[str, Any]]

_calls = threading.local()
_MARK = "_keras_inspect_plugin"


def attribute_implementations(pm: pluggy.PluginManager, plugin: Any) -> None:
    """Wrap the hook implementations of a just-registered ``plugin`` (see the module doc)."""
    for caller in pm.get_hookcallers(plugin) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is not plugin or impl.wrapper or impl.hookwrapper:
                continue
            if getattr(impl.function, _MARK, None) is None:
                # pluggy calls `impl.function`; its argument names were read at registration.
                impl.function = _attributed(  # type: ignore[misc]
                    impl.function, impl.plugin_name, caller.name, tuple(impl.argnames)
                )


def _attributed(
    function: Callable[..., Any], plugin: str, hook: str, argnames: tuple[str, ...]
) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            result = function(*args, **kwargs)
        except PluginError:
            raise  # from a keras-inspect call made inside the hook: already attributed
        except (Exception, SystemExit) as error:
            # SystemExit too: a plugin must not end the host process from inside a hook.
            raise hook_error(f"plugin {plugin!r}", hook, dict(zip(argnames, args)), error) from error
        if result is not None:
            frames = getattr(_calls, "frames", None)
            if frames:
                frames[-1].append((plugin, result))
        return result

    setattr(call, _MARK, plugin)
    return call


def call_hook(pm: pluggy.PluginManager, hook: str, kwargs: dict[str, Any]) -> tuple[Any, Answers]:
    """``pm.hook.<hook>(**kwargs)`` and the attributed answers it collected."""
    frames = _calls.__dict__.setdefault("frames", [])
    answers: Answers = []
    frames.append(answers)
    try:
        result = getattr(pm.hook, hook)(**kwargs)
    except PluginError:
        raise
    except (Exception, SystemExit) as error:
        # Implementations raise PluginError themselves, so this came from a hook wrapper.
        raise hook_error(_phrase(wrapper_names(pm, hook)), hook, kwargs, error) from error
    finally:
        frames.pop()
    return result, answers


def first_answer(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> tuple[Any, str | None]:
    """Call a firstresult hook: ``(result, name of the plugin that gave it)``.

    The name is ``None`` when no plugin answered; when a hook wrapper replaced the answer, it
    is the wrapper's plugin name (or the names of all the hook's wrappers, comma-separated).
    """
    result, answers = call_hook(pm, hook, kwargs)
    if result is None:
        return None, None
    if answers and answers[-1][1] is result:
        return result, answers[-1][0]
    return result, ", ".join(wrapper_names(pm, hook)) or None


def all_answers(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[tuple[Any, str]]:
    """Call a collecting hook: ``(answer, plugin name)`` pairs, the first registered first."""
    results, answers = call_hook(pm, hook, kwargs)
    wrappers = ", ".join(wrapper_names(pm, hook))
    if not isinstance(results, list):
        raise PluginError(
            f"{_phrase(wrapper_names(pm, hook))} returned {describe(results)} from {hook}; a "
            "hook wrapper of a collecting hook must return the list of answers."
        )
    if len(results) == len(answers) and all(a[1] is r for a, r in zip(answers, results)):
        pairs = [(r, a[0]) for a, r in zip(answers, results)]
    else:
        pairs = [(r, wrappers) for r in results]
    pairs.reverse()  # pluggy asks the last registered first; merging wants the reverse
    return pairs


def wrapper_names(pm: pluggy.PluginManager, hook: str) -> list[str]:
    """The plugins with a hook wrapper of ``hook``: the only code outside the wrapped
    implementations that can fail or change an answer during a hook call."""
    caller = getattr(pm.hook, hook, None)
    impls = caller.get_hookimpls() if caller is not None else ()
    return [impl.plugin_name for impl in impls if impl.wrapper or impl.hookwrapper]


def _phrase(wrappers: list[str]) -> str:
    if not wrappers:
        return "pluggy (no hook wrapper is registered)"
    if len(wrappers) == 1:
        return f"plugin {wrappers[0]!r} (a hook wrapper)"
    return "one of the hook wrappers of plugins " + ", ".join(repr(n) for n in wrappers)


def hook_error(who: str, hook: str, kwargs: dict[str, Any], error: BaseException) -> PluginError:
    """The error raised when code in a plugin fails during a hook call."""
    about = ""
    if "layer" in kwargs:
        about = f" for layer {name_of(kwargs['layer'])!r}"
    if "role" in kwargs:
        about += f" and role {shorten(kwargs['role'])}"
    if "model" in kwargs:
        about = f" for model {name_of(kwargs['model'])!r}"
    what = "exited" if isinstance(error, SystemExit) else "raised"
    return PluginError(
        f"plugin {who} {what} {type(error).__name__} in hook {hook}{about}: "
        f"{clip(str(error))}"
    )
