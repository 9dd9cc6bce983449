"""Getting a model to inspect: a ``.keras`` file (loaded safely) or a built-in example.

Keras reports most broken archives as "File not found", and a Lambda layer as a suggestion to
change a loader argument the command line user never sees; this module checks the archive first
(:mod:`keras_inspect.cli.archive`, from its zip directory, before anything is inflated) and turns
every failure into one :class:`ModelLoadError` sentence that says what to do. Keras' own failures
are classified by the exception's type and where Keras raised it, never by matching its message
(:mod:`keras_inspect.cli.load_errors`): Keras quotes the file's config there, so the file chooses
that text.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keras_inspect.cli.archive import ModelLoadError, check_archive, first_line, verify_members
from keras_inspect.errors import did_you_mean

__all__ = [
    "DEFAULT_IMAGE_SIZE", "ModelLoadError", "build_example", "check_archive", "check_model_spec",
    "example_names", "load_model", "resolve_model", "verify_members",
]  # fmt: skip

#: Side of the square input the built-in examples are built for: small enough to build in about a
#: second on a laptop CPU, large enough for every architecture (InceptionV3 needs 75).
DEFAULT_IMAGE_SIZE = 96

# Architectures whose include_top variant only accepts one input size.
_FIXED_SIZE = {"nasnetlarge": 331, "nasnetmobile": 224}


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
            f"Cannot build example {key!r} with a {size}x{size} input: {first_line(error)}"
        ) from error


def load_model(path: str | os.PathLike[str], *, unsafe: bool = False) -> Any:
    """Load a ``.keras`` archive with Keras's ``safe_mode`` on (unless ``unsafe``).

    :raises ModelLoadError: for a missing, truncated, corrupt or hostile file (see
        :func:`check_archive`; weights and a config that declare more memory than the file
        backs: :func:`keras_inspect.cli.declared.check_declared`), a file of another format, a model that needs ``unsafe`` (Lambda
        layers holding Python code) or a layer class that is not importable (its plugin or module
        is not installed).
    """
    file = Path(path)
    check_archive(file)
    verify_members(file)
    import keras

    from keras_inspect.cli.declared import check_declared

    check_declared(file, unsafe=unsafe)

    try:
        return keras.saving.load_model(file, safe_mode=not unsafe, compile=False)
    except Exception as error:
        from keras_inspect.cli.load_errors import explain

        raise explain(file, error, unsafe=unsafe) from error


def resolve_model(spec: str, *, unsafe: bool = False, image_size: int | None = None) -> Any:
    """A model from a command-line ``MODEL``: a ``.keras`` path, else a built-in example name."""
    if check_model_spec(spec, image_size=image_size):
        return load_model(spec, unsafe=unsafe)
    return build_example(spec, image_size=image_size)


def check_model_spec(spec: str, *, image_size: int | None = None) -> bool:
    """Check a command-line ``MODEL`` without importing Keras; ``True`` if it names a file.

    A path is checked with :func:`check_archive`; an example name can only be checked once
    Keras is imported (by :func:`build_example`).
    """
    looks_like_path = (
        spec.endswith(".keras") or os.sep in spec or "/" in spec or Path(spec).exists()
    )
    if not looks_like_path:
        return False
    if image_size is not None:
        raise ModelLoadError(
            "--image-size only applies to built-in examples; a .keras file keeps the "
            "input shape it was saved with."
        )
    check_archive(spec)
    from keras_inspect.cli.declared import check_weights

    check_weights(spec)  # HDF5 metadata only: still before any backend is imported
    return True
