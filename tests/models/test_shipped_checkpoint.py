"""The factorization checkpoint that ships: what it is, and that it still does its job."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posestudio.models.datasets.bandai import DEFAULT_BANDAI_DIR, load_bandai
from posestudio.models.factorization.data import split_clips
from posestudio.models.factorization.prior import DEFAULT_CHECKPOINT, FactorizationPrior
from posestudio.models.factorization.train import evaluate, mean_shape


def test_shipped_checkpoint_is_the_documented_model() -> None:
    ckpt = torch.load(DEFAULT_CHECKPOINT, map_location="cpu", weights_only=False)
    assert ckpt["net_config"]["hierarchical"] and ckpt["net_config"]["n_bases"] == 10
    assert ckpt["net_config"]["n_fine"] == 10
    assert "--epochs 500" in ckpt["command"] and "--outliers 0.1" in ckpt["command"]
    assert DEFAULT_CHECKPOINT.stat().st_size < 5_000_000                    # "a few MB" at most


@pytest.mark.skipif(not DEFAULT_BANDAI_DIR.is_dir(), reason=f"motion capture not found at {DEFAULT_BANDAI_DIR}")
def test_shipped_checkpoint_beats_the_mean_shape_on_held_out_clips() -> None:
    train, test, _ = split_clips(load_bandai(frame_stride=10))
    prior = FactorizationPrior.load(DEFAULT_CHECKPOINT, device="cpu")
    baseline = mean_shape(train[np.linspace(0, len(train) - 1, 500).astype(int)].astype(np.float64))
    scores = evaluate(prior.model, test, n_views=4, seed=7, max_poses=400, baseline=baseline)
    assert scores["p_mpjpe_mm"] < 60.0, scores                               # CHECKPOINT.md: 52 mm
    assert scores["p_mpjpe_multiview_mm"] < 48.0, scores                     # 40 mm
    assert scores["p_mpjpe_mm"] < 0.6 * scores["baseline_p_mpjpe_mm"], scores
