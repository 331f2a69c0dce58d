"""Train the consistent factorization network on 2D projections of the Bandai motion capture.

Command line::

    python -m posestudio.models.factorization.train --out models/factorization/checkpoint.pt --epochs 30 --seed 0

Training uses only 2D (virtual perspective views of the training clips, ``V`` per instant); the 3D
of the held-out clips (every 5th clip) is used only to score the canonical shape (P-MPJPE, mm).
The checkpoint holds the architecture, weights, training configuration, the exact command, the
training log and the evaluation.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from posestudio.core.alignment import procrustes_align
from posestudio.core.errors import InputError
from posestudio.core.pose_metrics import p_mpjpe
from posestudio.models import checkpoints
from posestudio.models.datasets.bandai import load_bandai

from .data import ViewConfig, render_views, split_clips
from .network import FactorizationNet, LossWeights, factorization_losses, net_config_dict
from .prior import CHECKPOINT_MODEL, CHECKPOINT_VERSION
from .sessions import load_session


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    ``train_poses`` / ``test_poses`` (``(N, 17, 3)`` metres) override the Bandai data when given
    (tests use synthetic poses); they are not stored in checkpoints. ``sessions`` (``(rig.toml,
    keypoints2d.npz)`` pairs) trains on a studio's own recordings instead (no held-out 3D to score);
    ``init`` starts from a checkpoint's weights (fine-tuning; its architecture is used).
    """

    epochs: int = 30
    seed: int = 0
    n_bases: int = 10
    hierarchical: bool = True
    n_fine: int = 10
    hidden: int = 256
    n_layers: int = 3
    n_views: int = 4
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    frame_stride: int = 2
    holdout_every: int = 5
    data_dir: str | None = None
    device: str | None = None
    max_seconds: float | None = None
    eval_views: int = 4
    use_rig_rotations: bool = True
    eval_max_poses: int = 2000
    weights: LossWeights = field(default_factory=LossWeights)
    views: ViewConfig = field(default_factory=ViewConfig)
    sessions: list[tuple[str, str]] = field(default_factory=list)
    init: str | None = None
    train_poses: np.ndarray | None = None
    test_poses: np.ndarray | None = None

    def check(self) -> None:
        """Raise :class:`~posestudio.core.errors.InputError` naming the first setting out of range."""
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "n_bases": self.n_bases,
                    "hidden": self.hidden, "n_layers": self.n_layers, "n_views": self.n_views,
                    "frame_stride": self.frame_stride, "holdout_every": self.holdout_every,
                    "eval_views": self.eval_views}
        if self.hierarchical:
            positive["n_fine"] = self.n_fine
        for name, value in positive.items():
            if value < 1:
                raise InputError(f"training setting {name} = {value}: expected a whole number >= 1")
        if not self.lr > 0:
            raise InputError(f"training setting lr = {self.lr}: expected a learning rate > 0")
        if self.n_views < 2:
            raise InputError(f"training setting n_views = {self.n_views}: the consistency losses need >= 2 views")

    def to_dict(self) -> dict:
        """JSON-able dict (without the pose arrays)."""
        d = asdict(self)
        d.pop("train_poses")
        d.pop("test_poses")
        return d


def default_device() -> torch.device:
    """``cuda`` when available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def mean_shape(poses: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Generalised-Procrustes mean of ``(N, J, 3)`` poses (rotation, translation and scale removed).

    Returns:
        ``(J, 3)`` centred, unit-RMS mean shape (the mean-shape baseline).
    """
    p = poses - poses.mean(1, keepdims=True)
    ref = p[0]
    for _ in range(iterations):
        aligned, _ = procrustes_align(p, np.broadcast_to(ref, p.shape))
        ref = aligned.mean(0)
        ref = ref - ref.mean(0)
        ref = ref / np.sqrt((ref ** 2).sum(-1).mean())
    return ref


@torch.no_grad()
def evaluate(model: FactorizationNet, poses: np.ndarray, n_views: int = 4, seed: int = 1234,
             views: ViewConfig | None = None, max_poses: int | None = 2000,
             baseline: np.ndarray | None = None) -> dict[str, float]:
    """Score the canonical shape predicted from virtual views of 3D poses.

    Args:
        model: the network (any device).
        poses: ``(N, 17, 3)`` ground-truth poses, metres.
        n_views: views rendered per pose.
        seed: seeds the cameras (same views for every model scored with the same seed).
        views: camera distribution.
        max_poses: evenly subsample to at most this many poses.
        baseline: optional ``(17, 3)`` mean shape to score the same way.
    Returns:
        dict of millimetre errors: ``p_mpjpe_mm`` (single view), ``p_mpjpe_flip_mm`` (single view,
        best of shape and its mirror image, as C3DPO scores), ``p_mpjpe_multiview_mm`` (shape
        averaged over the ``V`` views of an instant), ``baseline_p_mpjpe_mm`` when given, and
        ``view_consistency_mm`` (RMS distance of single-view shapes from their instant's mean,
        after scaling each to the ground truth's size).
    """
    model.eval()
    if max_poses is not None and len(poses) > max_poses:
        poses = poses[np.linspace(0, len(poses) - 1, max_poses).astype(int)]
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    pt = torch.as_tensor(poses, dtype=torch.float32)
    batch = render_views(pt, n_views, gen, views)
    shapes = model(batch["kp"].to(dev), batch["mask"].to(dev))["shape"].cpu().double().numpy()  # (N, V, J, 3)
    gt = np.repeat(poses[:, None].astype(np.float64), n_views, 1).reshape(-1, *poses.shape[1:])
    flat = shapes.reshape(gt.shape)
    # every metric in mm; the shape is unit-RMS so Procrustes (with scale) maps it to metres
    res = {
        "p_mpjpe_mm": 1000 * float(p_mpjpe(flat, gt)),
        "p_mpjpe_flip_mm": 1000 * float(np.mean(np.minimum(
            _per_frame_pmpjpe(flat, gt), _per_frame_pmpjpe(flat * np.array([1.0, 1.0, -1.0]), gt)))),
        "p_mpjpe_multiview_mm": 1000 * float(p_mpjpe(shapes.mean(1), poses.astype(np.float64))),
    }
    gt_rms = np.sqrt(((poses - poses.mean(1, keepdims=True)) ** 2).sum(-1).mean(-1))  # (N,)
    dev_v = shapes - shapes.mean(1, keepdims=True)
    res["view_consistency_mm"] = 1000 * float(np.sqrt((((dev_v ** 2).sum(-1).mean(-1)).mean(1) * gt_rms ** 2).mean()))
    if baseline is not None:
        res["baseline_p_mpjpe_mm"] = 1000 * float(p_mpjpe(np.broadcast_to(baseline, poses.shape), poses))
    model.train()
    return res


def _per_frame_pmpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    aligned, _ = procrustes_align(pred, gt)
    return np.linalg.norm(aligned - gt, axis=-1).mean(-1)


def train(config: TrainConfig) -> tuple[FactorizationNet, dict]:
    """Train a :class:`FactorizationNet` from 2D views only.

    Args:
        config: the run (see :class:`TrainConfig`).
    Returns:
        ``(model, log)``: the trained model (on the training device, eval mode) and a dict with
        ``epochs`` (per-epoch mean loss parts and elapsed seconds), ``eval`` (held-out scores,
        see :func:`evaluate`), ``mean_shape`` (``(17, 3)`` list), ``n_train`` / ``n_test`` and
        ``seconds``.
    """
    config.check()
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    dev = torch.device(config.device) if config.device else default_device()
    sessions = [load_session(rig, kp) for rig, kp in config.sessions]
    test_clips: list[str] = []
    test_poses = None
    if sessions:
        train_poses = None
    elif config.train_poses is not None:
        train_poses = np.asarray(config.train_poses, dtype=np.float32)
        test_poses = None if config.test_poses is None else np.asarray(config.test_poses, dtype=np.float32)
    else:
        clips = load_bandai(config.data_dir, config.frame_stride)
        train_poses, test_poses, test_clips = split_clips(clips, config.holdout_every)
    if config.init:
        ckpt = checkpoints.load_checkpoint(config.init, CHECKPOINT_MODEL, CHECKPOINT_VERSION)
        model = FactorizationNet(**ckpt["net_config"]).to(dev)
        model.load_state_dict(ckpt["state_dict"])
    else:
        model = FactorizationNet(17, config.n_bases, config.hierarchical, config.n_fine,
                                 config.hidden, config.n_layers).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = sum(len(v) for v in sessions) if sessions else len(train_poses)
    steps_per_epoch = max(1, math.ceil(n / config.batch_size))
    total_steps = steps_per_epoch * config.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)) * 0.95 + 0.05)
    gen = torch.Generator().manual_seed(config.seed)
    rot_gen = torch.Generator().manual_seed(config.seed + 1)
    poses_t = None if train_poses is None else torch.as_tensor(train_poses)
    session_sizes = torch.tensor([len(v) for v in sessions], dtype=torch.float64)
    log: dict = {"epochs": [], "n_train": int(n), "n_test": 0 if test_poses is None else int(len(test_poses)),
                 "test_clips": test_clips, "device": str(dev), "n_parameters": model.n_parameters(),
                 "sessions": [v.name for v in sessions]}
    t0 = time.perf_counter()
    model.train()
    for epoch in range(config.epochs):
        order = torch.randperm(n, generator=gen)
        sums: dict[str, float] = {}
        for s in range(steps_per_epoch):
            if sessions:  # one session per step: its instants share the rig's number of views
                k = int(torch.multinomial(session_sizes, 1, generator=gen))
                idx = torch.randint(len(sessions[k]), (min(config.batch_size, len(sessions[k])),), generator=gen)
                batch = sessions[k].batch(idx)
            else:
                idx = order[s * config.batch_size:(s + 1) * config.batch_size]
                batch = render_views(poses_t[idx], config.n_views, gen, config.views)
            view_mask = batch.get("view_mask")
            loss, parts = factorization_losses(model, batch["kp"].to(dev), batch["mask"].to(dev),
                                               config.weights, rot_gen,
                                               batch["rotation"].to(dev) if config.use_rig_rotations else None,
                                               None if view_mask is None else view_mask.to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            for key, v in parts.items():
                sums[key] = sums.get(key, 0.0) + v / steps_per_epoch
        sums["epoch"] = epoch
        sums["seconds"] = time.perf_counter() - t0
        log["epochs"].append(sums)
        if config.max_seconds is not None and sums["seconds"] > config.max_seconds:
            log["stopped_early"] = epoch + 1
            break
    log["seconds"] = time.perf_counter() - t0
    ms = None
    if train_poses is not None:
        ms = mean_shape(train_poses[np.linspace(0, n - 1, min(n, 2000)).astype(int)].astype(np.float64))
        log["mean_shape"] = ms.tolist()
    if test_poses is not None:
        log["eval"] = evaluate(model, test_poses, config.eval_views, seed=config.seed + 1000,
                               views=config.views, max_poses=config.eval_max_poses, baseline=ms)
    model.eval()
    return model, log


def save_checkpoint(path: str | Path, model: FactorizationNet, config: TrainConfig, log: dict,
                    command: str | None = None) -> None:
    """Save architecture, weights (CPU, float32), training config, command and log to ``path``."""
    checkpoints.save_checkpoint(path, CHECKPOINT_MODEL, CHECKPOINT_VERSION, net_config_dict(model), model,
                                train_config=config.to_dict(), command=command, log=log)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments of the training command (shared with ``posestudio train factorization``)."""
    p = parser or argparse.ArgumentParser(prog="python -m posestudio.models.factorization.train",
                                          description=__doc__.split("\n\n")[0])
    d = TrainConfig()
    p.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--single-level", action="store_true", help="ablation: one dictionary (no fine bases)")
    p.add_argument("--n-bases", type=int, default=d.n_bases)
    p.add_argument("--n-fine", type=int, default=d.n_fine)
    p.add_argument("--hidden", type=int, default=d.hidden)
    p.add_argument("--views", type=int, default=d.n_views, help="virtual views per instant (consistency loss)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--consistency-weight", type=float, default=d.weights.consistency)
    p.add_argument("--canonical-weight", type=float, default=d.weights.canonicalisation)
    p.add_argument("--rotation-weight", type=float, default=d.weights.rotation_consistency,
                   help="weight of the rotation-consistency loss (needs the views' camera rotations)")
    p.add_argument("--no-rig-rotations", action="store_true",
                   help="ablation: do not use the virtual cameras' rotations (2D only, C3DPO-like + shape consistency)")
    p.add_argument("--noise-px", type=float, nargs=2, default=[d.views.pixel_noise_px, d.views.pixel_noise_max_px],
                   metavar=("MIN", "MAX"), help="2D noise std per view drawn from U(MIN, MAX), pixels at ~1000 px focal")
    p.add_argument("--outliers", type=float, default=d.views.outlier_rate_max,
                   help="per view, up to this share of joints moved 20-200 px (detector mistakes)")
    p.add_argument("--frame-stride", type=int, default=d.frame_stride)
    p.add_argument("--data", default=None, help="folder of Bandai .bvh clips (default ../shared/data/bandai_mocap_1)")
    p.add_argument("--session", nargs=2, action="append", default=[], metavar=("RIG", "KEYPOINTS2D"),
                   help="train on a recorded session (rig.toml and its keypoints2d.npz) instead of the motion "
                        "capture; repeat for several sessions")
    p.add_argument("--init", default=None, help="start from this checkpoint's weights (fine-tune, e.g. the shipped one)")
    p.add_argument("--device", default=None, help="torch device (default cuda if available, else cpu)")
    p.add_argument("--max-seconds", type=float, default=None, help="stop after the epoch that passes this time")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """A :class:`TrainConfig` from parsed :func:`build_parser` arguments (checked: :meth:`TrainConfig.check`)."""
    return TrainConfig(epochs=args.epochs, seed=args.seed, n_bases=args.n_bases, hierarchical=not args.single_level,
                       n_fine=args.n_fine, hidden=args.hidden, n_views=args.views, batch_size=args.batch_size,
                       lr=args.lr, frame_stride=args.frame_stride, data_dir=args.data, device=args.device,
                       max_seconds=args.max_seconds, use_rig_rotations=not args.no_rig_rotations,
                       sessions=[tuple(pair) for pair in args.session], init=args.init,
                       views=ViewConfig(pixel_noise_px=args.noise_px[0], pixel_noise_max_px=args.noise_px[1],
                                        outlier_rate_max=args.outliers),
                       weights=LossWeights(consistency=args.consistency_weight,
                                           canonicalisation=args.canonical_weight,
                                           rotation_consistency=args.rotation_weight))


def run(args: argparse.Namespace, command: str) -> int:
    """Train, save, print the evaluation; returns the exit status."""
    config = config_from_args(args)
    model, log = train(config)
    save_checkpoint(args.out, model, config, log, command)
    last = log["epochs"][-1]
    print(f"trained {len(log['epochs'])} epochs in {log['seconds']:.0f} s on {log['device']} "
          f"({log['n_parameters']} parameters); final loss {last['total']:.5f} "
          f"(reprojection {last['reprojection']:.5f}, canonicalisation {last['canonicalisation']:.5f}, "
          f"consistency {last['consistency']:.5f})")
    for k, v in log.get("eval", {}).items():
        print(f"  held-out {k}: {v:.1f}")
    print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    command = "python -m posestudio.models.factorization.train " + shlex.join(argv)
    return run(args, command)


if __name__ == "__main__":
    sys.exit(main())
