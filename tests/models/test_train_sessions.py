"""Training the factorization network on a studio's own recorded sessions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from posestudio.core.keypoints_file import Keypoints2D, write_keypoints2d
from posestudio.models.factorization.prior import DEFAULT_CHECKPOINT, FactorizationPrior
from posestudio.models.factorization.sessions import load_session
from posestudio.models.keypoints import H36M17
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections
from posestudio.synthetic.body_motion import walking_body

POSESTUDIO = str(Path(sys.executable).parent / "posestudio")


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    out = tmp_path_factory.mktemp("session")
    rig = make_studio_rig(4, (1920, 1080), seed=7)
    rig.save(out / "rig.toml")
    body = walking_body(90, start=(-0.8, 0.0), speed_m_s=0.6, heading_deg=40)
    views = simulate_detections(rig, body, DetectorErrors(seed=2))
    write_keypoints2d(out / "k.npz", Keypoints2D(views.keypoints, rig.names, list(H36M17.joints), 30.0))
    return out, rig


def test_a_session_becomes_multi_view_training_instants(session) -> None:
    out, rig = session
    data = load_session(out / "rig.toml", out / "k.npz")
    assert data.kp.shape[1:] == (4, 17, 2) and 60 <= len(data) <= 90
    assert bool((data.view_mask.sum(1) >= 2).all())
    np.testing.assert_allclose(data.rotation[0].numpy(), np.stack([c.rotation for c in rig.cameras]), atol=1e-6)
    # normalised like the network's input: each used view centred with unit RMS radius
    used = data.view_mask > 0
    m = data.mask[used]
    centre = (data.kp[used] * m[..., None]).sum(1) / m.sum(1, keepdim=True)
    assert float(centre.abs().max()) < 1e-5


def test_fine_tuning_on_sessions_lowers_the_loss_and_loads_as_a_prior(session, tmp_path) -> None:
    out, _ = session
    ckpt = tmp_path / "ours.pt"
    proc = subprocess.run([POSESTUDIO, "train", "factorization", "--out", str(ckpt), "--epochs", "6",
                           "--batch-size", "32", "--init", str(DEFAULT_CHECKPOINT),
                           "--session", str(out / "rig.toml"), str(out / "k.npz")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    epochs = saved["log"]["epochs"]
    assert epochs[-1]["total"] < epochs[0]["total"]
    assert saved["log"]["sessions"] == [str(out / "k.npz")]
    assert "--session" in saved["command"]
    prior = FactorizationPrior.load(ckpt)
    assert prior.model.config.hierarchical


@pytest.mark.parametrize("case,expected", [
    ("missing_rig", "rig file not found"),
    ("missing_keypoints", "k_missing.npz"),
    ("camera_not_in_rig", "are not in"),
])
def test_bad_sessions_are_named(session, tmp_path, case, expected) -> None:
    out, rig = session
    rig_path, kp_path = out / "rig.toml", out / "k.npz"
    if case == "missing_rig":
        rig_path = tmp_path / "nope.toml"
    elif case == "missing_keypoints":
        kp_path = tmp_path / "k_missing.npz"
    else:
        rig.subset(rig.names[:2]).save(tmp_path / "small.toml")
        rig_path = tmp_path / "small.toml"
    proc = subprocess.run([POSESTUDIO, "train", "factorization", "--out", str(tmp_path / "c.pt"), "--epochs", "1",
                           "--session", str(rig_path), str(kp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "c.pt").exists()
