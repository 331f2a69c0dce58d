"""A camera bumped during a take: found from the performer's 2D, re-solved, and used (issue 18)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posestudio.calibration.rig_drift import DriftOptions, RigDriftError, change_scores, find_moved_cameras, pose_error
from posestudio.core.keypoints_file import KeypointFileError, Keypoints2D, write_keypoints2d
from posestudio.core.pose_metrics import mpjpe
from posestudio.core.rig import CameraRig
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.pipeline import reconstruct
from posestudio.reconstruction.rig_check import H36M17_MIRROR, check_take_rig, run_reconstruction_checked
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import DetectorErrors
from posestudio.synthetic.rig_disturbance import disturbed_take, square_walk

FPS = 30.0
FRAMES = 420
MOVE = 200


def _take(seed: int, errors: DetectorErrors, turn: float = 2.0, shift: float = 0.03, camera: int | None = None):
    rig = make_studio_rig(4, (1920, 1080), seed=seed)
    truth = square_walk(FRAMES, FPS, corner=seed)
    name = rig.names[(seed + 1) % 4 if camera is None else camera]
    return rig, truth, disturbed_take(rig, truth, name, MOVE, turn, shift, errors, seed)


@pytest.mark.parametrize("seed, turn, shift", [(0, 1.0, 0.02), (1, 3.0, 0.05)])
def test_moved_camera_found_at_its_frame_and_resolved(seed: int, turn: float, shift: float) -> None:
    rig, _, take = _take(seed, DetectorErrors(seed=seed), turn, shift)
    drift = find_moved_cameras(rig, take.keypoints, FPS, mirror=H36M17_MIRROR)
    assert [m.camera for m in drift.moves] == [take.camera]
    move = drift.moves[0]
    assert abs(move.frame - MOVE) <= FPS                      # within a second (it is exact here)
    rot, dist = pose_error(drift.end_rig()[take.camera], take.moved_rig[take.camera])
    assert rot < 0.2 and dist < 0.01, (rot, dist)
    assert move.rotation_deg == pytest.approx(turn, abs=0.3)
    assert move.residual_solved_px < 0.5 * move.residual_after_px
    # cameras that did not move are exactly as they were
    end = drift.end_rig()
    for cam in rig.cameras:
        if cam.name != take.camera:
            assert np.array_equal(end[cam.name].rotation, cam.rotation)
            assert np.array_equal(end[cam.name].translation, cam.translation)
    assert take.camera in move.line() and str(move.frame) in move.line()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("realistic", [False, True])
def test_no_false_alarm_on_undisturbed_takes(seed: int, realistic: bool) -> None:
    errors = DetectorErrors.realistic(seed) if realistic else DetectorErrors(seed=seed)
    rig, _, take = _take(seed, errors)
    drift = find_moved_cameras(rig, take.undisturbed, FPS, mirror=H36M17_MIRROR)
    assert drift.moves == [], drift.lines()
    assert np.nanmax(drift.scores) < 1.0
    assert drift.lines() == [f"no camera moved (4 cameras, {FRAMES} frames)"]


def test_realistic_detector_move_found() -> None:
    rig, _, take = _take(1, DetectorErrors.realistic(1))
    drift = find_moved_cameras(rig, take.keypoints, FPS, mirror=H36M17_MIRROR)
    assert [m.camera for m in drift.moves] == [take.camera]
    assert abs(drift.moves[0].frame - MOVE) <= FPS
    rot, dist = pose_error(drift.end_rig()[take.camera], take.moved_rig[take.camera])
    assert rot < 0.5 and dist < 0.03, (rot, dist)          # correlated jitter and bias: looser


def test_reconstruction_with_refined_rig_matches_undisturbed() -> None:
    rig, truth, take = _take(2, DetectorErrors(seed=2), 2.0, 0.04)
    kp = Keypoints2D(take.keypoints, rig.names, list(H36M17.joints), FPS)
    checked = check_take_rig(rig, kp, "take")
    seg_rig, seg_kp = checked.segmented_take(rig, kp)
    assert seg_rig.names == rig.names + [f"{take.camera}@{checked.drift.moves[0].frame}"]
    assert np.isnan(seg_kp.keypoints[rig.names.index(take.camera), MOVE + 5:]).all()
    refined = mpjpe(reconstruct(seg_rig, seg_kp).points.points3d, truth)
    clean = mpjpe(reconstruct(rig, Keypoints2D(take.undisturbed, rig.names, list(H36M17.joints), FPS))
                  .points.points3d, truth)
    assert refined <= 1.10 * clean, (refined, clean)


def test_change_scores_ignore_a_transient_and_see_a_step() -> None:
    rng = np.random.default_rng(0)
    r = 5.0 + rng.normal(0, 0.5, (2, 400))
    r[0, 150:170] += 40.0          # a burst shorter than half a window: no move
    r[1, 200:] += 20.0             # a step that stays: a move
    scores, shift = change_scores(r, FPS, DriftOptions())
    assert np.nanmax(scores[0]) < 1.0
    assert np.nanmax(scores[1]) > 1.0 and abs(int(np.nanargmax(shift[1])) - 200) <= 30
    # offsets (C, 2, F): a change in any direction counts
    v = rng.normal(0, 0.5, (1, 2, 400))
    v[0, 1, 200:] -= 20.0
    scores, _ = change_scores(v, FPS, DriftOptions())
    assert np.nanmax(scores[0, :150]) < 1.0 < np.nanmax(scores[0])


def test_clear_errors(tmp_path) -> None:
    rig, _, take = _take(0, DetectorErrors(seed=0))
    with pytest.raises(RigDriftError, match="take.npz.*needs at least 180"):
        find_moved_cameras(rig, take.keypoints[:, :40], FPS, source="take.npz")
    with pytest.raises(RigDriftError, match="at least 3 cameras"):
        find_moved_cameras(rig.subset(rig.names[:2]), take.keypoints[:2], FPS, source="take.npz")
    with pytest.raises(RigDriftError, match="keypoints for 3 cameras, the rig has 4"):
        find_moved_cameras(rig, take.keypoints[:3], FPS, source="take.npz")
    stranger = Keypoints2D(take.keypoints, rig.names[:3] + ["camX"], list(H36M17.joints), FPS)
    with pytest.raises(KeypointFileError, match=r"k\.npz.*camX.*not in the rig"):
        check_take_rig(rig, stranger, "k.npz")


def test_rig_refine_command(tmp_path, capsys) -> None:
    from posestudio.cli import main

    rig, _, take = _take(0, DetectorErrors(seed=0))
    rig.save(tmp_path / "rig.toml")
    write_keypoints2d(tmp_path / "k.npz", Keypoints2D(take.keypoints, rig.names, list(H36M17.joints), FPS))
    code = main(["rig", "refine", "--calibration", str(tmp_path / "rig.toml"), "--keypoints2d", str(tmp_path / "k.npz"),
                 "--out", str(tmp_path / "rig2.toml"), "--report", str(tmp_path / "refine.json")])
    assert code == 0
    out = capsys.readouterr().out
    assert f"camera {take.camera} moved at frame {MOVE}" in out and "deg" in out and "cm" in out
    rig2 = CameraRig.load(tmp_path / "rig2.toml")
    rot, dist = pose_error(rig2[take.camera], take.moved_rig[take.camera])
    assert rot < 0.2 and dist < 0.01
    saved = CameraRig.load(tmp_path / "rig.toml")
    for name in rig.names:
        if name != take.camera:
            assert np.allclose(rig2[name].rotation, saved[name].rotation, atol=0, rtol=0)
            assert np.allclose(rig2[name].translation, saved[name].translation, atol=0, rtol=0)
    report = json.loads((tmp_path / "refine.json").read_text())
    assert report["moves"][0]["camera"] == take.camera and report["moves"][0]["frame"] == MOVE
    # too short a take: one line naming the file
    write_keypoints2d(tmp_path / "short.npz", Keypoints2D(take.keypoints[:, :30], rig.names, list(H36M17.joints), FPS))
    assert main(["rig", "refine", "--calibration", str(tmp_path / "rig.toml"), "--keypoints2d",
                 str(tmp_path / "short.npz"), "--out", str(tmp_path / "rig3.toml")]) == 2
    assert "short.npz" in capsys.readouterr().err
    assert not (tmp_path / "rig3.toml").exists()


def test_reconstruction_warns_and_refines(tmp_path) -> None:
    rig, truth, take = _take(0, DetectorErrors(seed=0))
    rig.save(tmp_path / "rig.toml")
    write_keypoints2d(tmp_path / "k.npz", Keypoints2D(take.keypoints, rig.names, list(H36M17.joints), FPS))
    said: list[str] = []
    run_reconstruction_checked(tmp_path / "rig.toml", tmp_path / "k.npz", tmp_path / "plain", say=said.append)
    assert len(said) == 1 and take.camera in said[0] and f"frame {MOVE}" in said[0] and "--refine-rig" in said[0]
    said.clear()
    result = run_reconstruction_checked(tmp_path / "rig.toml", tmp_path / "k.npz", tmp_path / "refined",
                                        refine_rig=True, say=said.append)
    assert len(said) == 1
    assert f"{take.camera}@{MOVE}" in CameraRig.load(tmp_path / "refined" / "rig.toml").names
    assert mpjpe(result.points.points3d, truth) < 0.02


def test_reconstruct_command_warns_and_uses_the_refined_rig(tmp_path, capsys) -> None:
    from posestudio.cli import main

    rig, _, take = _take(0, DetectorErrors(seed=0))
    rig.save(tmp_path / "rig.toml")
    write_keypoints2d(tmp_path / "k.npz", Keypoints2D(take.keypoints, rig.names, list(H36M17.joints), FPS))
    assert main(["reconstruct", "--calibration", str(tmp_path / "rig.toml"), "--keypoints2d", str(tmp_path / "k.npz"),
                 "--out", str(tmp_path / "out"), "--refine-rig"]) == 0
    warned = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and f"camera {take.camera} moved at frame {MOVE}" in warned[0]
    assert f"{take.camera}@{MOVE}" in CameraRig.load(tmp_path / "out" / "rig.toml").names
