"""The take every exporter writes: a reconstruction's 3D points read, checked, resampled, turned.

A take is a :class:`~posestudio.core.keypoints_file.Points3D`: ``points3d (F, J, 3)`` metres in the
rig's world frame (right-handed, Z up), NaN where a joint is unknown; ``confidence (F, J)`` in
[0, 1]; ``joint_names (J,)``; ``fps``. :func:`read_take` reads it from a ``posestudio reconstruct``
output folder (:mod:`..take_folder` finds the file, :func:`~posestudio.core.keypoints_file.read_points3d`
refuses one that cannot be used); :func:`check_take` applies the same rules to a take in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.bvh import Y_UP_TO_Z_UP
from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import Points3D, check_points3d, read_points3d

from ..take_folder import take_file

#: Up axes a file can have: ``"z"`` (the studio's world frame) or ``"y"`` (BVH, OpenSim).
UP_AXES = ("y", "z")

#: Z-up world axes -> Y-up file axes: ``(x, y, z) -> (x, z, -y)``, a -90 degree rotation about X
#: (determinant +1, so right-handed stays right-handed); the inverse of ``core.bvh.Y_UP_TO_Z_UP``.
Z_UP_TO_Y_UP: FloatArray = Y_UP_TO_Z_UP.T.copy()

#: File length units and the number of them in one metre.
LENGTH_UNITS: dict[str, float] = {"mm": 1000.0, "cm": 100.0, "m": 1.0}


def to_up_axis(points: FloatArray, up: str) -> FloatArray:
    """World points (Z up) in a file's axes.

    Args:
        points: ``(..., 3)`` in the world frame (any length unit; NaN passes through).
        up: ``"z"`` (unchanged) or ``"y"`` (``(x, y, z) -> (x, z, -y)``, :data:`Z_UP_TO_Y_UP`).
    Returns:
        ``(..., 3)``, a new array.
    """
    check_up(up)
    pts = np.asarray(points, dtype=np.float64)
    if up == "z":
        return pts.copy()
    return pts @ Z_UP_TO_Y_UP.T


def check_up(up: str) -> str:
    """``up`` if it is one of :data:`UP_AXES`; else :class:`InputError`."""
    if up not in UP_AXES:
        raise InputError(f"up axis must be one of {', '.join(UP_AXES)}, got {up!r}")
    return up


def check_fps(fps: float, what: str = "--fps") -> float:
    """``fps`` as a float if it is a positive finite number; else :class:`InputError` naming ``what``."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number of frames per second, got {fps!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{what} must be a positive number of frames per second, got {fps!r}")
    return value


def check_take(points: Points3D, where: str | Path) -> Points3D:
    """A take that every exporter can write, or :class:`InputError` naming ``where`` and the problem.

    The rules are :func:`~posestudio.core.keypoints_file.check_points3d`'s (the ones every reader of
    ``points3d.npz`` applies): ``points3d`` not ``(F, J, 3)``, no frames, no joints, every point NaN,
    infinite coordinates, a ``confidence`` not ``(F, J)`` or outside [0, 1], ``joint_names`` that do
    not name each joint once, or an ``fps`` that is not a positive number are refused.

    Returns:
        A new :class:`Points3D` (:func:`normalised`).
    """
    check_points3d(points, where)
    return normalised(points)


def normalised(points: Points3D) -> Points3D:
    """A checked take as the writers want it: float64 points with a joint NaN in all three
    coordinates whenever it is NaN in any; confidence float64 with NaN read as 0 and 0 wherever the
    point is unknown; ``fps`` a float."""
    pts = np.asarray(points.points3d, dtype=np.float64)
    conf = np.asarray(points.confidence, dtype=np.float64)
    known = np.isfinite(pts).all(axis=-1)
    conf = np.where(known & np.isfinite(conf), conf, 0.0)
    pts = np.where(known[..., None], pts, np.nan)
    return Points3D(pts, conf, [str(n) for n in points.joint_names], float(points.fps))


def read_take(folder: str | Path, person: int | None = None) -> tuple[Points3D, Path]:
    """Read and check the take of a ``posestudio reconstruct`` output folder.

    Args:
        folder: the output folder; person: ``None`` (the subject) or ``K`` (``people/person_K``),
            resolved by :func:`posestudio.reconstruction.take_folder.take_file`.
    Returns:
        The take (checked by :func:`~posestudio.core.keypoints_file.read_points3d`,
        :func:`normalised`) and the file it came from.
    Raises:
        InputError: naming the file: missing, not a points3d.npz, malformed or empty.
    """
    path = take_file(folder, person)
    return normalised(read_points3d(path)), path


@dataclass(frozen=True)
class ExportTake:
    """What the writers get: the take as read and the take at the output frame rate.

    Attributes:
        source: the checked take as read (its own fps and frame count).
        points: the take resampled to the output rate (``source`` itself when no rate was asked).
        resampled: whether an output rate was asked for.
    """

    source: Points3D
    points: Points3D
    resampled: bool

    @property
    def fps(self) -> float:
        """Output frames per second."""
        return float(self.points.fps)

    @property
    def n_frames(self) -> int:
        """Output frame count."""
        return int(self.points.points3d.shape[0])


def resample(points: Points3D, fps: float) -> Points3D:
    """The take at another frame rate, by linear interpolation in time (vectorised).

    Output frame ``k`` is at ``k / fps`` seconds, for every such instant within the take (the first
    frame at 0 s, the last at or before the take's last frame). Positions and confidences are
    interpolated between the two nearest input frames; an output frame that falls on an input frame
    (within 1e-9 of a frame) copies it. A joint unknown (NaN) in either neighbour is unknown, with
    confidence 0.

    Args:
        points: a take checked by :func:`check_take`; ``points3d (F, J, 3)``, ``confidence (F, J)``.
        fps: output frames per second, > 0.
    Returns:
        ``Points3D`` with ``points3d (F', J, 3)``, ``confidence (F', J)``, ``fps = fps``.
    """
    fps = check_fps(fps)
    pts = np.asarray(points.points3d, dtype=np.float64)
    conf = np.asarray(points.confidence, dtype=np.float64)
    n = pts.shape[0]
    duration = (n - 1) / points.fps
    n_out = int(math.floor(duration * fps + 1e-9)) + 1
    position = np.arange(n_out) * (points.fps / fps)   # fractional input frame of each output frame
    snapped = np.rint(position)
    on_frame = np.abs(position - snapped) < 1e-9
    position = np.where(on_frame, snapped, position)
    i0 = np.clip(np.floor(position).astype(np.int64), 0, n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    w = np.where(on_frame, 0.0, position - i0)
    out = (1.0 - w)[:, None, None] * pts[i0] + w[:, None, None] * pts[i1]
    out = np.where(on_frame[:, None, None], pts[i0], out)   # exact copies, not 1 * p + 0 * NaN
    out_conf = np.where(on_frame[:, None], conf[i0], (1.0 - w)[:, None] * conf[i0] + w[:, None] * conf[i1])
    known = np.isfinite(out).all(axis=-1)
    return Points3D(np.where(known[..., None], out, np.nan), np.where(known, out_conf, 0.0),
                    list(points.joint_names), fps)


def prepare(points: Points3D, fps: float | None = None) -> ExportTake:
    """An :class:`ExportTake` of a checked take, resampled to ``fps`` when given."""
    if fps is None:
        return ExportTake(points, points, False)
    return ExportTake(points, resample(points, fps), True)


def frame_times(n_frames: int, fps: float) -> FloatArray:
    """``(F,)`` seconds of frames ``0 .. F-1`` at ``fps``: ``k / fps``."""
    return np.arange(n_frames, dtype=np.float64) / float(fps)
