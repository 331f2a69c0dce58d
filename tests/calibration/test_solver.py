"""The calibration solver on exact synthetic detections (no rendering): it must meet the truth."""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.calibration.calibrate import CalibrationOptions, calibrate_from_detections
from posestudio.calibration.detect import CameraDetections
from posestudio.calibration.errors import CalibrationFailure, CalibrationInputError
from posestudio.core.alignment import rigid_align
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import rotation_angle_deg
from posestudio.synthetic.board_detections import observe, smooth_board_path
from posestudio.synthetic.studio_rig import ring_rig

FPS = 30.0


def truth_errors(est: CameraRig, truth: CameraRig) -> dict[str, np.ndarray]:
    """Per-camera errors after a rigid alignment of the estimated world frame onto the truth's."""
    ce = np.stack([c.center for c in est])
    ct = np.stack([c.center for c in truth])
    rot, t, _ = rigid_align(ce, ct)
    out = {"focal_pct": [], "pp_px": [], "centre_mm": [], "rot_deg": []}
    for e, g in zip(est, truth):
        out["focal_pct"].append(100 * abs(np.mean(np.divide(e.focal, g.focal)) - 1))
        out["pp_px"].append(np.linalg.norm(np.subtract(e.principal_point, g.principal_point)))
        out["centre_mm"].append(1000 * np.linalg.norm(rot @ e.center + t - g.center))
        out["rot_deg"].append(float(rotation_angle_deg(e.rotation @ rot.T, g.rotation)))
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def truth_rig() -> CameraRig:
    return ring_rig()


def test_noiseless_detections_recover_the_rig_exactly(truth_rig, studio_board):
    dets = observe(truth_rig, studio_board, smooth_board_path(0, extent_m=2.0), 150, FPS, noise_px=0.0)
    res = calibrate_from_detections(dets, studio_board, CalibrationOptions(sync="index"), fps=FPS, progress=None)
    err = truth_errors(res.rig, truth_rig)
    assert err["focal_pct"].max() < 0.01
    assert err["pp_px"].max() < 0.2
    assert err["centre_mm"].max() < 0.5
    assert err["rot_deg"].max() < 0.01
    assert res.report.reprojection_rms_px < 0.01
    for est, true in zip(res.rig, truth_rig):
        np.testing.assert_allclose(est.dist[:2], true.dist[:2], atol=2e-3)
    # the board is a ruler: with exact detections its corners triangulate at the printed size
    assert res.report.board_size_error.mean_abs_mm < 0.05


def test_time_offsets_are_estimated_and_keep_the_rig_accurate(truth_rig, studio_board):
    offsets_s = [0.0, 0.004, -0.006, 0.010]
    dets = observe(truth_rig, studio_board, smooth_board_path(0, extent_m=2.0, speed=1.5), 240, FPS,
                   offsets_s=offsets_s, noise_px=0.2, seed=3)
    est = calibrate_from_detections(dets, studio_board, CalibrationOptions(sync="estimate"), fps=FPS, progress=None)
    idx = calibrate_from_detections(dets, studio_board, CalibrationOptions(sync="index"), fps=FPS, progress=None)
    ref = est.report.reference_camera
    ref_off = offsets_s[truth_rig.names.index(ref)]
    for cam, true_off in zip(est.rig, offsets_s):
        assert cam.time_offset == pytest.approx(true_off - ref_off, abs=0.0015), cam.name
    e_est, e_idx = truth_errors(est.rig, truth_rig), truth_errors(idx.rig, truth_rig)
    # A lag absorbed into the camera poses biases them; estimating it removes the bias.
    assert e_est["centre_mm"].mean() < 0.6 * e_idx["centre_mm"].mean()
    assert e_est["centre_mm"].max() < 5.0
    # As accurate as a genlocked rig filming the same motion with the same noise (whose own errors,
    # 0.07 degree on average here, are the corner noise's).
    locked = observe(truth_rig, studio_board, smooth_board_path(0, extent_m=2.0, speed=1.5), 240, FPS,
                     noise_px=0.2, seed=3)
    e_locked = truth_errors(calibrate_from_detections(locked, studio_board, CalibrationOptions(sync="index"), fps=FPS,
                                                      progress=None).rig, truth_rig)
    for key in ("rot_deg", "centre_mm", "focal_pct"):
        assert e_est[key].mean() < 1.25 * e_locked[key].mean(), key
    assert all(v.std_ms is None or v.std_ms < 1.0 for v in est.report.time_offsets.values())


def test_same_input_gives_the_same_rig(truth_rig, studio_board):
    dets = observe(truth_rig, studio_board, smooth_board_path(1, extent_m=2.0), 90, FPS, noise_px=0.3, seed=1)
    a = calibrate_from_detections(dets, studio_board, CalibrationOptions(), fps=FPS, progress=None)
    b = calibrate_from_detections(dets, studio_board, CalibrationOptions(), fps=FPS, progress=None)
    for ca, cb in zip(a.rig, b.rig):
        np.testing.assert_array_equal(ca.matrix, cb.matrix)
        np.testing.assert_array_equal(ca.translation, cb.translation)


def test_origin_frame_puts_the_board_on_the_ground_plane(truth_rig, studio_board):
    dets = observe(truth_rig, studio_board, smooth_board_path(0, extent_m=2.0), 120, FPS, noise_px=0.0)
    frame = dets[0].observations[len(dets[0].observations) // 2].frame
    res = calibrate_from_detections(dets, studio_board, CalibrationOptions(sync="index", origin_frame=frame),
                                    fps=FPS, progress=None)
    obs = next(o for d in dets for o in d.observations if o.frame == frame)
    cam = res.rig[next(d.name for d in dets if any(o.frame == frame for o in d.observations))]
    # corners of that frame back-projected lie on Z = 0 at their board positions (X along columns)
    corners = studio_board.corner_points()[obs.ids]
    world = np.c_[corners[:, 0], -corners[:, 1], np.zeros(len(corners))]
    np.testing.assert_allclose(cam.project(world), obs.pixels, atol=0.05)
    assert cam.center[2] > 0  # cameras look at the printed face, which faces +Z
    with pytest.raises(CalibrationInputError, match="--origin-frame 100000"):
        calibrate_from_detections(dets, studio_board, CalibrationOptions(origin_frame=100000), fps=FPS,
                                  progress=None)


def test_unlinked_cameras_are_named_with_their_shared_views(truth_rig, studio_board):
    dets = observe(truth_rig, studio_board, smooth_board_path(0, extent_m=2.0), 120, FPS, noise_px=0.0)
    # cam2 and cam3 only see the board in frames no other camera sees it in
    first = {o.frame for d in dets[:2] for o in d.observations}
    for d in dets[2:]:
        d.observations = [o for o in d.observations if o.frame not in first]
    with pytest.raises(CalibrationFailure) as info:
        calibrate_from_detections(dets, studio_board, CalibrationOptions(), fps=FPS, progress=None)
    msg = str(info.value)
    assert "cam0" in msg and "cam2" in msg and "cam0-cam2: 0" in msg


def test_camera_without_any_board_view_is_named(truth_rig, studio_board):
    dets = observe(truth_rig, studio_board, smooth_board_path(0, extent_m=2.0), 60, FPS, noise_px=0.0)
    dets[1] = CameraDetections(dets[1].name, dets[1].image_size, 60, [])
    with pytest.raises(CalibrationFailure, match="camera cam1: no board found in any of its 60 frames"):
        calibrate_from_detections(dets, studio_board, CalibrationOptions(), fps=FPS, progress=None)


def test_intrinsics_only_and_fixed_intrinsics(truth_rig, studio_board):
    dets = observe(truth_rig, studio_board, smooth_board_path(0, extent_m=2.0), 120, FPS, noise_px=0.1)
    only = calibrate_from_detections(dets, studio_board, CalibrationOptions(intrinsics_only=True), fps=FPS,
                                     progress=None)
    assert only.report.board_size_error is None and "board_size_error" not in only.report.to_dict()
    for est, true in zip(only.rig, truth_rig):
        assert abs(est.focal[0] / true.focal[0] - 1) < 0.01
    fixed = calibrate_from_detections(dets, studio_board, CalibrationOptions(fixed_intrinsics=truth_rig, sync="index"),
                                      fps=FPS, progress=None)
    for est, true in zip(fixed.rig, truth_rig):
        np.testing.assert_array_equal(est.matrix, true.matrix)
    assert truth_errors(fixed.rig, truth_rig)["centre_mm"].max() < 2.0


def test_scene_points_set_the_world_frame(truth_rig, studio_board, tmp_path):
    import tomli_w

    dets = observe(truth_rig, studio_board, smooth_board_path(0, extent_m=2.0), 120, FPS, noise_px=0.1)
    marks = np.array([[0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [-1.0, -0.5, 0], [0.5, 0.5, 1.0]])
    pix = truth_rig.project(marks)
    points = [{"name": f"mark{k}", "world": m.tolist(),
               "pixels": {c.name: pix[i, k].tolist() for i, c in enumerate(truth_rig) if i != k % 4}}
              for k, m in enumerate(marks)]
    path = tmp_path / "scene.toml"
    path.write_text(tomli_w.dumps({"point": points}))
    res = calibrate_from_detections(dets, studio_board, CalibrationOptions(sync="index", scene_points=path),
                                    fps=FPS, progress=None)
    for est, true in zip(res.rig, truth_rig):  # no alignment: the rig is in the surveyed frame
        assert np.linalg.norm(est.center - true.center) < 0.005
    assert res.report.scene_points.rms_mm < 2.0
    assert "surveyed scene points" in res.rig.metadata["world_frame"]
    bad = tmp_path / "bad.toml"
    bad.write_text(tomli_w.dumps({"point": [{"name": "x", "world": [0, 0, 0], "pixels": {"camX": [1, 2]}}]}))
    with pytest.raises(CalibrationInputError, match="names camera 'camX', which is not in the rig"):
        calibrate_from_detections(dets, studio_board, CalibrationOptions(sync="index", scene_points=bad), fps=FPS,
                                  progress=None)


def test_loop_closure_spreads_the_ring_misclosure():
    """A 32-camera ring linked by noisy neighbour poses: chained along a tree the error grows to
    the far side of the ring; solved from every pair at once it stays at the size of one link."""
    from posestudio.calibration.extrinsics_init import close_loops
    from posestudio.core.rotations import rodrigues_to_matrix

    truth = ring_rig(32, radius=4.0)
    world = [(c.rotation, c.translation) for c in truth]
    rng = np.random.default_rng(0)
    relative, weights = {}, {}
    for i in range(32):
        for step in (1, 2):  # each camera sees the board with its next two neighbours
            j = (i + step) % 32
            (ri, ti), (rj, tj) = world[i], world[j]
            r = rodrigues_to_matrix(rng.normal(0, np.radians(0.3), 3)) @ rj @ ri.T
            relative[(i, j)] = (r, tj - rj @ ri.T @ ti + rng.normal(0, 0.01, 3))
            weights[(i, j)] = 20.0
    # Relative to camera 0 (the world frame of the solution).
    r0, t0 = world[0]
    want = [(r @ r0.T, t - r @ r0.T @ t0) for r, t in world]
    chained = [(np.eye(3), np.zeros(3))]
    for i in range(1, 32):
        r, t = relative[(i - 1, i)]
        chained.append((r @ chained[-1][0], r @ chained[-1][1] + t))
    closed = close_loops(relative, weights, 32, 0, chained)

    def errors(poses):
        centre = [np.linalg.norm(-r.T @ t + w[0].T @ w[1]) for (r, t), w in zip(poses, want)]
        return 1000 * np.max(centre), np.max([rotation_angle_deg(r, w[0]) for (r, _), w in zip(poses, want)])

    (c_chain, r_chain), (c_closed, r_closed) = errors(chained), errors(closed)
    print(f"\n[loop closure] 32-camera ring: chained max centre {c_chain:.0f} mm, rot {r_chain:.2f} deg; "
          f"closed {c_closed:.0f} mm, {r_closed:.2f} deg")
    assert c_closed < 0.5 * c_chain and r_closed < 0.5 * r_chain
