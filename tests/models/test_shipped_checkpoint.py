"""The factorization checkpoint that ships: what it is, and that it still does its job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from posestudio.core.pose_metrics import p_mpjpe
from posestudio.models.checkpoints import CheckpointError
from posestudio.models.datasets.bandai import DEFAULT_BANDAI_DIR, load_bandai
from posestudio.models.factorization.data import split_clips
from posestudio.models.factorization.network import FactorizationNet
from posestudio.models.factorization.prior import DEFAULT_CHECKPOINT, FactorizationPrior
from posestudio.models.factorization.train import evaluate, mean_shape
from posestudio.synthetic.body_motion import walking_body
from posestudio.synthetic.studio_rig import make_studio_rig


def test_shipped_checkpoint_is_the_documented_model() -> None:
    prior = FactorizationPrior.load(device="cpu")                                  # format checked on load
    assert prior.info["net_config"]["hierarchical"] and prior.info["net_config"]["n_bases"] == 10
    assert prior.info["net_config"]["n_fine"] == 10
    assert "--epochs 500" in prior.info["command"] and "--outliers 0.1" in prior.info["command"]
    assert DEFAULT_CHECKPOINT.stat().st_size < 5_000_000                       # "a few MB" at most


def _walk_seen_by_a_rig() -> tuple[np.ndarray, np.ndarray, object]:
    """A synthetic walk (never seen in training) and its exact 2D in a 4-camera studio."""
    rig = make_studio_rig(4, seed=2, distortion="mild")
    body = walking_body(90, heading_deg=30.0, start=(-0.5, -0.3))
    pix = rig.project(body)
    return body, np.concatenate([pix, np.ones(pix.shape[:-1] + (1,))], -1), rig


def test_shipped_checkpoint_reads_a_body_it_never_saw() -> None:
    """The shipped weights turn four views of a synthetic walk into its 3D shape (no data files needed):
    measured 51 mm P-MPJPE, against 72 mm for a standing body and 386 mm for untrained weights."""
    body, kp, rig = _walk_seen_by_a_rig()
    standing = np.broadcast_to(walking_body(1, stride_hz=0.0)[0], body.shape)
    shapes, ok = FactorizationPrior.load(device="cpu").read_views(kp, rig).mean_shape()
    assert ok.all()
    assert p_mpjpe(shapes, body) < 0.060
    assert p_mpjpe(shapes, body) < 0.8 * p_mpjpe(standing, body)


def test_untrained_weights_fail_the_same_check() -> None:
    body, kp, rig = _walk_seen_by_a_rig()
    torch.manual_seed(0)
    untrained = FactorizationPrior(FactorizationNet(**FactorizationPrior.load().info["net_config"]), device="cpu")
    shapes, _ = untrained.read_views(kp, rig).mean_shape()
    assert p_mpjpe(shapes, body) > 0.060


def test_a_foreign_or_broken_checkpoint_is_refused_by_name(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt.*not a factorization checkpoint"):
        FactorizationPrior.load(garbage)
    other = tmp_path / "other.pt"
    torch.save({"format": "posestudio.lifting/1", "net_config": {}, "state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="other.pt.*'posestudio.lifting/1'.*'posestudio.factorization/1'"):
        FactorizationPrior.load(other)
    with pytest.raises(CheckpointError, match="missing.pt.*not found"):
        FactorizationPrior.load(tmp_path / "missing.pt")


@pytest.mark.skipif(not DEFAULT_BANDAI_DIR.is_dir(), reason=f"motion capture not found at {DEFAULT_BANDAI_DIR}")
def test_shipped_checkpoint_beats_the_mean_shape_on_held_out_clips() -> None:
    train, test, _ = split_clips(load_bandai(frame_stride=10))
    prior = FactorizationPrior.load(DEFAULT_CHECKPOINT, device="cpu")
    baseline = mean_shape(train[np.linspace(0, len(train) - 1, 500).astype(int)].astype(np.float64))
    scores = evaluate(prior.model, test, n_views=4, seed=7, max_poses=400, baseline=baseline)
    assert scores["p_mpjpe_mm"] < 60.0, scores                               # CHECKPOINT.md: 52 mm
    assert scores["p_mpjpe_multiview_mm"] < 48.0, scores                     # 40 mm
    assert scores["p_mpjpe_mm"] < 0.6 * scores["baseline_p_mpjpe_mm"], scores
