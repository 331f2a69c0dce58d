"""Fine-tuning the lifting network on a studio's own recorded session (rig + 2D, no 3D)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import Keypoints2D, write_keypoints2d
from posestudio.core.pose_metrics import mpjpe
from posestudio.models.keypoints import H36M17
from posestudio.models.lifting.lifter import DEFAULT_CHECKPOINT, Lifter
from posestudio.models.lifting.sessions import load_lifting_session
from posestudio.models.lifting.upright import upright_turn
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections
from posestudio.synthetic.body_motion import walking_body

POSESTUDIO = str(Path(sys.executable).parent / "posestudio")


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    out = tmp_path_factory.mktemp("lifting_session")
    rig = make_studio_rig(4, (1920, 1080), seed=7)
    rig.save(out / "rig.toml")
    body = walking_body(120, fps=60.0, start=(-0.8, 0.0), speed_m_s=0.6, heading_deg=40)
    views = simulate_detections(rig, body, DetectorErrors(seed=2))
    write_keypoints2d(out / "k.npz", Keypoints2D(views.keypoints, rig.names, list(H36M17.joints), 60.0))
    return out, rig, body, views.keypoints


def test_a_session_becomes_windows_seen_by_the_rig(session) -> None:
    out, rig, _, _ = session
    data = load_lifting_session(out / "rig.toml", out / "k.npz", window=9, model_fps=30.0)
    assert data.xy.shape[1:] == (4, 9, 17, 2) and 80 <= len(data) <= 120
    assert bool(((data.weight[:, :, 4] > 0).sum(-1) >= 8).sum(1).ge(2).all())     # two cameras see each centre
    # each camera in its upright frame (roll undone), as the network lifts: the same centre, image up = world up
    upright = upright_turn(rig.rotations) @ rig.rotations
    np.testing.assert_allclose(data.rotation.numpy(), upright, atol=1e-6)
    np.testing.assert_allclose(data.up.numpy(), upright[:, :, 2], atol=1e-6)
    assert np.abs(data.up.numpy()[:, 0]).max() < 1e-6
    centres = -np.einsum("cji,cj->ci", data.rotation.numpy(), data.translation.numpy())
    np.testing.assert_allclose(centres, rig.centers, atol=1e-5)
    batch = data.batch(torch.arange(5))
    assert batch["rotation"].shape == (5, 4, 3, 3) and batch["translation"].shape == (5, 4, 3)


def test_a_session_nobody_is_seen_in_is_refused_by_name(session, tmp_path: Path) -> None:
    out, rig, _, kp = session
    empty = kp.copy()
    empty[..., 2] = 0.05
    write_keypoints2d(tmp_path / "faint.npz", Keypoints2D(empty, rig.names, list(H36M17.joints), 60.0))
    with pytest.raises(InputError, match="faint.npz: no frame where two cameras"):
        load_lifting_session(out / "rig.toml", tmp_path / "faint.npz", window=9, model_fps=30.0)


def test_fine_tuning_on_a_session_keeps_or_improves_its_lifts(session, tmp_path: Path) -> None:
    """``posestudio train lifting --init <shipped> --session ...`` runs, resumably writes a
    checkpoint, and the tuned network lifts the session's cameras no worse than before."""
    out, rig, body, kp = session
    ckpt = tmp_path / "tuned.pt"
    run = subprocess.run([POSESTUDIO, "train", "lifting", "--out", str(ckpt), "--init", str(DEFAULT_CHECKPOINT),
                          "--pretrain-epochs", "0", "--epochs", "6", "--lr", "3e-4", "--sessions-only", "--threads", "1",
                          "--session", str(out / "rig.toml"), str(out / "k.npz")],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "epoch 6 (transform" in run.stdout and f"wrote {ckpt}" in run.stdout
    errors = {}
    for name, path in (("shipped", None), ("tuned", ckpt)):
        lifter = Lifter.load(path, device="cpu")
        errors[name] = np.mean([mpjpe(lifter.lift_camera(cam, kp[c], 60.0).world_points, body)
                                for c, cam in enumerate(rig)])
    assert errors["tuned"] < 1.1 * errors["shipped"], errors


def test_train_lifting_refuses_sessions_only_without_a_session(tmp_path: Path) -> None:
    run = subprocess.run([POSESTUDIO, "train", "lifting", "--out", str(tmp_path / "x.pt"), "--sessions-only"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "--sessions-only needs at least one --session" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "x.pt").exists()
