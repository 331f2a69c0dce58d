"""Several files written all or nothing: temporary files in each target's folder, then renamed.

``posestudio.core.files`` writes one text or npz file atomically; an export writes several files
of any kind (a binary C3D, a BVH that :func:`posestudio.core.bvh.write_bvh` writes directly) and
must leave none of them behind, not even a partial one, when any fails. :func:`write_all` stages
every file under a hidden temporary name beside its target, and only when all are written renames
them into place; a rename that fails undoes the ones made before it (a file that was there before
is put back).

This is generic and belongs in ``posestudio/core/files.py``; it lives here until it moves.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def temporary_path(target: Path, tag: str = "tmp") -> Path:
    """A hidden, unused name in ``target``'s folder: ``.<name>.<random>.<tag>`` (the same file system,
    so :func:`os.replace` onto ``target`` is atomic)."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.{tag}")


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _rename_all(staged: Sequence[tuple[Path, Path]]) -> None:
    """Rename each ``(temporary, target)``; on any failure undo the renames already made."""
    done: list[tuple[Path, Path | None]] = []   # (target, where its previous file was moved)
    try:
        for tmp, target in staged:
            backup = None
            if target.is_file() or target.is_symlink():
                backup = temporary_path(target, "bak")
                os.replace(target, backup)
            done.append((target, backup))
            os.replace(tmp, target)
    except BaseException:
        for target, backup in reversed(done):
            if backup is None:
                _remove(target)
            else:
                os.replace(backup, target)
        raise
    for _, backup in done:
        if backup is not None:
            _remove(backup)


def write_all(jobs: Sequence[tuple[str | os.PathLike[str], Callable[[Path], T]]]) -> list[T]:
    """Write several files all or nothing.

    Args:
        jobs: ``(target, write)`` pairs; ``write(path)`` writes the whole file at ``path`` (a
            temporary name beside ``target``) and returns anything (e.g. what it wrote). Parent
            folders are created.
    Returns:
        What each ``write`` returned, in order.
    Raises:
        Whatever a ``write`` or a rename raised, after removing every temporary file and putting back
        every target as it was.
    """
    targets = [Path(t) for t, _ in jobs]
    staged: list[tuple[Path, Path]] = []
    results: list[T] = []
    try:
        for target, (_, write) in zip(targets, jobs):
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = temporary_path(target)
            staged.append((tmp, target))
            results.append(write(tmp))
            if not tmp.is_file():
                raise RuntimeError(f"{target}: the writer left no file at {tmp}")
        _rename_all(staged)
    except BaseException:
        for tmp, _ in staged:
            _remove(tmp)
        raise
    return results


def write_one(target: str | os.PathLike[str], write: Callable[[Path], T]) -> T:
    """One file written atomically through ``write(path)`` (see :func:`write_all`)."""
    return write_all([(target, write)])[0]
