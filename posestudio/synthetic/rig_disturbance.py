"""A camera bumped during a take: its new pose and the take's 2D as the rig then saw it (for tests
and benchmarks of :mod:`posestudio.calibration.rig_drift`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.camera import Camera
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import rodrigues_to_matrix

from .body_detections import DetectorErrors, simulate_detections
from .body_motion import walking_body


def moved_camera(camera: Camera, turn_deg: float, shift_m: float, seed: int = 0) -> Camera:
    """The camera turned by ``turn_deg`` degrees about a random axis through its centre and its
    centre shifted ``shift_m`` metres in a random direction (seeded)."""
    rng = np.random.default_rng([int(seed), 0xB0])
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    rot = rodrigues_to_matrix(np.radians(turn_deg) * axis) @ camera.rotation
    return camera.with_pose(rot, -rot @ (camera.center + shift_m * direction))


@dataclass
class DisturbedTake:
    """A take in which one camera moved.

    Attributes:
        keypoints: ``(C, F, J, 3)`` detections: the rig as calibrated before ``frame``, the moved
            rig from ``frame`` on (the same detector errors throughout).
        undisturbed: ``(C, F, J, 3)`` the same take had nothing moved.
        moved_rig: the rig after the move; camera: the moved camera's name; frame: first frame
            at the new pose.
    """

    keypoints: FloatArray
    undisturbed: FloatArray
    moved_rig: CameraRig
    camera: str
    frame: int


def disturbed_take(rig: CameraRig, points: FloatArray, camera: str, frame: int, turn_deg: float, shift_m: float,
                   errors: DetectorErrors | None = None, seed: int = 0) -> DisturbedTake:
    """Detector-like 2D of ``points`` (``(F, 17, 3)`` metres, H36M17) in which ``camera`` is turned by
    ``turn_deg`` degrees and shifted ``shift_m`` metres from ``frame`` on
    (:func:`moved_camera`, seeded by ``seed``); ``errors`` as in :func:`simulate_detections`."""
    moved = [moved_camera(c, turn_deg, shift_m, seed) if c.name == camera else c for c in rig.cameras]
    moved_rig = CameraRig(moved, dict(rig.metadata))
    before = simulate_detections(rig, points, errors).keypoints
    after = simulate_detections(moved_rig, points, errors).keypoints
    kp = before.copy()
    kp[:, frame:] = after[:, frame:]
    return DisturbedTake(kp, before, moved_rig, camera, int(frame))


def square_walk(frames: int, fps: float = 30.0, side_m: float = 1.2, speed_m_s: float = 0.4, corner: int = 0) -> FloatArray:
    """``(frames, 17, 3)`` metres: a body walking round a square of side ``side_m`` centred on the
    capture volume's axis (turning at each corner, starting at corner ``corner``), so that it stays
    in every camera's view and its depth changes (what a pose solve needs)."""
    h = side_m / 2
    corners = np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
    leg = max(2, round(side_m / speed_m_s * fps))
    parts, k, total = [], corner, 0
    while total < frames:
        a, b = corners[k % 4], corners[(k + 1) % 4]
        heading = float(np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0])))
        parts.append(walking_body(leg, fps, speed_m_s=speed_m_s, start=(float(a[0]), float(a[1])), heading_deg=heading))
        total += leg
        k += 1
    return np.concatenate(parts)[:frames]
