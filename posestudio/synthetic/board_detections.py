"""Ground-truth board detections without rendering: project a moving board into a known rig.

Fast and exact, for testing the solver on its own (the image renderer in
:mod:`posestudio.synthetic` tests detection and solver together).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from posestudio.calibration.board import BoardSpec
from posestudio.calibration.detect import BoardObservation, CameraDetections
from posestudio.core.arrays import FloatArray
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import rodrigues_to_matrix

PoseAt = Callable[[float], tuple[FloatArray, FloatArray]]


def smooth_board_path(seed: int = 0, centre: tuple[float, float, float] = (0.0, 0.0, 1.2),
                      extent_m: float = 1.2, speed: float = 1.0) -> PoseAt:
    """A smooth random board-to-world pose as a function of time in seconds.

    Sums of low-frequency sinusoids for position (within ``extent_m`` of ``centre``) and for the
    rotation vector (the board turns through the whole circle so every camera sees its face).
    """
    rng = np.random.default_rng(seed)
    freqs = rng.uniform(0.05, 0.25, size=(2, 3, 3)) * speed
    phases = rng.uniform(0, 2 * np.pi, size=(2, 3, 3))
    amps = rng.uniform(0.3, 1.0, size=(2, 3, 3))
    c = np.asarray(centre, float)

    def pose_at(t: float) -> tuple[FloatArray, FloatArray]:
        s = (amps * np.sin(2 * np.pi * freqs * t + phases)).sum(axis=2)  # (2, 3)
        pos = c + extent_m * s[0] / amps[0].sum(axis=1) * np.array([1.0, 1.0, 0.4])
        yaw = 2 * np.pi * 0.2 * speed * t + phases[1, 0, 0]
        tilt = 0.6 * s[1, :2] / amps[1, :2].sum(axis=1)
        # board faces horizontally (its normal in the XY plane, turning with yaw), tilted a little
        r_face = rodrigues_to_matrix(np.array([np.pi / 2, 0.0, 0.0]))  # board z -> world -y... vertical board
        r_yaw = rodrigues_to_matrix(np.array([0.0, 0.0, yaw]))
        r_tilt = rodrigues_to_matrix(np.array([tilt[0], tilt[1], 0.0]))
        return r_yaw @ r_tilt @ r_face, pos

    return pose_at


def observe(rig: CameraRig, board: BoardSpec, pose_at: PoseAt, n_frames: int, fps: float,
            offsets_s: list[float] | None = None, noise_px: float = 0.3, seed: int = 0,
            min_corners: int = 6, max_obliquity_deg: float = 75.0) -> list[CameraDetections]:
    """Project the board's corners into every camera at each camera's exposure times.

    Camera c's frame f is exposed at ``f / fps + offsets_s[c]``. Corners outside the image are
    dropped (partial boards), as are views where the board is seen edge-on or from behind.
    """
    rng = np.random.default_rng(seed)
    offsets = offsets_s or [0.0] * len(rig)
    corners = board.corner_points()
    out = []
    for c, cam in enumerate(rig.cameras):
        obs = []
        for f in range(n_frames):
            r, t = pose_at(f / fps + offsets[c])
            world = corners @ r.T + t
            normal = r[:, 2]  # board z in world; the printed face looks along -z
            view = cam.center - world.mean(axis=0)
            cos = -(normal @ view) / np.linalg.norm(view)
            if cos < np.cos(np.radians(max_obliquity_deg)):
                continue
            pix = cam.project(world)
            ok = cam.in_image(pix, margin=2.0) & np.isfinite(pix).all(axis=1)
            if ok.sum() < min_corners:
                continue
            pix = pix + rng.normal(0, noise_px, pix.shape)
            obs.append(BoardObservation(f, np.flatnonzero(ok).astype(np.int64), pix[ok]))
        out.append(CameraDetections(cam.name, cam.image_size, n_frames, obs))
    return out
