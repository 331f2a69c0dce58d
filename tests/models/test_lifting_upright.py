"""Lifting in a camera's upright frame: a camera rolled about its optical axis lifts the same body."""

from __future__ import annotations

import dataclasses

import numpy as np

from posestudio.core.rotations import rodrigues_to_matrix
from posestudio.models.lifting.lifter import DEFAULT_CHECKPOINT, Lifter
from posestudio.models.lifting.network import LiftingConfig, LiftingNet
from posestudio.models.lifting.upright import upright_turn
from posestudio.synthetic.body_motion import walking_body
from posestudio.synthetic.studio_rig import make_studio_rig


def _roll(degrees: float) -> np.ndarray:
    """A turn about the camera's optical axis (camera Z)."""
    return rodrigues_to_matrix(np.array([0.0, 0.0, np.radians(degrees)]))


def test_upright_turn_puts_the_world_vertical_up_in_the_image() -> None:
    rng = np.random.default_rng(0)
    rotations = np.stack([rodrigues_to_matrix(rng.normal(0.0, 1.0, 3)) for _ in range(50)])
    up = (upright_turn(rotations) @ rotations)[:, :, 2]                       # world Z in the turned camera
    assert np.allclose(up[:, 0], 0.0, atol=1e-12) and (up[:, 1] <= 0.0).all()
    turns = upright_turn(rotations)
    assert np.allclose(turns[:, 2], [0.0, 0.0, 1.0]) and np.allclose(np.linalg.det(turns), 1.0)
    # an upright camera is left as it is; one looking straight down too (roll undefined)
    assert np.allclose(upright_turn(upright_turn(rotations) @ rotations), np.eye(3), atol=1e-12)
    down = np.diag([1.0, -1.0, -1.0])
    assert np.allclose(upright_turn(down), np.eye(3))


def test_a_rolled_camera_lifts_the_same_body_as_the_upright_one() -> None:
    rig = make_studio_rig(4, seed=2, distortion="none")
    camera = rig[1]
    body = walking_body(60, fps=30.0, heading_deg=30.0, start=(-0.5, -0.3))
    lifter = Lifter.load(device="cpu") if DEFAULT_CHECKPOINT.is_file() else Lifter(
        LiftingNet(LiftingConfig(hidden=32, n_blocks=1)), "cpu")
    views = []
    for degrees in (0.0, 26.0, -90.0):
        rolled = dataclasses.replace(camera, rotation=_roll(degrees) @ camera.rotation,
                                     translation=_roll(degrees) @ camera.translation)
        pix = rolled.project(body)
        kp = np.concatenate([pix, np.ones(pix.shape[:-1] + (1,))], -1)
        views.append(lifter.lift_camera(rolled, kp, fps=30.0).world_points)
    assert np.isfinite(views[0]).all()
    for other in views[1:]:
        assert np.abs(other - views[0]).max() < 1e-4                            # metres: the same body
