"""Packaging metadata: the licence is an SPDX expression, and building it warns about nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

try:
    import tomllib
except ImportError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_license_is_an_spdx_expression_setuptools_can_read() -> None:
    data = _pyproject()
    assert data["project"]["license"] == "Apache-2.0"
    # setuptools reads SPDX strings from version 77 on: the build must not get an older one.
    (setuptools,) = [
        Requirement(r) for r in data["build-system"]["requires"] if r.startswith("setuptools")
    ]
    assert not setuptools.specifier.contains("76.3.0") and setuptools.specifier.contains("77.0.3")


def test_building_the_metadata_prints_no_deprecation(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "keras_inspect", source / "keras_inspect",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    out = tmp_path / "metadata"
    out.mkdir()
    # The installed setuptools, as `pip install --no-build-isolation` would use it (no download).
    script = (
        "import sys; from setuptools import build_meta; "
        "print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))"
    )
    result = subprocess.run([sys.executable, "-W", "always", "-c", script, str(out)], cwd=source,
                            capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Deprecat" not in result.stderr and "project.license" not in result.stderr, result.stderr
    metadata = (out / result.stdout.strip().splitlines()[-1] / "METADATA").read_text()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
