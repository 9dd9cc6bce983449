"""What the signal engine is asked: a signal to read, and whether to edit it where it is produced."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import attrs

from keras_inspect.graph.endpoints import Endpoint

Edit = Literal["add", "replace"]


@attrs.frozen(kw_only=True, eq=False)
class Request:
    """One signal to read, and how to edit it, relative to the container being traced.

    :ivar rest: the path below that container (the endpoint's full path at the top).
    :ivar edit: ``None`` (read only), ``"add"`` or ``"replace"``.
    :ivar values: the symbolic edit values, one per tensor of the signal.
    """

    endpoint: Endpoint
    rest: tuple[str, ...]
    edit: Edit | None = None
    values: tuple[Any, ...] = ()

    def below(self, values: Sequence[Any] | None = None) -> Request:
        """The request one container down (with other edit values, if given)."""
        chosen = self.values if values is None else tuple(values)
        return attrs.evolve(self, rest=self.rest[1:], values=chosen)


def request(endpoint: Endpoint, edit: Edit | None = None, values: Sequence[Any] = ()) -> Request:
    """A request at the top model."""
    return Request(endpoint=endpoint, rest=endpoint.path, edit=edit, values=tuple(values))
