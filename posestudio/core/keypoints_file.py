"""Keypoint files: multi-view 2D keypoints in, 3D points out (``.npz``, versioned).

2D keypoints (``keypoints2d.npz``)::

    keypoints       float (cameras, frames, joints, 3): x, y in pixels, confidence in [0, 1]; NaN where absent
    camera_names    str (cameras,)   matching the rig's camera names
    joint_names     str (joints,)    a known layout (H36M17, COCO17, BLAZEPOSE33)
    fps             float ()         frames per second
    format          str ()           "posestudio-keypoints2d"
    format_version  int ()           1

3D points (``points3d.npz``)::

    points3d        float (frames, joints, 3): metres in the rig's world frame, NaN where unknown
    confidence      float (frames, joints): in [0, 1]
    joint_names     str (joints,); fps float (); format "posestudio-points3d"; format_version 1

Readers refuse files that are not npz, lack a field, have wrong shapes or an unknown version,
naming the file and the field; :func:`read_points3d` also refuses an empty or all-NaN take, a
confidence of the wrong shape or range and a bad fps (:func:`check_points3d`, the one set of rules
for every reader of a ``posestudio reconstruct`` output). Writers write atomically (temporary file,
then rename).
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .arrays import FloatArray
from .errors import InputError
from .files import write_npz_atomic

KEYPOINTS2D_FORMAT = "posestudio-keypoints2d"
POINTS3D_FORMAT = "posestudio-points3d"
FORMAT_VERSION = 1


class KeypointFileError(InputError):
    """A keypoint file that cannot be used; the message names the file and the problem."""


@dataclass
class Keypoints2D:
    """Multi-view 2D keypoints.

    Attributes:
        keypoints: ``(C, F, J, 3)`` x, y (pixels), confidence.
        camera_names: ``(C,)``; joint_names: ``(J,)``; fps: frames per second.
    """

    keypoints: FloatArray
    camera_names: list[str]
    joint_names: list[str]
    fps: float

    @property
    def n_frames(self) -> int:
        return int(self.keypoints.shape[1])


@dataclass
class Points3D:
    """3D points over time: ``points3d (F, J, 3)`` metres, ``confidence (F, J)``."""

    points3d: FloatArray
    confidence: FloatArray
    joint_names: list[str]
    fps: float


def write_keypoints2d(path: str | Path, kp: Keypoints2D) -> None:
    """Write a 2D keypoint file (validated first, so a bad array is never written)."""
    path = Path(path)
    _validate_2d(kp, str(path))
    write_npz_atomic(path, keypoints=kp.keypoints.astype(np.float32), camera_names=np.array(kp.camera_names),
                  joint_names=np.array(kp.joint_names), fps=np.float64(kp.fps),
                  format=np.array(KEYPOINTS2D_FORMAT), format_version=np.int64(FORMAT_VERSION))


def write_points3d(path: str | Path, pts: Points3D) -> None:
    """Write a 3D point file."""
    write_npz_atomic(Path(path), points3d=pts.points3d.astype(np.float64), confidence=pts.confidence.astype(np.float32),
                  joint_names=np.array(pts.joint_names), fps=np.float64(pts.fps), format=np.array(POINTS3D_FORMAT),
                  format_version=np.int64(FORMAT_VERSION))


def _load(path: Path, fmt: str) -> dict:
    if not path.is_file():
        raise KeypointFileError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            doc = {k: data[k] for k in data.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise KeypointFileError(f"{path}: not a readable .npz file ({exc})") from None
    if "format" in doc and str(doc["format"]) != fmt:
        raise KeypointFileError(f"{path}: holds {str(doc['format'])!r}, expected {fmt!r}")
    version = int(doc["format_version"]) if "format_version" in doc else FORMAT_VERSION
    if version != FORMAT_VERSION:
        raise KeypointFileError(f"{path}: format_version {version} is not supported (this PoseStudio reads "
                                f"version {FORMAT_VERSION})")
    return doc


def _need(doc: dict, key: str, path: Path, what: str) -> np.ndarray:
    if key not in doc:
        raise KeypointFileError(f"{path}: missing field '{key}' ({what}); fields present: {sorted(doc)}")
    return doc[key]


def read_keypoints2d(path: str | Path) -> Keypoints2D:
    """Read and validate a 2D keypoint file."""
    path = Path(path)
    doc = _load(path, KEYPOINTS2D_FORMAT)
    kp = np.asarray(_need(doc, "keypoints", path, "float (cameras, frames, joints, 3)"), dtype=np.float64)
    cams = [str(c) for c in np.atleast_1d(_need(doc, "camera_names", path, "camera names (cameras,)"))]
    joints = [str(j) for j in np.atleast_1d(_need(doc, "joint_names", path, "joint names (joints,)"))]
    fps = float(_need(doc, "fps", path, "frames per second"))
    out = Keypoints2D(kp, cams, joints, fps)
    _validate_2d(out, str(path))
    return out


def _validate_2d(kp: Keypoints2D, where: str) -> None:
    a = kp.keypoints
    if a.ndim != 4 or a.shape[-1] != 3:
        raise KeypointFileError(f"{where}: 'keypoints' has shape {a.shape}; expected (cameras, frames, joints, 3) "
                                "with x, y in pixels and a confidence")
    c, f, j, _ = a.shape
    if f == 0:
        raise KeypointFileError(f"{where}: 'keypoints' has no frames")
    if len(kp.camera_names) != c:
        raise KeypointFileError(f"{where}: 'camera_names' has {len(kp.camera_names)} names for {c} cameras")
    if len(set(kp.camera_names)) != c:
        raise KeypointFileError(f"{where}: 'camera_names' repeats a name: {kp.camera_names}")
    if len(kp.joint_names) != j:
        raise KeypointFileError(f"{where}: 'joint_names' has {len(kp.joint_names)} names for {j} joints")
    if not (np.isfinite(kp.fps) and kp.fps > 0):
        raise KeypointFileError(f"{where}: 'fps' must be a positive number, got {kp.fps}")
    if not np.isfinite(a[..., :2]).any():
        raise KeypointFileError(f"{where}: every keypoint is NaN: nothing to reconstruct")
    conf = a[..., 2][np.isfinite(a[..., 2])]
    if conf.size and (conf.min() < 0 or conf.max() > 1):
        raise KeypointFileError(f"{where}: confidences must lie in [0, 1], found {conf.min():.3g}..{conf.max():.3g}")


def read_points3d(path: str | Path) -> Points3D:
    """Read and validate a 3D point file (:func:`check_points3d`; values as stored, not normalised).

    Raises:
        KeypointFileError: naming the file: missing, not a points3d file, a field missing or
            malformed, or a take that :func:`check_points3d` refuses.
    """
    path = Path(path)
    doc = _load(path, POINTS3D_FORMAT)
    try:
        pts = np.asarray(_need(doc, "points3d", path, "float (frames, joints, 3)"), dtype=np.float64)
        if pts.ndim != 3 or pts.shape[-1] != 3:
            raise KeypointFileError(f"{path}: 'points3d' has shape {pts.shape}; expected (frames, joints, 3)")
        conf = np.asarray(doc.get("confidence", np.isfinite(pts[..., 0]).astype(float)), dtype=np.float64)
        joints = [str(j) for j in np.atleast_1d(_need(doc, "joint_names", path, "joint names"))]
        out = Points3D(pts, conf, joints, float(_need(doc, "fps", path, "frames per second")))
    except KeypointFileError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise KeypointFileError(f"{path}: malformed points3d file ({exc})") from None
    check_points3d(out, str(path))
    return out


def check_points3d(points: Points3D, where: str | Path) -> None:
    """Refuse a take that cannot be shown or exported, with :class:`KeypointFileError` naming ``where``.

    Refused: ``points3d`` not ``(F, J, 3)``; no frames or no joints, or every point NaN ("the take
    is empty"); infinite coordinates; ``joint_names`` that do not name each joint once; a
    ``confidence`` not ``(F, J)`` or outside [0, 1] (NaN allowed); an ``fps`` that is not a
    positive number. The one validation of every reader of ``points3d.npz`` (:func:`read_points3d`)
    and of the exporters' in-memory takes.
    """
    pts = np.asarray(points.points3d, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[-1] != 3:
        raise KeypointFileError(f"{where}: 'points3d' has shape {pts.shape}; expected (frames, joints, 3)")
    n_frames, n_joints = pts.shape[:2]
    if n_frames == 0:
        raise KeypointFileError(f"{where}: the take is empty: 'points3d' has no frames")
    if n_joints == 0:
        raise KeypointFileError(f"{where}: the take is empty: 'points3d' has no joints")
    if np.isinf(pts).any():
        raise KeypointFileError(f"{where}: 'points3d' holds infinite coordinates; expected metres, NaN where unknown")
    if not np.isfinite(pts).all(axis=-1).any():
        raise KeypointFileError(f"{where}: the take is empty: every point in 'points3d' is NaN (unknown)")
    names = [str(n) for n in points.joint_names]
    if len(names) != n_joints:
        raise KeypointFileError(f"{where}: 'joint_names' has {len(names)} names for {n_joints} joints")
    if len(set(names)) != n_joints or any(not n.strip() for n in names):
        raise KeypointFileError(f"{where}: 'joint_names' must name each joint once, got {names}")
    conf = np.asarray(points.confidence, dtype=np.float64)
    if conf.shape != (n_frames, n_joints):
        raise KeypointFileError(f"{where}: 'confidence' has shape {conf.shape}; expected (frames, joints) = "
                                f"{(n_frames, n_joints)}")
    given = conf[np.isfinite(conf)]
    if given.size and (given.min() < 0 or given.max() > 1):
        raise KeypointFileError(f"{where}: 'confidence' must lie in [0, 1], found {given.min():.3g}..{given.max():.3g}")
    try:
        fps, shown = float(points.fps), f"{float(points.fps):g}"
    except (TypeError, ValueError):
        fps, shown = math.nan, repr(points.fps)
    if not (math.isfinite(fps) and fps > 0):
        raise KeypointFileError(f"{where}: 'fps' must be a positive number of frames per second, got {shown}")
