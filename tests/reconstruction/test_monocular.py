"""``posestudio reconstruct --monocular CAM``: 3D from one camera by the lifting network.

Accuracy is checked with a trained checkpoint (the shipped ``models/lifting/checkpoint.pt``, or the
file ``$POSESTUDIO_LIFTING_CHECKPOINT`` names; skipped without one); the command's files, errors
and export with an untrained network of the same kind (its numbers are meaningless, its shapes
and files are not).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from posestudio.cli import main
from posestudio.core.bvh import read_bvh
from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import Keypoints2D, read_points3d, write_keypoints2d
from posestudio.models import checkpoints
from posestudio.models.datasets.bandai import bandai_to_h36m17
from posestudio.models.keypoints import H36M17
from posestudio.models.lifting.lifter import CHECKPOINT_MODEL, CHECKPOINT_VERSION, DEFAULT_CHECKPOINT, body_height
from posestudio.models.lifting.network import LiftingConfig, LiftingNet, net_config_dict
from posestudio.reconstruction.monocular import check_height
from posestudio.reconstruction.stages import LIFTED_CONFIDENCE
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections

from ..calibration.conftest import SHARED_DATA

WALK = SHARED_DATA / "bandai_mocap_1"
#: Loose bounds for a small network from one view (the shipped checkpoint reaches 65-85 mm
#: root-relative and 120-165 mm absolute on this walk, depending on the camera).
ROOT_RELATIVE_MM = 150.0
ABSOLUTE_MM = 300.0


def _trained_checkpoint() -> Path | None:
    env = os.environ.get("POSESTUDIO_LIFTING_CHECKPOINT")
    if env:
        return Path(env)
    return DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.is_file() else None


def _mocap_walk() -> np.ndarray:
    """(90, 17, 3) metres: the middle 3 s of a motion-capture walk, centred in the capture volume."""
    motion = bandai_to_h36m17(read_bvh(sorted(WALK.glob("*walk*.bvh"))[0]))
    mid = len(motion) // 2
    motion = motion[max(mid - 45, 0):mid + 45]
    return motion - np.r_[motion[:, 0, :2].mean(axis=0), 0.0]


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    """A 4-camera take of the walk with detector-like errors: (folder, truth)."""
    if not sorted(WALK.glob("*walk*.bvh")):
        pytest.skip(f"motion capture absent ({WALK})")
    out = tmp_path_factory.mktemp("mono")
    truth = _mocap_walk()
    rig = make_studio_rig(4, (1920, 1080), seed=3)
    rig.save(out / "rig.toml")
    views = simulate_detections(rig, truth, DetectorErrors(noise_px=3.0, outlier_rate=0.05, occlusion_rate=0.05))
    write_keypoints2d(out / "k.npz", Keypoints2D(views.keypoints, rig.names, list(H36M17.joints), 30.0))
    kp = views.keypoints.copy()
    kp[1] = np.nan                                                     # cam1 never sees anyone
    write_keypoints2d(out / "k_blind.npz", Keypoints2D(kp, rig.names, list(H36M17.joints), 30.0))
    return out, truth


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> Path:
    """A lifting checkpoint of a small untrained network."""
    path = tmp_path_factory.mktemp("lift") / "untrained.pt"
    net = LiftingNet(LiftingConfig(hidden=32, n_blocks=1))
    checkpoints.save_checkpoint(path, CHECKPOINT_MODEL, CHECKPOINT_VERSION, net_config_dict(net), net)
    return path


def _reconstruct(folder: Path, out: Path, *extra: str, keypoints: str = "k.npz") -> int:
    return main(["reconstruct", "--calibration", str(folder / "rig.toml"), "--keypoints2d", str(folder / keypoints),
                 "--out", str(out), *extra])


def test_monocular_with_height_is_close_to_the_truth_in_metres(take, tmp_path):
    ckpt = _trained_checkpoint()
    if ckpt is None:
        pytest.skip(f"no trained lifting checkpoint ({DEFAULT_CHECKPOINT} or $POSESTUDIO_LIFTING_CHECKPOINT)")
    folder, truth = take
    height = float(np.median(body_height(truth)))
    for cam in ("cam0", "cam2"):
        out = tmp_path / cam
        assert _reconstruct(folder, out, "--monocular", cam, "--height", f"{height:.3f}",
                            "--lifting-checkpoint", str(ckpt)) == 0
        pts = read_points3d(out / "points3d.npz")
        report = json.loads((out / "report.json").read_text())
        lifted = np.isfinite(pts.points3d).all(-1).all(-1)
        assert lifted.mean() > 0.95 and report["frames_lifted"] >= 0.95 * len(truth)
        assert report["camera"] == cam and report["height_source"] == "given"
        assert report["height_m"] == pytest.approx(height, abs=1e-3)
        p, t = pts.points3d[lifted], truth[lifted]
        # metres: the output body is the given height (smoothing moves it a little)
        assert np.median(body_height(p)) == pytest.approx(height, rel=0.05)
        rel_mm = 1000 * np.linalg.norm((p - p[:, :1]) - (t - t[:, :1]), axis=-1).mean()
        abs_mm = 1000 * np.linalg.norm(p - t, axis=-1).mean()
        print(cam, f"root-relative {rel_mm:.1f} mm, absolute {abs_mm:.1f} mm")
        assert rel_mm < ROOT_RELATIVE_MM and abs_mm < ABSOLUTE_MM
        assert np.allclose(pts.confidence[lifted], LIFTED_CONFIDENCE)


def test_monocular_output_is_a_reconstruct_folder_export_reads(take, untrained, tmp_path, capsys):
    folder, truth = take
    out = tmp_path / "mono"
    assert _reconstruct(folder, out, "--monocular", "cam2", "--lifting-checkpoint", str(untrained)) == 0
    assert {p.name for p in out.iterdir()} >= {"points3d.npz", "report.json", "rig.toml"}
    pts = read_points3d(out / "points3d.npz")
    assert pts.points3d.shape == truth.shape and pts.joint_names == list(H36M17.joints) and pts.fps == 30.0
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "monocular" and report["height_source"] == "estimated"
    assert report["checkpoint"] == str(untrained)
    assert main(["export", str(out), "--bvh", str(tmp_path / "t.bvh"), "--csv", str(tmp_path / "t.csv")]) == 0
    assert (tmp_path / "t.bvh").is_file() and (tmp_path / "t.csv").is_file()


@pytest.mark.parametrize(("extra", "keypoints", "words"), [
    (("--monocular", "cam9"), "k.npz", ["--monocular cam9", "no such camera", "cam0, cam1"]),
    (("--monocular", "cam1"), "k_blind.npz", ["'cam1'", "no frame with at least 6 joints"]),
    (("--monocular", "cam1", "--height", "175"), "k.npz", ["--height 175", "metres", "1.75"]),
    (("--monocular", "cam1", "--height", "nan"), "k.npz", ["--height nan", "metres"]),
    (("--height", "1.7"), "k.npz", ["--height needs --monocular"]),
])
def test_monocular_errors_are_one_line_naming_the_thing(take, untrained, tmp_path, capsys, extra, keypoints, words):
    folder, _ = take
    out = tmp_path / "never"
    assert _reconstruct(folder, out, *extra, "--lifting-checkpoint", str(untrained), keypoints=keypoints) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err
    assert not out.exists()


def test_height_check():
    assert check_height(None) is None and check_height(1.75) == 1.75
    with pytest.raises(InputError, match="between 0.5 and 2.5"):
        check_height(0.2)


def test_monocular_videos_refuse_a_camera_without_a_recording_before_decoding(tmp_path, capsys):
    rig = make_studio_rig(3, (1280, 720), seed=3)
    rig.save(tmp_path / "rig.toml")
    video = tmp_path / f"{rig.names[0]}.avi"
    video.write_bytes(b"not decoded")
    for cam, words in ((rig.names[1], "no recording of that camera"), ("camX", "no such camera in the rig")):
        code = main(["reconstruct", "--calibration", str(tmp_path / "rig.toml"), "--videos", str(video),
                     "--monocular", cam, "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and f"--monocular {cam}" in err and words in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None, reason="mediapipe is not installed")
def test_monocular_from_one_rendered_video(tmp_path):
    """A rendered performance, one camera's video only: detected, lifted, written as a reconstruct folder."""
    from posestudio.synthetic.performance import performance_bodies, write_performance

    rig = make_studio_rig(4, image_size=(960, 540), seed=2, distortion="mild")
    bodies, _ = performance_bodies(frames=24, fps=30.0, people=1, seed=1)
    write_performance(tmp_path / "take", rig, bodies, fps=30.0, seed=1)
    rig.save(tmp_path / "rig.toml")
    video = tmp_path / "take" / "videos" / f"{rig.names[0]}.mp4"
    out = tmp_path / "out"
    assert main(["reconstruct", "--calibration", str(tmp_path / "rig.toml"), "--videos", str(video),
                 "--monocular", rig.names[0], "--out", str(out)]) == 0
    pts = read_points3d(out / "points3d.npz")
    report = json.loads((out / "report.json").read_text())
    assert report["camera"] == rig.names[0] and report["detection"]["detector"]
    assert (out / "keypoints2d.npz").is_file() and (out / "rig.toml").is_file()
    lifted = np.isfinite(pts.points3d).all(-1).all(-1)
    assert lifted.mean() > 0.8
    p, t = pts.points3d[lifted], bodies[0][lifted]
    err = np.linalg.norm(p - t, axis=-1).mean()
    rel = np.linalg.norm((p - p[:, :1]) - (t - t[:, :1]), axis=-1).mean()
    print(f"monocular from video: {1000 * rel:.0f} mm root-relative, {1000 * err:.0f} mm absolute, "
          f"height {report['height_m']:.2f} m")
    # BlazePose on renders against the renderer's joints, one view, the network's own scale: the
    # body in metres in the world frame, roughly (measured: about 0.47 m absolute)
    assert rel < 0.25 and err < 0.8 and 1.2 < report["height_m"] < 2.1
