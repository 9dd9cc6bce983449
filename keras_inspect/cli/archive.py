"""Checking a ``.keras`` archive before Keras reads it, from its zip directory first.

A hostile file (a zip bomb, members that overlap, an encrypted or exotic member) is refused from
what its directory declares, before anything is inflated; then the members' checksums are
verified within a fixed inflation budget. Keras reports most broken archives as "File not found",
so these checks are also what turns a truncated or corrupt file into a sentence a user can act on.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from keras_inspect.errors import KerasInspectError

#: Most members a ``.keras`` archive may list (Keras writes three, plus one per asset file).
MAX_MEMBERS = 4096
#: Deflate cannot expand data more than about 1032 times; a member declaring more lies.
MAX_DEFLATE_RATIO = 1100
#: Keras parses these members whole, so a larger one is refused before it is read.
MAX_JSON_BYTES = 64 * 1024 * 1024
#: Bytes inflated to verify the checksums of compressed members (stored members are read as is:
#: their cost is bounded by the file's own size); members beyond it are left to Keras' loader.
INFLATE_BUDGET = 256 * 1024 * 1024

_JSON_MEMBERS = ("config.json", "metadata.json")
_READABLE_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_LOCAL_HEADER_SIZE = 30
_CHUNK = 1024 * 1024


class ModelLoadError(KerasInspectError):
    """A model file or example name could not be turned into a model.

    Defined here, where the archive checks raise it; import it from :mod:`keras_inspect.cli.loading`.
    """


def check_archive(path: str | os.PathLike[str]) -> None:
    """Refuse a path that cannot be a loadable ``.keras`` archive, reading only its zip directory.

    Nothing is inflated and Keras is not imported: a missing file, a directory, another format,
    a zip that is not a Keras archive, and an archive whose directory is implausible (too many
    members, repeated names, members sharing bytes, sizes no compression can reach, encrypted
    members or compression methods Keras does not write) all raise :class:`ModelLoadError`.
    """
    file = Path(path)
    where = repr(str(file))
    if not file.exists():
        raise ModelLoadError(f"No such file: {where}.")
    if file.is_dir():
        raise ModelLoadError(
            f"{where} is a directory; expected a .keras file (a SavedModel directory is "
            "not supported by Keras 3: re-save the model with model.save('model.keras'))."
        )
    if file.suffix != ".keras":
        raise ModelLoadError(
            f"{where} is not a .keras file (suffix {file.suffix or 'none'!r}); expected a "
            "model saved with model.save('name.keras'), or a built-in example name."
        )
    if not zipfile.is_zipfile(file):
        raise ModelLoadError(
            f"{where} is not a valid .keras archive (truncated or corrupt: not a zip file)."
        )
    declared = _declared_member_count(file)
    if declared is not None and declared > MAX_MEMBERS:
        # Refused before zipfile parses the directory: parsing costs memory per member.
        raise ModelLoadError(
            f"{where} lists {_count(declared)} members; a .keras archive has a few (at most "
            f"{MAX_MEMBERS} are accepted). Refusing a possible zip bomb."
        )
    try:
        with zipfile.ZipFile(file) as archive:
            infos = archive.infolist()
            directory_start = archive.start_dir
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise ModelLoadError(
            f"{where} is not a valid .keras archive (truncated or corrupt: "
            f"{first_line(error)})."
        ) from error
    _check_directory(where, infos, directory_start)


def _declared_member_count(file: Path) -> int | None:
    """The member count in the end-of-directory record (``None`` if the record is not found).

    The 16-bit count reads 0xFFFF when the real one is in a Zip64 record: 65535 or more, or a
    writer that always uses Zip64; either way more than a .keras archive needs.
    """
    size = file.stat().st_size
    tail_size = min(size, 22 + 0xFFFF)  # the record, then a comment of up to 64 KiB
    with open(file, "rb") as handle:
        handle.seek(size - tail_size)
        tail = handle.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    (count,) = struct.unpack("<H", tail[at + 10 : at + 12])
    return count


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
            info.header_offset
            + _LOCAL_HEADER_SIZE
            + len(info.orig_filename.encode("utf-8", "surrogateescape"))
            + info.compress_size
        )
        previous = info.filename
    if previous_end > directory_start:
        raise ModelLoadError(
            f"{where} is a corrupt .keras archive: member {quote(previous)} runs into the zip "
            "directory."
        )


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
        with zipfile.ZipFile(file) as archive:
            for info in _verification_order(archive.infolist()):
                if info.compress_type != zipfile.ZIP_STORED:
                    if info.file_size > budget:
                        continue
                    budget -= info.file_size
                try:
                    with archive.open(info) as stream:
                        while stream.read(_CHUNK):
                            pass
                except zipfile.BadZipFile as error:
                    if _raised_in(error, "_update_crc"):
                        raise ModelLoadError(
                            f"{where} is a corrupt .keras archive: member "
                            f"{quote(info.filename)} fails its checksum."
                        ) from error
                    raise _corrupt_member(where, info.filename, error) from error
                except (zlib.error, EOFError, NotImplementedError, RuntimeError) as error:
                    raise _corrupt_member(where, info.filename, error) from error
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelLoadError(
            f"{where} is not a valid .keras archive (truncated or corrupt: "
            f"{first_line(error)})."
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


