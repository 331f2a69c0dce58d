"""Training windows from motion capture: 3D clips seen by random virtual cameras, with
detector-like 2D.

:class:`MotionWindows` cuts clips (``(F, 17, 3)`` metres, Z up, at the model's frame rate) into
windows of ``T`` frames centred on every ``stride``-th frame; frames beyond a clip's ends are
marked missing, so the network learns the ends of takes. :func:`render_windows` looks at each
window from ``V`` static cameras (the distribution of
:class:`~posestudio.models.factorization.data.ViewConfig`) and makes the 2D a detector would give:
Gaussian noise, a constant per-joint bias per view, outliers, dropped joints and frames, and
confidences that are lower where the 2D is wrong. Everything is drawn from one ``torch.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from posestudio.models.factorization.data import ViewConfig, sample_cameras


@dataclass
class DetectorNoise:
    """What the synthetic 2D suffers, per view (pixels of the camera's own focal length).

    Attributes:
        noise_px: ``(min, max)``: each view's Gaussian noise std drawn from this range.
        bias_px: std of a per-joint offset constant over the window (detectors' biases).
        outlier_rate_max: per view, up to this share of joints moved 20-150 px.
        max_dropout: per view, up to this share of joints missing.
        frame_dropout: share of frames missing whole (missed detections).
        min_confidence: confidences of good joints are drawn from ``U(min_confidence, 1)``;
            outliers get ``U(0.1, 0.6)``.
    """

    noise_px: tuple[float, float] = (1.0, 5.0)
    bias_px: float = 3.0
    outlier_rate_max: float = 0.05
    max_dropout: float = 0.2
    frame_dropout: float = 0.03
    min_confidence: float = 0.5


class MotionWindows:
    """Windows of ``T`` frames of 3D clips, centred on every ``stride``-th frame of each clip.

    Args:
        clips: ``(F_k, J, 3)`` arrays, metres, world Z up, at the model's frame rate.
        window: ``T`` (odd).
        stride: centre frames taken every ``stride`` frames.
    """

    def __init__(self, clips: list[np.ndarray], window: int, stride: int = 1) -> None:
        if not clips:
            raise ValueError("no clips to cut windows from")
        self.window = window
        self.poses = torch.as_tensor(np.concatenate(clips), dtype=torch.float32)          # (sum F, J, 3)
        starts = np.cumsum([0] + [len(c) for c in clips[:-1]])
        self.centres = torch.as_tensor(np.concatenate([s + np.arange(0, len(c), stride)
                                                       for s, c in zip(starts, clips)]), dtype=torch.long)
        first = np.concatenate([np.full(len(range(0, len(c), stride)), s) for s, c in zip(starts, clips)])
        last = np.concatenate([np.full(len(range(0, len(c), stride)), s + len(c) - 1) for s, c in zip(starts, clips)])
        self.first = torch.as_tensor(first, dtype=torch.long)
        self.last = torch.as_tensor(last, dtype=torch.long)

    def __len__(self) -> int:
        return int(self.centres.shape[0])

    def get(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """Windows ``index`` (``(B,)`` into the centres).

        Returns:
            ``(poses (B, T, J, 3), present (B, T) bool)``: frames beyond the clip repeat its end
            frame and are not present.
        """
        h = self.window // 2
        frames = self.centres[index, None] + torch.arange(-h, h + 1)                      # (B, T)
        present = (frames >= self.first[index, None]) & (frames <= self.last[index, None])
        frames = torch.minimum(torch.maximum(frames, self.first[index, None]), self.last[index, None])
        return self.poses[frames], present


def render_windows(poses: Tensor, present: Tensor, n_views: int, generator: torch.Generator,
                   views: ViewConfig | None = None, noise: DetectorNoise | None = None) -> dict[str, Tensor]:
    """Look at windows of 3D poses from static virtual cameras and make detector-like 2D.

    Args:
        poses: ``(B, T, J, 3)`` metres, world Z up (joint 0 = pelvis); present: ``(B, T)`` bool.
        n_views: ``V`` cameras per window (all aimed at the centre frame's pelvis).
        generator: CPU generator (all randomness).
        views: camera distribution; noise: 2D errors.
    Returns:
        dict: ``xy`` ``(B, V, T, J, 2)`` normalised image coordinates, ``weight`` ``(B, V, T, J)``
        confidences (0 where missing), ``rotation`` ``(B, V, 3, 3)`` world-to-camera,
        ``translation`` ``(B, V, 3)`` metres, ``up`` ``(B, V, 3)`` the world's Z axis in camera axes,
        ``truth`` ``(B, V, T, J, 3)`` camera-frame joints (metres; for scoring and the upper bound).
    """
    n = noise or DetectorNoise()
    b, t, j, _ = poses.shape
    dev, dt = poses.device, poses.dtype

    def u(lo: float, hi: float, *shape: int) -> Tensor:
        return (lo + (hi - lo) * torch.rand(*shape, generator=generator)).to(dev, dt)

    def g(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator).to(dev, dt)

    rot, centre, focal = sample_cameras(poses[:, t // 2, 0], n_views, generator, views)
    trans = -torch.einsum("bvij,bvj->bvi", rot, centre)
    truth = torch.einsum("bvij,btkj->bvtki", rot, poses) + trans[:, :, None, None]
    px_to_norm = 1.0 / focal[..., None, None, None]                                     # (B, V, 1, 1, 1)
    err = u(n.noise_px[0], max(n.noise_px), b, n_views)[..., None, None, None] * g(b, n_views, t, j, 2)
    err = err + n.bias_px * g(b, n_views, 1, j, 2)
    wrong = torch.rand(b, n_views, t, j, generator=generator).to(dev, dt) < u(0.0, n.outlier_rate_max, b, n_views, 1, 1)
    angle = u(0.0, 2 * math.pi, b, n_views, t, j)
    jump = u(20.0, 150.0, b, n_views, t, j)
    err = err + (wrong * jump)[..., None] * torch.stack([torch.cos(angle), torch.sin(angle)], -1)
    xy = truth[..., :2] / truth[..., 2:3].clamp_min(0.1) + err * px_to_norm
    conf = torch.where(wrong, u(0.1, 0.6, b, n_views, t, j), u(n.min_confidence, 1.0, b, n_views, t, j))
    rate = u(0.0, n.max_dropout, b, n_views, 1, 1)
    keep = torch.rand(b, n_views, t, j, generator=generator).to(dev, dt) >= rate
    keep &= (torch.rand(b, n_views, t, 1, generator=generator).to(dev) >= n.frame_dropout)
    keep &= present[:, None, :, None].to(dev)
    weight = torch.where(keep, conf, torch.zeros_like(conf))
    up = rot[..., :, 2]
    return {"xy": torch.where(keep[..., None], xy, torch.zeros_like(xy)), "weight": weight, "rotation": rot,
            "translation": trans, "up": up, "truth": truth}
