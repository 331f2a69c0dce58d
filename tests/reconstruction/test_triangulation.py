"""Robust triangulation: exact on clean views, unmoved by a confident outlier camera."""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.reconstruction.triangulation import TriangulationOptions, triangulate_robust
from posestudio.synthetic.studio_rig import ring_rig


def _keypoints(rig, points, noise_px=0.0, seed=0):
    rng = np.random.default_rng(seed)
    pix = rig.project(points)
    pix = pix + rng.normal(0, noise_px, pix.shape) if noise_px else pix
    return np.concatenate([pix, np.full(pix.shape[:-1] + (1,), 0.9)], axis=-1)


@pytest.fixture(scope="module")
def scene():
    rig = ring_rig(4)
    pts = np.random.default_rng(1).uniform([-1, -1, 0], [1, 1, 2], (60, 17, 3))
    return rig, pts


def test_exact_on_noiseless_views(scene):
    rig, pts = scene
    res = triangulate_robust(rig, _keypoints(rig, pts))
    np.testing.assert_allclose(res.points, pts, atol=1e-7)
    assert res.inliers.all() and res.points.shape == pts.shape and res.inliers.shape == (4, 60, 17)
    assert np.nanmax(res.reprojection_px) < 1e-5


def test_a_confident_outlier_camera_is_rejected(scene):
    rig, pts = scene
    kp = _keypoints(rig, pts, noise_px=1.0)
    kp[2, :, :, :2] += np.random.default_rng(2).uniform(40, 120, kp[2, :, :, :2].shape)  # camera 2 is wrong
    kp[2, :, :, 2] = 1.0  # ... and sure of itself
    res = triangulate_robust(rig, kp)
    err_mm = np.linalg.norm(res.points - pts, axis=-1) * 1000
    plain_mm = np.linalg.norm(rig.triangulate(kp[..., :2]) - pts, axis=-1) * 1000
    assert np.median(err_mm) < 5.0 and np.median(plain_mm) > 20.0
    assert not res.inliers[2].any() and res.inliers[[0, 1, 3]].mean() > 0.99


def test_missing_and_unconfident_views(scene):
    rig, pts = scene
    kp = _keypoints(rig, pts)
    kp[:3, 0, 0] = np.nan  # joint 0 of frame 0 seen by one camera only
    kp[1:, 0, 1, 2] = 0.1  # joint 1: three views below the confidence threshold
    res = triangulate_robust(rig, kp, TriangulationOptions(min_confidence=0.3))
    assert np.isnan(res.points[0, 0]).all() and np.isnan(res.points[0, 1]).all()
    assert np.isfinite(res.points[0, 2:]).all()
    assert np.isnan(res.reprojection_px[0, 0, 0])


def test_wrong_shape_is_a_clear_error(scene):
    rig, pts = scene
    with pytest.raises(ValueError, match=r"keypoints must be \(cameras=4, \.\.\., 3\)"):
        triangulate_robust(rig, np.zeros((3, 10, 17, 3)))
