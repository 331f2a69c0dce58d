"""The package graph stays acyclic: import-linter's contracts hold, and they catch an upward import."""

from __future__ import annotations

import re
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


def _package_modules() -> set[str]:
    """Every module file of the installed packages, as a repository path (``__init__`` files aside)."""
    mapping = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return {p.relative_to(REPO).as_posix() for folder in set(mapping.values())
            for p in (REPO / folder).rglob("*.py") if p.name != "__init__.py" and "__pycache__" not in p.parts}


def test_the_architecture_page_maps_every_module() -> None:
    page = (REPO / "docs" / "architecture.md").read_text()
    missing = sorted(m for m in _package_modules() if f"`{m}`" not in page)
    assert not missing, f"docs/architecture.md does not list: {', '.join(missing)}"


def test_the_architecture_page_names_no_missing_file() -> None:
    page = (REPO / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`([\w/]+\.py)`", page))
    stale = sorted(n for n in named if not (REPO / n).is_file())
    assert not stale, f"docs/architecture.md names files that do not exist: {', '.join(stale)}"
