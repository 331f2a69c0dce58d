"""The package graph stays acyclic: import-linter's contracts hold, and they catch an upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = REPO / ".ci" / "lint_imports.py"


def _lint(source_root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(LINT), "--source-root", str(source_root)],
                          capture_output=True, text=True, timeout=300)


def _copy_sources(into: Path) -> None:
    """The package folders and pyproject.toml, as lint_imports needs them."""
    shutil.copy(REPO / "pyproject.toml", into / "pyproject.toml")
    mapping = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for folder in set(mapping.values()):
        shutil.copytree(REPO / folder, into / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pt"))


def test_the_package_layers_hold() -> None:
    proc = _lint(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize("module, upward", [
    ("posestudio/core/dlt.py", "posestudio.reconstruction.triangulation"),       # core -> pipeline
    ("models/keypoints.py", "posestudio.reconstruction.filters"),                   # models -> pipeline
    ("calibration/board.py", "posestudio.models.keypoints"),                        # calibration <-> models
])
def test_an_upward_import_breaks_the_contract(tmp_path: Path, module: str, upward: str) -> None:
    _copy_sources(tmp_path)
    with open(tmp_path / module, "a", encoding="utf-8") as f:
        f.write(f"\n\ndef _sneaky():\n    import {upward}  # hidden inside a function, still an import\n")
    proc = _lint(tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert "BROKEN" in proc.stdout and upward in proc.stdout
