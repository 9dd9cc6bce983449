"""Building models on a user's model once per request, and leaving nothing behind on failure.

Everything the signal engine builds (exposed signals, edited models, split halves) is remembered
in the model's :class:`~keras_inspect.graph.inspected.InspectedModel`, built under the graph lock
(two threads asking at once build it once), and undone if the build fails: the calls it added
to the model's layers are removed, and what it cached is forgotten.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from keras_inspect.engine.requests import request
from keras_inspect.engine.trace import trace
from keras_inspect.errors import EndpointError
from keras_inspect.graph.endpoints import Endpoint
from keras_inspect.graph.inspected import InspectedModel
from keras_inspect.graph.reader import graph_lock, recording_reads, still_true


def require_graph(view: InspectedModel) -> None:
    """Raise the error that explains why a model without a functional graph cannot do this."""
    if not view.reader.has_graph(view.model):
        raise EndpointError(
            f"Model {view.name!r} has no functional graph (a subclassed model, or a Sequential "
            f"that was never built): build it on an input first, e.g. "
            f"Sequential([{view.reader.input_call}, ...])."
        )


@contextlib.contextmanager
def failing_leaves_nothing(view: InspectedModel) -> Iterator[None]:
    """If the block fails, remove the calls it added to the model's layers and forget what it
    cached over them: a failed request leaves the model (and the caches) as they were."""
    before = view.cache_keys()
    try:
        with view.reader.undo_calls_on_failure(view.graph_members()):
            yield
    except BaseException:
        view.forget_since(before)
        raise


def built_once(view: InspectedModel, kind: str, key: Any, build: Callable[[], Any]) -> Any:
    """``build()``, remembered in ``view``'s cache of ``kind`` under ``key``.

    Built under the graph lock (two threads asking at once build it once) and so that a failure
    leaves the model and the caches as they were (:func:`failing_leaves_nothing`). An entry is
    used again only while what its build read of the layers still holds (a layer's activation
    swapped for another since: built anew).
    """
    cache = view.cache(kind)
    found = cache.get(key)
    if found is None or not still_true(found[1]):
        with graph_lock:
            found = cache.get(key)  # another thread may have built it while this one waited
            if found is None or not still_true(found[1]):
                with failing_leaves_nothing(view), recording_reads() as reads:
                    built = build()
                found = cache[key] = (built, tuple(reads))
    return found[0]


def connected(
    view: InspectedModel, endpoints: Sequence[Endpoint], *, reroute: bool = True
) -> list[list[Any]]:
    """The symbolic tensors of each endpoint, connected to the model's own inputs.

    Without ``reroute`` the tensors are meant to be the only outputs of a new model (the body of
    ``split``): nested models compute only what the signals need, and nothing downstream of a
    signal is called again. Remembered per model, so asking again adds no nodes to its layers.
    """
    require_graph(view)

    def build() -> tuple[tuple[Any, ...], ...]:
        requests = [request(endpoint) for endpoint in endpoints]
        traced = trace(view, view.model, requests, view.new_names(), reroute=reroute)
        return tuple(tuple(group) for group in traced[1])

    return [list(group) for group in built_once(view, "connected", (reroute, *endpoints), build)]
