"""Format name -> writer, and :func:`export_take`: several formats from one take, all or nothing.

Formats (``docs/export_formats.md``): ``bvh`` (a solved skeleton, ``reconstruction/skeleton``),
``trc`` (OpenSim markers), ``c3d``, ``csv``, ``json``. Each has a default up axis and its length
units: BVH and TRC follow their tools (Y up; centimetres, millimetres), C3D, CSV and JSON keep the
world frame (Z up) in millimetres (C3D) or metres.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from posestudio.core.bvh import write_bvh
from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import Points3D

from .atomic import write_all
from .c3d_file import c3d_to_path
from .tables import csv_text, json_text
from .take import ExportTake, check_fps, check_take, check_up, prepare
from .trc import trc_text


@dataclass(frozen=True)
class Written:
    """One file an export wrote.

    Attributes:
        format: the format's name; path: the file; frames: frames in it; count: its joints or
        markers (``noun``); up: its up axis; units: its length unit; fps: its frame rate.
    """

    format: str
    path: Path
    frames: int
    count: int
    noun: str
    up: str
    units: str
    fps: float

    def line(self) -> str:
        """One line for the command line: path, frames, joints or markers, axes and units."""
        return (f"wrote {self.path}: {self.format.upper()}, {self.frames} frames, {self.count} {self.noun}, "
                f"{self.up.upper()} up, {self.units}, {self.fps:g} fps")


#: ``write(path, take, up, units, name) -> (frames, count)``: the whole file at ``path`` (a temporary
#: name beside the target, whose file name is ``name``).
WriteFn = Callable[[Path, ExportTake, str, str, str], tuple[int, int]]


@dataclass(frozen=True)
class ExportFormat:
    """A file format an export can write.

    Attributes:
        name: the format's name (the command line's ``--<name>``); suffix: its usual file suffix.
        description: what it is and which tools open it (for help texts).
        default_up: up axis unless asked; units: the length units it takes, the first the default.
        noun: what its columns are (``"markers"``, ``"joints"``).
        write: writes the whole file (see :data:`WriteFn`).
    """

    name: str
    suffix: str
    description: str
    default_up: str
    units: tuple[str, ...]
    noun: str
    write: WriteFn


def _trc(path: Path, take: ExportTake, up: str, units: str, name: str) -> tuple[int, int]:
    path.write_text(trc_text(take, up=up, units=units, file_name=name), encoding="utf-8")
    return take.n_frames, len(take.points.joint_names)


def _c3d(path: Path, take: ExportTake, up: str, units: str, name: str) -> tuple[int, int]:
    c3d_to_path(path, take, up)
    return take.n_frames, len(take.points.joint_names)


def _csv(path: Path, take: ExportTake, up: str, units: str, name: str) -> tuple[int, int]:
    path.write_text(csv_text(take, up=up), encoding="utf-8")
    return take.n_frames, len(take.points.joint_names)


def _json(path: Path, take: ExportTake, up: str, units: str, name: str) -> tuple[int, int]:
    path.write_text(json_text(take, up=up), encoding="utf-8")
    return take.n_frames, len(take.points.joint_names)


def _bvh(path: Path, take: ExportTake, up: str, units: str, name: str) -> tuple[int, int]:
    # The skeleton solver is imported only when a BVH is asked for: the other formats need none of it.
    from posestudio.reconstruction.skeleton import solve_skeleton

    motion = solve_skeleton(take.source).to_bvh(up=up, units=units, fps=take.fps if take.resampled else None)
    write_bvh(path, motion)
    return motion.n_frames, motion.n_joints


def _fbx(path: Path, take: ExportTake, up: str, units: str, name: str) -> tuple[int, int]:
    # FBX goes through Blender's own BVH importer and FBX exporter (installed separately).
    import tempfile

    from posestudio.reconstruction.skeleton import solve_skeleton
    from posestudio.reconstruction.skeleton.blender import blender_joints

    motion = solve_skeleton(take.source).to_bvh(up="y", units="cm", fps=take.fps if take.resampled else None)
    with tempfile.TemporaryDirectory() as tmp:
        write_bvh(Path(tmp) / "take.bvh", motion)
        armature = blender_joints(Path(tmp) / "take.bvh", metres_per_unit=0.01, fbx=path)
    return armature.heads.shape[0], len(armature.names)


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("bvh", ".bvh", "BVH motion of a solved skeleton: Blender, MotionBuilder, Maya", "y",
                 ("cm", "m", "mm"), "joints", _bvh),
    ExportFormat("trc", ".trc", "TRC markers: OpenSim", "y", ("mm", "cm", "m"), "markers", _trc),
    ExportFormat("c3d", ".c3d", "C3D markers: Visual3D, Mokka, Vicon, ezc3d", "z", ("mm",), "markers", _c3d),
    ExportFormat("csv", ".csv", "CSV table, one row per frame", "z", ("m",), "joints", _csv),
    ExportFormat("json", ".json", "JSON skeleton, format posestudio-skeleton-json", "z", ("m",), "joints", _json),
    ExportFormat("fbx", ".fbx", "FBX of the solved skeleton through Blender (install it: apt-get install blender): "
                 "Maya, MotionBuilder, Unity, Unreal", "y", ("cm",), "joints", _fbx),
)}
"""Every format an export writes, by name, in the order the command line lists them."""

#: The formats whose length unit can be chosen (``units=``); the others have one.
UNIT_FORMATS = tuple(name for name, f in FORMATS.items() if len(f.units) > 1)


def _plan(outputs: Mapping[str, str | os.PathLike[str]], up: str | None,
          units: str | None) -> list[tuple[ExportFormat, Path, str, str]]:
    """Each requested file with its format, up axis and units; every check made before any writing."""
    if not outputs:
        raise InputError("nothing to export: name at least one output (" +
                         ", ".join(f"--{n} FILE" for n in FORMATS) + ")")
    if up is not None:
        check_up(up)
    plan = []
    seen: dict[Path, str] = {}
    for name, target in outputs.items():
        if name not in FORMATS:
            raise InputError(f"unknown export format {name!r}; known: {', '.join(FORMATS)}")
        fmt, path = FORMATS[name], Path(target)
        if path.is_dir():
            raise InputError(f"{path}: is a folder; --{name} needs a file name (e.g. {path / ('take' + fmt.suffix)})")
        if path.name in ("", ".", ".."):
            raise InputError(f"{path}: --{name} needs a file name")
        key = path.resolve()
        if key in seen:
            raise InputError(f"{path}: named for both --{seen[key]} and --{name}; give each format its own file")
        seen[key] = name
        unit = fmt.units[0]
        if units is not None and name in UNIT_FORMATS:
            if units not in fmt.units:
                raise InputError(f"--units {units}: {name.upper()} files take {' or '.join(fmt.units)}")
            unit = units
        plan.append((fmt, path, up or fmt.default_up, unit))
    return plan


def export_take(points: Points3D, outputs: Mapping[str, str | os.PathLike[str]], *, up: str | None = None,
                units: str | None = None, fps: float | None = None, source: str | os.PathLike[str] = "points") \
        -> list[Written]:
    """Write a take in several formats, all or nothing.

    Every option and output path is checked before anything is written; then each file is written
    under a temporary name beside its target and, once all are written, renamed into place. On any
    failure no requested file is left (a file that was there before is kept as it was).

    Args:
        points: the take: ``points3d (F, J, 3)`` metres in the world frame (Z up), NaN where unknown;
            checked by :func:`~.take.check_take` (``source`` names it in errors).
        outputs: format name (a key of :data:`FORMATS`) -> file.
        up: ``"y"`` or ``"z"`` for every file, or None for each format's default.
        units: the length unit of the formats in :data:`UNIT_FORMATS` (BVH: cm, m or mm; TRC: mm, cm
            or m), or None for their defaults (cm, mm); C3D is always mm, CSV and JSON metres.
        fps: write at this frame rate (linear interpolation of positions; BVH: the solver's own
            resampling), or None for the take's.
    Returns:
        What was written, one :class:`Written` per output, in the order of ``outputs``.
    Raises:
        InputError: a take that cannot be exported, an unknown format, a bad option or output path.
    """
    plan = _plan(outputs, up, units)
    if fps is not None:
        fps = check_fps(fps)
    take = prepare(check_take(points, source), fps)

    def job(fmt: ExportFormat, path: Path, up_axis: str, unit: str) -> Callable[[Path], tuple[int, int]]:
        return lambda tmp: fmt.write(tmp, take, up_axis, unit, path.name)

    counts = write_all([(path, job(fmt, path, up_axis, unit)) for fmt, path, up_axis, unit in plan])
    return [Written(fmt.name, path, frames, count, fmt.noun, up_axis, unit, take.fps)
            for (fmt, path, up_axis, unit), (frames, count) in zip(plan, counts)]
