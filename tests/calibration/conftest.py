"""Shared fixtures: a known studio rig and exact board detections from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posestudio.calibration.board import BoardSpec
from posestudio.calibration.camera import Camera
from posestudio.calibration.rig import CameraRig

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def look_at(centre: np.ndarray, target=(0.0, 0.0, 1.0), up=(0.0, 0.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera (R, t) of a camera at ``centre`` looking at ``target`` (Z up world)."""
    z = np.asarray(target, float) - centre
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    rot = np.stack([x, y, z])
    return rot, -rot @ centre


def ring_rig(n: int = 4, radius: float = 3.5, seed: int = 1, dist=(-0.3, 0.12, 0.001, -0.001, -0.02),
             size=(1920, 1080)) -> CameraRig:
    """Cameras on a ring at ``radius`` metres, 2 m high, looking at (0, 0, 1)."""
    rng = np.random.default_rng(seed)
    cams = []
    for i in range(n):
        a = 2 * np.pi * i / n + 0.3
        centre = np.array([radius * np.cos(a), radius * np.sin(a), 2.0])
        rot, t = look_at(centre)
        f = rng.uniform(1100, 1500)
        k = np.array([[f, 0, size[0] / 2 + rng.uniform(-30, 30)], [0, f * 1.001, size[1] / 2 + rng.uniform(-20, 20)],
                      [0, 0, 1]])
        cams.append(Camera(f"cam{i}", size, k, np.asarray(dist, float), rot, t))
    return CameraRig(cams)


@pytest.fixture
def studio_board() -> BoardSpec:
    return BoardSpec("charuco", 9, 6, 0.1, 0.075, "DICT_4X4_50")
