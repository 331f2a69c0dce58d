"""The bundle adjustment's block normal equations and Schur-complement solve against a dense reference.

The adjustment never forms the Jacobian as one matrix: it sums per-corner blocks into the normal
equations, eliminates the board poses and solves the reduced camera system. Here a small rig's
Jacobian is laid out densely from the same per-corner blocks and the damped Gauss-Newton step is
solved directly; both must agree, with and without the time-offset stencils that couple
neighbouring board poses. The staged calibration must also converge in a bounded number of
iterations (the wall time at studio scale depends on it).
"""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.calibration.board import BoardSpec
from posestudio.calibration.calibrate import CalibrationOptions, calibrate_from_detections
from posestudio.calibration.normal_equations import (
    N_CAMERA,
    BlockStructure,
    assemble,
    camera_jacobian,
    camera_standard_deviations,
    solve_step,
)
from posestudio.calibration.projection_jacobian import N_INTRINSICS, corner_residuals
from posestudio.calibration.time_offsets import motion_stencils
from posestudio.synthetic.board_detections import observe, smooth_board_path
from posestudio.synthetic.studio_rig import ring_rig

N_CAM, N_POSE, N_OBS = 4, 12, 600


def _problem(seed: int, with_offsets: bool):
    """A random small rig: camera and pose parameters, corners seen by random cameras in random frames."""
    rng = np.random.default_rng(seed)
    intr = np.tile([800.0, 810.0, 640.0, 360.0, -0.2, 0.05, 0.001, -0.001, 0.01], (N_CAM, 1))
    intr[:, :4] += rng.normal(0, 5, (N_CAM, 4))
    ext = np.c_[rng.normal(0, 0.2, (N_CAM, 3)), rng.normal(0, 0.2, (N_CAM, 2)), rng.uniform(2, 3, N_CAM)]
    poses = np.c_[rng.normal(0, 0.3, (N_POSE, 3)), rng.normal(0, 0.1, (N_POSE, 3))]
    offsets = rng.normal(0, 0.3, N_CAM) if with_offsets else np.zeros(N_CAM)
    # frames with a gap (frame 7 missing): the stencil is one-sided next to it and at the ends
    frames = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12]
    stencils = motion_stencils(frames)
    cam = rng.integers(0, N_CAM, N_OBS)
    pose = rng.integers(0, N_POSE, N_OBS)
    corner = np.c_[rng.uniform(0, 0.5, (N_OBS, 2)), np.zeros(N_OBS)]
    obs = rng.uniform(100, 1100, (N_OBS, 2))
    args = (cam, pose, stencils.prev[pose], stencils.next[pose], corner, obs, stencils.weights[pose],
            np.zeros(N_CAM, bool))
    return intr, ext, poses, offsets, args, rng.uniform(0.3, 1.0, N_OBS)


def _dense(jac, cam, pose, prev, nxt, neighbours: bool) -> np.ndarray:
    """``(2 N, C K + 6 F)`` Jacobian, camera unknowns first, from the per-corner blocks."""
    n = len(cam)
    j = np.zeros((n, 2, N_CAM * N_CAMERA + 6 * N_POSE))
    rows = np.arange(n)
    jc = camera_jacobian(jac)
    for k in range(N_CAMERA):
        j[rows, :, cam * N_CAMERA + k] = jc[:, :, k]
    off = N_CAM * N_CAMERA
    parts = [(pose, jac.pose)] + ([(prev, jac.pose_prev), (nxt, jac.pose_next)] if neighbours else [])
    for idx, blk in parts:
        for k in range(6):
            j[rows, :, off + 6 * idx + k] += blk[:, :, k]
    return j.reshape(2 * n, -1)


def _camera_free() -> np.ndarray:
    free = np.ones((N_CAM, N_CAMERA), bool)
    free[0, N_INTRINSICS:] = False  # the reference camera's pose and clock hold the gauge
    return free


@pytest.mark.parametrize("with_offsets", [False, True])
@pytest.mark.parametrize("damping", [1e-3, 1.0])
def test_schur_step_equals_the_dense_solve(with_offsets, damping):
    intr, ext, poses, offsets, args, weight = _problem(3, with_offsets)
    cam, pose, prev, nxt = args[:4]
    r, jac = corner_residuals(intr, ext, poses, offsets, *args, with_jacobian=True, neighbours=with_offsets)
    st = BlockStructure.build(cam, pose, prev, nxt, N_CAM, N_POSE, with_offsets)
    ne = assemble(st, jac, r, weight)
    free_cam = _camera_free()
    dc, dp = solve_step(st, ne, damping, free_cam)

    j = _dense(jac, cam, pose, prev, nxt, with_offsets)
    w = np.repeat(weight, 2)
    h = j.T @ (w[:, None] * j)
    g = j.T @ (w * r.ravel())
    free = np.concatenate([free_cam.ravel(), np.ones(6 * N_POSE, bool)])
    hf = h[np.ix_(free, free)]
    step = np.zeros(len(free))
    step[free] = -np.linalg.solve(hf + damping * np.diag(np.maximum(np.diag(hf), 1e-9)), g[free])
    ref_c = step[:N_CAM * N_CAMERA].reshape(N_CAM, N_CAMERA)
    ref_p = step[N_CAM * N_CAMERA:].reshape(N_POSE, 6)
    np.testing.assert_allclose(dc, ref_c, rtol=1e-6, atol=1e-9 * np.abs(ref_c).max())
    np.testing.assert_allclose(dp, ref_p, rtol=1e-6, atol=1e-9 * np.abs(ref_p).max())
    assert np.all(dc[~free_cam] == 0)


def test_camera_standard_deviations_are_the_camera_block_of_the_inverse():
    intr, ext, poses, offsets, args, weight = _problem(5, True)
    cam, pose, prev, nxt = args[:4]
    r, jac = corner_residuals(intr, ext, poses, offsets, *args, with_jacobian=True)
    st = BlockStructure.build(cam, pose, prev, nxt, N_CAM, N_POSE, True)
    ne = assemble(st, jac, r, weight)
    free_cam = _camera_free()
    std = camera_standard_deviations(st, ne, free_cam, residual_variance=0.04)
    j = _dense(jac, cam, pose, prev, nxt, True)
    w = np.repeat(weight, 2)
    free = np.concatenate([free_cam.ravel(), np.ones(6 * N_POSE, bool)])
    h = (j.T @ (w[:, None] * j))[np.ix_(free, free)]
    n_free_cam = int(free_cam.sum())
    want = np.sqrt(np.diag(np.linalg.inv(h))[:n_free_cam] * 0.04)
    np.testing.assert_allclose(std[free_cam], want, rtol=1e-5)
    assert np.isnan(std[~free_cam]).all()


def test_time_offsets_stage_converges_in_few_iterations():
    rig = ring_rig(6)
    board = BoardSpec("charuco", 9, 6, 0.1, 0.075, "DICT_4X4_50")
    offsets_s = [0.0, 0.004, -0.006, 0.010, -0.012, 0.008]
    dets = observe(rig, board, smooth_board_path(0, extent_m=2.0, speed=1.5), 150, 30.0, offsets_s=offsets_s,
                   noise_px=0.2, seed=3)
    res = calibrate_from_detections(dets, board, CalibrationOptions(sync="estimate"), fps=30.0, progress=None)
    assert res.report.adjustment.converged
    # poses alone (9), then intrinsics and offsets together in two outlier rounds (12): 21 measured;
    # 40 before the intrinsics-only stage was merged into the offsets' stage
    assert res.report.adjustment.iterations <= 30
    ref = offsets_s[rig.names.index(res.report.reference_camera)]
    for cam, true_off in zip(res.rig, offsets_s):
        assert cam.time_offset == pytest.approx(true_off - ref, abs=0.0015), cam.name
