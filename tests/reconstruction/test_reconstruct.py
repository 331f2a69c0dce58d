"""``posestudio reconstruct`` end to end, and its answers to malformed input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posestudio.cli import build_parser
from posestudio.commands.reconstruct import options_from_args
from posestudio.core.bvh import read_bvh
from posestudio.core.keypoints_file import Keypoints2D, read_points3d, write_keypoints2d
from posestudio.core.pose_metrics import mpjpe_absolute
from posestudio.models.datasets.bandai import bandai_to_h36m17
from posestudio.models.keypoints import COCO17, H36M17
from posestudio.reconstruction.pipeline import ReconstructionOptions, reconstruct
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections
from posestudio.synthetic.body_motion import walking_body

from ..calibration.conftest import SHARED_DATA

POSESTUDIO = str(Path(sys.executable).parent / "posestudio")
WALK = SHARED_DATA / "bandai_mocap_1"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([POSESTUDIO, *args], capture_output=True, text=True, timeout=300)


def _motion() -> np.ndarray:
    """(F, 17, 3) metres: the synthetic walker crossing the capture volume (4 s at 30 fps)."""
    return walking_body(120, start=(-0.9, -0.35), speed_m_s=0.5, heading_deg=20)


def _mocap_walk() -> np.ndarray:
    """(90, 17, 3) metres: the middle 3 s of a motion-capture walk, centred in the capture volume."""
    motion = bandai_to_h36m17(read_bvh(sorted(WALK.glob("*walk*.bvh"))[0]))
    mid = len(motion) // 2
    motion = motion[max(mid - 45, 0):mid + 45]
    return motion - np.r_[motion[:, 0, :2].mean(axis=0), 0.0]


def _write_take(out: Path, truth: np.ndarray):
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    rig.save(out / "rig.toml")
    views = simulate_detections(rig, truth, DetectorErrors(noise_px=3.0, outlier_rate=0.10, occlusion_rate=0.08))
    write_keypoints2d(out / "k.npz", Keypoints2D(views.keypoints, rig.names, list(H36M17.joints), 30.0))
    return rig, views


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    out = tmp_path_factory.mktemp("recon")
    truth = _motion()
    rig, views = _write_take(out, truth)
    return out, rig, truth, views


def _command_recovers(out: Path, rig, truth: np.ndarray) -> None:
    proc = run("reconstruct", "--calibration", str(out / "rig.toml"), "--keypoints2d", str(out / "k.npz"),
               "--out", str(out / "res"))
    assert proc.returncode == 0, proc.stderr
    pts = read_points3d(out / "res" / "points3d.npz")
    report = json.loads((out / "res" / "report.json").read_text())       # the file, as a user reads it
    assert pts.points3d.shape == truth.shape and pts.joint_names == list(H36M17.joints)
    err_mm = mpjpe_absolute(pts.points3d, truth) * 1000
    print("MPJPE (absolute) mm", err_mm, "coverage", report["fraction_reconstructed"])
    assert err_mm < 20.0
    assert report["fraction_reconstructed"] > 0.99
    assert report["outlier_views_rejected"] > 0
    assert set(report["reprojection_rms_px_per_camera"]) == set(rig.names)
    assert 0 <= pts.confidence.min() and pts.confidence.max() <= 1


def test_reconstruct_command_recovers_the_motion(studio):
    out, rig, truth, _ = studio
    _command_recovers(out, rig, truth)


@pytest.mark.realdata
@pytest.mark.skipif(not sorted(WALK.glob("*walk*.bvh")), reason=f"motion capture absent ({WALK})")
def test_reconstruct_command_recovers_captured_motion(tmp_path):
    truth = _mocap_walk()
    rig, _ = _write_take(tmp_path, truth)
    _command_recovers(tmp_path, rig, truth)


def test_a_slow_camera_take_reconstructs(studio):
    """A 5 fps take (a slow webcam, a time-lapse): the 6 Hz smoothing cutoff is above its Nyquist
    frequency, so the filter works at 80 % of it instead of failing."""
    out, rig, truth, views = studio
    slow = views.keypoints[:, ::6]
    res = reconstruct(rig, Keypoints2D(slow, rig.names, list(H36M17.joints), 5.0))
    assert np.isfinite(res.points.points3d).all(axis=-1).mean() > 0.95
    assert res.report.smoothing["cutoff_hz"] == 2.0


def test_live_mode_is_causal(studio):
    out, rig, truth, views = studio
    kp = Keypoints2D(views.keypoints, rig.names, list(H36M17.joints), 30.0)
    full = reconstruct(rig, kp, ReconstructionOptions(live=True)).points.points3d
    half = reconstruct(rig, Keypoints2D(views.keypoints[:, :60], rig.names, list(H36M17.joints), 30.0),
                       ReconstructionOptions(live=True)).points.points3d
    np.testing.assert_allclose(full[:60], half, atol=1e-12)  # frame t never sees frames after t


def test_coco_keypoints_map_into_the_body_layout(studio):
    out, rig, truth, views = studio
    coco = np.full(views.keypoints.shape[:2] + (17, 3), np.nan)
    coco[..., COCO17.index("left_hip"), :] = views.keypoints[..., H36M17.index("l_hip"), :]
    coco[..., COCO17.index("right_hip"), :] = views.keypoints[..., H36M17.index("r_hip"), :]
    res = reconstruct(rig, Keypoints2D(coco, rig.names, list(COCO17.joints), 30.0))
    pelvis = res.points.points3d[:, H36M17.index("pelvis")]
    assert res.report.input_layout == "coco17"
    mid_hips = 0.5 * (truth[:, H36M17.index("l_hip")] + truth[:, H36M17.index("r_hip")])
    assert np.nanmedian(np.linalg.norm(pelvis - mid_hips, axis=-1)) < 0.02


@pytest.mark.parametrize("case,expected", [
    ("wrong_shape", "'keypoints' has shape (4, 10, 17); expected (cameras, frames, joints, 3)"),
    ("unknown_camera", "cameras ['camX'] are not in the rig"),
    ("unknown_joints", "unknown joints"),
    ("all_nan", "every keypoint is NaN"),
    ("no_frames", "has no frames"),
    ("not_npz", "not a readable .npz file"),
    ("missing_rig", "rig file not found"),
])
def test_malformed_input_is_named_and_nothing_is_written(studio, tmp_path, case, expected):
    out, rig, _, views = studio
    kp = views.keypoints[:, :10]
    names, joints, rig_path = list(rig.names), list(H36M17.joints), out / "rig.toml"
    path = tmp_path / "k.npz"
    if case == "wrong_shape":
        np.savez(path, keypoints=kp[..., 0], camera_names=np.array(names), joint_names=np.array(joints), fps=30.0)
    elif case == "not_npz":
        path.write_text("hello")
    else:
        if case == "unknown_camera":
            names[0] = "camX"
        elif case == "unknown_joints":
            joints[3] = "tail"
        elif case == "all_nan":
            kp = np.full_like(kp, np.nan)
        elif case == "no_frames":
            kp = kp[:, :0]
        elif case == "missing_rig":
            rig_path = tmp_path / "nope.toml"
        np.savez(path, keypoints=kp, camera_names=np.array(names), joint_names=np.array(joints), fps=30.0)
    proc = run("reconstruct", "--calibration", str(rig_path), "--keypoints2d", str(path), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o" / "points3d.npz").exists() and not (tmp_path / "o" / "report.json").exists()


def test_prior_options(studio, tmp_path):
    out, *_ = studio
    base = ["reconstruct", "--calibration", str(out / "rig.toml"), "--keypoints2d", str(out / "k.npz")]
    proc = run(*base, "--out", str(tmp_path / "none"), "--no-prior", "--no-refine")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "none" / "report.json").read_text())
    assert report["prior"] is None and report["fraction_filled_by_prior"] == 0.0
    assert "refined" not in report["smoothing"]
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    proc = run(*base, "--out", str(tmp_path / "bad"), "--prior", str(bad))
    assert proc.returncode == 2 and "not a factorization checkpoint" in proc.stderr and str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "bad" / "points3d.npz").exists()
    proc = run(*base, "--out", str(tmp_path / "neg"), "--max-gap-s", "-1")
    assert proc.returncode == 2 and "--max-gap-s must be zero or more" in proc.stderr


def test_command_defaults_are_the_options_defaults() -> None:
    args = build_parser().parse_args(["reconstruct", "--calibration", "r.toml", "--keypoints2d", "k.npz", "--out", "o"])
    assert options_from_args(args) == ReconstructionOptions()
    args = build_parser().parse_args(["reconstruct", "--calibration", "r.toml", "--keypoints2d", "k.npz", "--out", "o",
                                      "--live", "--threshold-px", "9", "--min-confidence", "0.5", "--max-gap-s", "0.2",
                                      "--max-carry-s", "0", "--no-prior", "--no-refine"])
    opts = options_from_args(args)
    assert (opts.live, opts.triangulation.threshold_px, opts.triangulation.min_confidence, opts.max_gap_s,
            opts.max_carry_s, opts.prior, opts.refine) == (True, 9.0, 0.5, 0.2, 0.0, None, False)
