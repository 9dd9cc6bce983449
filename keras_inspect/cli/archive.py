"""Checking a ``.keras`` archive before Keras reads it, from its zip directory first.

A hostile file (a zip bomb, members that overlap, an encrypted or exotic member) is refused from
what its directory declares, before anything is inflated; then the members' checksums are
verified within a fixed inflation budget. Keras reports most broken archives as "File not found",
so these checks are also what turns a truncated or corrupt file into a sentence a user can act on.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from keras_inspect.cli.zip_records import DirectoryError, read_directory
from keras_inspect.errors import KerasInspectError

#: Most members a ``.keras`` archive may list (Keras writes three, plus one per asset file).
MAX_MEMBERS = 4096
#: Most bytes the zip directory may take: far more than a few thousand entries with long names
#: need, far less than the million entries a lying end record can hide.
MAX_DIRECTORY_BYTES = 16 * 1024 * 1024
#: Deflate cannot expand data more than about 1032 times; a member declaring more lies.
MAX_DEFLATE_RATIO = 1100
#: Keras parses these members whole, so a larger one is refused before it is read.
MAX_JSON_BYTES = 64 * 1024 * 1024
#: Bytes inflated to verify the checksums of compressed members (stored members are read as is:
#: their cost is bounded by the file's own size); members beyond it are left to Keras' loader.
INFLATE_BUDGET = 256 * 1024 * 1024

#: What Keras extraction may write per member: at most this many times its stored bytes (Keras
#: stores members uncompressed; re-zipped text assets deflate a few times, not a thousand).
MAX_EXTRACT_RATIO = 20
#: Free space extraction must leave in the temporary directory.
TEMP_RESERVE = 256 * 1024 * 1024

_JSON_MEMBERS = ("config.json", "metadata.json")
# Keras reads these in memory; an archive with any other member (assets) is extracted whole
# to a temporary directory before the model is loaded.
_IN_MEMORY = frozenset({*_JSON_MEMBERS, "model.weights.h5", "model.weights.npz"})
_READABLE_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_LOCAL_HEADER_SIZE = 30
_CHUNK = 1024 * 1024


class ModelLoadError(KerasInspectError):
    """A model file or example name could not be turned into a model.

    Defined here, where the archive checks raise it; import it from :mod:`keras_inspect.cli.loading`.
    """


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file (symbolic links followed).

    The file is opened without blocking and checked on the open descriptor, so a symbolic link
    to ``/dev/zero`` or ``/dev/urandom``, a FIFO (whose open would wait for a writer for ever) or
    a socket is refused before a byte is read, and the checks and reads that follow see the very
    file that was checked, even if the path is swapped meanwhile.
    """
    where = repr(str(path))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError as error:
        raise ModelLoadError(f"No such file: {where}.") from error
    except OSError as error:
        raise ModelLoadError(
            f"{where} cannot be opened ({type(error).__name__}: {first_line(error)})."
        ) from error
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise ModelLoadError(
                f"{where} is a directory; expected a .keras file (a SavedModel directory is "
                "not supported by Keras 3: re-save the model with model.save('model.keras'))."
            )
        if not stat.S_ISREG(mode):
            raise ModelLoadError(
                f"{where} is not a regular file (it is {_kind(mode)}); expected a .keras file. "
                "Refusing to read a device, pipe or socket, which may never end."
            )
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def check_archive(path: str | os.PathLike[str]) -> None:
    """Refuse a path that cannot be a loadable ``.keras`` archive, reading only its zip directory.

    Nothing is inflated and Keras is not imported: a missing file, a directory, a device, FIFO
    or socket, another format, a zip that is not a Keras archive, and an archive whose directory
    is implausible (too many members or directory bytes, repeated names, members sharing bytes,
    sizes no compression can reach, encrypted members or compression methods Keras does not
    write, more to extract than the temporary directory should take) all raise
    :class:`ModelLoadError`. Every read is bounded: the tail, the directory (at most
    :data:`MAX_DIRECTORY_BYTES`) and nothing else.
    """
    file = Path(path)
    where = repr(str(file))
    if not os.path.lexists(file):
        raise ModelLoadError(f"No such file: {where}.")
    if file.suffix != ".keras" and not file.is_dir():
        raise ModelLoadError(
            f"{where} is not a .keras file (suffix {file.suffix or 'none'!r}); expected a "
            "model saved with model.save('name.keras'), or a built-in example name."
        )
    with open_regular(file) as handle:
        size = os.fstat(handle.fileno()).st_size
        if not zipfile.is_zipfile(handle):
            raise ModelLoadError(
                f"{where} is not a valid .keras archive (truncated or corrupt: not a zip file)."
            )
        _check_records(where, handle, size)
        try:
            with zipfile.ZipFile(handle) as archive:
                infos = archive.infolist()
                directory_start = archive.start_dir
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
            raise ModelLoadError(
                f"{where} is not a valid .keras archive (truncated or corrupt: "
                f"{first_line(error)})."
            ) from error
    _check_directory(where, infos, directory_start)
    _check_extraction(where, infos)


def _check_records(where: str, handle: BinaryIO, size: int) -> None:
    """Refuse, before zipfile parses it, a directory that is too large or lists too many
    members, whatever the end record claims (zipfile parses as many entries as the directory's
    bytes hold)."""
    try:
        directory = read_directory(
            handle, size, max_entries=MAX_MEMBERS, max_bytes=MAX_DIRECTORY_BYTES
        )
    except DirectoryError as error:
        raise ModelLoadError(
            f"{where} is refused: {error}. Refusing a possible zip bomb."
        ) from error
    if directory is None:
        return  # zipfile will say what is wrong
    listed = max(directory.declared, directory.entries)
    if listed > MAX_MEMBERS:
        count = (
            _count(directory.declared)
            if directory.declared > MAX_MEMBERS
            else (f"more than {MAX_MEMBERS}")
        )
        raise ModelLoadError(
            f"{where} lists {count} members; a .keras archive has a few (at most "
            f"{MAX_MEMBERS} are accepted). Refusing a possible zip bomb."
        )
    if directory.declared != directory.entries:
        raise ModelLoadError(
            f"{where} is a corrupt .keras archive: its end record declares "
            f"{directory.declared} members but its directory lists {directory.entries}."
        )


def _count(declared: int) -> str:
    return "65535 or more" if declared == 0xFFFF else str(declared)


def _check_directory(where: str, infos: list[zipfile.ZipInfo], directory_start: int) -> None:
    if len(infos) > MAX_MEMBERS:
        raise ModelLoadError(
            f"{where} lists {len(infos)} members; a .keras archive has a few (at most "
            f"{MAX_MEMBERS} are accepted). Refusing a possible zip bomb."
        )
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        repeated = next(name for name in names if names.count(name) > 1)
        raise ModelLoadError(
            f"{where} lists the member {quote(repeated)} more than once; a .keras archive "
            "names each member once."
        )
    for info in infos:
        member = quote(info.filename)
        if info.flag_bits & 0x1:
            raise ModelLoadError(
                f"{where} has an encrypted member {member}; Keras archives are not encrypted."
            )
        if info.compress_type not in _READABLE_METHODS:
            raise ModelLoadError(
                f"{where} stores member {member} with compression method {info.compress_type}; "
                "a .keras archive uses stored or deflated members."
            )
        stored = info.compress_type == zipfile.ZIP_STORED
        if stored and info.file_size != info.compress_size:
            raise ModelLoadError(
                f"{where} is a corrupt .keras archive: stored member {member} declares "
                f"{info.file_size} bytes but occupies {info.compress_size}."
            )
        if info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 64:
            raise ModelLoadError(
                f"{where} declares that member {member} inflates {info.compress_size} bytes "
                f"to {info.file_size}, more than deflate can produce. Refusing a possible zip "
                "bomb."
            )
        if info.filename in _JSON_MEMBERS and info.file_size > MAX_JSON_BYTES:
            raise ModelLoadError(
                f"{where} declares a {info.file_size}-byte {info.filename}; Keras reads it whole, "
                f"and at most {MAX_JSON_BYTES} bytes are accepted."
            )
    _check_no_overlap(where, infos, directory_start)
    if "config.json" not in names:
        raise ModelLoadError(
            f"{where} is a zip file but not a .keras archive: it has no config.json."
        )


def _check_extraction(where: str, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse an archive that Keras would extract to more than its members can honestly hold,
    or to more than the temporary directory has room for, before a byte is written."""
    if all(info.filename in _IN_MEMORY for info in infos):
        return
    for info in infos:
        if info.file_size > MAX_EXTRACT_RATIO * info.compress_size + _CHUNK:
            raise ModelLoadError(
                f"{where} would extract member {quote(info.filename)} from {info.compress_size} "
                f"stored bytes to {info.file_size} on disk; Keras extracts an archive with "
                f"assets to a temporary directory, and at most {MAX_EXTRACT_RATIO} times a "
                "member's stored size is accepted. Refusing a possible zip bomb."
            )
    total = sum(info.file_size for info in infos)
    free = free_space(tempfile.gettempdir())
    if free is not None and total > free - TEMP_RESERVE:
        raise ModelLoadError(
            f"{where} would extract {total} bytes to the temporary directory "
            f"{tempfile.gettempdir()!r}, which has {max(free, 0)} bytes free (and keeps "
            f"{TEMP_RESERVE} free); point TMPDIR at a larger disk."
        )


def free_space(directory: str) -> int | None:
    """Bytes free in ``directory``'s file system (``None`` when it cannot be told)."""
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def _check_no_overlap(where: str, infos: list[zipfile.ZipInfo], directory_start: int) -> None:
    """Members must occupy disjoint byte ranges before the directory (else one blob counts many
    times: the classic way to make a small file declare terabytes)."""
    previous_end, previous = 0, None
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.header_offset < previous_end:
            raise ModelLoadError(
                f"{where} has members that share bytes ({quote(previous)} and "
                f"{quote(info.filename)}); each member of a .keras archive has its own. "
                "Refusing a possible zip bomb."
            )
        # The local header repeats the name; its extra field can only make the member longer.
        previous_end = (
            info.header_offset + _LOCAL_HEADER_SIZE + _name_length(info) + info.compress_size
        )
        previous = info.filename
    if previous_end > directory_start:
        raise ModelLoadError(
            f"{where} is a corrupt .keras archive: member {quote(previous)} runs into the zip "
            "directory."
        )


def _name_length(info: zipfile.ZipInfo) -> int:
    # zipfile decoded the name as UTF-8 if the member says so (flag 0x800), else as cp437.
    encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
    return len(info.orig_filename.encode(encoding, "surrogateescape"))


def verify_members(path: str | os.PathLike[str], *, budget: int | None = None) -> None:
    """Check members' CRC-32 by reading them, inflating at most ``budget`` bytes.

    Call it after :func:`check_archive`, which bounds what the directory may declare. Stored
    members are always read (their cost is the file's own size); compressed members are
    inflated, JSON members first, while their declared sizes fit in ``budget`` (default
    :data:`INFLATE_BUDGET`); the others are left to Keras' loader, whose errors are mapped too.
    """
    file = Path(path)
    where = repr(str(file))
    budget = INFLATE_BUDGET if budget is None else budget
    try:
        with open_regular(file) as handle, zipfile.ZipFile(handle) as archive:
            for info in _verification_order(archive.infolist()):
                if info.compress_type != zipfile.ZIP_STORED:
                    if info.file_size > budget:
                        continue
                    budget -= info.file_size
                try:
                    with archive.open(info) as stream:
                        while stream.read(_CHUNK):
                            pass
                except MEMBER_ERRORS as error:
                    raise unreadable_member(where, info.filename, error) from error
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelLoadError(
            f"{where} is not a valid .keras archive (truncated or corrupt: {first_line(error)})."
        ) from error


def _raised_in(error: BaseException, function: str) -> bool:
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_name == function


def _verification_order(infos: list[zipfile.ZipInfo]) -> Iterator[zipfile.ZipInfo]:
    # The JSON members first: Keras needs them whole, and they decide the messages users see.
    yield from (info for info in infos if info.filename in _JSON_MEMBERS)
    yield from (info for info in infos if info.filename not in _JSON_MEMBERS)


#: What reading a member of an open archive raises when its bytes are corrupt.
MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


def unreadable_member(where: str, member: str, error: BaseException) -> ModelLoadError:
    """The error for a member whose reading raised one of :data:`MEMBER_ERRORS`."""
    if isinstance(error, zipfile.BadZipFile) and _raised_in(error, "_update_crc"):
        return ModelLoadError(
            f"{where} is a corrupt .keras archive: member {quote(member)} fails its checksum."
        )
    return _corrupt_member(where, member, error)


def _corrupt_member(where: str, member: str, error: BaseException) -> ModelLoadError:
    return ModelLoadError(
        f"{where} is a corrupt .keras archive: member {quote(member)} cannot be read "
        f"({type(error).__name__}: {first_line(error)})."
    )


def quote(text: str | None, limit: int = 80) -> str:
    """``repr`` of a name from the file, shortened: a file chooses its names' length."""
    text = "" if text is None else text
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def first_line(error: BaseException) -> str:
    """The first non-empty line of an error's message, at most 300 characters."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."
