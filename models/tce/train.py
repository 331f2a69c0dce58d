"""Training and evaluation of :class:`~.network.TCENet` from an abstract source of video samples.

The data come from a ``sample_source(rng, batch) -> dict`` (the command layer plugs in the body
renderer; tests use a stick figure):

* ``frames``: float tensor ``(B, 3, 3, H, W)`` in [0, 1]: time ``t-1, t, t+1``, RGB channels;
* ``keypoints``: ``(B, J, 3)`` for frame ``t`` (or ``(B, 3, J, 3)``, of which ``[:, 1]`` is used):
  ``x, y`` in pixels of those frames, third column 1 = labelled, 0 = not labelled.

Each step crops the frames the way the tracker does (:mod:`.crops`): one square box per sample,
from frame ``t``'s labelled joints, side ``U(boxes.scale)`` x their extent (sometimes much wider,
like the detector's whole-frame search), centre jittered, the same box for all three frames; then
flips, colour jitter, occluder patches, motion blur, noise and dropped neighbours
(:class:`AugmentConfig`). Loss: weighted MSE to Gaussian heatmaps (:mod:`.heatmaps`). Adam with
linear warm-up and cosine decay. Checkpoints (:func:`posestudio.models.checkpoints.save_checkpoint`,
model ``"tce"`` version 1) hold the architecture, weights, training configuration, command and log,
and (unless disabled) the optimizer and random-generator states that ``resume`` continues from.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from posestudio.core.errors import InputError
from posestudio.models import checkpoints
from posestudio.models.keypoints import H36M17

from .crops import CropBoxOptions
from .heatmaps import decode_heatmaps, gaussian_targets, heatmap_loss
from .network import TCENet

CHECKPOINT_MODEL = "tce"
CHECKPOINT_VERSION = 1

SampleSource = Callable[[np.random.Generator, int], dict[str, Any]]
"""``sample_source(rng, batch) -> {"frames": (B, 3, 3, H, W) float, "keypoints": (B, J, 3)}``."""

#: The trainer's own crop boxes (``AugmentConfig.crop``): no whole-frame search view.
TRAINER_BOXES = CropBoxOptions(scale=(1.1, 1.4), jitter=0.08, wide_share=0.1, wide_scale=(1.4, 3.0), search_share=0.0)

#: ``AugmentConfig`` fields of checkpoints written before :class:`CropBoxOptions` -> its fields.
_FLAT_BOX_FIELDS = {"box_scale": "scale", "box_jitter": "jitter", "wide_prob": "wide_share", "wide_scale": "wide_scale"}

#: H36M17 joint index of each joint's mirror image (left <-> right), for horizontal flips.
FLIP_H36M17 = tuple(H36M17.index(n.replace("l_", "#").replace("r_", "l_").replace("#", "r_")) for n in H36M17.joints)


@dataclass
class AugmentConfig:
    """Augmentation of each training sample (probabilities per sample unless said otherwise).

    Attributes:
        crop: crop the source frames around the person (False: they already are the network's
            input, ``input_size`` square).
        boxes: those crops' boxes (:class:`~.crops.CropBoxOptions`, default :data:`TRAINER_BOXES`):
            side ``U(scale)`` x the extent of the labelled joints, centre jittered, with
            ``wide_share`` ``U(wide_scale)`` x instead (small people, as in the detector's
            whole-frame search); no search views (``search_share`` 0).
        flip_prob: horizontal flip (left and right joints swapped; H36M17 layout only).
        colour: brightness, contrast and saturation factors in ``1 +- colour``.
        occluder_prob, occluder_max: a rectangle of random colour, sides up to ``occluder_max`` x
            the crop, over a random joint, drifting between the three frames.
        blur_prob, blur_max_px: per frame, a linear motion blur up to ``blur_max_px`` crop pixels long.
        noise_std: Gaussian pixel noise, standard deviation uniform in ``[0, noise_std]``.
        drop_neighbour_prob: per neighbour, replaced by frame ``t`` (what the detector does at take ends).
    """

    crop: bool = True
    boxes: CropBoxOptions = TRAINER_BOXES
    flip_prob: float = 0.5
    colour: float = 0.3
    occluder_prob: float = 0.3
    occluder_max: float = 0.35
    blur_prob: float = 0.2
    blur_max_px: int = 9
    noise_std: float = 0.03
    drop_neighbour_prob: float = 0.05

    def check(self) -> None:
        """Raise :class:`InputError` naming the first setting out of range."""
        self.boxes.check("augmentation setting")
        if self.boxes.search_share != 0:
            raise InputError(f"augmentation setting boxes.search_share = {self.boxes.search_share}: the trainer's "
                             "crops have no whole-frame search view; expected 0")
        for name in ("flip_prob", "occluder_prob", "blur_prob", "drop_neighbour_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise InputError(f"augmentation setting {name} = {v}: expected a probability in [0, 1]")
        for name in ("colour", "occluder_max", "noise_std"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise InputError(f"augmentation setting {name} = {v}: expected a value in [0, 1]")
        if self.blur_max_px < 1:
            raise InputError(f"augmentation setting blur_max_px = {self.blur_max_px}: expected >= 1")

    @classmethod
    def from_dict(cls, d: dict) -> AugmentConfig:
        """Inverse of ``dataclasses.asdict`` (lists read as tuples; unknown keys an error naming them).

        Also reads the flat box fields of checkpoints written before :class:`~.crops.CropBoxOptions`
        (``box_scale``, ``box_jitter``, ``wide_prob``, ``wide_scale``; the shipped
        ``models/tce/checkpoint.pt`` has them) into ``boxes``.
        """
        d = dict(d)
        boxes = dict(d.pop("boxes", {}))
        for old, new in _FLAT_BOX_FIELDS.items():
            if old in d:
                boxes[new] = d.pop(old)
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise InputError(f"training config: unknown augment fields {unknown}")
        merged = {**asdict(TRAINER_BOXES), **boxes}
        return cls(**d, boxes=CropBoxOptions.from_dict(merged, "training config augment"))


@dataclass
class TCETrainConfig:
    """Everything that defines a training run (stored in the checkpoint as ``train_config``).

    Attributes:
        steps, batch, lr, weight_decay, warmup, grad_clip: optimisation (Adam; learning rate rises
            linearly for ``warmup`` steps then follows a cosine to 5 % of ``lr``).
        input_size: network input side, pixels (a multiple of 16); heatmaps are ``input_size / 4``.
        width, dilations, temporal, n_joints: the network (:class:`~.network.TCENet`).
        sigma: Gaussian target standard deviation, heatmap cells.
        seed: seeds torch and the ``rng`` handed to the sample source.
        device: ``"auto"`` / None (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
        log_every, checkpoint_every: steps between log entries / checkpoint writes.
        max_seconds: stop (and save) after the step that passes this time.
        save_optimizer: keep optimizer and generator states in checkpoints (needed by ``resume``).
        augment: :class:`AugmentConfig`.
    """

    steps: int = 3000
    batch: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int = 100
    grad_clip: float = 5.0
    input_size: int = 128
    width: int = 32
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    temporal: bool = True
    n_joints: int = 17
    sigma: float = 2.0
    seed: int = 0
    device: str | None = None
    log_every: int = 25
    checkpoint_every: int = 500
    max_seconds: float | None = None
    save_optimizer: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def check(self) -> None:
        """Raise :class:`InputError` (a ValueError) naming the first setting out of range."""
        for name in ("steps", "batch", "width", "n_joints", "log_every", "checkpoint_every"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise InputError(f"training setting {name} = {v}: expected a whole number >= 1")
        if self.warmup < 0:
            raise InputError(f"training setting warmup = {self.warmup}: expected >= 0")
        if not self.lr > 0:
            raise InputError(f"training setting lr = {self.lr}: expected a learning rate > 0")
        if self.weight_decay < 0:
            raise InputError(f"training setting weight_decay = {self.weight_decay}: expected >= 0")
        if not self.grad_clip > 0:
            raise InputError(f"training setting grad_clip = {self.grad_clip}: expected > 0")
        if self.input_size < 32 or self.input_size % 16:
            raise InputError(f"training setting input_size = {self.input_size}: expected a multiple of 16, >= 32")
        if self.temporal and (not self.dilations or any(int(d) < 1 for d in self.dilations)):
            raise InputError(f"training setting dilations = {self.dilations}: expected whole numbers >= 1")
        if not self.sigma > 0:
            raise InputError(f"training setting sigma = {self.sigma}: expected > 0 (heatmap cells)")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise InputError(f"training setting max_seconds = {self.max_seconds}: expected > 0 or None")
        try:
            resolve_device(self.device)
        except (RuntimeError, ValueError) as exc:
            raise InputError(f"training setting device = {self.device!r}: {exc}") from None
        self.augment.check()

    def to_dict(self) -> dict:
        """JSON-able dict."""
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TCETrainConfig:
        """Inverse of :meth:`to_dict` (unknown keys are an error naming them)."""
        d = dict(d)
        aug = AugmentConfig.from_dict(d.pop("augment", {}))
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise InputError(f"training config: unknown fields {unknown}")
        if "dilations" in d:
            d["dilations"] = tuple(d["dilations"])
        return cls(**d, augment=aug)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` / ``"auto"`` -> CUDA when available, else CPU; anything else as given."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA is not available on this machine")
    return dev


# ---------------------------------------------------------------------------------------------
# Cropping and augmentation (vectorised over the batch; on the training device)


def _uniform(rng: np.random.Generator, lo_hi: Sequence[float], n: int) -> np.ndarray:
    return rng.uniform(lo_hi[0], lo_hi[1], n)


def training_boxes(kp: np.ndarray, frame_hw: tuple[int, int], aug: AugmentConfig,
                   rng: np.random.Generator) -> np.ndarray:
    """Random tracker-like boxes ``(B, 3)`` (``cx, cy, size``, source pixels) around labelled joints.

    Args:
        kp: ``(B, J, 3)`` source-pixel keypoints of frame ``t``, third column > 0 = labelled.
    A sample without labelled joints gets the whole-frame box.
    """
    b = kp.shape[0]
    h, w = frame_hw
    ok = np.isfinite(kp[..., :2]).all(-1) & (kp[..., 2] > 0)
    big = 1e9
    lo = np.where(ok[..., None], kp[..., :2], big).min(1)
    hi = np.where(ok[..., None], kp[..., :2], -big).max(1)
    has = ok.any(1)
    centre = np.where(has[:, None], 0.5 * (lo + hi), [(w - 1) / 2, (h - 1) / 2])
    extent = np.where(has, np.maximum((hi - lo).max(1), 8.0), max(h, w))
    boxes = aug.boxes
    wide = rng.random(b) < boxes.wide_share
    scale = np.where(wide, _uniform(rng, boxes.wide_scale, b), _uniform(rng, boxes.scale, b))
    size = np.where(has, scale * extent, extent)
    centre = centre + rng.uniform(-boxes.jitter, boxes.jitter, (b, 2)) * size[:, None]
    return np.concatenate([centre, size[:, None]], axis=1)


def crop_batch(frames: torch.Tensor, boxes: torch.Tensor, out_size: int, flip: torch.Tensor) -> torch.Tensor:
    """Crop ``(B, T, C, H, W)`` frames with one box per sample -> ``(B, T, C, S, S)``.

    Same geometry as :func:`.crops.crop_affine` (bilinear, zeros outside), optionally mirrored.
    ``boxes``: ``(B, 3)`` ``cx, cy, size`` (source pixels); ``flip``: ``(B,)`` bool.
    """
    b, t, c, h, w = frames.shape
    u = torch.arange(out_size, dtype=frames.dtype, device=frames.device)
    scale = boxes[:, 2:3] / out_size  # source pixels per crop pixel, (B, 1)
    ux = torch.where(flip[:, None], out_size - 1 - u, u)  # (B, S)
    x = (ux + 0.5) * scale + boxes[:, 0:1] - boxes[:, 2:3] / 2
    y = (u + 0.5) * scale + boxes[:, 1:2] - boxes[:, 2:3] / 2
    gx = (2 * x + 1) / w - 1
    gy = (2 * y + 1) / h - 1
    grid = torch.stack([gx[:, None, :].expand(b, out_size, out_size), gy[:, :, None].expand(b, out_size, out_size)],
                       dim=-1)
    grid = grid[:, None].expand(b, t, out_size, out_size, 2).reshape(b * t, out_size, out_size, 2)
    out = F.grid_sample(frames.reshape(b * t, c, h, w), grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)
    return out.view(b, t, c, out_size, out_size)


def _motion_kernels(lengths: torch.Tensor, angles: torch.Tensor, k: int) -> torch.Tensor:
    """``(N, k, k)`` normalised line kernels (anti-aliased segments) of given lengths (px) and angles."""
    r = torch.arange(k, dtype=lengths.dtype, device=lengths.device) - k // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    d = torch.stack([torch.cos(angles), torch.sin(angles)], -1)  # (N, 2)
    along = xx[None] * d[:, 0, None, None] + yy[None] * d[:, 1, None, None]
    across = -xx[None] * d[:, 1, None, None] + yy[None] * d[:, 0, None, None]
    half = (lengths / 2)[:, None, None]
    dist = torch.sqrt(across ** 2 + (along.abs() - half).clamp_min(0) ** 2)
    ker = (1 - dist).clamp_min(0)
    return ker / ker.sum((-1, -2), keepdim=True)


def augment_batch(frames: torch.Tensor, kp: torch.Tensor, config: TCETrainConfig,
                  rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop and augment a batch from the sample source.

    Args:
        frames: ``(B, 3, 3, H, W)`` RGB in [0, 1] (time t-1, t, t+1).
        kp: ``(B, J, 3)`` keypoints of frame ``t`` in source pixels (third column: labelled).
        config: the run; rng: augmentation randomness.
    Returns:
        ``(crops (B, 3, 3, S, S)`` in [0, 1], ``keypoints (B, J, 3)`` in crop pixels``)``.
    """
    aug, s = config.augment, config.input_size
    b, t, _, h, w = frames.shape
    dev, dt = frames.device, frames.dtype
    kp_np = kp.detach().cpu().double().numpy()
    can_flip = kp.shape[1] == len(FLIP_H36M17)
    flip_np = (rng.random(b) < aug.flip_prob) & can_flip
    if aug.crop:
        boxes = training_boxes(kp_np, (h, w), aug, rng)
    else:
        if (h, w) != (s, s):
            raise InputError(f"sample source frames are {h}x{w}; with augment.crop = False they must be "
                             f"input_size {s}x{s}")
        boxes = np.tile([(s - 1) / 2, (s - 1) / 2, float(s)], (b, 1))
    flip = torch.as_tensor(flip_np, device=dev)
    crops = crop_batch(frames, torch.as_tensor(boxes, dtype=dt, device=dev), s, flip)
    # keypoints into the crop (and mirrored)
    sc = s / boxes[:, 2]
    out = kp_np.copy()
    out[..., 0] = (kp_np[..., 0] - boxes[:, 0:1] + boxes[:, 2:3] / 2) * sc[:, None] - 0.5
    out[..., 1] = (kp_np[..., 1] - boxes[:, 1:2] + boxes[:, 2:3] / 2) * sc[:, None] - 0.5
    out[flip_np, :, 0] = s - 1 - out[flip_np, :, 0]
    if can_flip:
        out[flip_np] = out[flip_np][:, FLIP_H36M17]
    # colour: brightness, contrast, saturation (same over the three frames)
    if aug.colour > 0:
        f = torch.as_tensor(rng.uniform(1 - aug.colour, 1 + aug.colour, (3, b)), dtype=dt, device=dev)
        grey = crops.mean(2, keepdim=True)
        crops = grey + (crops - grey) * f[2].view(b, 1, 1, 1, 1)
        mean = crops.mean((2, 3, 4), keepdim=True)
        crops = (mean + (crops - mean) * f[1].view(b, 1, 1, 1, 1)) * f[0].view(b, 1, 1, 1, 1)
    # occluders over a random labelled joint, drifting over time
    occ = rng.random(b) < aug.occluder_prob
    if occ.any():
        n = int(occ.sum())
        idx = np.nonzero(occ)[0]
        j = rng.integers(0, kp.shape[1], n)
        centre = np.where(np.isfinite(out[idx, j, :2]), out[idx, j, :2], s / 2) + rng.normal(0, 0.05 * s, (n, 2))
        half = rng.uniform(0.05, aug.occluder_max / 2, (n, 2)) * s
        drift = rng.normal(0, 0.03 * s, (n, 2))
        tt = np.array([-1.0, 0.0, 1.0])
        c_t = centre[:, None, :] + tt[None, :, None] * drift[:, None, :]  # (n, 3, 2)
        lo = torch.as_tensor(c_t - half[:, None], dtype=dt, device=dev)
        hi = torch.as_tensor(c_t + half[:, None], dtype=dt, device=dev)
        u = torch.arange(s, dtype=dt, device=dev)
        inx = (u.view(1, 1, 1, s) >= lo[..., 0, None, None]) & (u.view(1, 1, 1, s) <= hi[..., 0, None, None])
        iny = (u.view(1, 1, s, 1) >= lo[..., 1, None, None]) & (u.view(1, 1, s, 1) <= hi[..., 1, None, None])
        mask = (inx & iny)[:, :, None]  # (n, 3, 1, S, S)
        colour = torch.as_tensor(rng.random((n, 1, 3, 1, 1)), dtype=dt, device=dev)
        texture = 0.1 * torch.randn(n, 1, 1, s, s, device=dev, dtype=dt)
        sel = torch.as_tensor(idx, device=dev)
        crops[sel] = torch.where(mask, colour + texture, crops[sel])
    # motion blur per frame
    blur = rng.random((b, t)) < aug.blur_prob
    if blur.any() and aug.blur_max_px > 1:
        k = aug.blur_max_px | 1
        bi, ti = np.nonzero(blur)
        n = len(bi)
        ker = _motion_kernels(torch.as_tensor(rng.uniform(2, aug.blur_max_px, n), dtype=dt, device=dev),
                              torch.as_tensor(rng.uniform(0, math.pi, n), dtype=dt, device=dev), k)
        sel_b, sel_t = torch.as_tensor(bi, device=dev), torch.as_tensor(ti, device=dev)
        img = crops[sel_b, sel_t]  # (n, 3, S, S)
        ker = ker[:, None].repeat_interleave(3, 0)  # (3n, 1, k, k)
        blurred = F.conv2d(img.reshape(1, n * 3, s, s), ker, padding=k // 2, groups=n * 3).view(n, 3, s, s)
        crops[sel_b, sel_t] = blurred
    if aug.noise_std > 0:
        std = torch.as_tensor(rng.uniform(0, aug.noise_std, b), dtype=dt, device=dev).view(b, 1, 1, 1, 1)
        crops = crops + std * torch.randn_like(crops)
    drop = rng.random((b, 2)) < aug.drop_neighbour_prob
    if drop.any():
        for col, ti in ((0, 0), (1, 2)):
            sel = torch.as_tensor(np.nonzero(drop[:, col])[0], device=dev)
            crops[sel, ti] = crops[sel, 1]
    return crops.clamp(0, 1), torch.as_tensor(out, dtype=dt, device=dev)


# ---------------------------------------------------------------------------------------------
# Training


def _as_sample(sample: dict[str, Any], dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    frames = torch.as_tensor(sample["frames"]).to(device=dev, dtype=torch.float32)
    kp = torch.as_tensor(sample["keypoints"]).to(device=dev, dtype=torch.float32)
    if kp.dim() == 4:
        kp = kp[:, 1]
    if frames.dim() != 5 or frames.shape[1:3] != (3, 3):
        raise InputError(f"sample source: frames must be (B, 3, 3, H, W) (time, RGB), got {tuple(frames.shape)}")
    if kp.dim() != 3 or kp.shape[0] != frames.shape[0] or kp.shape[-1] != 3:
        raise InputError(f"sample source: keypoints must be (B, J, 3) or (B, 3, J, 3), got {tuple(kp.shape)}")
    return frames, kp


def lr_factor(step: int, config: TCETrainConfig) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then cosine from 1 to 0.05."""
    if step < config.warmup:
        return (step + 1) / (config.warmup + 1)
    p = (step - config.warmup) / max(1, config.steps - config.warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(p, 1.0)))


def build_model(config: TCETrainConfig, init: str | Path | None = None) -> TCENet:
    """A fresh :class:`TCENet` for ``config``, or ``init``'s architecture and weights.

    With ``init``, ``temporal`` still comes from ``config``: a single-frame checkpoint initialises a
    temporal net (its module starts neutral) and a temporal one a single-frame net (module dropped).
    """
    if init is None:
        return TCENet(config.n_joints, config.width, config.dilations, config.temporal)
    ckpt = checkpoints.load_checkpoint(init, CHECKPOINT_MODEL, CHECKPOINT_VERSION)
    nc = dict(ckpt["net_config"], temporal=config.temporal)
    model = TCENet(**nc)
    res = model.load_state_dict(ckpt["state_dict"], strict=False)
    bad = [k for k in list(res.missing_keys) + list(res.unexpected_keys) if not k.startswith("tcm.")]
    if bad:
        raise checkpoints.CheckpointError(f"{init}: weights do not fit a TCENet{tuple(nc.values())}: {bad[:5]}")
    return model


def train_tce(config: TCETrainConfig, sample_source: SampleSource, init: str | Path | None = None,
              checkpoint: str | Path | None = None, resume: bool = False,
              progress: Callable[[dict], None] | None = None, command: str | None = None) -> tuple[TCENet, dict]:
    """Train a :class:`TCENet`.

    Args:
        config: the run (checked).
        sample_source: see the module docstring.
        init: start from this checkpoint's weights (fine-tuning; its architecture).
        checkpoint: write checkpoints here every ``checkpoint_every`` steps and at the end.
        resume: continue the run saved in ``checkpoint`` (weights, optimizer, step, generators) if
            that file exists; the network must match.
        progress: called with each log entry (``step``, ``loss``, ``lr``, ``seconds``).
        command: the command line, stored in the checkpoint.
    Returns:
        ``(model, log)``: the model in eval mode on the training device; ``log`` with ``steps``
        (the entries), ``n_parameters``, ``device``, ``seconds``, ``step`` (last completed),
        ``stopped_early`` when ``max_seconds`` ended it, ``resumed_from`` when resumed.
    """
    config.check()
    dev = resolve_device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = build_model(config, init).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    log: dict[str, Any] = {"steps": [], "init": None if init is None else str(init)}
    start = 0
    ckpt_path = None if checkpoint is None else Path(checkpoint)
    if resume and ckpt_path is not None and ckpt_path.is_file():
        ck = checkpoints.load_checkpoint(ckpt_path, CHECKPOINT_MODEL, CHECKPOINT_VERSION)
        state = ck.get("resume")
        if state is None:
            raise checkpoints.CheckpointError(f"{ckpt_path}: no optimizer state to resume from "
                                              f"(written with save_optimizer = False)")
        if ck["net_config"] != model.net_config():
            raise checkpoints.CheckpointError(f"{ckpt_path}: network {ck['net_config']} differs from this run's "
                                              f"{model.net_config()}")
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(state["optimizer"])  # moves the state to the parameters' device
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        start = int(state["step"])
        log = dict(ck.get("log") or log)
        log["resumed_from"] = start
    model.train()
    log.update(n_parameters=model.n_parameters(), device=str(dev))
    hm = config.input_size // TCENet.stride
    t0 = time.perf_counter()
    prior_seconds = float(log.get("seconds", 0.0)) if start else 0.0
    running, n_running = 0.0, 0
    step = start
    for step in range(start, config.steps):
        for group in opt.param_groups:
            group["lr"] = config.lr * lr_factor(step, config)
        frames, kp = _as_sample(sample_source(rng, config.batch), dev)
        crops, kp_crop = augment_batch(frames, kp, config, rng)
        targets, weights = gaussian_targets(kp_crop, (hm, hm), TCENet.stride, config.sigma)
        loss = heatmap_loss(model(crops), targets, weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        running += float(loss.detach())
        n_running += 1
        elapsed = prior_seconds + time.perf_counter() - t0
        done = step + 1
        over_time = config.max_seconds is not None and elapsed > config.max_seconds
        if done % config.log_every == 0 or done == config.steps or over_time:
            entry = {"step": done, "loss": running / n_running, "lr": opt.param_groups[0]["lr"], "seconds": elapsed}
            log["steps"].append(entry)
            running, n_running = 0.0, 0
            if progress is not None:
                progress(entry)
        log["step"], log["seconds"] = done, elapsed
        if ckpt_path is not None and done % config.checkpoint_every == 0 and done < config.steps and not over_time:
            _save(ckpt_path, model, config, log, command, opt, rng, done)
        if over_time:
            log["stopped_early"] = done
            break
    log["seconds"] = prior_seconds + time.perf_counter() - t0
    if ckpt_path is not None:
        _save(ckpt_path, model, config, log, command, opt, rng, int(log.get("step", step)))
    model.eval()
    return model, log


def _save(path: Path, model: TCENet, config: TCETrainConfig, log: dict, command: str | None,
          opt: torch.optim.Optimizer, rng: np.random.Generator, step: int) -> None:
    extra: dict[str, Any] = {}
    if config.save_optimizer:
        extra["resume"] = {"step": step, "optimizer": opt.state_dict(), "numpy_rng": rng.bit_generator.state,
                           "torch_rng": torch.get_rng_state()}
    save_tce_checkpoint(path, model, config, log, command, **extra)


def save_tce_checkpoint(path: str | Path, model: TCENet, config: TCETrainConfig | None, log: dict | None,
                        command: str | None = None, **extra: Any) -> None:
    """Write ``model`` as a ``posestudio.tce/1`` checkpoint (``input_size`` and ``layout`` included)."""
    input_size = config.input_size if config is not None else 128
    checkpoints.save_checkpoint(path, CHECKPOINT_MODEL, CHECKPOINT_VERSION, model.net_config(), model,
                                train_config=None if config is None else config.to_dict(), command=command,
                                log=log, input_size=input_size, sigma=None if config is None else config.sigma,
                                layout=H36M17.name if model.n_joints == H36M17.n_joints else None, **extra)


def load_tce(path: str | Path, device: str | torch.device | None = None) -> tuple[TCENet, dict]:
    """``(model in eval mode on device, checkpoint dict)`` from a ``posestudio.tce/1`` file."""
    ck = checkpoints.load_checkpoint(path, CHECKPOINT_MODEL, CHECKPOINT_VERSION)
    try:
        model = TCENet(**ck["net_config"])
        model.load_state_dict(ck["state_dict"])
    except (TypeError, RuntimeError, ValueError) as exc:
        raise checkpoints.CheckpointError(f"{path}: network does not match its net_config: {exc}") from None
    return model.to(resolve_device(device)).eval(), ck


# ---------------------------------------------------------------------------------------------
# Evaluation


def windows(frames: torch.Tensor) -> torch.Tensor:
    """``(T, 3, S, S)`` frames -> ``(T, 3, 3, S, S)`` windows ``t-1, t, t+1`` (ends repeat frame ``t``)."""
    t = frames.shape[0]
    idx = torch.arange(t)
    prev = torch.where(idx > 0, idx - 1, idx)
    nxt = torch.where(idx < t - 1, idx + 1, idx)
    return torch.stack([frames[prev], frames, frames[nxt]], dim=1)


@torch.no_grad()
def predict_sequence(model: TCENet, frames: torch.Tensor | np.ndarray, batch: int = 32) -> np.ndarray:
    """Keypoints ``(T, J, 3)`` (crop pixels, confidence) for a sequence of crops ``(T, 3, S, S)`` in [0, 1]."""
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    w = windows(torch.as_tensor(frames, dtype=torch.float32))
    out = [decode_heatmaps(model(w[i:i + batch].to(dev)), TCENet.stride).cpu() for i in range(0, len(w), batch)]
    model.train(was_training)
    return torch.cat(out).double().numpy()


def evaluate(model: TCENet, sequences: Sequence[dict[str, Any]], alpha: float = 0.1, reference: str = "crop",
             torso: tuple[int, int] = (H36M17.index("thorax"), H36M17.index("pelvis"))) -> dict[str, float]:
    """PCK and temporal jitter on sequences of crops.

    Args:
        model: the network (any device).
        sequences: dicts with ``frames`` ``(T, 3, S, S)`` RGB in [0, 1] and ``keypoints`` ``(T, J, 3)``
            (crop pixels, third column 1 = labelled).
        alpha: PCK threshold as a fraction of the reference length.
        reference: ``"crop"`` (the crop side ``S``) or ``"torso"`` (per frame, the ground-truth
            distance between the ``torso`` joints, default thorax-pelvis).
    Returns:
        ``pck``: share of labelled joints within ``alpha`` x reference; ``mean_error_px``: mean
        distance (crop pixels); ``jitter_px``: mean predicted acceleration ``|p[t+1] - 2 p[t] +
        p[t-1]|`` (crop pixels / frame^2) over joints labelled in all three frames;
        ``jitter_gt_px``: the same on the ground truth (the motion's own acceleration);
        ``n_joints``: labelled joints scored.
    """
    if reference not in ("crop", "torso"):
        raise InputError(f"evaluate reference = {reference!r}: expected 'crop' or 'torso'")
    hits = errs = acc = acc_gt = 0.0
    n = n_acc = 0
    for i, seq in enumerate(sequences):
        gt = np.asarray(seq["keypoints"], dtype=np.float64)
        frames = seq["frames"]
        if gt.ndim != 3 or gt.shape[0] != len(frames):
            raise InputError(f"sequence {i}: keypoints must be (T, J, 3) with T = {len(frames)} frames, "
                             f"got {gt.shape}")
        pred = predict_sequence(model, frames)
        lab = (gt[..., 2] > 0) & np.isfinite(gt[..., :2]).all(-1)
        err = np.linalg.norm(pred[..., :2] - gt[..., :2], axis=-1)
        if reference == "crop":
            ref = np.full(gt.shape[:2], float(np.shape(frames)[-1]))
        else:
            ref = np.linalg.norm(gt[:, torso[0], :2] - gt[:, torso[1], :2], axis=-1)[:, None].repeat(gt.shape[1], 1)
        lab_ref = lab & np.isfinite(ref) & (ref > 0)
        hits += float((err[lab_ref] <= alpha * ref[lab_ref]).sum())
        errs += float(err[lab].sum())
        n += int(lab_ref.sum())
        if len(gt) >= 3:
            ok3 = lab[:-2] & lab[1:-1] & lab[2:]
            a = np.linalg.norm(pred[2:, :, :2] - 2 * pred[1:-1, :, :2] + pred[:-2, :, :2], axis=-1)
            ag = np.linalg.norm(gt[2:, :, :2] - 2 * gt[1:-1, :, :2] + gt[:-2, :, :2], axis=-1)
            acc += float(a[ok3].sum())
            acc_gt += float(ag[ok3].sum())
            n_acc += int(ok3.sum())
    return {"pck": hits / max(n, 1), "mean_error_px": errs / max(n, 1), "jitter_px": acc / max(n_acc, 1),
            "jitter_gt_px": acc_gt / max(n_acc, 1), "n_joints": float(n)}


@torch.no_grad()
def measure_speed(model: TCENet, input_size: int = 128, batch: int = 1, repeats: int = 20,
                  threads: int | None = None) -> float:
    """Milliseconds per frame of a forward pass on random input (``threads``: CPU threads to use)."""
    dev = next(model.parameters()).device
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        x = torch.rand(batch, 3, 3, input_size, input_size, device=dev)
        was = model.training
        model.eval()
        for _ in range(3):
            model(x)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        for _ in range(repeats):
            model(x)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        model.train(was)
        return 1000 * (time.perf_counter() - t0) / (repeats * batch)
    finally:
        torch.set_num_threads(old)


# ---------------------------------------------------------------------------------------------
# Command-line arguments (the command layer supplies the data source)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments of a TCE training command (``--out``, the :class:`TCETrainConfig` fields, ``--init``, ``--resume``)."""
    p = parser or argparse.ArgumentParser(description="Train the TCE video pose network")
    d = TCETrainConfig()
    p.add_argument("--out", required=True, help="checkpoint file to write (.pt); also the one --resume continues")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--input-size", type=int, default=d.input_size, help="crop side, pixels (multiple of 16)")
    p.add_argument("--width", type=int, default=d.width)
    p.add_argument("--dilations", type=int, nargs="+", default=list(d.dilations))
    p.add_argument("--single-frame", action="store_true", help="ablation: no temporal consistency module")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--max-seconds", type=float, default=None)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--no-blur", action="store_true", help="ablation: no motion-blur augmentation")
    p.add_argument("--no-occluders", action="store_true", help="ablation: no occluder patches")
    p.add_argument("--init", default=None, help="start from this checkpoint's weights")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    return p


def config_from_args(args: argparse.Namespace) -> TCETrainConfig:
    """A checked :class:`TCETrainConfig` from :func:`build_parser` arguments."""
    aug = AugmentConfig()
    if args.no_blur:
        aug.blur_prob = 0.0
    if args.no_occluders:
        aug.occluder_prob = 0.0
    cfg = TCETrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, input_size=args.input_size,
                         width=args.width, dilations=tuple(args.dilations), temporal=not args.single_frame,
                         seed=args.seed, device=args.device, max_seconds=args.max_seconds,
                         checkpoint_every=args.checkpoint_every, augment=aug)
    cfg.check()
    return cfg
