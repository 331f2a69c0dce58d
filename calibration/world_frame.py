"""Choosing the rig's world frame (right-handed, Z up, metres) after calibration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestudio.core.alignment import rigid_align
from posestudio.core.arrays import FloatArray
from posestudio.core.camera import Camera
from posestudio.core.files import read_toml
from posestudio.core.rig import CameraRig

from .errors import CalibrationInputError

#: Board axes -> world axes: x stays, y and z flip, so Z points out of the printed face (up when
#: the board lies face up on the floor) and the frame stays right-handed.
BOARD_TO_WORLD_AXES = np.diag([1.0, -1.0, -1.0])


@dataclass
class WorldFrame:
    """A rigid change of world frame ``X_new = R @ X_old + t``.

    Attributes:
        rotation: ``(3, 3)``; translation: ``(3,)`` metres; description: for the rig file.
    """

    rotation: FloatArray
    translation: FloatArray
    description: str

    def apply(self, cam: Camera) -> Camera:
        """The camera with its world-to-camera pose expressed in the new world frame."""
        r = cam.rotation @ self.rotation.T
        return cam.with_pose(r, cam.translation - r @ self.translation)

    def apply_points(self, points: FloatArray) -> FloatArray:
        """``(..., 3)`` old-world points in the new frame."""
        return points @ self.rotation.T + self.translation


@dataclass
class ScenePointsFit:
    """How well the surveyed scene points fit the calibrated rig (the report's ``scene_points``).

    Attributes:
        points_used: names of the points seen by two or more cameras.
        residual_mm: per used point, distance of its triangulation from its survey, millimetres.
        rms_mm: RMS of those residuals, millimetres.
        scale_check: scale a similarity fit would apply (1 when survey and calibration agree).
        points_not_used: names of the points fewer than two cameras saw.
    """

    points_used: list[str]
    residual_mm: dict[str, float]
    rms_mm: float
    scale_check: float
    points_not_used: list[str]


def world_frame_from_board(r_board: FloatArray, t_board: FloatArray, frame: int) -> WorldFrame:
    """World frame on the board at one frame: origin at its first square's outer corner, X along its
    columns, Z out of the printed face.

    Args:
        r_board, t_board: board-to-(old)world pose at that frame.
    """
    rot = BOARD_TO_WORLD_AXES @ r_board.T
    return WorldFrame(rot, -rot @ t_board,
                      f"board at frame {frame}: origin at the board's outer corner of square (0, 0), X along "
                      "its columns, Z out of its printed face (up when it lies face up on the floor); metres")


def default_world_frame(cams: list[Camera], board_positions: list[FloatArray]) -> WorldFrame:
    """Origin at the centre of the board's path, Z up along the cameras' mean up direction, X
    towards the first camera's horizontal viewing direction (negated), metres.

    Studio cameras are mounted roughly upright, so their mean up vector (``-y`` of each camera, in
    world coordinates) is a good estimate of the vertical when no board lay on the floor.
    """
    up = np.mean([-c.rotation[1] for c in cams], axis=0)
    z = up / np.linalg.norm(up)
    fwd = cams[0].rotation[2]
    x = -(fwd - (fwd @ z) * z)
    if np.linalg.norm(x) < 1e-6:
        x = np.cross(z, [1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    rot = np.stack([x, y, z])  # rows: new axes in old coordinates
    centre = np.median(np.stack(board_positions), axis=0)
    return WorldFrame(rot, -rot @ centre,
                      f"origin at the centre of the board's path, Z up along the cameras' mean up direction, "
                      f"X pointing from the capture volume towards camera {cams[0].name} (horizontal); metres")


def read_scene_points(path: str | Path, camera_names: list[str]) -> tuple[list[str], FloatArray, FloatArray]:
    """Read surveyed scene points and where each camera sees them.

    File (TOML, metres and pixels)::

        [[point]]
        name = "floor mark A"
        world = [0.0, 0.0, 0.0]          # metres, in the world frame you want
        pixels = { cam1 = [812.5, 903.0], cam2 = [455.0, 870.25] }   # distorted image pixels

    Returns:
        ``(names (P,), world (P, 3), pixels (C, P, 2))`` with NaN where a camera does not see a point.
    Raises:
        CalibrationInputError: naming the file and the point or field that is wrong.
    """
    path = Path(path)
    doc = read_toml(path, CalibrationInputError, "scene-point file")
    points = doc.get("point")
    if not isinstance(points, list) or not points:
        raise CalibrationInputError(f"{path}: no [[point]] tables")
    names, world = [], []
    pixels = np.full((len(camera_names), len(points), 2), np.nan)
    for k, pt in enumerate(points):
        if not isinstance(pt, dict):
            raise CalibrationInputError(f"{path}: [[point]] number {k + 1} is not a table")
        name = str(pt.get("name", f"point {k + 1}"))
        xyz = _numbers(pt.get("world"), 3)
        if xyz is None:
            raise CalibrationInputError(f"{path}: point {name!r} needs world = [x, y, z] in metres")
        seen = pt.get("pixels", {})
        if not isinstance(seen, dict):
            raise CalibrationInputError(f"{path}: point {name!r}: pixels must be a table {{ CAMERA = [u, v] }}")
        for cam, uv in seen.items():
            if cam not in camera_names:
                raise CalibrationInputError(f"{path}: point {name!r} names camera {cam!r}, which is not in the "
                                            f"rig (cameras: {', '.join(camera_names)})")
            uv = _numbers(uv, 2)
            if uv is None:
                raise CalibrationInputError(f"{path}: point {name!r}, camera {cam}: pixels must be [u, v]")
            pixels[camera_names.index(cam), k] = uv
        names.append(name)
        world.append(xyz)
    return names, np.stack(world), pixels


def _numbers(value: object, n: int) -> FloatArray | None:
    """``value`` as ``(n,)`` finite floats, or None when it is not a list of ``n`` numbers."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.isfinite(arr).all() else None


def world_frame_from_scene_points(rig: CameraRig, names: list[str], world: FloatArray, pixels: FloatArray,
                                  source: str = "scene points") -> tuple[WorldFrame, ScenePointsFit]:
    """Rigid transform that puts triangulated scene points on their surveyed coordinates.

    The board already fixes the scale, so only rotation and translation are solved (the scale a
    similarity fit would need is reported as a check of the survey and the calibration).

    Args:
        rig: the calibrated rig (any world frame).
        names: ``(P,)`` point names; world: ``(P, 3)`` surveyed positions, metres;
        pixels: ``(C, P, 2)`` where each camera sees them (NaN where not).
    Returns:
        ``(frame, fit)``: the new world frame and the points' residuals.
    Raises:
        CalibrationInputError: fewer than 3 points seen by two cameras, or collinear points.
    """
    tri = rig.triangulate(pixels)
    ok = np.isfinite(tri).all(axis=1)
    if ok.sum() < 3:
        seen = {n: int(np.isfinite(pixels[:, k, 0]).sum()) for k, n in enumerate(names)}
        raise CalibrationInputError(f"{source}: at least 3 points must each be seen by 2 or more cameras; "
                                    f"cameras per point: {seen}")
    centred = world[ok] - world[ok].mean(axis=0)
    if np.linalg.svd(centred, compute_uv=False)[1] < 1e-3:
        raise CalibrationInputError(f"{source}: the scene points are (nearly) collinear; the world frame's "
                                    "rotation needs points spread in two directions")
    rot, t, _ = rigid_align(tri[ok], world[ok])
    _, _, scale = rigid_align(tri[ok], world[ok], with_scale=True)
    resid = np.linalg.norm(tri[ok] @ rot.T + t - world[ok], axis=1) * 1000.0
    used = [n for n, o in zip(names, ok) if o]
    fit = ScenePointsFit(used, dict(zip(used, np.round(resid, 2).tolist())), float(np.sqrt(np.mean(resid**2))),
                         float(scale), [n for n, o in zip(names, ok) if not o])
    return WorldFrame(rot, t, f"surveyed scene points ({source}): {len(used)} points, RMS "
                      f"{fit.rms_mm:.1f} mm; metres"), fit
