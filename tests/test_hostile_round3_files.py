"""Round three, hostile files: each is refused quickly, cheaply and in one line, or (the padding
bomb) shown within what a terminal can use.

The costly ones are measured in a fresh interpreter (``_hostile_archives.probe``): seconds spent
on the file once the interpreter and backend are up, the rise of the peak resident memory, the
bytes written (``wchar`` of ``/proc/self/io``) and what is left in ``TMPDIR``. Bounds are wide
(1 s, 100 MiB, 10 MB) and the unfixed behaviour is far beyond them (seconds to forever,
gigabytes), so a slow machine cannot fail them and a regression cannot pass them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import attrs
import h5py
import keras
import numpy as np
import pytest

import _hostile_archives as hostile
from _hostile_archives import MiB
from conftest import build_cnn, build_nested
from keras_inspect.cli import archive
from keras_inspect.cli import main as cli
from keras_inspect.cli.declared import variable_bytes, weights_bytes
from keras_inspect.cli.loading import ModelLoadError, check_archive, load_model
from test_hostile_files import saved, stored, write_zip  # noqa: F401 (saved is a fixture)

SECONDS, EXTRA_MEMORY_KIB, WRITTEN = 1.0, 100 * 1024, 10 * 1000 * 1000
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="devices, FIFOs and /proc/self/io"
)


def assert_refused_cheaply(result: dict, fragment: str) -> None:
    err = result["err"]
    assert result["status"] == cli.EXIT_ERROR, result
    assert err.startswith("keras-inspect: error: ") and err.count("\n") == 1, err[:2000]
    assert fragment in err, err
    assert result["seconds"] < SECONDS, result
    assert result["extra_kib"] < EXTRA_MEMORY_KIB, result
    assert result["written"] < WRITTEN, result


# -- finding 6: devices and FIFOs ---------------------------------------------------------------


@linux_only
@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "fifo"])
def test_a_device_or_fifo_behind_a_keras_name_is_refused_without_reading(
    tmp_path: Path, target: str
) -> None:
    path = tmp_path / "model.keras"
    if target == "fifo":
        os.mkfifo(path)  # opening it for reading would wait for a writer for ever
    else:
        path.symlink_to(target)
    (result,) = hostile.probe("spec", [path], tmp_path, timeout=60)
    assert_refused_cheaply(result, "not a regular file")


def test_a_fifo_is_refused_by_check_archive_in_process(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(tmp_path / "pipe.keras")
    with pytest.raises(ModelLoadError, match="FIFO"):
        check_archive(tmp_path / "pipe.keras")


# -- findings 8, 9, 10: declared sizes, assets, a lying end record -------------------------------


@pytest.fixture(scope="module")
def zeros_1gib() -> hostile.Raw:
    return hostile.deflated_zeros("assets/zeros.bin", 1024)


@linux_only
def test_hostile_archives_are_refused_in_a_second_with_little_memory_and_no_disk(
    tmp_path: Path, saved: dict[str, bytes], zeros_1gib: hostile.Raw
) -> None:
    files = {
        "declares shape (12000, 12000)": hostile.declared_weights(tmp_path / "h5.keras", saved),
        "variables take": hostile.declared_config(tmp_path / "config.keras", saved),
        "would extract member 'assets/zeros.bin'": hostile.assets_bomb(
            tmp_path / "assets.keras", saved, zeros_1gib
        ),
        # A million entries fill 47 MB of directory: refused by its size, before it is read.
        "zip directory declares": hostile.directory_lie(tmp_path / "lie.keras", saved),
        # A hundred thousand fit in the size bound: the walk stops at the 4097th entry.
        "lists more than 4096 members": hostile.directory_lie(
            tmp_path / "lie2.keras", saved, entries=100_000
        ),
    }
    assert all(path.stat().st_size < 50 * MiB for path in files.values())
    assert files["would extract member 'assets/zeros.bin'"].stat().st_size < 2 * MiB
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    results = hostile.probe("load", list(files.values()), scratch, timeout=300)
    for fragment, result in zip(files, results):
        assert_refused_cheaply(result, fragment)
    assert hostile.disk_used(scratch) < WRITTEN


def test_an_honest_archive_with_assets_still_loads(tmp_path: Path, saved: dict[str, bytes]) -> None:
    vocabulary = "\n".join(f"word{i}" for i in range(2000)).encode()
    path = write_zip(tmp_path / "assets.keras", [*hostile.honest(saved), stored("assets/v.txt", vocabulary)])
    assert load_model(path).get_layer("hidden").units == 4


@pytest.mark.parametrize("flags", [0, 0x800], ids=["cp437", "utf-8"])
def test_non_ascii_member_names_are_measured_as_zipfile_reads_them(
    tmp_path: Path, saved: dict[str, bytes], flags: int
) -> None:
    # Without the UTF-8 flag zipfile decodes a name as cp437: its length in bytes is the same
    # only when it is encoded back the same way (else members seem to overlap the directory).
    extra = attrs.evolve(stored("assets/vocabulário €.txt", b"word"), flags=flags)
    path = write_zip(tmp_path / "names.keras", [*hostile.honest(saved), extra])
    check_archive(path)


def test_extraction_must_fit_the_temporary_directory(
    tmp_path: Path, saved: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    with_assets = write_zip(tmp_path / "a.keras", [*hostile.honest(saved), stored("assets/x", b"x")])
    without = write_zip(tmp_path / "b.keras", hostile.honest(saved))
    monkeypatch.setattr(archive, "free_space", lambda directory: archive.TEMP_RESERVE + 10)
    with pytest.raises(ModelLoadError, match="TMPDIR"):
        check_archive(with_assets)
    check_archive(without)  # nothing is extracted: free space does not matter


def test_a_directory_larger_than_the_bound_is_refused_before_it_is_read(
    tmp_path: Path, saved: dict[str, bytes]
) -> None:
    path = hostile.directory_lie(tmp_path / "big.keras", saved, entries=10)
    data = bytearray(path.read_bytes())
    # The end record's directory size: claim far more than the bound.
    data[-10:-6] = (archive.MAX_DIRECTORY_BYTES + 1).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="zip directory declares"):
        check_archive(path)


# -- the weights file: links and external storage ---------------------------------------------


def _with_weights(path: Path, saved: dict[str, bytes], edit) -> Path:  # noqa: ANN001
    import io

    buffer = io.BytesIO(saved["model.weights.h5"])
    out = io.BytesIO()
    with h5py.File(buffer, "r") as source, h5py.File(out, "w") as target:
        source.copy(source["layers"], target, "layers")
        source.copy(source["vars"], target, "vars")
        edit(target)
    members = [m for m in hostile.honest(saved) if m.name != "model.weights.h5"]
    return write_zip(path, [*members, stored("model.weights.h5", out.getvalue())])


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda f: f.__setitem__("extra", h5py.SoftLink("/layers")), "SoftLink"),
        (lambda f: f.__setitem__("extra", h5py.ExternalLink("/etc/passwd", "/x")), "ExternalLink"),
        (lambda f: f.create_dataset("extra", (4,), "f4", external=[("/dev/zero", 0, 16)]),
         "reads its values from other files"),
        (lambda f: f.create_dataset("extra", data=np.array([b"text"])), "Keras saves numbers only"),
    ],
    ids=["soft link", "external link", "external storage", "strings"],
)
def test_weights_files_keras_does_not_write_are_refused(
    tmp_path: Path, saved: dict[str, bytes], edit, fragment: str  # noqa: ANN001
) -> None:
    path = _with_weights(tmp_path / "w.keras", saved, edit)
    with pytest.raises(ModelLoadError, match=fragment):
        load_model(path)


@pytest.mark.parametrize("build", [build_cnn, build_nested], ids=["cnn", "nested"])
def test_the_declared_sizes_of_honest_models_match_their_variables(
    tmp_path: Path, build
) -> None:  # noqa: ANN001
    import zipfile

    model = build()
    path = tmp_path / "m.keras"
    model.save(path)
    real = sum(np.asarray(keras.ops.convert_to_numpy(v)).nbytes for v in model.variables)
    with zipfile.ZipFile(path) as opened:
        held = weights_bytes(repr(str(path)), opened)
        config = opened.read("config.json")
    assert variable_bytes(path, config, unsafe=False) == real
    assert held >= real
    load_model(path)


# -- finding 7: the summary padding bomb -------------------------------------------------------


def test_a_megabyte_layer_name_does_not_widen_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "n" * MiB
    path = tmp_path / "padding.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name=name), keras.layers.Dense(2)]).save(path)
    assert cli.main(["summary", str(path)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    # Every row would be padded to the name's width: a megabyte per row.
    assert len(out) < 20_000 and max(map(len, out.splitlines())) < 1_000
    assert "characters]" in out  # it says the name was cut
    assert cli.main(["summary", str(path), "--json"]) == cli.EXIT_OK
    assert json.loads(capsys.readouterr().out)["rows"][0]["path"] == [name]  # data stays exact
