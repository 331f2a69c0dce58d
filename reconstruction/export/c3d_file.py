"""C3D files (biomechanics' binary marker format) through the ``c3d`` library.

One point per joint, labelled with the joint's name (``POINT:LABELS``), at ``POINT:RATE`` frames per
second, in millimetres (``POINT:UNITS`` ``"mm"``), stored as 32-bit floats (``POINT:SCALE`` negative).
Its magnitude is max|coordinate| / 32000 as the C3D documentation asks (so the file survives a
conversion to the integer format), at least :data:`MIN_POINT_SCALE_MM`, and is the resolution of the
residuals.

Each point's fourth word holds its residual: -1 marks a missing point (its coordinates are written
as 0), and a known point gets ``residual = RESIDUAL_RANGE_MM * (1 - confidence)`` millimetres,
rounded to the residual resolution and at least one step (a residual of 0 means "interpolated or
edited, not measured" in C3D, and -1 "missing"). So a reader recovers the confidence as
``1 - residual / RESIDUAL_RANGE_MM``. The axes are the world's (Z up, the usual C3D lab frame) unless
asked otherwise; ``POINT:X_SCREEN`` / ``POINT:Y_SCREEN`` tell viewers which axis is up.

Why ``c3d`` and not ``ezc3d``: ezc3d 1.7.2 (pyomeca) writes the residual of a floating-point file into
the camera-mask byte (float value ``256 * residual``; pyomeca/ezc3d issue #386, open, reports the
same mismatch when reading the C3D.org sample files), where the C3D documentation, Vicon, Mokka/BTK
and ``c3d`` read the residual from the low byte. ``c3d`` writes the documented layout; ezc3d still
reads these files' labels, rate, units, coordinates and missing points correctly (the tests check).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import BinaryIO

import c3d
import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.keypoints_file import Points3D

from .atomic import write_one
from .take import LENGTH_UNITS, ExportTake, check_take, prepare, to_up_axis

#: Residual (mm) of a point with confidence 0; confidence 1 gets the smallest residual, one step.
RESIDUAL_RANGE_MM = 25.0
#: Smallest |POINT:SCALE| (mm): the residual resolution, so that RESIDUAL_RANGE_MM fits in 255 steps.
MIN_POINT_SCALE_MM = 0.1
#: C3D labels are conventionally at most 32 characters; longer joint names are cut.
MAX_LABEL = 32


def point_scale(xyz_mm: FloatArray) -> float:
    """``|POINT:SCALE|`` (mm) for these coordinates: max(max|coordinate| / 32000, MIN_POINT_SCALE_MM)."""
    finite = np.abs(xyz_mm[np.isfinite(xyz_mm)])
    return float(max(finite.max(initial=0.0) / 32000.0, MIN_POINT_SCALE_MM))


def residuals_mm(confidence: FloatArray, known: np.ndarray, scale: float) -> FloatArray:
    """``(F, J)`` C3D residuals: -1 where a point is missing, else
    ``RESIDUAL_RANGE_MM * (1 - confidence)`` rounded to ``scale`` steps, from 1 to 255 steps."""
    steps = np.clip(np.rint(RESIDUAL_RANGE_MM * (1.0 - np.clip(confidence, 0.0, 1.0)) / scale), 1, 255)
    return np.where(known, steps * scale, -1.0)


def _labels(names: list[str]) -> list[str]:
    labels = [str(n).strip()[:MAX_LABEL] or f"point{i + 1}" for i, n in enumerate(names)]
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):        # cut names that collide get a number (J labels, once)
        if label in seen:
            labels[i] = f"{label[:MAX_LABEL - 4]}_{i + 1}"
        seen[labels[i]] = i
    return labels


def c3d_write(handle: BinaryIO, take: ExportTake, *, up: str = "z") -> None:
    """Write ``take.points`` as a C3D file to an open binary handle (see the module docstring).

    Args:
        handle: a file opened for binary writing.
        take: the take at the output rate; ``points3d (F, J, 3)`` metres.
        up: ``"z"`` (the world frame, default) or ``"y"`` (``(x, y, z) -> (x, z, -y)``).
    """
    pts = take.points
    xyz = to_up_axis(pts.points3d, up) * LENGTH_UNITS["mm"]          # (F, J, 3) mm
    known = np.isfinite(xyz).all(axis=-1)
    scale = point_scale(xyz)
    n_frames, n_joints = known.shape
    # c3d's layout per point: x, y, z, residual (mm, -1 = missing), camera mask (0: no camera bits)
    frames = np.zeros((n_frames, n_joints, 5), dtype=np.float32)
    frames[..., :3] = np.where(known[..., None], xyz, 0.0)
    frames[..., 3] = residuals_mm(np.asarray(pts.confidence), known, scale)
    writer = c3d.Writer(point_rate=float(take.fps), analog_rate=0.0, point_scale=-scale, point_units="mm")
    writer.set_point_labels(_labels(list(pts.joint_names)))
    writer.set_screen_axis("+X", "+Y" if up == "y" else "+Z")
    writer.set_start_frame(1)
    no_analog = np.zeros((0, 0), dtype=np.float32)
    writer.add_frames([(frame, no_analog) for frame in frames])
    with warnings.catch_warnings():
        # a marker file has no analog channels; c3d says so on every write
        warnings.filterwarnings("ignore", message="No analog data found in file")
        writer.write(handle)


def c3d_to_path(path: Path, take: ExportTake, up: str = "z") -> None:
    """Write ``take.points`` as a C3D file at ``path`` (directly; :func:`write_c3d` is the atomic one)."""
    with open(path, "wb") as handle:
        c3d_write(handle, take, up=up)


def write_c3d(path: str | os.PathLike[str], points: Points3D, *, up: str = "z", fps: float | None = None) -> None:
    """Write a take as a C3D file, atomically (checked first; see :func:`c3d_write`; ``fps`` resamples).

    A temporary file in the same folder is renamed into place (``reconstruction/export/atomic.py``).
    """
    take = prepare(check_take(points, "points"), fps)
    write_one(path, lambda tmp: c3d_to_path(tmp, take, up))
