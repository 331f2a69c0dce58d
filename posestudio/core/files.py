"""Writing files safely: atomic replacement, and plain values for TOML and JSON.

Every writer in PoseStudio goes through here, so a failure never leaves half a file behind, and
NaN becomes ``null`` in every JSON the studio writes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

#: Metadata of a dataclass field that files leave out while it is None (see :func:`absent_field`).
_OMIT_IF_NONE = "posestudio_omit_if_none"


def absent_field() -> Any:
    """A dataclass field, None by default, that :func:`plain` (so every written file) leaves out
    while it is None: a report section that does not apply."""
    return dataclasses.field(default=None, metadata={_OMIT_IF_NONE: True})


def plain(value: Any, *, drop_none: bool = True) -> Any:
    """numpy values, dataclasses and paths to plain Python values (recursively).

    Args:
        value: any nesting of dicts, lists, tuples, dataclasses, numpy arrays and scalars; a
            dataclass field made by :func:`absent_field` is left out while it is None.
        drop_none: leave out dict entries whose value is None (TOML has no null).
    Returns:
        The same structure made of dict, list, str, int, float and bool.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: v for f in dataclasses.fields(value)
                 if not ((v := getattr(value, f.name)) is None and f.metadata.get(_OMIT_IF_NONE))}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v, drop_none=drop_none) for k, v in value.items() if not (drop_none and v is None)}
    if isinstance(value, (list, tuple)):
        return [plain(v, drop_none=drop_none) for v in value]
    return value


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_null(v) for v in value]
    return value


def json_text(value: Any) -> str:
    """JSON of a report: dataclasses and numpy values made plain, NaN and infinities as ``null``."""
    return json.dumps(_finite_or_null(plain(value, drop_none=False)), indent=1)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed into place (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_json(path: str | Path, value: Any) -> None:
    """Write a report (a dataclass or dict) as JSON, atomically; see :func:`json_text`."""
    write_text_atomic(path, json_text(value))


def write_npz_atomic(path: str | Path, **arrays: Any) -> None:
    """``np.savez_compressed`` through a temporary file renamed into place (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def read_toml(path: str | Path, error: type[InputError] = InputError, what: str = "TOML file") -> dict[str, Any]:
    """Parse a TOML file, or raise ``error`` naming the file: missing, or not valid TOML.

    Args:
        path: the file.
        error: the :class:`InputError` subclass to raise (e.g. a rig or board file error).
        what: what the file should be, for the message (``"rig file"``).
    Returns:
        The document.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not a valid TOML file ({exc})") from None
