"""Model-based placement of a known body shape from what the cameras see of it."""

from __future__ import annotations

import cv2
import numpy as np

from posestudio.core.rotations import rodrigues_to_matrix
from posestudio.reconstruction.view_fit import fit_pose_to_views
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_motion import walking_body


def test_batched_rodrigues_matches_opencv() -> None:
    """The fit's rotation updates use calibration.geometry's batched Rodrigues formula."""
    rng = np.random.default_rng(0)
    w = np.concatenate([rng.normal(0, 1.0, (20, 3)), np.zeros((1, 3)), np.full((1, 3), 1e-10)])
    expected = np.stack([cv2.Rodrigues(v)[0] for v in w])
    np.testing.assert_allclose(rodrigues_to_matrix(w), expected, atol=1e-12)


def _setup(n_frames: int = 12, seed: int = 0):
    rig = make_studio_rig(4, (1920, 1080), seed=seed, distortion="mild")
    body = walking_body(n_frames, start=(-0.5, 0.2))                          # (F, 17, 3) world
    centre = body.mean(axis=1, keepdims=True)
    shape = body - centre                                                      # the shape in its own frame
    return rig, body, shape, centre[:, 0]


def _observe(rig, body, cameras):
    xy = np.full((len(rig),) + body.shape[:2] + (2,), np.nan)
    for c in cameras:
        xy[c] = rig[c].undistort_points(rig[c].project(body))
    return xy


def _cams(rig):
    return rig.rotations, rig.translations, rig.focal_x


def test_single_camera_recovers_the_pose_from_a_poor_start() -> None:
    rig, body, shape, centre = _setup()
    rc, tc, f = _cams(rig)
    xy = _observe(rig, body, [0])
    start_rot = rodrigues_to_matrix(np.tile([[0.15, -0.1, 0.12]], (len(body), 1)))       # about 12 degrees off
    fit = fit_pose_to_views(shape, rc, tc, f, xy, np.ones(xy.shape[:-1]), start_rot, centre + [0.15, -0.1, 0.05])
    err = np.linalg.norm(fit.apply(shape) - body, axis=-1)
    assert err.max() < 1e-3, err.max()
    assert np.all(fit.rms_px < 0.01)
    assert np.all(fit.n_observations == 17)


def test_a_confident_wrong_detection_does_not_drag_the_body() -> None:
    rig, body, shape, centre = _setup()
    rc, tc, f = _cams(rig)
    xy = _observe(rig, body, [1])
    xy[1, :, 13] += 250.0 / f[1]                                               # left wrist 250 px off in every frame
    start = np.broadcast_to(np.eye(3), (len(body), 3, 3))
    robust = fit_pose_to_views(shape, rc, tc, f, xy, np.ones(xy.shape[:-1]), start, centre + 0.05)
    plain = fit_pose_to_views(shape, rc, tc, f, xy, np.ones(xy.shape[:-1]), start, centre + 0.05, huber_px=1e9)
    err = np.linalg.norm(robust.apply(shape) - body, axis=-1)
    err_plain = np.linalg.norm(plain.apply(shape) - body, axis=-1)
    assert np.median(err) < 0.01 and err.max() < 0.025, (np.median(err), err.max())
    assert np.median(err_plain) > 10 * np.median(err)          # what least squares alone would do


def test_known_points_alone_give_the_rigid_alignment() -> None:
    rig, body, shape, centre = _setup(3)
    rc, tc, f = _cams(rig)
    nothing = np.full((len(rig),) + body.shape[:2] + (2,), np.nan)
    known = np.where(np.arange(17)[None, :, None] < 6, body, np.nan)           # six joints triangulated
    fit = fit_pose_to_views(shape, rc, tc, f, nothing, np.ones(nothing.shape[:-1]),
                            np.broadcast_to(np.eye(3), (3, 3, 3)), centre, known=known)
    np.testing.assert_allclose(fit.apply(shape), body, atol=1e-6)
    assert np.all(np.isnan(fit.rms_px))
