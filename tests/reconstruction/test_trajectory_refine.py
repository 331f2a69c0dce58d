"""Whole-take refinement: cameras, bone lengths and smoothness together."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from posestudio.core.pose_metrics import mpjpe_absolute
from posestudio.core.skeleton import bone_length_cv, bone_lengths
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.trajectory_refine import (
    RefineWindow,
    refine_causal,
    refine_in_windows,
    refine_trajectories,
)
from posestudio.reconstruction.triangulation import triangulate_robust
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_motion import walking_body


@pytest.fixture(scope="module")
def take():
    rig = make_studio_rig(4, (1920, 1080), seed=5, distortion="mild")
    body = walking_body(90, start=(-0.6, 0.1), speed_m_s=0.8)
    rng = np.random.default_rng(1)
    pix = rig.project(body) + rng.normal(0.0, 3.0, (len(rig),) + body.shape[:2] + (2,))
    kp = np.concatenate([pix, np.ones(pix.shape[:-1] + (1,))], -1)
    return rig, body, kp


def _refine(rig, kp, points, free, usable, lengths, **kw):
    return refine_trajectories(points, free, 30.0, H36M17.bone_indices, lengths,
                               rig.rotations, rig.translations, rig.focal_x, rig.undistort(kp[..., :2]), usable, **kw)


def test_refinement_beats_per_frame_triangulation_and_holds_bones(take) -> None:
    rig, body, kp = take
    tri = triangulate_robust(rig, kp)
    lengths = bone_lengths(body[:1], H36M17.bone_indices)[0]
    out = _refine(rig, kp, tri.points, np.isfinite(tri.points).all(-1), tri.inliers, lengths)
    before, after = mpjpe_absolute(tri.points, body), mpjpe_absolute(out, body)
    assert after < 0.7 * before, (before, after)
    assert bone_length_cv(out, H36M17.bone_indices) < 0.5 * bone_length_cv(tri.points, H36M17.bone_indices)


def test_fixed_joints_are_left_exactly_as_they_were(take) -> None:
    rig, body, kp = take
    tri = triangulate_robust(rig, kp)
    free = np.zeros(tri.points.shape[:2], bool)
    free[:, 13] = True                                                         # only the left wrist moves
    out = _refine(rig, kp, tri.points, free, tri.inliers, bone_lengths(body[:1], H36M17.bone_indices)[0])
    np.testing.assert_array_equal(out[:, :13], tri.points[:, :13])
    np.testing.assert_array_equal(out[:, 14:], tri.points[:, 14:])


def test_a_joint_seen_by_one_camera_is_pulled_back_onto_its_ray_and_its_bone(take) -> None:
    rig, body, kp = take
    points = body.copy()
    gap = slice(40, 55)
    usable = np.ones(kp.shape[:-1], bool)
    usable[1:, gap, 13] = False                                                # only camera 0 sees the wrist
    ray = body[gap, 13] - rig[0].center
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    points[gap, 13] += 0.15 * ray                                              # start 15 cm off along the ray
    free = np.zeros(points.shape[:2], bool)
    free[gap, 13] = True
    clean = np.concatenate([rig.project(body), np.ones(kp.shape[:-1] + (1,))], -1)
    out = _refine(rig, clean, points, free, usable, bone_lengths(body[:1], H36M17.bone_indices)[0])
    err = np.linalg.norm(out[gap, 13] - body[gap, 13], axis=-1)
    assert err.max() < 0.02, err


def test_causal_refinement_improves_each_frame_without_looking_ahead(take) -> None:
    rig, body, kp = take
    tri = triangulate_robust(rig, kp)
    lengths = bone_lengths(body[:1], H36M17.bone_indices)[0]
    cams = (rig.rotations, rig.translations, rig.focal_x)
    xy = rig.undistort(kp[..., :2])
    out = refine_causal(tri.points, 30.0, H36M17.bone_indices, lengths, *cams, xy, tri.inliers)
    assert mpjpe_absolute(out, body) < 0.9 * mpjpe_absolute(tri.points, body)
    assert bone_length_cv(out, H36M17.bone_indices) < 0.6 * bone_length_cv(tri.points, H36M17.bone_indices)
    prefix = refine_causal(tri.points[:50], 30.0, H36M17.bone_indices, lengths, *cams, xy[:, :50], tri.inliers[:, :50])
    np.testing.assert_allclose(out[:50], prefix, atol=1e-12)


def test_windows_agree_with_solving_the_take_at_once(take) -> None:
    rig, body, kp = take
    tri = triangulate_robust(rig, kp)
    lengths = bone_lengths(body[:1], H36M17.bone_indices)[0]
    args = (tri.points, np.isfinite(tri.points).all(-1), 30.0, H36M17.bone_indices, lengths, rig.rotations,
            rig.translations, rig.focal_x, rig.undistort(kp[..., :2]), tri.inliers)
    whole = refine_trajectories(*args)
    np.testing.assert_array_equal(refine_in_windows(*args), whole)          # 90 frames: one window
    windows = refine_in_windows(*args, window=RefineWindow(frames=40, overlap_frames=10))   # 3 windows
    assert np.nanmax(np.abs(windows - whole)) < 5e-4                         # metres
    assert abs(mpjpe_absolute(windows, body) - mpjpe_absolute(whole, body)) < 5e-5
    with pytest.raises(ValueError, match="cannot overlap the next"):
        refine_in_windows(*args, window=RefineWindow(frames=12, overlap_frames=10))


def test_refinement_memory_does_not_grow_with_the_take() -> None:
    rig = make_studio_rig(4, (1920, 1080), seed=5, distortion="mild")
    peaks = []
    for frames in (300, 1200):
        body = walking_body(frames, speed_m_s=0.0, start=(-0.2, 0.1))               # walking on the spot
        pix = rig.project(body) + np.random.default_rng(1).normal(0.0, 3.0, (len(rig),) + body.shape[:2] + (2,))
        kp = np.concatenate([pix, np.ones(pix.shape[:-1] + (1,))], -1)
        tri = triangulate_robust(rig, kp)
        lengths = bone_lengths(body[:1], H36M17.bone_indices)[0]
        xy = rig.undistort(kp[..., :2])
        tracemalloc.start()
        try:
            refine_in_windows(tri.points, np.isfinite(tri.points).all(-1), 30.0, H36M17.bone_indices, lengths,
                              rig.rotations, rig.translations, rig.focal_x, xy, tri.inliers,
                              window=RefineWindow(frames=100, overlap_frames=20))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    # four times the take: the same window solved more often, plus the output (0.5 MB more)
    assert peaks[1] < 1.2 * peaks[0], peaks
