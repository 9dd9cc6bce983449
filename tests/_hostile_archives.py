"""The hostile files of round three, written by hand, and a probe that measures what reading
them costs in a fresh interpreter (time, peak memory, bytes written, what was printed).

Each builder takes the members of an honest archive (``saved``) and returns the path it wrote.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path
from typing import Any

import h5py

from test_hostile_files import Raw, stored, write_zip

MiB = 1024 * 1024


def deflated_zeros(name: str, mebibytes: int) -> Raw:
    """``mebibytes`` MiB of zeros, deflated (about 1030:1)."""
    chunk, packer, crc, payload = bytes(MiB), zlib.compressobj(9, zlib.DEFLATED, -15), 0, []
    for _ in range(mebibytes):
        payload.append(packer.compress(chunk))
        crc = zlib.crc32(chunk, crc)
    payload.append(packer.flush())
    return Raw(name, b"".join(payload), zipfile.ZIP_DEFLATED, 0, crc, mebibytes * MiB)


def honest(saved: dict[str, bytes]) -> list[Raw]:
    return [stored(name, data) for name, data in saved.items()]


def _rewritten_h5(original: bytes, declare: tuple[int, int]) -> bytes:
    """The weights file with each 2-D dataset replaced by one that declares ``declare`` and
    stores nothing (HDF5 allocates storage late: reading it gives fill values)."""
    out = io.BytesIO()
    with h5py.File(io.BytesIO(original), "r") as source, h5py.File(out, "w") as target:
        for key, value in source.attrs.items():
            target.attrs[key] = value

        def copy(name: str, item: Any) -> None:
            if isinstance(item, h5py.Group):
                target.require_group(name)
            elif item.ndim == 2:
                target.create_dataset(name, shape=declare, dtype=item.dtype)
            else:
                target.create_dataset(name, data=item[()])

        source.visititems(copy)
    return out.getvalue()


def declared_weights(path: Path, saved: dict[str, bytes], side: int = 12000) -> Path:
    """Finding 8, in the weights: a kernel declared ``side x side`` with no bytes stored."""
    members = [m for m in honest(saved) if m.name != "model.weights.h5"]
    members.append(stored("model.weights.h5", _rewritten_h5(saved["model.weights.h5"], (side, side))))
    return write_zip(path, members)


def declared_config(path: Path, saved: dict[str, bytes], side: int = 12000) -> Path:
    """Finding 8, in the config: every Dense is ``side`` wide on a ``side``-wide input."""
    config = json.loads(saved["config.json"])

    def widen(node: Any) -> Any:
        if isinstance(node, dict):
            out = {key: widen(value) for key, value in node.items()}
            if out.get("class_name") == "Dense":
                out["config"]["units"] = side
                if out.get("build_config"):
                    out["build_config"]["input_shape"] = [None, side]
            if out.get("class_name") == "InputLayer":
                shape = out["config"].get("batch_shape")
                out["config"]["batch_shape"] = [None, side] if shape else shape
            return out
        return [widen(item) for item in node] if isinstance(node, list) else node

    data = json.dumps(widen(config)).encode()
    members = [m for m in honest(saved) if m.name != "config.json"] + [stored("config.json", data)]
    return write_zip(path, members)


def assets_bomb(path: Path, saved: dict[str, bytes], zeros: Raw) -> Path:
    """Finding 9: an asset that inflates about a thousand times on extraction."""
    return write_zip(path, [*honest(saved), zeros])


def directory_lie(path: Path, saved: dict[str, bytes], entries: int = 1_000_000) -> Path:
    """Finding 10: the end record declares one member; the directory holds ``entries``."""
    config = saved["config.json"]
    name = b"config.json"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, zlib.crc32(config),
                        len(config), len(config), len(name), 0) + name + config  # fmt: skip
    short = b"x"  # the directory's entries, as short as an entry can be
    entry = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21,
                        zlib.crc32(config), len(config), len(config), len(short), 0, 0, 0, 0, 0,
                        0) + short  # fmt: skip
    directory = entry * entries
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(directory), len(local), 0)
    path.write_bytes(local + directory + end)
    return path


# -- measuring in a fresh interpreter ---------------------------------------------------------

PROBE = r"""
import io, json, os, resource, sys, threading, time

def proc_status(field):  # kibibytes
    with open("/proc/self/status") as f:
        return int(next(l for l in f if l.startswith(field)).split()[1])

def start_measuring():
    # Reset the peak to the current size (Linux >= 4.0), so the peak after the call is what
    # the call itself needed on top of what the process held; else fall back to the old peak.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return proc_status("VmRSS:")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def peak():
    try:
        return proc_status("VmHWM:")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def written():
    try:
        with open("/proc/self/io") as f:
            return int(next(l for l in f if l.startswith("wchar")).split()[1])
    except OSError:
        return 0

def watchdog(limit_kib):
    # A bomb that is not refused must not take the machine with it: end the probe instead.
    while True:
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
        if rss > limit_kib:
            os._exit(3)
        time.sleep(0.05)

mode, paths = sys.argv[1], sys.argv[2:]
if mode == "load":
    import keras  # as the command line has it when it reads a file: backend and plugins loaded
    import keras_inspect
    keras_inspect.plugin_manager()
from keras_inspect.cli import main as cli
threading.Thread(target=watchdog, args=(peak() + 2 * 1024 * 1024,), daemon=True).start()
results = []
for path in paths:
    before, wrote = start_measuring(), written()
    out, err = io.StringIO(), io.StringIO()
    real = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    start = time.monotonic()
    try:
        status = cli.main(["summary", path])
    finally:
        seconds = time.monotonic() - start
        sys.stdout, sys.stderr = real
    results.append({"status": status, "seconds": seconds, "extra_kib": peak() - before,
                    "written": written() - wrote, "out_chars": len(out.getvalue()),
                    "longest_line": max(map(len, out.getvalue().splitlines()), default=0),
                    "err": err.getvalue()[:20000]})
print(json.dumps(results))
"""


def probe(mode: str, paths: list[Path], tmpdir: Path, timeout: float = 120) -> list[dict[str, Any]]:
    """Run ``keras-inspect summary`` on each path in one fresh interpreter (``mode`` "spec":
    nothing imported first; "load": Keras and the plugins imported first, as by the time the
    command reads a file), with ``TMPDIR`` pointing at ``tmpdir``."""
    env = dict(os.environ, TMPDIR=str(tmpdir))
    env.pop("KERAS_INSPECT_DEBUG", None)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROBE), mode, *map(str, paths)],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"probe ended with {result.returncode}: {result.stderr[-2000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def disk_used(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
