"""Scores of a lifting network on held-out motion capture seen by one virtual camera.

Each held-out window is rendered into one random camera with fixed-seed detector-like 2D
(:func:`~.data.render_windows`); the network's centre-frame lift is compared with the true
camera-frame joints:

* ``mpjpe_mm``: root (pelvis) aligned; ``p_mpjpe_mm``: per-frame similarity (Procrustes);
  ``n_mpjpe_mm``: root aligned and per-frame scale; ``pck3d``: % of root-aligned joints within
  150 mm; ``auc``: mean PCK3D over 31 thresholds 0-150 mm, %;
* ``root_mm``: absolute error of the root's position in the camera frame; ``abs_mpjpe_mm``: no
  alignment at all; ``depth_mm``: the root depth's error; ``scale``: median ratio of the lifted to
  the true body height (1 is right).
"""

from __future__ import annotations

import numpy as np
import torch

from posestudio.core import pose_metrics
from posestudio.models.factorization.data import ViewConfig

from .data import DetectorNoise, MotionWindows, render_windows
from .lifter import body_height
from .network import LiftingNet

#: The benchmark's 2D: 3 px noise, nothing else.
EVAL_NOISE = DetectorNoise(noise_px=(3.0, 3.0), bias_px=0.0, outlier_rate_max=0.0, max_dropout=0.0,
                           frame_dropout=0.0, min_confidence=1.0)


def render_test_set(windows: MotionWindows, seed: int = 1234, views: ViewConfig | None = None,
                    noise: DetectorNoise | None = None) -> dict[str, torch.Tensor]:
    """Every window of ``windows`` in one fixed-seed camera: the keys of :func:`~.data.render_windows`
    with the view axis dropped (``xy (N, T, J, 2)``, ``truth (N, T, J, 3)`` ...)."""
    gen = torch.Generator().manual_seed(seed)
    poses, present = windows.get(torch.arange(len(windows)))
    batch = render_windows(poses, present, 1, gen, views, noise or EVAL_NOISE)
    return {k: v[:, 0] for k, v in batch.items()}


def score(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The metrics of the module docstring for ``(N, J, 3)`` camera-frame lifts against truth (metres)."""
    mm = 1000.0
    thresholds = np.linspace(0.0, 0.150, 31)
    heights = body_height(pred) / body_height(truth)
    return {
        "mpjpe_mm": mm * float(pose_metrics.mpjpe(pred, truth)),
        "p_mpjpe_mm": mm * float(pose_metrics.p_mpjpe(pred, truth)),
        "n_mpjpe_mm": mm * float(pose_metrics.n_mpjpe(pred, truth)),
        "pck3d": 100.0 * float(pose_metrics.pck3d(pred, truth, 0.150)),
        "auc": 100.0 * float(pose_metrics.auc_pck3d(pred, truth, thresholds)),
        "root_mm": mm * float(np.nanmean(np.linalg.norm(pred[:, 0] - truth[:, 0], axis=-1))),
        "abs_mpjpe_mm": mm * float(pose_metrics.mpjpe_absolute(pred, truth)),
        "depth_mm": mm * float(np.nanmean(np.abs(pred[:, 0, 2] - truth[:, 0, 2]))),
        "scale": float(np.nanmedian(heights)),
    }


@torch.no_grad()
def evaluate(model: LiftingNet, test: dict[str, torch.Tensor], batch: int = 4096) -> dict[str, float]:
    """Score ``model`` on a :func:`render_test_set` set (centre frames); see the module docstring."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    mid = model.config.window // 2
    out = []
    for s in range(0, test["xy"].shape[0], batch):
        res = model(test["xy"][s:s + batch].to(dev), test["weight"][s:s + batch].to(dev))
        out.append(res["points"][:, mid].double().cpu())
    model.train(was_training)
    return score(torch.cat(out).numpy(), test["truth"][:, mid].double().numpy())
