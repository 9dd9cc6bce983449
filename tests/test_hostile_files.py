"""Hostile and broken .keras files: zip bombs, corrupt members, misleading errors, terminal escapes.

The archives are written by hand (local headers, directory, end record), so a test can declare
what no honest writer would: one member listed 2,000 times, sizes no compression reaches, an
encrypted flag, an unknown compression method. Nothing large is written to disk: the biggest
member is 64 MiB of zeros, deflated to 64 KB.
"""

from __future__ import annotations

import io
import json
import re
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import keras
import numpy as np
import pytest

import keras_inspect as ki
from conftest import FakeTerminal
from keras_inspect.cli import archive
from keras_inspect.cli import main as cli
from keras_inspect.cli.console import printable
from keras_inspect.cli.loading import ModelLoadError, check_archive, load_model, verify_members

MiB = 1024 * 1024


# -- writing archives by hand ------------------------------------------------------------------


@attrs.frozen
class Raw:
    """One member as the archive stores it, with whatever the directory should declare."""

    name: str
    payload: bytes
    method: int = zipfile.ZIP_STORED
    flags: int = 0
    crc: int = 0
    size: int = 0


def stored(name: str, data: bytes) -> Raw:
    return Raw(name, data, zipfile.ZIP_STORED, 0, zlib.crc32(data), len(data))


def deflated(name: str, data: bytes) -> Raw:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return Raw(name, packer.compress(data) + packer.flush(), zipfile.ZIP_DEFLATED, 0,
               zlib.crc32(data), len(data))  # fmt: skip


def write_zip(path: Path, members: list[Raw], directory: list[tuple[int, str]] | None = None) -> Path:
    """Write ``members`` once each; the directory lists ``(member index, name)`` entries."""
    body, offsets = bytearray(), []
    for m in members:
        offsets.append(len(body))
        name = m.name.encode()
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, m.flags, m.method, 0, 0x21, m.crc,
                            len(m.payload), m.size, len(name), 0)  # fmt: skip
        body += name + m.payload
    entries = directory if directory is not None else [(i, m.name) for i, m in enumerate(members)]
    central = bytearray()
    for index, entry_name in entries:
        m, name = members[index], entry_name.encode()
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, m.flags, m.method, 0,
                               0x21, m.crc, len(m.payload), m.size, len(name), 0, 0, 0, 0, 0,
                               offsets[index])  # fmt: skip
        central += name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central),
                      len(body), 0)  # fmt: skip
    path.write_bytes(bytes(body + central + end))
    return path


def members_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


class InflatedTooMuch(AssertionError):
    pass


@attrs.define
class Meter:
    """Counts the bytes zipfile inflates; fails the test at ``limit`` (a bomb must not run)."""

    limit: int
    inflated: int = 0

    def add(self, count: int) -> None:
        self.inflated += count
        if self.inflated > self.limit:
            raise InflatedTooMuch(f"inflated more than {self.limit} bytes")


class _Counting:
    def __init__(self, inner: Any, meter: Meter) -> None:
        self._inner, self._meter = inner, meter

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        out = self._inner.decompress(data, max_length)
        self._meter.add(len(out))
        return out

    def flush(self, *args: Any) -> bytes:
        out = self._inner.flush(*args)
        self._meter.add(len(out))
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def meter(monkeypatch: pytest.MonkeyPatch) -> Meter:
    counter = Meter(limit=512 * MiB)
    original = zipfile._get_decompressor  # type: ignore[attr-defined]

    def counting(compress_type: int) -> Any:
        inner = original(compress_type)
        return None if inner is None else _Counting(inner, counter)

    monkeypatch.setattr(zipfile, "_get_decompressor", counting)
    return counter


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The members of a small, valid .keras archive."""
    path = tmp_path_factory.mktemp("saved") / "small.keras"
    keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4, name="hidden"), keras.layers.Dense(2, name="out")]
    ).save(path)
    return members_of(path)


@pytest.fixture(scope="module")
def zeros_64mib() -> Raw:
    chunk, packer, crc = bytes(MiB), zlib.compressobj(9, zlib.DEFLATED, -15), 0
    payload = bytearray()
    for _ in range(64):
        payload += packer.compress(chunk)
        crc = zlib.crc32(chunk, crc)
    payload += packer.flush()
    return Raw("model.weights.h5", bytes(payload), zipfile.ZIP_DEFLATED, 0, crc, 64 * MiB)


def refused(path: Path, fragment: str, meter: Meter) -> str:
    """Both the directory check and load_model refuse ``path`` without inflating anything."""
    with pytest.raises(ModelLoadError, match=fragment) as caught:
        load_model(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    with pytest.raises(ModelLoadError, match=fragment):
        check_archive(path)
    assert meter.inflated == 0
    return message


# -- item 3: zip bombs -------------------------------------------------------------------------


def test_one_member_listed_2000_times_is_refused_from_the_directory(
    tmp_path: Path, saved: dict[str, bytes], zeros_64mib: Raw, meter: Meter
) -> None:
    # zipfile reads each listing (the names match their local header): 2000 x 64 MiB inflated.
    members = [stored("config.json", saved["config.json"]), zeros_64mib]
    directory = [(0, "config.json"), *[(1, "model.weights.h5")] * 2000]
    path = write_zip(tmp_path / "bomb.keras", members, directory)
    assert path.stat().st_size < 400_000
    refused(path, "more than once", meter)


def test_members_sharing_bytes_are_refused(
    tmp_path: Path, saved: dict[str, bytes], zeros_64mib: Raw, meter: Meter
) -> None:
    members = [stored("config.json", saved["config.json"]), zeros_64mib]
    directory = [(0, "config.json"), *[(1, f"assets/{i}.bin") for i in range(2000)]]
    path = write_zip(tmp_path / "overlap.keras", members, directory)
    refused(path, "share bytes", meter)


def test_a_size_beyond_what_deflate_produces_is_refused(
    tmp_path: Path, saved: dict[str, bytes], meter: Meter
) -> None:
    lie = Raw("model.weights.h5", np.random.default_rng(0).bytes(1000), zipfile.ZIP_DEFLATED,
              0, 0, 1024 * MiB)  # fmt: skip
    path = write_zip(tmp_path / "ratio.keras", [stored("config.json", saved["config.json"]), lie])
    refused(path, "more than deflate can produce", meter)


def test_too_many_members_are_refused(
    tmp_path: Path, saved: dict[str, bytes], meter: Meter
) -> None:
    count = archive.MAX_MEMBERS + 1
    members = [stored("config.json", saved["config.json"])]
    members += [stored(f"assets/{i}", b"x") for i in range(count - 1)]
    path = write_zip(tmp_path / "many.keras", members)
    refused(path, f"lists {count} members", meter)


def test_an_oversized_config_is_refused_before_it_is_read(
    tmp_path: Path, saved: dict[str, bytes], meter: Meter
) -> None:
    size = archive.MAX_JSON_BYTES + 1
    config = Raw("config.json", np.random.default_rng(1).bytes(size // 1000), zipfile.ZIP_DEFLATED,
                 0, 0, size)  # fmt: skip
    path = write_zip(tmp_path / "config.keras", [config, stored("model.weights.h5", b"w")])
    refused(path, f"{size}-byte config.json", meter)


def test_honest_compressible_members_are_accepted(
    tmp_path: Path, saved: dict[str, bytes], zeros_64mib: Raw, meter: Meter
) -> None:
    # 64 MiB of zeros deflates about 1030:1, as far as deflate goes: not a bomb for a member
    # Keras reads in memory (an extracted asset is bounded more tightly: test_hostile_round3).
    members = [deflated(name, data) for name, data in saved.items() if name != zeros_64mib.name]
    members.append(zeros_64mib)
    path = write_zip(tmp_path / "zeros.keras", members)
    check_archive(path)
    verify_members(path)
    others = sum(len(data) for name, data in saved.items() if name != zeros_64mib.name)
    assert meter.inflated == 64 * MiB + others


def test_checksums_are_verified_within_the_budget(
    tmp_path: Path, saved: dict[str, bytes], meter: Meter
) -> None:
    path = write_zip(tmp_path / "deflated.keras", [deflated(n, d) for n, d in saved.items()])
    weights = len(saved["model.weights.h5"])
    verify_members(path, budget=weights - 1)
    # Everything but the weights: they alone do not fit.
    assert meter.inflated == sum(len(d) for n, d in saved.items() if n != "model.weights.h5")
    meter.inflated = 0
    verify_members(path, budget=0)
    assert meter.inflated == 0
    assert load_model(path).get_layer("hidden").units == 4  # Keras reads deflated archives


# -- item 6: corrupt members are ModelLoadError ------------------------------------------------


def _corrupt(kind: str, saved: dict[str, bytes]) -> list[Raw]:
    config, weights = saved["config.json"], saved["model.weights.h5"]
    if kind == "bad deflate data":
        # 0xff opens a block of the reserved type 3: zlib rejects it at once.
        broken = Raw("config.json", b"\xff" * 64, zipfile.ZIP_DEFLATED, 0, zlib.crc32(config),
                     len(config))  # fmt: skip
        return [broken, stored("model.weights.h5", weights)]
    if kind == "unsupported method":
        return [stored("config.json", config), attrs.evolve(stored("model.weights.h5", weights),
                                                            method=99)]  # fmt: skip
    assert kind == "encrypted flag"
    return [attrs.evolve(stored("config.json", config), flags=1), stored("model.weights.h5", weights)]


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("bad deflate data", "member 'config.json' cannot be read"),
        ("unsupported method", "compression method 99"),
        ("encrypted flag", "encrypted member 'config.json'"),
    ],
)
def test_corrupt_members_are_one_line_model_load_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, saved: dict[str, bytes], kind: str,
    fragment: str,
) -> None:  # fmt: skip
    path = write_zip(tmp_path / "corrupt.keras", _corrupt(kind, saved))
    with pytest.raises(ModelLoadError, match=fragment) as caught:
        load_model(path)
    assert "\n" not in str(caught.value)
    assert cli.main(["summary", str(path)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("keras-inspect: error: ") and fragment in err


def test_corruption_past_the_budget_is_reported_from_keras(
    tmp_path: Path, saved: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    members = [deflated(name, data) for name, data in saved.items()]
    weights = next(m for m in members if m.name == "model.weights.h5")
    members[members.index(weights)] = attrs.evolve(weights, payload=b"\xff" * len(weights.payload))
    path = write_zip(tmp_path / "late.keras", members)
    monkeypatch.setattr(archive, "INFLATE_BUDGET", 0)  # the pre-check leaves the members to Keras
    with pytest.raises(ModelLoadError, match="corrupt .keras archive") as caught:
        load_model(path)
    assert "\n" not in str(caught.value)


# -- item 4: advice from the failure's type and origin, not from the file's text ---------------


@pytest.fixture
def vanishing() -> Iterator[type]:
    @keras.saving.register_keras_serializable(package="vanished_pkg")
    class Gate(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            return x

    yield Gate
    # As if the package defining it were not installed where the file is read.
    keras.saving.get_custom_objects().pop("vanished_pkg>Gate", None)


def _save_vanishing(path: Path, layer_name: str, gate: type) -> Path:
    keras.Sequential([keras.Input((3,)), gate(name=layer_name), keras.layers.Dense(2)]).save(path)
    keras.saving.get_custom_objects().pop("vanished_pkg>Gate")
    return path


@pytest.mark.parametrize("unsafe", [False, True])
def test_a_layer_named_safe_mode_is_not_a_lambda(
    tmp_path: Path, vanishing: type, unsafe: bool
) -> None:
    path = _save_vanishing(tmp_path / "gate.keras", "safe_mode_gate", vanishing)
    with pytest.raises(ModelLoadError) as caught:
        load_model(path, unsafe=unsafe)
    message = str(caught.value)
    assert "'vanished_pkg>Gate'" in message and "not importable" in message
    assert "--unsafe" not in message and "Lambda" not in message


def test_text_in_a_layer_name_does_not_name_the_class(tmp_path: Path, vanishing: type) -> None:
    # Keras quotes the whole config in its message: the name comes before the real class.
    forged = "Could not locate class 'forged' 'registered_name': 'forged>Class'"
    path = _save_vanishing(tmp_path / "model.keras", forged, vanishing)
    with pytest.raises(ModelLoadError) as caught:
        load_model(path)
    assert "'vanished_pkg>Gate'" in str(caught.value) and "forged" not in str(caught.value)


def test_a_lambda_is_still_told_to_use_unsafe_whatever_its_name(tmp_path: Path) -> None:
    path = tmp_path / "lambda.keras"
    name = "Could not locate class 'Nothing'"
    keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda x: x + 1.0, name=name)]).save(
        path
    )
    with pytest.raises(ModelLoadError, match="--unsafe") as caught:
        load_model(path)
    assert "Lambda layer" in str(caught.value) and "Nothing" not in str(caught.value)
    assert load_model(path, unsafe=True).layers[0].name == name


# -- item 7: control characters are shown, not obeyed ------------------------------------------

HOSTILE = "evil\x1b]0;pwned\x07\r\nforged\u202eTXT\x9b31m\tend"


def _controls(text: str) -> set[str]:
    """Characters a terminal would act on: every control but the newline, and bidi controls."""
    bidi = {"\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)),
            *map(chr, range(0x2066, 0x206A))}  # fmt: skip
    return {c for c in text if c != "\n" and (unicodedata.category(c) == "Cc" or c in bidi)}


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert printable(HOSTILE) == (
        "evil\\x1b]0;pwned\\x07\\x0d\\x0aforged\\u202eTXT\\x9b31m\\x09end"
    )
    assert printable("Gruß 中文 ✓ layer_1") == "Gruß 中文 ✓ layer_1"
    every = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, 0x2066]))
    assert not _controls(printable(every)) and "\u2028" not in printable(every)


@pytest.fixture(scope="module")
def hostile_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "hostile.keras"
    keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, name=HOSTILE)], name="model\x1b[2J"
    ).save(path)
    return path


def test_the_plain_summary_escapes_names_from_the_file(
    capsys: pytest.CaptureFixture[str], hostile_file: Path
) -> None:
    assert cli.main(["summary", str(hostile_file)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert not _controls(out)
    shown = printable(HOSTILE)
    rows = [line for line in out.splitlines() if line.startswith(shown)]
    assert len(rows) == 1 and "Dense" in rows[0] and "<- logits" in rows[0]
    # The newline inside the name starts no line of its own.
    assert all("evil" in line for line in out.splitlines() if "forged" in line)
    assert cli.main(["summary", str(hostile_file), "--json"]) == cli.EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["rows"][0]["path"] == [HOSTILE] and data["model_name"] == "model\x1b[2J"


def test_the_rich_summary_escapes_names_from_the_file(
    hostile_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("rich")
    monkeypatch.setenv("COLUMNS", "300")
    terminal = FakeTerminal()
    ki.summary(load_model(hostile_file)).print(terminal)
    # rich's own styling (CSI ... m) is the only escape sequence allowed through.
    shown = re.sub(r"\x1b\[[0-9;]*m", "", terminal.getvalue())
    assert not _controls(shown) and "pwned" in shown


def test_the_plugin_listing_escapes_plugin_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Quiet:
        @ki.hookimpl
        def keras_inspect_roles(self) -> list[str]:
            return []

    pm = ki.new_plugin_manager(entrypoints=False)
    pm.register(Quiet(), name=HOSTILE)
    with ki.using_plugin_manager(pm):
        assert cli.main(["plugins"]) == cli.EXIT_OK
        out = capsys.readouterr().out
        assert not _controls(out) and printable(HOSTILE) in out
        assert cli.main(["plugins", "--json"]) == cli.EXIT_OK
        assert HOSTILE in [row["name"] for row in json.loads(capsys.readouterr().out)]


def test_error_messages_escape_what_they_quote(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "a\x1b]0;title\x07\nb.keras"
    assert cli.main(["summary", str(missing)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not _controls(err) and "\\x1b]0;title\\x07" in err


def test_a_hostile_class_name_in_a_load_error_is_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    @keras.saving.register_keras_serializable(package="pkg\x1b[31m")
    class Painted(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            return x

    path = tmp_path / "painted.keras"
    keras.Sequential([keras.Input((3,)), Painted(name="p")]).save(path)
    keras.saving.get_custom_objects().pop("pkg\x1b[31m>Painted")
    assert cli.main(["summary", str(path)]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not _controls(err) and "pkg\\x1b[31m>Painted" in err
