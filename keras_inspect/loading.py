"""Getting a model to inspect: a ``.keras`` file (loaded safely) or a built-in example.

Keras reports most broken archives as "File not found", and a Lambda layer as a suggestion to
change a loader argument the command line user never sees; this module checks the archive first
and turns every failure into one :class:`ModelLoadError` sentence that says what to do.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keras_inspect.framework.errors import KerasInspectError, did_you_mean

#: Side of the square input the built-in examples are built for: small enough to build in about a
#: second on a laptop CPU, large enough for every architecture (InceptionV3 needs 75).
DEFAULT_IMAGE_SIZE = 96

# Architectures whose include_top variant only accepts one input size.
_FIXED_SIZE = {"nasnetlarge": 331, "nasnetmobile": 224}


# Keras buries the useful part ("Could not locate class 'X'") after the whole model config.
_MISSING_CLASS = re.compile(r"Could not locate (?:class|function) '([^']+)'")
_REGISTERED_NAME = re.compile(r"'registered_name': '([^']+)'")


class ModelLoadError(KerasInspectError):
    """A model file or example name could not be turned into a model."""


def example_names() -> dict[str, str]:
    """Built-in example names (lower case) mapped to their ``keras.applications`` constructor."""
    import keras

    return {
        name.lower(): name
        for name in dir(keras.applications)
        if name[:1].isupper() and callable(getattr(keras.applications, name))
    }


def build_example(name: str, *, image_size: int | None = None) -> Any:
    """A ``keras.applications`` architecture with random weights (``weights=None``).

    :param name: the lower-case architecture name, e.g. ``"resnet50v2"`` or ``"mobilenetv2"``.
    :param image_size: side of the square RGB input (default :data:`DEFAULT_IMAGE_SIZE`).
    """
    import keras

    names = example_names()
    key = name.lower()
    if key not in names:
        raise ModelLoadError(
            f"Unknown example model {name!r}.{did_you_mean(key, names)} Pass a path to a .keras "
            f"file or one of: {', '.join(sorted(names))}."
        )
    size = _FIXED_SIZE.get(key, image_size or DEFAULT_IMAGE_SIZE)
    if image_size is not None and key in _FIXED_SIZE and image_size != size:
        raise ModelLoadError(
            f"Example {key!r} only builds with a {size}x{size} input; received --image-size "
            f"{image_size}."
        )
    constructor: Callable[..., Any] = getattr(keras.applications, names[key])
    try:
        return constructor(weights=None, input_shape=(size, size, 3))
    except ValueError as error:
        raise ModelLoadError(
            f"Cannot build example {key!r} with a {size}x{size} input: {_first_line(error)}"
        ) from error


def load_model(path: str | os.PathLike[str], *, unsafe: bool = False) -> Any:
    """Load a ``.keras`` archive with Keras's ``safe_mode`` on (unless ``unsafe``).

    :raises ModelLoadError: for a missing, truncated or corrupt file, a file of another format, a
        model that needs ``unsafe`` (Lambda layers holding Python code) or a layer class that is
        not importable (its plugin or module is not installed).
    """
    import keras

    file = Path(path)
    _check_archive(file)
    try:
        return keras.saving.load_model(file, safe_mode=not unsafe, compile=False)
    except Exception as error:
        raise _explain(file, error) from error


def _check_archive(file: Path) -> None:
    if not file.exists():
        raise ModelLoadError(f"No such file: {str(file)!r}.")
    if file.is_dir():
        raise ModelLoadError(
            f"{str(file)!r} is a directory; expected a .keras file (a SavedModel directory is "
            "not supported by Keras 3: re-save the model with model.save('model.keras'))."
        )
    if file.suffix != ".keras":
        raise ModelLoadError(
            f"{str(file)!r} is not a .keras file (suffix {file.suffix or 'none'!r}); expected a "
            "model saved with model.save('name.keras'), or a built-in example name."
        )
    if not zipfile.is_zipfile(file):
        raise ModelLoadError(
            f"{str(file)!r} is not a valid .keras archive (truncated or corrupt: not a zip file)."
        )
    try:
        with zipfile.ZipFile(file) as archive:
            bad = archive.testzip()
            members = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ModelLoadError(
            f"{str(file)!r} is not a valid .keras archive (truncated or corrupt: "
            f"{_first_line(error)})."
        ) from error
    if bad is not None:
        raise ModelLoadError(
            f"{str(file)!r} is a corrupt .keras archive: member {bad!r} fails its checksum."
        )
    if "config.json" not in members:
        raise ModelLoadError(
            f"{str(file)!r} is a zip file but not a .keras archive: it has no config.json."
        )


def _explain(file: Path, error: Exception) -> ModelLoadError:
    text = str(error)
    if "safe_mode" in text or "unsafe_deserialization" in text:
        return ModelLoadError(
            f"{str(file)!r} contains a Lambda layer (or another object) that runs Python code "
            "stored in the file, which safe mode refuses; if you trust the file, load it again "
            "with --unsafe (Python: load_model(path, unsafe=True))."
        )
    missing = _MISSING_CLASS.search(text)
    if missing is not None:
        registered = _REGISTERED_NAME.search(text[missing.end() :])
        name = registered.group(1) if registered else missing.group(1)
        return ModelLoadError(
            f"{str(file)!r} uses the class {name!r}, which is not importable here; install "
            "(or import) the package that defines and registers it (a keras-inspect plugin "
            "package usually does)."
        )
    return ModelLoadError(
        f"Cannot load {str(file)!r}: {type(error).__name__}: {_first_line(error)}"
    )


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def resolve_model(spec: str, *, unsafe: bool = False, image_size: int | None = None) -> Any:
    """A model from a command-line ``MODEL``: a ``.keras`` path, else a built-in example name."""
    looks_like_path = (
        spec.endswith(".keras") or os.sep in spec or "/" in spec or Path(spec).exists()
    )
    if looks_like_path:
        if image_size is not None:
            raise ModelLoadError(
                "--image-size only applies to built-in examples; a .keras file keeps the "
                "input shape it was saved with."
            )
        return load_model(spec, unsafe=unsafe)
    return build_example(spec, image_size=image_size)
