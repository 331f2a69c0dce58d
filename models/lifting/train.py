"""Train the lifting network without 3D labels (``posestudio train lifting``).

Two stages, as the seed describes (epochs are passes over the training windows):

1. **pre-training** (``pretrain_epochs``): reprojection into the lifting camera and bone symmetry;
2. **transform re-projection** (``epochs``): the lift of each view moved into the instant's other
   views with the rig's relative poses, projected and compared with their 2D (weighted by their
   confidence), plus the single-view rotation cycle; the learning rate drops x``lr_gamma`` every
   ``lr_step_epochs``.

Data: windows of the Bandai motion capture (every ``holdout_every``-th clip held out for scoring)
seen by ``n_views`` random virtual cameras with detector-like 2D (:mod:`.data`), and/or a studio's
own sessions (``--session RIG KEYPOINTS2D``: rig + 2D, no 3D; :mod:`.sessions`), mixed at
``session_share``. ``--supervised`` trains the same network on 3D labels instead (the upper
bound); ``--no-root-branch`` and ``--no-transform`` are the seed's ablations.

A checkpoint is written every ``save_every`` epochs with the optimiser state, so ``--resume``
continues an interrupted run; ``--init`` starts from another checkpoint's weights (fine-tuning).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from posestudio.core.errors import InputError
from posestudio.models import checkpoints
from posestudio.models.datasets.bandai import load_bandai
from posestudio.models.factorization.data import ViewConfig

from .data import DetectorNoise, MotionWindows, render_windows
from .evaluation import evaluate, render_test_set
from .lifter import CHECKPOINT_MODEL, CHECKPOINT_VERSION
from .losses import bone_loss, reprojection_loss, rotation_cycle_loss, supervised_loss, transform_loss
from .network import LiftingConfig, LiftingNet, net_config_dict
from .sessions import LiftingSession, load_lifting_session


@dataclass
class LossWeights:
    """Weights of the loss terms (2D terms are about pixels, 3D terms metres)."""

    reprojection: float = 1.0
    transform: float = 0.3
    transform_pose: float = 1.0
    cycle: float = 20.0
    bones: float = 20.0


@dataclass
class LiftingTrainConfig:
    """Everything that defines a training run (stored in the checkpoint)."""

    net: LiftingConfig = field(default_factory=LiftingConfig)
    pretrain_epochs: int = 20
    epochs: int = 300
    lr: float = 1e-3
    lr_step_epochs: int = 100
    lr_gamma: float = 0.1
    batch_size: int = 64
    n_views: int = 4
    frame_stride: int = 16
    holdout_every: int = 5
    transform: bool = True
    cycle: bool = True
    supervised: bool = False
    weights: LossWeights = field(default_factory=LossWeights)
    views: ViewConfig = field(default_factory=lambda: ViewConfig(pitch_min_deg=-5.0, pitch_max_deg=35.0,
                                                                 dist_min_m=2.5, dist_max_m=7.0, focal_jitter=0.35))
    noise: DetectorNoise = field(default_factory=DetectorNoise)
    sessions: list[tuple[str, str]] = field(default_factory=list)
    session_share: float = 0.5
    data_dir: str | None = None
    seed: int = 0
    device: str | None = None
    max_seconds: float | None = None
    save_every: int = 10
    eval_every: int = 20

    def check(self) -> None:
        """Raise :class:`~posestudio.core.errors.InputError` naming the first setting out of range."""
        for name in ("batch_size", "n_views", "frame_stride", "holdout_every", "save_every", "eval_every"):
            if getattr(self, name) < 1:
                raise InputError(f"training setting {name} = {getattr(self, name)}: expected a whole number >= 1")
        for name in ("pretrain_epochs", "epochs"):
            if getattr(self, name) < 0:
                raise InputError(f"training setting {name} = {getattr(self, name)}: expected a whole number >= 0")
        if not self.lr > 0:
            raise InputError(f"training setting lr = {self.lr}: expected a learning rate > 0")
        if self.n_views < 2 and self.transform and not self.supervised:
            raise InputError(f"training setting n_views = {self.n_views}: the transform loss needs >= 2 views")
        if not 0.0 <= self.session_share <= 1.0:
            raise InputError(f"training setting session_share = {self.session_share}: expected 0..1")
        if self.net.window < 1 or self.net.window % 2 == 0:
            raise InputError(f"training setting window = {self.net.window}: expected an odd number of frames")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LiftingTrainConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        noise = dict(d.pop("noise"))
        noise["noise_px"] = tuple(noise["noise_px"])
        return cls(net=LiftingConfig(**d.pop("net")), weights=LossWeights(**d.pop("weights")),
                   views=ViewConfig(**d.pop("views")), noise=DetectorNoise(**noise),
                   sessions=[tuple(s) for s in d.pop("sessions")], **d)


def default_device() -> torch.device:
    """``cuda`` when available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def training_losses(model: LiftingNet, batch: dict[str, torch.Tensor], config: LiftingTrainConfig, stage: str,
                    generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one batch.

    Args:
        batch: keys of :func:`~.data.render_windows` (``truth`` only needed when supervised), each
            with a view axis: ``xy (B, V, T, J, 2)``...
        stage: ``"pretrain"`` or ``"transform"``.
    Returns:
        ``(loss, parts)``: the weighted sum and each term's value.
    """
    xy, weight = batch["xy"], batch["weight"]
    b, v, t, j, _ = xy.shape
    out = model(xy.reshape(b * v, t, j, 2), weight.reshape(b * v, t, j))
    frame_w = (weight.reshape(b * v, t, j) > 0).any(-1).to(xy.dtype)
    w = config.weights
    parts: dict[str, torch.Tensor] = {}
    if config.supervised:
        parts["supervised"] = supervised_loss(out, batch["truth"].reshape(b * v, t, j, 3), frame_w)
        loss = parts["supervised"]
    else:
        parts["reprojection"] = reprojection_loss(out["points"], xy.reshape(b * v, t, j, 2), weight.reshape(b * v, t, j))
        parts["bones"] = bone_loss(out["rel"], frame_w)
        loss = w.reprojection * parts["reprojection"] + w.bones * parts["bones"]
        if stage == "transform" and config.transform and v > 1:
            points = out["points"].reshape(b, v, t, j, 3)
            parts["transform"] = transform_loss(points, batch["rotation"], batch["translation"], xy, weight)
            loss = loss + w.transform * parts["transform"]
            if w.transform_pose > 0:
                parts["transform_pose"] = transform_loss(points, batch["rotation"], batch["translation"], xy, weight,
                                                         roots=out["root"].reshape(b, v, t, 3))
                loss = loss + w.transform_pose * parts["transform_pose"]
        if stage == "transform" and config.cycle:
            parts["cycle"] = rotation_cycle_loss(model, out, weight.reshape(b * v, t, j), batch["up"].reshape(b * v, 3),
                                                 generator)
            loss = loss + w.cycle * parts["cycle"]
    return loss, {k: float(x.detach()) for k, x in parts.items()} | {"total": float(loss.detach())}


class _Sources:
    """Batches from the motion capture and/or sessions."""

    def __init__(self, config: LiftingTrainConfig, windows: MotionWindows | None, sessions: list[LiftingSession],
                 generator: torch.Generator) -> None:
        self.config, self.windows, self.sessions, self.gen = config, windows, sessions, generator
        self.session_sizes = torch.tensor([len(s) for s in sessions], dtype=torch.float64)

    def __len__(self) -> int:
        return len(self.windows) if self.windows is not None else int(self.session_sizes.sum())

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        use_session = self.sessions and (self.windows is None or
                                         float(torch.rand(1, generator=self.gen)) < self.config.session_share)
        if use_session:  # one session per batch: its instants share the rig's number of views
            k = int(torch.multinomial(self.session_sizes, 1, generator=self.gen))
            pick = torch.randint(len(self.sessions[k]), (min(self.config.batch_size, len(self.sessions[k])),),
                                 generator=self.gen)
            return self.sessions[k].batch(pick)
        poses, present = self.windows.get(index)
        return render_windows(poses, present, self.config.n_views, self.gen, self.config.views, self.config.noise)


def _lr_factor(config: LiftingTrainConfig, epoch: int) -> float:
    if epoch < config.pretrain_epochs:
        return 1.0
    return config.lr_gamma ** ((epoch - config.pretrain_epochs) // config.lr_step_epochs)


def train(config: LiftingTrainConfig, init: str | None = None, resume: str | None = None,
          out: str | Path | None = None, command: str | None = None,
          progress: Callable[[dict[str, Any]], None] | None = None,
          train_clips: list[np.ndarray] | None = None, test_clips: list[np.ndarray] | None = None,
          ) -> tuple[LiftingNet, dict[str, Any]]:
    """Train a :class:`~.network.LiftingNet`.

    Args:
        config: the run; init: start from this checkpoint's weights; resume: continue this
            checkpoint's run (its config, weights, optimiser and epoch; of ``config`` only
            ``max_seconds`` and ``device`` are used);
        out: checkpoint written every ``save_every`` epochs and at the end (None: not written);
        command: the command line, kept in the checkpoint; progress: called with each epoch's log;
        train_clips / test_clips: ``(F, 17, 3)`` motion clips overriding the Bandai data (tests).
    Returns:
        ``(model, log)``: log has ``epochs`` (per-epoch mean losses, seconds), ``eval`` (held-out
        scores, :mod:`.evaluation`), ``n_parameters``, ``device``, ``seconds``.
    """
    state = None
    if resume:
        state = checkpoints.load_checkpoint(resume, CHECKPOINT_MODEL, CHECKPOINT_VERSION)
        if "optimizer" not in state:
            raise checkpoints.CheckpointError(f"{resume}: has no optimiser state to resume from (use --init to fine-tune from it)")
        stored = LiftingTrainConfig.from_dict(state["train_config"])
        stored.max_seconds, stored.device = config.max_seconds, config.device     # this call's time and device
        config = stored
    config.check()
    torch.manual_seed(config.seed)
    dev = torch.device(config.device) if config.device else default_device()
    sessions = [load_lifting_session(rig, kp, config.net.window, config.net.model_fps) for rig, kp in config.sessions]
    if train_clips is None and (not sessions or config.session_share < 1.0):
        clips = load_bandai(config.data_dir, frame_stride=1)
        train_clips = [c for i, (_, c) in enumerate(clips) if i % config.holdout_every != config.holdout_every - 1]
        test_clips = [c for i, (_, c) in enumerate(clips) if i % config.holdout_every == config.holdout_every - 1]
    windows = MotionWindows(train_clips, config.net.window, config.frame_stride) if train_clips else None
    test = render_test_set(MotionWindows(test_clips, config.net.window, 2)) if test_clips else None
    model = LiftingNet(config.net).to(dev)
    if init and not state:
        ckpt = checkpoints.load_checkpoint(init, CHECKPOINT_MODEL, CHECKPOINT_VERSION)
        if LiftingConfig(**ckpt["net_config"]) != config.net:
            config.net = LiftingConfig(**ckpt["net_config"])
            model = LiftingNet(config.net).to(dev)
        model.load_state_dict(ckpt["state_dict"])
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    log: dict[str, Any] = {"epochs": [], "n_parameters": model.n_parameters(), "device": str(dev),
                           "sessions": [s.name for s in sessions], "evals": []}
    gen = torch.Generator().manual_seed(config.seed)
    start = 0
    if state:
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        log = state["log"]
        log.pop("stopped_early", None)
        start = len(log["epochs"])
        gen.set_state(state["generator"])
    sources = _Sources(config, windows, sessions, gen)
    n = len(sources)
    steps = max(1, math.ceil(n / config.batch_size))
    total_epochs = config.pretrain_epochs + config.epochs
    t0 = time.perf_counter() - (log["epochs"][-1]["seconds"] if log["epochs"] else 0.0)
    model.train()

    def save(final: bool) -> None:
        if out is None:
            return
        extra = {} if final else {"optimizer": opt.state_dict(), "generator": gen.get_state()}
        checkpoints.save_checkpoint(out, CHECKPOINT_MODEL, CHECKPOINT_VERSION, net_config_dict(model), model,
                                    train_config=config.to_dict(), command=command, log=log, **extra)

    for epoch in range(start, total_epochs):
        stage = "pretrain" if epoch < config.pretrain_epochs else "transform"
        for group in opt.param_groups:
            group["lr"] = config.lr * _lr_factor(config, epoch)
        order = torch.randperm(n, generator=gen)
        sums: dict[str, float] = {}
        for s in range(steps):
            batch = sources.batch(order[s * config.batch_size:(s + 1) * config.batch_size])
            batch = {k: x.to(dev) for k, x in batch.items()}
            loss, parts = training_losses(model, batch, config, stage, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value / steps
        entry = {"epoch": epoch + 1, "stage": stage, "lr": opt.param_groups[0]["lr"], **sums,
                 "seconds": time.perf_counter() - t0}
        if test is not None and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == total_epochs):
            entry["eval"] = evaluate(model, test)
        log["epochs"].append(entry)
        if progress is not None:
            progress(entry)
        timed_out = config.max_seconds is not None and entry["seconds"] > config.max_seconds
        if (epoch + 1) % config.save_every == 0 and not timed_out and epoch + 1 < total_epochs:
            save(final=False)
        if timed_out:
            log["stopped_early"] = epoch + 1
            save(final=False)
            break
    log["seconds"] = time.perf_counter() - t0
    if test is not None:
        log["eval"] = evaluate(model, test)
    if "stopped_early" not in log:
        save(final=True)
    model.eval()
    return model, log


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments of ``posestudio train lifting``."""
    p = parser or argparse.ArgumentParser(prog="posestudio train lifting", description=__doc__.split("\n\n")[0])
    d = LiftingTrainConfig()
    p.add_argument("--out", required=True, help="checkpoint file to write (.pt)")
    p.add_argument("--pretrain-epochs", type=int, default=d.pretrain_epochs, help="stage 1 epochs (reprojection, bones)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="stage 2 epochs (transform re-projection)")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lr-step-epochs", type=int, default=d.lr_step_epochs, help="stage 2: lr x0.1 every this many")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="instants per step (each seen by --views)")
    p.add_argument("--views", type=int, default=d.n_views, help="virtual cameras per instant")
    p.add_argument("--frame-stride", type=int, default=d.frame_stride, help="window centres every N mocap frames")
    p.add_argument("--window", type=int, default=d.net.window, help="frames per window (odd)")
    p.add_argument("--hidden", type=int, default=d.net.hidden)
    p.add_argument("--blocks", type=int, default=d.net.n_blocks)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--supervised", action="store_true", help="train on 3D labels instead (the upper bound)")
    p.add_argument("--no-root-branch", action="store_true", help="ablation: weak-perspective depth, no root branch")
    p.add_argument("--no-transform", action="store_true", help="ablation: single-view losses only")
    p.add_argument("--no-cycle", action="store_true", help="leave out the single-view rotation cycle")
    p.add_argument("--transform-weight", type=float, default=d.weights.transform,
                   help="weight of the transform loss (the lift moved whole into the other views)")
    p.add_argument("--transform-pose-weight", type=float, default=d.weights.transform_pose,
                   help="weight of its pose-only form (moved into view j at view j's own root)")
    p.add_argument("--data", default=None, help="folder of Bandai .bvh clips (default ../shared/data/bandai_mocap_1)")
    p.add_argument("--session", nargs=2, action="append", default=[], metavar=("RIG", "KEYPOINTS2D"),
                   help="also train on a recorded session (rig.toml and its keypoints2d.npz); repeatable")
    p.add_argument("--session-share", type=float, default=d.session_share,
                   help="share of batches from the sessions when motion capture is also used")
    p.add_argument("--sessions-only", action="store_true", help="train on the sessions alone")
    p.add_argument("--init", default=None, help="start from this checkpoint's weights (fine-tune)")
    p.add_argument("--resume", default=None, help="continue this checkpoint's interrupted run")
    p.add_argument("--device", default=None, help="torch device (default cuda if available, else cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--max-seconds", type=float, default=None, help="stop (resumably) after the epoch past this time")
    return p


def config_from_args(args: argparse.Namespace) -> LiftingTrainConfig:
    """A :class:`LiftingTrainConfig` from :func:`build_parser` arguments."""
    d = LiftingTrainConfig()
    net = LiftingConfig(window=args.window, hidden=args.hidden, n_blocks=args.blocks, root_branch=not args.no_root_branch)
    if args.sessions_only and not args.session:
        raise InputError("--sessions-only needs at least one --session RIG KEYPOINTS2D")
    return LiftingTrainConfig(net=net, pretrain_epochs=args.pretrain_epochs, epochs=args.epochs, lr=args.lr,
                              lr_step_epochs=args.lr_step_epochs, batch_size=args.batch_size, n_views=args.views,
                              frame_stride=args.frame_stride, transform=not args.no_transform, cycle=not args.no_cycle,
                              supervised=args.supervised, sessions=[tuple(s) for s in args.session],
                              session_share=1.0 if args.sessions_only else args.session_share,
                              data_dir=args.data, seed=args.seed, device=args.device, max_seconds=args.max_seconds,
                              views=d.views, noise=d.noise,
                              weights=LossWeights(transform=args.transform_weight,
                                                  transform_pose=args.transform_pose_weight))


def run(args: argparse.Namespace, command: str) -> int:
    """Train and save, printing progress; returns the exit status."""
    if args.threads:
        torch.set_num_threads(args.threads)
    config = config_from_args(args)

    def show(entry: dict[str, Any]) -> None:
        terms = ", ".join(f"{k} {v:.4g}" for k, v in entry.items()
                          if k not in ("epoch", "stage", "lr", "seconds", "eval"))
        line = f"epoch {entry['epoch']} ({entry['stage']}, lr {entry['lr']:.0e}): {terms} [{entry['seconds']:.0f} s]"
        if "eval" in entry:
            e = entry["eval"]
            line += (f"\n  held-out: MPJPE {e['mpjpe_mm']:.1f} mm, P-MPJPE {e['p_mpjpe_mm']:.1f}, "
                     f"root {e['root_mm']:.0f} mm, scale {e['scale']:.3f}")
        print(line, flush=True)

    _, log = train(config, init=args.init, resume=args.resume, out=args.out, command=command, progress=show)
    if "stopped_early" in log:
        print(f"stopped after epoch {log['stopped_early']} (--max-seconds); resume with --resume {args.out}")
    print(f"trained {len(log['epochs'])} epochs in {log['seconds']:.0f} s on {log['device']} "
          f"({log['n_parameters']} parameters)")
    print(f"wrote {args.out}")
    return 0
