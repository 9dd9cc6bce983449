"""Built-in adapter: embeddings, the ``token_embedding`` role, and logits from a reverse call.

A token embedding looks token ids up: its output is the input of every token attribution. At a
place where an embedding reads an input of its model (the token ids), it is the
``token_embedding``; where it reads computed indices (positions), it is not. A reversible
embedding called in reverse turns hidden states into vocabulary logits (keras-hub's language
models call their backbone's token embedding so, at the top level): that place produces the
``logits``, and is no token embedding.
"""

from __future__ import annotations

from typing import Any

from keras_inspect.adapters.stock import stock_layers_of
from keras_inspect.graph.inspected import reader_of
from keras_inspect.hooks.specs import hookimpl


def called_in_reverse(calls: Any) -> bool:
    """Whether one of the recorded ``calls`` (nodes) passes ``reverse=True``."""
    for call in calls:
        arguments = getattr(call, "arguments", None)  # Keras 3 records them here
        kwargs = getattr(arguments, "kwargs", None) or getattr(call, "call_kwargs", None) or {}
        if kwargs.get("reverse") is True:
            return True
    return False


def _reads_a_model_input(entry: Any) -> bool:
    container = entry.container
    reader = reader_of(container)
    if reader is None or not entry.calls:
        return False  # nothing recorded to tell (inside a subclassed layer)
    tensors = reader.call_tensors(entry.calls[0], "input")
    origin = reader.tensor_origin(tensors[0]) if tensors else None
    return origin is not None and reader.is_input_layer(origin[0])


@hookimpl
def keras_inspect_classify_layer(layer: Any, role: str, entry: Any) -> bool | None:
    if role not in ("token_embedding", "logits"):
        return None
    stock = stock_layers_of(layer)
    if stock is None or not isinstance(layer, stock.embedding):
        return None
    reverse = entry is not None and called_in_reverse(entry.calls)
    if role == "logits":
        return True if reverse else None
    if entry is None:
        return True
    if reverse or not _reads_a_model_input(entry):
        return None  # a plugin that knows the model may still say (keras-hub's does)
    return True
