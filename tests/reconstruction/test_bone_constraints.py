"""Joints seen by one camera: on its ray, at the bone's length, carried from frame to frame."""

from __future__ import annotations

import numpy as np

from posestudio.core.skeleton import bone_length_per_joint, bone_lengths
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.bone_constraints import snap_to_rays
from posestudio.reconstruction.ray_carry import propagate_along_rays
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_motion import walking_body


def test_snap_picks_the_ray_sphere_intersection_nearest_the_guess() -> None:
    origins = np.zeros((1, 3))
    directions = np.array([[[0.0, 0.0, 1.0]]])                   # one camera, one frame: the z axis
    parent = np.array([[0.3, 0.0, 2.0]])
    length = np.array([0.5])                                      # sphere meets the axis at z = 2 -/+ 0.4
    for guess_z, expected_z in ((1.5, 1.6), (2.5, 2.4)):
        point, hit = snap_to_rays(np.array([[0.1, 0.0, guess_z]]), parent, length, origins, directions,
                                  np.ones((1, 1), bool), gate_m=0.3)
        assert hit[0]
        np.testing.assert_allclose(point[0], [0.0, 0.0, expected_z], atol=1e-12)
    point, hit = snap_to_rays(np.array([[1.0, 0.0, 2.5]]), parent, length, origins, directions,
                              np.ones((1, 1), bool), gate_m=0.3)
    assert not hit[0] and np.allclose(point[0], [1.0, 0.0, 2.5])  # too far from the guess: kept


def _one_camera_end(n_frames: int = 60, lost: int = 15):
    """A walk whose last ``lost`` frames only camera 0 sees (all four cameras before that)."""
    rig = make_studio_rig(4, (1920, 1080), seed=2, distortion="mild")
    body = walking_body(n_frames, start=(-1.0, 0.0), speed_m_s=1.0)
    pix = rig.project(body)                                                   # (C, F, J, 2)
    kp = np.concatenate([pix, np.ones(pix.shape[:-1] + (1,))], -1)
    kp[1:, n_frames - lost:] = np.nan
    points = body.copy()
    points[n_frames - lost:] = np.nan
    return rig, body, kp, points


def _rays(rig, kp):
    """Camera centres, world rays through every detection, and the confident ones."""
    xy = rig.undistort(kp[..., :2])
    return rig.centers, rig.ray_directions(xy), np.isfinite(xy).all(-1) & (np.nan_to_num(kp[..., 2]) >= 0.3)


def test_carries_joints_seen_by_one_camera_along_its_rays() -> None:
    rig, body, kp, points = _one_camera_end()
    origins, rays, usable = _rays(rig, kp)
    lengths = bone_length_per_joint(bone_lengths(body[:1], H36M17.bone_indices)[0], H36M17.bone_indices, 17)
    track = body[:, 0].copy()
    track[-15:] = track[-16] + (track[-16] - track[-17]) * np.arange(1, 16)[:, None]   # constant velocity
    out, carried = propagate_along_rays(points, H36M17.parents, H36M17.topological_order(), lengths,
                                        origins, rays, usable, track)
    assert carried[-15:].mean() > 0.9 and not carried[:-15].any()
    err = np.linalg.norm(out - body, axis=-1)[carried]
    assert np.median(err) < 0.03, np.median(err)
    # every carried joint reprojects onto the one camera's detection (it is on the ray)
    reproj = np.linalg.norm(rig[0].project(out[-15:]) - kp[0, -15:, :, :2], axis=-1)[carried[-15:]]
    assert reproj.max() < 0.5


def test_never_invents_what_no_camera_sees_and_live_ignores_the_future() -> None:
    rig, body, kp, points = _one_camera_end()
    kp[0, -15:, 13] = np.nan                                                   # nobody sees the left wrist
    origins, rays, usable = _rays(rig, kp)
    lengths = bone_length_per_joint(bone_lengths(body[:1], H36M17.bone_indices)[0], H36M17.bone_indices, 17)
    out, carried = propagate_along_rays(points, H36M17.parents, H36M17.topological_order(), lengths,
                                        origins, rays, usable, causal=True)
    assert np.isnan(out[-15:, 13]).all() and not carried[-15:, 13].any()
    points_start_missing = body.copy()
    points_start_missing[:10] = np.nan
    kp2 = kp.copy()
    kp2[1:, :10] = np.nan
    origins, rays, usable = _rays(rig, kp2)
    _, carried_live = propagate_along_rays(points_start_missing, H36M17.parents, H36M17.topological_order(),
                                           lengths, origins, rays, usable, causal=True)
    _, carried_offline = propagate_along_rays(points_start_missing, H36M17.parents, H36M17.topological_order(),
                                              lengths, origins, rays, usable, causal=False)
    assert not carried_live[:10].any()                                        # nothing before the first sighting
    assert carried_offline[:10].mean() > 0.9                                  # offline carries backwards
