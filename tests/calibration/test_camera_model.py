"""Camera model, triangulation, Jacobians and the rig file."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from posestudio.calibration.projection_jacobian import corner_residuals
from posestudio.core.camera import Camera
from posestudio.core.rig import CameraRig
from posestudio.core.rig_file import RigFileError
from posestudio.synthetic.studio_rig import ring_rig


@pytest.mark.parametrize("model,dist", [("pinhole", [-0.3, 0.12, 0.001, -0.002, -0.02]),
                                        ("pinhole", [0.1, -0.05, 0.0, 0.0, 0.0, 0.02, 0.01, 0.0]),
                                        ("fisheye", [0.05, -0.01, 0.003, -0.001])])
def test_projection_matches_opencv_and_undistortion_inverts_it(model, dist):
    rng = np.random.default_rng(0)
    cam = Camera("c", (1280, 720), [[700, 0, 650], [0, 705, 350], [0, 0, 1]], dist,
                 cv2.Rodrigues(np.array([0.1, -0.2, 0.05]))[0], [0.1, -0.2, 3.0], model)
    pts = rng.uniform(-1, 1, (500, 3)) + [0, 0, 0.5]
    ours = cam.project(pts)
    if model == "fisheye":
        ref = cv2.fisheye.projectPoints(pts.reshape(-1, 1, 3), cam.rvec, cam.translation, cam.matrix, cam.dist)[0]
    else:
        ref = cv2.projectPoints(pts, cam.rvec, cam.translation, cam.matrix, cam.dist)[0]
    np.testing.assert_allclose(ours, ref.reshape(-1, 2), atol=1e-6)
    inside = cam.in_image(ours)
    back = cam.backproject_to_depth(ours[inside], cam.world_to_camera(pts[inside])[:, 2])
    np.testing.assert_allclose(back, pts[inside], atol=1e-6)


def test_points_behind_the_camera_do_not_project():
    cam = Camera("c", (640, 480), [[500, 0, 320], [0, 500, 240], [0, 0, 1]])
    assert np.isnan(cam.project(np.array([[0.0, 0.0, -1.0]]))).all()


def test_triangulation_is_exact_on_noiseless_views_and_nan_with_one_view():
    rig = ring_rig()
    pts = np.random.default_rng(1).uniform([-1, -1, 0], [1, 1, 2], (50, 20, 3))
    pix = rig.project(pts)
    np.testing.assert_allclose(rig.triangulate(pix), pts, atol=1e-8)
    pix[1:, 0, 0] = np.nan
    assert np.isnan(rig.triangulate(pix)[0, 0]).all()
    assert np.isfinite(rig.triangulate(pix)[0, 1]).all()


@pytest.mark.parametrize("fisheye", [False, True])
def test_corner_jacobians_match_finite_differences(fisheye):
    rng = np.random.default_rng(2)
    n_cam, n_pose, n = 3, 5, 40
    intr = np.tile([800.0, 810.0, 640.0, 360.0, -0.2, 0.05, 0.001, -0.001, 0.01], (n_cam, 1))
    if fisheye:
        intr[:, 4:] = [0.05, -0.01, 0.003, -0.001, 0.0]
    ext = np.c_[rng.normal(0, 0.3, (n_cam, 3)), rng.normal(0, 0.2, (n_cam, 2)), rng.uniform(2, 3, n_cam)]
    poses = np.c_[rng.normal(0, 0.3, (n_pose, 3)), rng.normal(0, 0.1, (n_pose, 3))]
    offsets = rng.normal(0, 0.3, n_cam)
    cam = rng.integers(0, n_cam, n)
    pose = rng.integers(1, n_pose - 1, n)
    stencil = np.tile([[-0.5, 0.0, 0.5], [1.0, -2.0, 1.0]], (n, 1, 1))  # velocity, acceleration
    corner = np.c_[rng.uniform(0, 0.5, (n, 2)), np.zeros(n)]
    obs = rng.uniform(0, 500, (n, 2))
    fish = np.full(n_cam, fisheye)
    args = (cam, pose, pose - 1, pose + 1, corner, obs, stencil, fish)
    r0, jac = corner_residuals(intr, ext, poses, offsets, *args, with_jacobian=True)

    def numeric(block: str, entity: np.ndarray, k: int) -> np.ndarray:
        arrays = {"intr": intr, "ext": ext, "pose": poses, "off": offsets[:, None]}
        out = np.zeros((n, 2))
        for e in np.unique(entity):
            a = {key: v.copy() for key, v in arrays.items()}
            h = 1e-6 * max(1.0, abs(a[block][e, k]))
            a[block][e, k] += h
            r1, _ = corner_residuals(a["intr"], a["ext"], a["pose"], a["off"][:, 0], *args)
            rows = entity == e
            out[rows] = ((r1 - r0) / h)[rows]
        return out

    for k in range(9):
        if fisheye and k == 8:
            continue
        np.testing.assert_allclose(jac.intrinsics[:, :, k], numeric("intr", cam, k), rtol=1e-4, atol=1e-3)
    for k in range(6):
        np.testing.assert_allclose(jac.extrinsics[:, :, k], numeric("ext", cam, k), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(jac.offset[:, :, 0], numeric("off", cam, 0), rtol=1e-4, atol=1e-3)
    # board pose columns: total derivative over the frame and its neighbours
    for k in range(6):
        total = np.zeros((n, 2))
        for e in range(n_pose):
            a = poses.copy()
            a[e, k] += 1e-6
            r1, _ = corner_residuals(intr, ext, a, offsets, *args)
            d = (r1 - r0) / 1e-6
            analytic = (jac.pose[:, :, k] * (pose == e)[:, None] + jac.pose_prev[:, :, k] * (pose - 1 == e)[:, None]
                        + jac.pose_next[:, :, k] * (pose + 1 == e)[:, None])
            np.testing.assert_allclose(analytic, d, rtol=1e-4, atol=1e-3)
            total += d
        assert np.isfinite(total).all()


def test_rig_file_round_trip_and_clear_errors(tmp_path):
    rig = ring_rig(3)
    rig.cameras[1].time_offset = 0.004
    path = tmp_path / "rig.toml"
    rig.save(path)
    back = CameraRig.load(path)
    assert back.names == rig.names
    for a, b in zip(rig, back):
        np.testing.assert_allclose(a.matrix, b.matrix)
        np.testing.assert_allclose(a.rotation, b.rotation)
        np.testing.assert_allclose(a.translation, b.translation)
        assert a.time_offset == b.time_offset
    text = path.read_text()
    path.write_text(text.replace("format_version = 1", "format_version = 99"))
    with pytest.raises(RigFileError, match=r"rig.toml: rig format_version 99 is not supported"):
        CameraRig.load(path)
    path.write_text(text.replace("translation = ", "translatio = ", 1))
    with pytest.raises(RigFileError, match=r"\[cameras.cam0\] has no 'translation'"):
        CameraRig.load(path)
    with pytest.raises(RigFileError, match="not found"):
        CameraRig.load(tmp_path / "missing.toml")
