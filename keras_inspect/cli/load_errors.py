"""Why Keras could not load a ``.keras`` file, told from the exception rather than its message.

Keras quotes the file's own config in its error messages (a layer named ``safe_mode_gate``, a
class called ``"Could not locate class 'x'"``), so matching their text would let the file choose
the advice. Each failure is classified by the exception's class and the Keras function that raised
it (the innermost frame of its traceback, and the arguments that function was given); the file's
values only ever appear quoted and shortened.
"""

from __future__ import annotations

import types
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from keras_inspect.cli.archive import ModelLoadError, first_line, quote

#: How many chained exceptions (``raise ... from ...``) are examined.
_CHAIN_LIMIT = 32

Locals = dict[str, Any]


def _on(value: Any) -> bool:
    return value is not None and value is not False


def _lambda_config(local: Locals) -> bool:
    config = local.get("config")
    return (
        _on(local.get("safe_mode"))
        and isinstance(config, dict)
        and (config.get("class_name") == "__lambda__")
    )


# (module, function) of each place Keras refuses something in safe mode, with a test of the
# function's arguments that tells the refusal from the function's other errors, and what the
# refused object is.
_SAFE_MODE_GATES: dict[tuple[str, str], tuple[Callable[[Locals], bool], str]] = {
    ("keras.src.layers.core.lambda_layer", "_raise_for_lambda_deserialization"): (
        lambda local: _on(local.get("safe_mode")),
        "a Lambda layer",
    ),
    ("keras.src.layers.core.lambda_layer", "from_config"): (
        lambda local: _on(local.get("safe_mode")),
        "a Lambda layer",
    ),
    ("keras.src.saving.serialization_lib", "deserialize_keras_object"): (
        _lambda_config,
        "a Python lambda",
    ),
    ("keras.src.export.tfsm_layer", "from_config"): (
        lambda local: _on(local.get("effective_safe_mode")),
        "a TFSMLayer (an external SavedModel)",
    ),
    ("keras.src.utils.torch_utils", "from_config"): (
        lambda local: _on(local.get("effective_safe_mode")),
        "a pickled torch.nn.Module",
    ),
    ("keras.src.layers.preprocessing.index_lookup", "set_vocabulary"): (
        lambda local: isinstance(local.get("vocabulary"), str),
        "a vocabulary file outside the archive",
    ),
}
_MISSING_CLASS_SITE = ("keras.src.saving.serialization_lib", "_retrieve_class_or_fn")
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < _CHAIN_LIMIT:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _raise_site(error: BaseException) -> tuple[str, str, Locals]:
    """Module, function and local variables of the frame that raised ``error``."""
    tb: types.TracebackType | None = error.__traceback__
    if tb is None:
        return "", "", {}
    while tb.tb_next is not None:
        tb = tb.tb_next
    frame = tb.tb_frame
    return str(frame.f_globals.get("__name__", "")), frame.f_code.co_name, dict(frame.f_locals)


def explain(file: Path, error: BaseException, *, unsafe: bool) -> ModelLoadError:
    """One :class:`ModelLoadError` sentence for a failure of ``keras.saving.load_model``."""
    where = repr(str(file))
    chain = list(_chain(error))
    for exc in chain:
        module, function, local = _raise_site(exc)
        if isinstance(exc, _ARCHIVE_ERRORS) or (
            module == "zipfile" and isinstance(exc, (NotImplementedError, RuntimeError))
        ):
            return ModelLoadError(
                f"{where} is a corrupt .keras archive: a member cannot be read "
                f"({type(exc).__name__}: {first_line(exc)})."
            )
        gate = _SAFE_MODE_GATES.get((module, function))
        if not unsafe and isinstance(exc, ValueError) and gate is not None and gate[0](local):
            return ModelLoadError(
                f"{where} contains {gate[1]}, which runs code or reads data from outside the "
                "file, and safe mode refuses it; if you trust the file, load it again with "
                "--unsafe (Python: load_model(path, unsafe=True))."
            )
        if isinstance(exc, TypeError) and (module, function) == _MISSING_CLASS_SITE:
            name = local.get("registered_name") or local.get("name")
            return ModelLoadError(
                f"{where} uses the class {quote(str(name))}, which is not importable here; "
                "install (or import) the package that defines and registers it (a "
                "keras-inspect plugin package usually does)."
            )
    root = chain[-1]
    return ModelLoadError(f"Cannot load {where}: {type(root).__name__}: {first_line(root)}")
