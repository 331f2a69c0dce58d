"""Tests of the consistent factorization network (posestudio.models.factorization).

Fast (synthetic low-rank poses, a small network, a few seconds of CPU training); the Bandai data
is only needed by the test marked ``realdata``, skipped when the clips are absent.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posestudio.models.datasets.bandai import DEFAULT_BANDAI_DIR, load_bandai
from posestudio.models.factorization.data import render_views, split_clips, synthetic_poses
from posestudio.models.factorization.network import (
    FactorizationNet,
    LossWeights,
    factorization_losses,
    normalise_2d,
    rot6d_to_matrix,
)
from posestudio.models.factorization.prior import FactorizationPrior
from posestudio.models.factorization.train import TrainConfig, save_checkpoint, train
from posestudio.reconstruction.prior_fill import fill_with_prior


def _config(**kw) -> TrainConfig:
    poses = synthetic_poses(1400, n_modes=4, seed=0)
    base = dict(epochs=80, seed=0, hidden=128, n_bases=6, n_fine=4, batch_size=128, n_views=4,
                device="cpu", train_poses=poses[:1200], test_poses=poses[1200:], use_rig_rotations=True)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def trained() -> tuple[FactorizationNet, dict]:
    torch.set_num_threads(2)
    return train(_config())


def test_rot6d_is_orthonormal() -> None:
    g = torch.Generator().manual_seed(0)
    r = rot6d_to_matrix(torch.randn(500, 6, generator=g))
    eye = torch.eye(3).expand_as(r)
    assert torch.allclose(r @ r.transpose(-1, -2), eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(r), torch.ones(500), atol=1e-5)
    net = FactorizationNet(hidden=32, n_bases=4, n_fine=3)
    kp, m, _, _ = normalise_2d(torch.randn(8, 17, 2, generator=g), torch.ones(8, 17, dtype=torch.bool))
    rot = net(kp, m)["rotation"]
    assert torch.allclose(rot @ rot.transpose(-1, -2), torch.eye(3).expand_as(rot), atol=1e-5)


def test_normalise_2d_ignores_missing_joints() -> None:
    kp = torch.randn(2, 17, 2)
    mask = torch.ones(2, 17, dtype=torch.bool)
    mask[:, 3] = False
    kp2 = kp.clone()
    kp2[:, 3] = float("nan")
    a, _, _, _ = normalise_2d(kp, mask)
    b, _, _, _ = normalise_2d(kp2, mask)
    assert torch.equal(a, b) and torch.all(b[:, 3] == 0)
    vis = b[:, mask[0]]
    assert torch.allclose(vis.mean(1), torch.zeros(2, 2), atol=1e-6)
    assert torch.allclose((vis ** 2).sum(-1).mean(1), torch.ones(2), atol=1e-5)


def test_single_level_has_no_fine_dictionary() -> None:
    net = FactorizationNet(hierarchical=False, hidden=32)
    kp, m, _, _ = normalise_2d(torch.randn(3, 2, 17, 2), torch.ones(3, 2, 17))
    out = net(kp, m)
    assert out["beta"].shape == (3, 2, 0) and out["shape"].shape == (3, 2, 17, 3)
    loss, parts = factorization_losses(net, kp, m, LossWeights())
    loss.backward()
    assert np.isfinite(parts["total"]) and not hasattr(net, "fine_bases")


def test_losses_decrease(trained) -> None:
    _, log = trained
    first, last = log["epochs"][0], log["epochs"][-1]
    for k in ("total", "reprojection", "canonicalisation"):
        assert last[k] < first[k], (k, first[k], last[k])


def test_beats_mean_shape_on_held_out_poses(trained) -> None:
    _, log = trained
    ev = log["eval"]
    print(f"held-out P-MPJPE: model {ev['p_mpjpe_mm']:.1f} mm, multi-view {ev['p_mpjpe_multiview_mm']:.1f} mm, "
          f"mean shape {ev['baseline_p_mpjpe_mm']:.1f} mm")
    assert ev["p_mpjpe_mm"] < ev["baseline_p_mpjpe_mm"]


def test_checkpoint_round_trip(trained, tmp_path) -> None:
    model, log = trained
    path = tmp_path / "fz.pt"
    save_checkpoint(path, model, _config(), log, command="pytest")
    prior = FactorizationPrior.load(path, device="cpu")
    assert prior.info["command"] == "pytest"
    g = torch.Generator().manual_seed(3)
    views = render_views(torch.as_tensor(synthetic_poses(5, seed=0)), 1, g)
    with torch.no_grad():
        ref = model.cpu()(views["kp"], views["mask"])["shape"].numpy()
    got = prior.canonical_shape(views["kp"].numpy(), views["mask"].numpy())
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_fill_keeps_known_and_fills_missing(trained) -> None:
    from posestudio.synthetic.studio_rig import make_studio_rig

    model, _ = trained
    prior = FactorizationPrior(model, device="cpu")
    rig = make_studio_rig(4, seed=1, distortion="mild")
    truth = synthetic_poses(1400, n_modes=4, seed=0)[1200:1300].astype(np.float64)   # held out, (F, 17, 3)
    truth[..., :2] += np.array([0.3, -0.2])
    pix = rig.project(truth)                                                            # (C, F, 17, 2)
    rng = np.random.default_rng(0)
    kp2d = np.concatenate([pix + rng.normal(0, 1.0, pix.shape), np.ones(pix.shape[:-1] + (1,))], -1)
    points = truth.copy()
    f = len(points)
    drop = np.zeros((f, 17), bool)
    for _ in range(3):                                  # three random joints removed per frame
        drop[np.arange(f), rng.integers(0, 17, f)] = True
    points[drop] = np.nan
    filled, fmask = fill_with_prior(prior, points, kp2d, rig)
    known = ~drop
    assert np.array_equal(filled[known], points[known])
    assert np.array_equal(fmask, drop)
    err = np.linalg.norm(filled[drop] - truth[drop], axis=-1)
    centroid = np.nanmean(points, axis=1, keepdims=True)
    err_centroid = np.linalg.norm(np.broadcast_to(centroid, truth.shape)[drop] - truth[drop], axis=-1)
    print(f"fill error on removed joints: {1000 * err.mean():.1f} mm (known-joint centroid: "
          f"{1000 * err_centroid.mean():.1f} mm)")
    assert np.isfinite(err).all() and err.mean() < 0.5 * err_centroid.mean()


def test_fill_skips_frames_with_too_few_known_joints(trained) -> None:
    model, _ = trained
    prior = FactorizationPrior(model, device="cpu")
    truth = synthetic_poses(3, seed=0).astype(np.float64)
    kp2d = np.concatenate([truth[None, ..., :2] * 500, np.ones((1, 3, 17, 1))], -1)   # one pseudo-camera
    points = np.full_like(truth, np.nan)
    points[:, :3] = truth[:, :3]
    filled, fmask = fill_with_prior(prior, points, kp2d, None)
    assert not fmask.any() and np.array_equal(np.isnan(filled), np.isnan(points))


@pytest.mark.realdata
@pytest.mark.skipif(not DEFAULT_BANDAI_DIR.is_dir(), reason="Bandai clips absent")
def test_bandai_loading_and_split() -> None:

    clips = load_bandai(frame_stride=10)
    train_p, test_p, names = split_clips(clips)
    assert train_p.shape[1:] == (17, 3) and len(names) == len(clips) // 5
    assert len(train_p) + len(test_p) == sum(len(p) for _, p in clips)


@pytest.mark.realdata
@pytest.mark.skipif(not DEFAULT_BANDAI_DIR.is_dir(), reason="Bandai clips absent")
def test_command_line_writes_a_checkpoint_with_its_command(tmp_path) -> None:
    from posestudio.models.factorization.train import main

    out = tmp_path / "c.pt"
    assert main(["--out", str(out), "--epochs", "1", "--frame-stride", "30", "--hidden", "32", "--device", "cpu"]) == 0
    ckpt = torch.load(out, weights_only=False)
    assert ckpt["command"].endswith("--device cpu") and "--epochs 1" in ckpt["command"]
    assert ckpt["net_config"]["hidden"] == 32 and "p_mpjpe_mm" in ckpt["log"]["eval"]
    prior = FactorizationPrior.load(out)
    assert prior.model.config.hidden == 32


def test_rendered_views_can_carry_detector_mistakes() -> None:
    from posestudio.models.factorization.data import ViewConfig

    poses = torch.as_tensor(synthetic_poses(200, seed=1))
    clean = render_views(poses, 2, torch.Generator().manual_seed(3), ViewConfig(pixel_noise_px=0.0, pixel_noise_max_px=0.0))
    spoilt = render_views(poses, 2, torch.Generator().manual_seed(3),
                          ViewConfig(pixel_noise_px=0.0, pixel_noise_max_px=0.0, outlier_rate_max=0.2))
    moved = (spoilt["pixels"] - clean["pixels"]).norm(dim=-1)
    share = float((moved > 1e-3).float().mean())
    assert 0.05 < share < 0.15                                     # U(0, 0.2) per view: 10 % on average
    jumps = moved[moved > 1e-3]
    assert float(jumps.min()) >= 20.0 - 1e-3 and float(jumps.max()) <= 200.0 + 1e-3
