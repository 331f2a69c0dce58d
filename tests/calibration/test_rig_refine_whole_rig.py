"""``rig refine --whole-rig``: every camera's extrinsics re-solved together from a take (issue 18)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posestudio.calibration.drift_whole_rig import refine_whole_rig
from posestudio.calibration.rig_drift import RigDriftError, pose_error
from posestudio.core.camera import Camera
from posestudio.core.keypoints_file import Keypoints2D, write_keypoints2d
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import average_rotations, rotation_angle_deg
from posestudio.models.keypoints import H36M17
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections
from posestudio.synthetic.rig_disturbance import moved_camera, square_walk

FPS = 30.0


def _aligned_errors(rig: CameraRig, truth: CameraRig) -> tuple[float, float]:
    """Worst rotation (degrees) and centre (metres) error of ``rig`` once mapped onto ``truth`` by the
    similarity a take cannot tell (the world's turn: the mean of the cameras' turns; scale and shift:
    least squares on the centres)."""
    turn = average_rotations(np.stack([g.rotation.T @ c.rotation for c, g in zip(rig.cameras, truth.cameras)]))
    src = np.stack([c.center for c in rig.cameras]) @ turn.T
    dst = np.stack([c.center for c in truth.cameras])
    a, b = src - src.mean(0), dst - dst.mean(0)
    scale = float(np.sum(a * b) / np.sum(a * a))
    mapped = scale * a + dst.mean(0)
    worst = max(float(rotation_angle_deg(c.rotation @ turn.T, g.rotation)) for c, g in zip(rig.cameras, truth.cameras))
    return worst, float(np.linalg.norm(mapped - dst, axis=-1).max())


def _nudged(truth: CameraRig, turn_deg: float, shift_m: float) -> CameraRig:
    cams: list[Camera] = [moved_camera(c, turn_deg, shift_m, seed=10 + k) for k, c in enumerate(truth.cameras)]
    return CameraRig(cams, dict(truth.metadata))


@pytest.fixture(scope="module")
def take() -> tuple[CameraRig, CameraRig, np.ndarray]:
    truth = make_studio_rig(4, (1920, 1080), seed=3)
    points = square_walk(300, FPS, corner=1)
    kp = simulate_detections(truth, points, DetectorErrors(seed=3)).keypoints
    return truth, _nudged(truth, 0.5, 0.02), kp


def test_whole_rig_re_solved_to_the_truth_in_the_rigs_own_frame(take) -> None:
    truth, nudged, kp = take
    before = _aligned_errors(nudged, truth)
    fit = refine_whole_rig(nudged, kp)
    after = _aligned_errors(fit.rig, truth)
    assert before[0] > 0.4 and before[1] > 0.015, before
    assert after[0] < 0.1 and after[1] < 0.01, after
    assert fit.residual_after_px < 0.7 * fit.residual_before_px
    # the world frame and scale stay the given rig's: its centres' mean and spread
    old = np.stack([c.center for c in nudged.cameras])
    new = np.stack([c.center for c in fit.rig.cameras])
    assert np.allclose(new.mean(0), old.mean(0), atol=1e-4)
    spread = [np.sqrt(np.mean(np.sum((x - x.mean(0)) ** 2, -1))) for x in (old, new)]
    assert spread[1] == pytest.approx(spread[0], rel=1e-4)
    # intrinsics untouched; per-camera changes reported
    for cam, ref in zip(fit.rig.cameras, nudged.cameras):
        assert np.array_equal(cam.matrix, ref.matrix) and np.array_equal(cam.dist, ref.dist)
    assert fit.rotation_deg.shape == (4,) and np.all(fit.rotation_deg < 1.0) and np.all(fit.shift_m < 0.06)
    assert len(fit.lines()) == 5 and "median residual" in fit.lines()[-1]


def test_an_exact_rig_stays_where_it_is(take) -> None:
    truth, _, kp = take
    fit = refine_whole_rig(truth, kp)
    for cam, ref in zip(fit.rig.cameras, truth.cameras):
        rot, dist = pose_error(cam, ref)
        assert rot < 0.05 and dist < 0.005, (cam.name, rot, dist)


def test_whole_rig_refuses_what_it_cannot_solve(take) -> None:
    truth, _, kp = take
    with pytest.raises(RigDriftError, match="k.npz.*at least 2"):
        refine_whole_rig(truth, kp[:3], source="k.npz")
    with pytest.raises(RigDriftError, match="too few joints"):
        refine_whole_rig(truth, np.full_like(kp, np.nan))


def test_rig_refine_whole_rig_command(tmp_path, take, capsys) -> None:
    from posestudio.cli import main

    truth, nudged, kp = take
    nudged.save(tmp_path / "rig.toml")
    write_keypoints2d(tmp_path / "k.npz", Keypoints2D(kp, truth.names, list(H36M17.joints), FPS))
    code = main(["rig", "refine", "--calibration", str(tmp_path / "rig.toml"), "--keypoints2d", str(tmp_path / "k.npz"),
                 "--out", str(tmp_path / "rig2.toml"), "--report", str(tmp_path / "refine.json"), "--whole-rig"])
    assert code == 0
    out = capsys.readouterr().out
    assert "no camera moved" in out and "whole rig re-solved" in out and "4 cameras re-solved" in out
    rig2 = CameraRig.load(tmp_path / "rig2.toml")
    assert _aligned_errors(rig2, truth)[0] < 0.1
    report = json.loads((tmp_path / "refine.json").read_text())
    assert report["moves"] == [] and len(report["whole_rig"]["rotation_deg"]) == 4


def test_whole_rig_with_a_camera_moved_during_the_take() -> None:
    from posestudio.reconstruction.rig_check import check_take_rig
    from posestudio.synthetic.rig_disturbance import disturbed_take

    truth = make_studio_rig(4, (1920, 1080), seed=1)
    take = disturbed_take(truth, square_walk(420, FPS, corner=2), "cam2", 200, 2.0, 0.03, DetectorErrors(seed=1), 1)
    checked = check_take_rig(truth, Keypoints2D(take.keypoints, truth.names, list(H36M17.joints), FPS), "k.npz",
                             whole_rig=True)
    assert [(m.camera, m.frame) for m in checked.drift.moves] == [("cam2", 200)]
    assert checked.whole_rig is not None and checked.whole_rig.frames == (200, 420)
    turn, dist = _aligned_errors(checked.end_rig, take.moved_rig)
    assert turn < 0.1 and dist < 0.01, (turn, dist)
    assert checked.whole_rig.rotation_deg[truth.names.index("cam2")] == pytest.approx(2.0, abs=0.2)
