"""Reading a zip file's end record and counting its directory entries, within fixed bounds.

``zipfile`` parses every entry of the central directory the end record points to, and the
number of entries it parses is set by the directory's *size*, not by the member count the end
record declares: a record claiming one member in front of a directory of a million costs seconds
and hundreds of megabytes before any check sees the members. This module reads what ``zipfile``
will read (the end record, the Zip64 record when there is one) and walks the directory's entry
headers itself, stopping one entry past the limit, so a hostile directory is refused for the
price of its first few thousand headers.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import attrs

_END = struct.Struct("<4s4H2LH")
_END_SIGNATURE = b"PK\x05\x06"
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_SIGNATURE = b"PK\x06\x06"
_LOCATOR = struct.Struct("<4sLQL")
_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ENTRY = struct.Struct("<4s4B4HL2L5H2L")
_ENTRY_SIGNATURE = b"PK\x01\x02"
_MAX_COMMENT = 0xFFFF


class DirectoryError(ValueError):
    """The end record or the directory is malformed, or larger than allowed (message says)."""


@attrs.frozen(kw_only=True)
class Directory:
    """What a zip file's end record declares, and what its directory holds.

    :ivar declared: the member count the end record (or the Zip64 record) declares.
    :ivar entries: the entries found in the directory, counted up to the limit plus one.
    :ivar size: the directory's size in bytes.
    :ivar start: the directory's offset in the file, as ``zipfile`` computes it.
    """

    declared: int
    entries: int
    size: int
    start: int


def _read_at(handle: BinaryIO, offset: int, count: int) -> bytes:
    handle.seek(offset)
    return handle.read(count)


def read_directory(
    handle: BinaryIO, file_size: int, *, max_entries: int, max_bytes: int
) -> Directory | None:
    """The directory of the zip file open as ``handle`` (``None`` if there is no end record).

    At most ``22 + 65535`` bytes of tail, the Zip64 records and ``max_bytes`` of directory are
    read; entries are counted up to ``max_entries + 1``.

    :raises DirectoryError: when the directory is larger than ``max_bytes``, lies outside the
        file, or an entry header is malformed.
    """
    tail_size = min(file_size, _END.size + _MAX_COMMENT)
    tail = _read_at(handle, file_size - tail_size, tail_size)
    # Where zipfile looks: a record without a comment at the very end, else the last signature.
    if tail[-_END.size : -_END.size + 4] == _END_SIGNATURE and tail[-2:] == b"\0\0":
        at = len(tail) - _END.size
    else:
        at = tail.rfind(_END_SIGNATURE)
    if at < 0 or len(tail) - at < _END.size:
        return None
    fields = _END.unpack_from(tail, at)
    declared, size, location = fields[4], fields[5], file_size - tail_size + at
    start = location - size
    locator_at = location - _LOCATOR.size
    if locator_at >= _END64.size:
        locator = _read_at(handle, locator_at, _LOCATOR.size)
        if locator[:4] == _LOCATOR_SIGNATURE:
            record = _read_at(handle, locator_at - _END64.size, _END64.size)
            if len(record) == _END64.size and record[:4] == _END64_SIGNATURE:
                fields64 = _END64.unpack(record)
                declared, size = fields64[7], fields64[8]
                start = locator_at - _END64.size - size
    if size > max_bytes:
        raise DirectoryError(
            f"its zip directory declares {size} bytes; a .keras archive's takes a few hundred "
            f"(at most {max_bytes} are accepted)"
        )
    if start < 0:
        raise DirectoryError("its zip directory lies outside the file")
    data = _read_at(handle, start, size)
    entries = _count_entries(data, size, max_entries + 1)
    return Directory(declared=declared, entries=entries, size=size, start=start)


def _count_entries(data: bytes, size: int, stop: int) -> int:
    """Entries zipfile would parse in ``data`` (the loop of ``ZipFile._RealGetContents``),
    counted up to ``stop``."""
    if len(data) < size:
        raise DirectoryError("its zip directory is cut short (truncated file)")
    position = count = 0
    while position < size and count < stop:
        if size - position < _ENTRY.size:
            raise DirectoryError("its zip directory ends inside an entry (truncated file)")
        fields = _ENTRY.unpack_from(data, position)
        if fields[0] != _ENTRY_SIGNATURE:
            raise DirectoryError(f"its zip directory has a malformed entry at byte {position}")
        name, extra, comment = fields[12], fields[13], fields[14]
        position += _ENTRY.size + name + extra + comment
        count += 1
    return count
