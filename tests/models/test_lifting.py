"""The lifting network's geometry, losses, windows and training (issue 17)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from posestudio.models.checkpoints import CheckpointError
from posestudio.models.lifting.data import DetectorNoise, MotionWindows, render_windows
from posestudio.models.lifting.evaluation import render_test_set
from posestudio.models.lifting.lifter import Lifter, body_height, scale_to_height
from posestudio.models.lifting.losses import bone_loss, reprojection_loss, transform_loss, turn_about
from posestudio.models.lifting.network import LiftingConfig, LiftingNet, project, root_from_depth
from posestudio.models.lifting.train import LiftingTrainConfig, train
from posestudio.models.lifting.windows import gather_windows, window_frames
from posestudio.synthetic.body_motion import walking_body

CLEAN = DetectorNoise(noise_px=(0.0, 0.0), bias_px=0.0, outlier_rate_max=0.0, max_dropout=0.0, frame_dropout=0.0,
                      min_confidence=1.0)


def _walks(n: int, frames: int = 60) -> list[np.ndarray]:
    """Synthetic walks at 30 fps in different directions and speeds (metres, Z up)."""
    return [walking_body(frames, fps=30.0, heading_deg=37.0 * k, stride_hz=0.8 + 0.1 * k,
                         start=(0.2 * k - 0.5, -0.1 * k)).astype(np.float32) for k in range(n)]


def _rendered(n_views: int = 3, noise: DetectorNoise = CLEAN, seed: int = 0) -> dict[str, torch.Tensor]:
    windows = MotionWindows(_walks(2), window=9, stride=5)
    poses, present = windows.get(torch.arange(len(windows)))
    return render_windows(poses, present, n_views, torch.Generator().manual_seed(seed), noise=noise)


def test_root_from_depth_recovers_the_root_of_a_consistent_body() -> None:
    batch = _rendered()
    truth = batch["truth"]                                                          # (B, V, T, J, 3)
    rel = truth - truth[..., :1, :]
    root = root_from_depth(rel, truth[..., 0, 2], project(truth), batch["weight"])
    seen = batch["weight"].sum(-1) > 0                                              # frames inside the clip
    assert 0 < int(seen.sum()) < seen.numel()
    torch.testing.assert_close(root[seen], truth[..., 0, :][seen], atol=1e-4, rtol=0)
    assert float(root[~seen][:, :2].abs().max()) == 0.0                             # no 2D: no X, Y


def test_transform_loss_is_zero_for_the_truth_and_grows_with_a_wrong_depth() -> None:
    batch = _rendered()
    truth = batch["truth"]
    right = transform_loss(truth, batch["rotation"], batch["translation"], batch["xy"], batch["weight"])
    assert float(right) < 1e-3
    farther = truth * 1.1                          # 10 % too far and too big: its own view cannot tell
    assert float(reprojection_loss(farther, batch["xy"], batch["weight"])) < 1e-3
    wrong = transform_loss(farther, batch["rotation"], batch["translation"], batch["xy"], batch["weight"])
    assert float(wrong) > 5.0                                                       # pixels of a 1000 px focal


def test_turning_about_the_vertical_is_rigid_and_undone_by_the_opposite_turn() -> None:
    batch = _rendered()
    pts = batch["truth"][:, 0]                                                      # (B, T, J, 3)
    up, angle = batch["up"][:, 0], torch.full((pts.shape[0],), 0.7)
    turned = turn_about(pts, pts[:, :, 0], up, angle)
    torch.testing.assert_close(torch.cdist(turned[:, 0], turned[:, 0]), torch.cdist(pts[:, 0], pts[:, 0]),
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(turn_about(turned, pts[:, :, 0], up, -angle), pts, atol=1e-4, rtol=0)
    height_change = ((turned - pts) * up[:, None, None]).sum(-1)                   # turning keeps heights
    assert float(height_change.abs().max()) < 1e-4


def test_windows_resample_a_60_fps_take_and_mark_its_ends() -> None:
    frames, present = window_frames(np.array([0, 10, 99]), 100, window=9, fps=60.0, model_fps=30.0)
    assert frames[1].tolist() == [2, 4, 6, 8, 10, 12, 14, 16, 18]
    assert present[0].tolist() == [False] * 4 + [True] * 5 and frames[0, 0] == 0
    assert present[2].tolist() == [True] * 5 + [False] * 4 and frames[2, -1] == 99
    xy = np.random.default_rng(0).normal(size=(100, 17, 2))
    xy[12, 3] = np.nan
    weight = np.ones((100, 17))
    wx, ww = gather_windows(xy, weight, frames, present)
    assert wx.shape == (3, 9, 17, 2) and ww.shape == (3, 9, 17)
    assert ww[0, :4].max() == 0 and ww[1, 5, 3] == 0 and np.isfinite(wx).all()
    with pytest.raises(ValueError, match="fps = 0"):
        window_frames(np.array([0]), 10, 9, 0.0, 30.0)


def test_bone_loss_is_zero_for_a_symmetric_constant_adult() -> None:
    body = torch.as_tensor(walking_body(9, fps=30.0), dtype=torch.float32)[None]   # (1, 9, 17, 3)
    rel = body - body[:, :, :1]
    loss = bone_loss(rel, torch.ones(1, 9), size_weight=0.0)
    assert float(loss) < 2e-3                                                       # metres
    stretched = rel.clone()
    stretched[:, 4:, 3] += torch.tensor([0.0, 0.0, -0.15])                          # one ankle drops 15 cm
    assert float(bone_loss(stretched, torch.ones(1, 9), size_weight=0.0)) > float(loss) + 0.005


def test_a_short_training_run_lowers_the_loss_and_beats_untrained_weights() -> None:
    torch.manual_seed(0)
    clips, held_out = _walks(6, 90), _walks(8, 60)[6:]
    config = LiftingTrainConfig(net=LiftingConfig(hidden=128, n_blocks=1), pretrain_epochs=5, epochs=40,
                                lr_step_epochs=100, batch_size=16, frame_stride=2, eval_every=100, device="cpu")
    untrained = LiftingNet(config.net)
    test = render_test_set(MotionWindows(held_out, 9, 3))
    from posestudio.models.lifting.evaluation import evaluate

    before = evaluate(untrained, test)
    model, log = train(config, train_clips=clips, test_clips=held_out)
    after = log["eval"]
    transform = [e["transform"] for e in log["epochs"] if "transform" in e]
    assert transform[-1] < 0.7 * transform[0], transform
    assert after["mpjpe_mm"] < 0.7 * before["mpjpe_mm"], (before, after)
    assert after["root_mm"] < 0.5 * before["root_mm"], (before, after)
    assert abs(after["scale"] - 1.0) < 0.25, after


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    clips = _walks(3, 40)
    out = tmp_path / "lift.pt"
    config = LiftingTrainConfig(net=LiftingConfig(hidden=32, n_blocks=1), pretrain_epochs=1, epochs=2,
                                batch_size=16, frame_stride=4, device="cpu", max_seconds=0.0)
    _, log = train(config, train_clips=clips, test_clips=clips[:1], out=out)
    assert log["stopped_early"] == 1 and len(log["epochs"]) == 1
    _, log = train(LiftingTrainConfig(), resume=str(out), out=out, train_clips=clips, test_clips=clips[:1])
    assert [e["epoch"] for e in log["epochs"]] == [1, 2, 3] and "stopped_early" not in log
    lifter = Lifter.load(out, device="cpu")                                        # the final file loads
    assert lifter.config.hidden == 32
    with pytest.raises(CheckpointError, match="lift.pt.*no optimiser state"):
        train(LiftingTrainConfig(), resume=str(out), train_clips=clips)


def test_a_foreign_checkpoint_is_refused_by_name(tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"format": "posestudio.factorization/1", "net_config": {}, "state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="other.pt.*'posestudio.lifting/1'"):
        Lifter.load(other)


def test_scaling_to_a_height_keeps_every_projection() -> None:
    body = walking_body(5) + np.array([0.0, 0.0, 4.0])                            # in front of a camera
    scaled = scale_to_height(body, 1.9, float(np.median(body_height(body))))
    np.testing.assert_allclose(np.median(body_height(scaled)), 1.9, rtol=1e-9)
    np.testing.assert_allclose(scaled[..., :2] / scaled[..., 2:], body[..., :2] / body[..., 2:], atol=1e-12)
    with pytest.raises(ValueError, match="height -1"):
        scale_to_height(body, -1.0, 1.7)


def test_network_refuses_a_window_of_the_wrong_size() -> None:
    net = LiftingNet(LiftingConfig(hidden=16, n_blocks=1))
    with pytest.raises(ValueError, match="7 frames x 17 joints.*9 x 17"):
        net(torch.zeros(1, 7, 17, 2), torch.ones(1, 7, 17))
    with torch.no_grad():
        assert math.isfinite(float(net(torch.zeros(1, 9, 17, 2), torch.zeros(1, 9, 17))["points"].sum()))
