"""Calling hooks through pluggy's own caller, knowing which plugin answered or failed.

Every hook call goes through ``pm.hook.<name>(...)``, so pluggy's monitoring
(``add_hookcall_monitoring``, ``enable_tracing``) sees each one. To name plugins in errors and in
``summary``, the :data:`~keras_inspect.hookimpl` marker wraps each function it marks (as any
decorator may): the wrapper notes its answer on the innermost hook call of this thread, and
turns a failure into a :class:`HookFailure` that the caller names after the plugin whose
implementation it is. pluggy's records of the implementations are never touched.

What no marked implementation did is attributed by elimination: a failure to the
implementation whose code is in the traceback (a plugin marked with pluggy's own marker), else
to the hook wrappers (``wrapper=True``), which pluggy runs as they are.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

import pluggy

from keras_inspect.errors import PluginError, clip, describe, name_of, shorten

#: What a hook call collected: ``(implementation function, answer)`` for each non-``None``
#: answer, in the order the implementations ran.
Answers = list[tuple[Any, Any]]

_calls = threading.local()
#: Set on the functions the marker wrapped.
_ATTRIBUTED = "_keras_inspect_attributed"


class HookFailure(Exception):
    """A hook implementation raised (carried out of pluggy to be named after its plugin)."""

    def __init__(self, function: Any, first_argument: Any, error: BaseException) -> None:
        super().__init__(str(error))
        self.function = function
        self.first_argument = first_argument
        self.error = error


class ImplementationMarker(pluggy.HookimplMarker):
    """pluggy's marker, wrapping each marked implementation so that its answers and failures
    can be attributed (see the module doc). Hook wrappers are marked as they are."""

    def __call__(self, function: Any = None, **options: Any) -> Any:
        if function is None:
            return lambda f: self(f, **options)
        if options.get("wrapper") or options.get("hookwrapper") or inspect.isclass(function):
            return super().__call__(function, **options)
        return super().__call__(_attributable(function), **options)


def _attributable(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def implementation(*args: Any, **kwargs: Any) -> Any:
        # The thread's hook calls are looked up only when there is something to note: most
        # implementations answer None to most questions.
        try:
            result = function(*args, **kwargs)
        except (PluginError, HookFailure, KeyboardInterrupt):
            raise  # already attributed (a keras-inspect call inside the hook), or the user's
        except BaseException as error:
            if not getattr(_calls, "frames", None):
                raise  # called directly, not by a hook call
            # SystemExit and other BaseExceptions too: a plugin must not end the host process,
            # nor leave pluggy's caller in an unknown state, from inside a hook.
            raise HookFailure(implementation, args[0] if args else None, error) from error
        if result is not None:
            frames = getattr(_calls, "frames", None)
            if frames:
                frames[-1].append((implementation, args[0] if args else None, result))
        return result

    setattr(implementation, _ATTRIBUTED, True)
    return implementation


def _owner(pm: pluggy.PluginManager, hook: str, function: Any, first: Any) -> str:
    """The name of the plugin whose implementation of ``hook`` is ``function`` (a method's
    instance is told apart by ``first``, the argument it received as ``self``)."""
    # Asked for every answer of every hook call: the candidates are remembered in the
    # manager's state, which a (un)registration replaces.
    cache = getattr(getattr(pm, "state", None), "owners", None)
    key = (hook, function)
    candidates = cache.get(key) if cache is not None else None
    if candidates is None:
        candidates = [
            (getattr(impl.function, "__self__", None), impl.plugin_name)
            for impl in _implementations(pm, hook)
            if getattr(impl.function, "__func__", impl.function) is function
        ]
        if cache is not None:
            cache[key] = candidates
    for owner, name in candidates:
        if owner is None or owner is first:
            return name
    return "?"


def _implementations(pm: pluggy.PluginManager, hook: str) -> list[Any]:
    caller = getattr(pm.hook, hook, None)
    return list(caller.get_hookimpls()) if caller is not None else []


def call_hook(
    pm: pluggy.PluginManager, hook: str, kwargs: dict[str, Any]
) -> tuple[Any, list[tuple[str, Any]]]:
    """``pm.hook.<hook>(**kwargs)`` and the ``(plugin name, answer)`` pairs it collected."""
    frames = _calls.__dict__.setdefault("frames", [])
    collected: list[tuple[Any, Any, Any]] = []
    frames.append(collected)
    try:
        result = getattr(pm.hook, hook)(**kwargs)
    except PluginError:
        raise
    except HookFailure as failure:
        who = f"plugin {shorten(_owner(pm, hook, failure.function, failure.first_argument))}"
        raise hook_error(who, hook, kwargs, failure.error) from failure.error
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        raise hook_error(_culprit(pm, hook, error), hook, kwargs, error) from error
    finally:
        frames.pop()
    return result, [(_owner(pm, hook, f, first), answer) for f, first, answer in collected]


def _culprit(pm: pluggy.PluginManager, hook: str, error: BaseException) -> str:
    """Who raised ``error`` outside the marked implementations: an implementation marked with
    pluggy's own marker (its code is in the traceback), else the hook wrappers."""
    codes = {}
    for impl in _implementations(pm, hook):
        function = getattr(impl.function, "__func__", impl.function)
        code = getattr(function, "__code__", None)
        if code is not None and not (impl.wrapper or impl.hookwrapper):
            codes[code] = impl.plugin_name
    traceback = error.__traceback__
    while traceback is not None:
        name = codes.get(traceback.tb_frame.f_code)
        if name is not None:
            return f"plugin {shorten(name)}"
        traceback = traceback.tb_next
    return _phrase(wrapper_names(pm, hook))


def first_answer(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> tuple[Any, str | None]:
    """Call a firstresult hook: ``(result, name of the plugin that gave it)``.

    The name is ``None`` when no plugin answered; when the answer came from elsewhere (a hook
    wrapper replaced it, or an implementation marked with pluggy's own marker gave it), it
    names every plugin that could have, comma-separated.
    """
    result, answers = call_hook(pm, hook, kwargs)
    if result is None:
        return None, None
    if answers and answers[-1][1] is result:
        return result, answers[-1][0]
    return result, ", ".join(_unmarked(pm, hook)) or None


def all_answers(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[tuple[Any, str]]:
    """Call a collecting hook: ``(answer, plugin name)`` pairs, the first registered first."""
    results, answers = call_hook(pm, hook, kwargs)
    if not isinstance(results, list):
        raise PluginError(
            f"{_phrase(wrapper_names(pm, hook))} returned {describe(results)} from {hook}; a "
            "hook wrapper of a collecting hook must return the list of answers."
        )
    if len(results) == len(answers) and all(a[1] is r for a, r in zip(answers, results)):
        pairs = [(r, a[0]) for a, r in zip(answers, results)]
    else:
        others = ", ".join(_unmarked(pm, hook))
        pairs = [(r, others) for r in results]
    pairs.reverse()  # pluggy asks the last registered first; merging wants the reverse
    return pairs


def _unmarked(pm: pluggy.PluginManager, hook: str) -> list[str]:
    """The plugins whose part in a hook call is not noted: hook wrappers, and implementations
    marked with pluggy's own marker."""
    return [
        impl.plugin_name
        for impl in _implementations(pm, hook)
        if impl.wrapper
        or impl.hookwrapper
        or not hasattr(getattr(impl.function, "__func__", impl.function), _ATTRIBUTED)
    ]


def wrapper_names(pm: pluggy.PluginManager, hook: str) -> list[str]:
    """The plugins with a hook wrapper of ``hook``."""
    return [
        impl.plugin_name for impl in _implementations(pm, hook) if impl.wrapper or impl.hookwrapper
    ]


def _phrase(wrappers: list[str]) -> str:
    if not wrappers:
        return "pluggy (no hook wrapper is registered)"
    if len(wrappers) == 1:
        return f"plugin {wrappers[0]!r} (a hook wrapper)"
    return "one of the hook wrappers of plugins " + ", ".join(repr(n) for n in wrappers)


def hook_error(who: str, hook: str, kwargs: dict[str, Any], error: BaseException) -> PluginError:
    """The error raised when code in a plugin fails during a hook call; ``who`` names it
    (``"plugin 'x'"``)."""
    about = ""
    if "layer" in kwargs:
        about = f" for layer {name_of(kwargs['layer'])!r}"
    if "role" in kwargs:
        about += f" and role {shorten(kwargs['role'])}"
    if "model" in kwargs:
        about = f" for model {name_of(kwargs['model'])!r}"
    what = "exited" if isinstance(error, SystemExit) else "raised"
    return PluginError(
        f"{who} {what} {clip(type(error).__name__, 80)} in hook {hook}{about}: {clip(str(error))}"
    )
