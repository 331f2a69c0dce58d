#!/usr/bin/env python3
"""Check the package layers with import-linter (contracts in pyproject.toml's [tool.importlinter]).

PoseStudio's packages live in top-level folders that install under one namespace (pyproject's
``package-dir``), which import-linter cannot see in an editable install. This script lays the
namespace out as links in a temporary folder, as an installed wheel would, and lints that.

Usage: python .ci/lint_imports.py [--source-root DIR]   (DIR: a copy of the repository; default: this one)
Exit status 0 when every contract is kept, 1 when one is broken.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import tomllib
from pathlib import Path


def assemble(source_root: Path, into: Path) -> None:
    """Link each package folder of ``package-dir`` into ``into`` at its import path."""
    project = tomllib.loads((source_root / "pyproject.toml").read_text())
    mapping: dict[str, str] = project["tool"]["setuptools"]["package-dir"]
    top = into / "posestudio"
    top.mkdir(parents=True)
    for entry in (source_root / mapping["posestudio"]).iterdir():
        if entry.name != "__pycache__":
            (top / entry.name).symlink_to(entry.resolve())
    for package, folder in mapping.items():
        if package != "posestudio":
            link = into / Path(*package.split("."))
            if not link.exists():
                link.symlink_to((source_root / folder).resolve())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source-root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    root = args.source_root.resolve()
    with tempfile.TemporaryDirectory(prefix="posestudio-lint-") as tmp:
        assemble(root, Path(tmp))
        os.chdir(tmp)  # import-linter puts the working directory first on sys.path
        sys.path.insert(0, tmp)
        from importlinter.cli import lint_imports  # the tool itself, run on the assembled tree

        return lint_imports(config_filename=str(root / "pyproject.toml"), no_cache=True)


if __name__ == "__main__":
    sys.exit(main())
