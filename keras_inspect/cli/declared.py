"""What a ``.keras`` file makes Keras allocate, checked before Keras allocates it.

A few kilobytes can declare gigabytes in two places. The weights file (HDF5) declares each
dataset's shape apart from the bytes it stores: a dataset of 12000x12000 floats with no storage
allocated reads as 576 MB of fill values. The config declares layers whose variables Keras
allocates (and initialises) while it builds the model, before it reads a single weight: a
``Dense(12000)`` on a 12000-wide input is 576 MB, whatever the weights file holds.

So, before :func:`keras.saving.load_model` runs, :func:`check_declared` measures both: every
dataset must be backed by the bytes it stores (no external storage or links, numbers only), and
the model the config builds is built once with Keras' variables deferred
(``keras.StatelessScope``: shapes, no values) and its variables must fit in what the weights file
holds. Every dataset Keras loads must match a variable, so an honest file passes with room.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from math import prod
from typing import Any

from keras_inspect.cli.archive import (
    MAX_DEFLATE_RATIO,
    MEMBER_ERRORS,
    ModelLoadError,
    first_line,
    open_regular,
    quote,
    unreadable_member,
)  # fmt: skip

WEIGHTS_H5 = "model.weights.h5"
WEIGHTS_NPZ = "model.weights.npz"
#: Most objects (groups and datasets) a weights file may hold: a model has a few per layer.
MAX_WEIGHT_OBJECTS = 200_000
#: Variables the config may build beyond the bytes the weights file holds (counters and seeds
#: are saved too; this is a margin, not an allowance).
VARIABLE_SLACK = 1024 * 1024
_NUMERIC_KINDS = frozenset("biufc")


def check_weights(path: str | os.PathLike[str]) -> int:
    """Refuse a weights file whose datasets declare more than they store; return the bytes its
    datasets hold (``0`` without a weights file). Reads HDF5 metadata only, and imports no
    backend, so the command line runs it before Keras is imported.

    :raises ModelLoadError: naming the dataset, before anything large is allocated.
    """
    where = repr(str(path))
    with open_regular(path) as handle, zipfile.ZipFile(handle) as archive:
        names = set(archive.namelist())
        if WEIGHTS_H5 in names:
            return weights_bytes(where, archive)
        if WEIGHTS_NPZ in names:
            return archive.getinfo(WEIGHTS_NPZ).file_size  # np.savez stores arrays raw
        return 0


def check_declared(path: str | os.PathLike[str], *, unsafe: bool) -> None:
    """Refuse a file whose weights or config declare more memory than the file backs.

    Call it after :func:`~keras_inspect.cli.archive.check_archive` and
    :func:`~keras_inspect.cli.archive.verify_members`; it imports Keras.

    :raises ModelLoadError: naming the dataset or the sizes, before anything large is allocated.
    """
    where = repr(str(path))
    held = check_weights(path)
    with open_regular(path) as handle, zipfile.ZipFile(handle) as archive:
        config = archive.read("config.json")
    needed = variable_bytes(path, config, unsafe=unsafe)
    if needed is not None and needed > held + VARIABLE_SLACK:
        raise ModelLoadError(
            f"{where} declares a model whose variables take {needed} bytes, but its weights "
            f"file holds {held}; every variable is loaded from the weights file, so Keras "
            "would allocate memory for a model this file cannot load. Refusing a possible "
            "memory bomb."
        )


def weights_bytes(where: str, archive: zipfile.ZipFile) -> int:
    """Bytes the datasets of ``model.weights.h5`` declare, each checked to be backed by what it
    stores (metadata only is read)."""
    import h5py

    total = 0
    try:
        with archive.open(WEIGHTS_H5) as stream:
            try:
                h5 = h5py.File(stream, "r")
            except (OSError, ValueError) as error:
                raise ModelLoadError(
                    f"{where} has a {WEIGHTS_H5} that is not a readable HDF5 file "
                    f"({first_line(error)})."
                ) from error
            with h5:
                for name, dataset in _datasets(where, h5, h5py):
                    total += _backed_bytes(where, name, dataset)
    except MEMBER_ERRORS as error:  # h5py lets the stream's own errors through
        raise unreadable_member(where, WEIGHTS_H5, error) from error
    return total


def _datasets(where: str, root: Any, h5py: Any) -> Iterator[tuple[str, Any]]:
    """Every dataset under ``root`` (each group once), refusing links other than hard links,
    and more than :data:`MAX_WEIGHT_OBJECTS` objects."""
    groups, seen, count = [("", root)], set(), 0
    while groups:
        prefix, group = groups.pop()
        for key in group:
            count += 1
            name = f"{prefix}/{key}"
            if count > MAX_WEIGHT_OBJECTS:
                raise ModelLoadError(
                    f"{where} has a {WEIGHTS_H5} with more than {MAX_WEIGHT_OBJECTS} objects; "
                    "a model's weights file has a few per layer."
                )
            link = group.get(key, getlink=True)
            if not isinstance(link, h5py.HardLink):
                raise ModelLoadError(
                    f"{where} has a {WEIGHTS_H5} whose entry {quote(name)} is a "
                    f"{type(link).__name__} (to another place or file); Keras writes none."
                )
            item = group[key]
            if isinstance(item, h5py.Group):
                if item.id not in seen:  # a hard link back up would loop for ever
                    seen.add(item.id)
                    groups.append((name, item))
            elif isinstance(item, h5py.Dataset):
                yield name, item


def _backed_bytes(where: str, name: str, dataset: Any) -> int:
    """The bytes ``dataset`` declares, if it stores them (or could inflate them from what it
    stores); a refusal otherwise."""
    shape = dataset.shape
    declared = (prod(shape) if shape is not None else 0) * dataset.dtype.itemsize
    problem = None
    if dataset.dtype.kind not in _NUMERIC_KINDS:
        problem = f"holds {dataset.dtype} values; Keras saves numbers only"
    elif dataset.is_virtual or dataset.external:
        problem = "reads its values from other files; Keras stores them in the file"
    else:
        stored = dataset.id.get_storage_size()
        filtered = dataset.id.get_create_plist().get_nfilters() > 0
        if declared > stored * (MAX_DEFLATE_RATIO if filtered else 1) + 64:
            problem = (
                f"declares shape {shape} ({declared} bytes) but stores {stored} bytes; "
                "Keras would allocate the declared size to read it"
            )
    if problem is not None:
        raise ModelLoadError(
            f"{where} has a {WEIGHTS_H5} whose dataset {quote(name)} {problem}. Refusing a "
            "possible memory bomb."
        )
    return declared


def variable_bytes(path: Any, config: bytes, *, unsafe: bool) -> int | None:
    """Bytes of the variables the model of ``config`` has, built with variables deferred.

    ``None`` when a layer cannot be built without values (it creates a variable from a concrete
    value): Keras' own load then goes ahead unchecked. Any other failure is the file's, told
    the way a failed load is.
    """
    import keras
    from keras.src.backend.common import global_state
    from keras.src.saving import saving_lib

    pending = global_state.get_global_attribute("uninitialized_variables")
    kept = list(pending) if pending else []
    try:
        with keras.StatelessScope(initialize_variables=False):
            model = saving_lib._model_from_config(config, None, False, not unsafe)
        return sum(prod(v.shape) * _itemsize(v.dtype) for v in model.variables)
    except Exception as error:
        if _needs_values(error):
            return None
        from keras_inspect.cli.load_errors import explain

        raise explain(path, error, unsafe=unsafe) from error
    finally:
        # The deferred variables would otherwise be initialised (allocated) by the next
        # stateless scope this thread leaves.
        global_state.set_global_attribute("uninitialized_variables", kept)


def _itemsize(dtype: Any) -> int:
    from keras.src.utils.dtype_utils import dtype_size

    try:
        return max(dtype_size(str(dtype)) // 8, 1)
    except ValueError:
        return 1  # a dtype Keras does not size: counted low, so no honest file is refused


def _needs_values(error: BaseException) -> bool:
    """Whether Keras refused to create a variable inside the stateless scope (told by where it
    raised: the variable's constructor)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    frame = tb.tb_frame
    return (
        isinstance(error, ValueError)
        and frame.f_code.co_name == "__init__"
        and str(frame.f_globals.get("__name__", "")).endswith("backend.common.variables")
    )
