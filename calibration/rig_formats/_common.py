"""Shared helpers for rig importers/exporters: file reading, field checks, array shapes.

Every helper raises :class:`~posestudio.core.rig_file.RigFileError` with the file and the
field named, so a user sees what is wrong instead of a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.files import read_toml as _read_toml
from posestudio.core.rig_file import RigFileError


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a missing file or bad syntax becomes a RigFileError naming it."""
    return _read_toml(path, RigFileError, "rig file")


def field(table: dict, key: str, where: str, path: Path) -> Any:
    """``table[key]``, or a RigFileError naming the file, the table and the missing key."""
    if not isinstance(table, dict) or key not in table:
        raise RigFileError(f"{path}: {where} has no '{key}'")
    return table[key]


def array(value: Any, shape: tuple[int, ...] | None, key: str, where: str, path: Path,
          sizes: tuple[int, ...] | None = None) -> FloatArray:
    """A float array of a given shape (or a 1-D array with one of ``sizes`` elements).

    Raises RigFileError naming the file, table, key, and the expected vs. found shape.
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise RigFileError(f"{path}: {where} '{key}' must be numbers, got {value!r}") from None
    if shape is not None and arr.shape != shape:
        raise RigFileError(f"{path}: {where} '{key}' must have shape {shape}, got {arr.shape}")
    if sizes is not None and (arr.ndim != 1 or arr.size not in sizes):
        raise RigFileError(f"{path}: {where} '{key}' must be a list of {' or '.join(map(str, sizes))} "
                           f"numbers, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise RigFileError(f"{path}: {where} '{key}' holds non-finite values")
    return arr


def image_size(value: Any, where: str, path: Path, key: str = "size") -> tuple[int, int]:
    """``(width, height)`` from a 2-list of positive numbers."""
    arr = array(value, (2,), key, where, path)
    if (arr <= 0).any():
        raise RigFileError(f"{path}: {where} '{key}' must be positive [width, height], got {arr.tolist()}")
    return int(round(arr[0])), int(round(arr[1]))


def natural_key(name: str) -> tuple:
    """Sort key that orders ``cam_2`` before ``cam_10``."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


