"""Training data for the factorization network: 2D projections of 3D poses from virtual cameras.

3D poses (``(N, 17, 3)`` metres, H36M17 order, Z up) come from the Bandai Namco motion capture
(:func:`load_bandai`, every clip via ``read_bvh`` + ``bandai_to_h36m17``) or, for tests, from a
small random linear shape model (:func:`synthetic_poses`). :func:`render_views` looks at each pose
from ``V`` random perspective cameras (yaw all around, pitch -10..40 deg, distance 3-5 m, focal
~1000 px, aim jittered about the pelvis, pixel noise) and drops random joints, so the 2D resembles
real detections; the result is normalised with
:func:`posestudio.models.factorization.network.normalise_2d`. Everything is seeded through a
``torch.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .network import normalise_2d


@dataclass
class ViewConfig:
    """Virtual camera distribution of :func:`render_views` (angles in degrees, lengths in metres)."""

    pitch_min_deg: float = -10.0
    pitch_max_deg: float = 40.0
    dist_min_m: float = 3.0
    dist_max_m: float = 5.0
    focal_px: float = 1000.0
    focal_jitter: float = 0.2       # focal drawn from focal_px * (1 +- focal_jitter)
    aim_jitter_m: float = 0.15      # std of the aim point about the pelvis, per axis
    pixel_noise_px: float = 1.5     # std of Gaussian 2D noise (per view from U(pixel_noise_px, pixel_noise_max_px))
    pixel_noise_max_px: float = 1.5
    outlier_rate_max: float = 0.0   # per view, this share U(0, max) of joints moved 20-200 px (detector mistakes)
    max_dropout: float = 0.25       # per-view joint dropout rate drawn from U(0, max_dropout)
    min_visible: int = 6            # views keep at least this many joints (dropout is undone otherwise)


def split_clips(clips: list[tuple[str, np.ndarray]], holdout_every: int = 5) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Split clips: every ``holdout_every``-th clip (indices 4, 9, ... for 5) is held out.

    Returns:
        ``(train (N, 17, 3), test (M, 17, 3), test_clip_names)``.
    """
    train = [p for i, (_, p) in enumerate(clips) if i % holdout_every != holdout_every - 1]
    test = [(n, p) for i, (n, p) in enumerate(clips) if i % holdout_every == holdout_every - 1]
    return np.concatenate(train), np.concatenate([p for _, p in test]), [n for n, _ in test]


# Rough H36M17 standing template (metres, Z up, facing -Y), used by the synthetic shape model.
_TEMPLATE = np.array([
    [0.00, 0.0, 0.95], [-0.10, 0.0, 0.95], [-0.11, 0.0, 0.50], [-0.12, 0.05, 0.08],
    [0.10, 0.0, 0.95], [0.11, 0.0, 0.50], [0.12, 0.05, 0.08], [0.00, 0.0, 1.20],
    [0.00, 0.0, 1.45], [0.00, -0.02, 1.55], [0.00, -0.02, 1.75], [0.18, 0.0, 1.42],
    [0.20, 0.0, 1.15], [0.21, -0.02, 0.90], [-0.18, 0.0, 1.42], [-0.20, 0.0, 1.15],
    [-0.21, -0.02, 0.90]], dtype=np.float32)


def synthetic_poses(n: int, n_modes: int = 4, amplitude_m: float = 0.06, seed: int = 0) -> np.ndarray:
    """Poses from a random linear shape model (for tests): template + ``sum_k c_k B_k``.

    Args:
        n: number of poses.
        n_modes: rank of the deformation.
        amplitude_m: RMS per-joint displacement of each mode, metres.
        seed: fixes both the modes and the coefficients (draw train and test sets from one call
            and split them, so both share the modes).
    Returns:
        ``(n, 17, 3)`` float32 metres, Z up.
    """
    rng = np.random.default_rng(seed)
    modes = rng.normal(size=(n_modes, 17, 3)).astype(np.float32) * amplitude_m
    coef = rng.normal(size=(n, n_modes)).astype(np.float32)
    return _TEMPLATE[None] + np.einsum("nk,kjd->njd", coef, modes)


def camera_rotations(yaw: Tensor, pitch: Tensor) -> Tensor:
    """World-to-camera rotations of cameras on a sphere looking at its centre (world Z up).

    Args:
        yaw: ``(...,)`` azimuth of the camera position about the target, radians.
        pitch: ``(...,)`` elevation of the camera above the target, radians (positive = looking down).
    Returns:
        ``(..., 3, 3)``; rows are the camera x (right), y (down), z (forward) axes in world coordinates.
    """
    fwd = -torch.stack([torch.cos(pitch) * torch.cos(yaw), torch.cos(pitch) * torch.sin(yaw), torch.sin(pitch)], -1)
    up = torch.zeros_like(fwd)
    up[..., 2] = 1.0
    right = torch.nn.functional.normalize(torch.cross(fwd, up, dim=-1), dim=-1)
    down = torch.cross(fwd, right, dim=-1)
    return torch.stack([right, down, fwd], -2)


def sample_cameras(targets: Tensor, n_views: int, generator: torch.Generator, cfg: ViewConfig | None = None,
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """Random perspective cameras looking at points (the distribution of :class:`ViewConfig`).

    Args:
        targets: ``(B, 3)`` points to look at (e.g. the pelvis), metres, world Z up.
        n_views: ``V`` cameras per target.
        generator: CPU generator (all randomness).
        cfg: camera distribution.
    Returns:
        ``(rotation (B, V, 3, 3) world-to-camera, centre (B, V, 3) metres, focal (B, V) pixels)``;
        each camera looks at its target moved by ``aim_jitter_m`` noise.
    """
    c = cfg or ViewConfig()
    b = targets.shape[0]
    dev, dt = targets.device, targets.dtype

    def u(lo: float, hi: float, *shape: int) -> Tensor:
        return (lo + (hi - lo) * torch.rand(*shape, generator=generator)).to(dev, dt)

    yaw = u(0.0, 2 * math.pi, b, n_views)
    pitch = u(math.radians(c.pitch_min_deg), math.radians(c.pitch_max_deg), b, n_views)
    dist = u(c.dist_min_m, c.dist_max_m, b, n_views)
    focal = c.focal_px * u(1 - c.focal_jitter, 1 + c.focal_jitter, b, n_views)
    rot = camera_rotations(yaw, pitch)                                    # (B, V, 3, 3)
    aim = targets[:, None] + c.aim_jitter_m * torch.randn(b, n_views, 3, generator=generator).to(dev, dt)
    return rot, aim - dist[..., None] * rot[..., 2, :], focal


def render_views(poses: Tensor, n_views: int, generator: torch.Generator, cfg: ViewConfig | None = None,
                 ) -> dict[str, Tensor]:
    """Project poses into random virtual perspective cameras and drop random joints.

    Args:
        poses: ``(B, J, 3)`` world poses, metres, Z up (joint 0 = pelvis).
        n_views: ``V`` cameras per pose.
        generator: CPU generator (all randomness).
        cfg: camera distribution.
    Returns:
        dict: ``pixels`` ``(B, V, J, 2)`` perspective projections (pixels, principal point 0),
        ``kp`` ``(B, V, J, 2)`` normalised 2D (zero where dropped), ``mask`` ``(B, V, J)`` float,
        ``rotation`` ``(B, V, 3, 3)`` world-to-camera rotations.
    """
    c = cfg or ViewConfig()
    b, j, _ = poses.shape
    dev, dt = poses.device, poses.dtype

    def u(lo: float, hi: float, *shape: int) -> Tensor:
        return (lo + (hi - lo) * torch.rand(*shape, generator=generator)).to(dev, dt)

    def g(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator).to(dev, dt)

    rot, cam_pos, focal = sample_cameras(poses[:, 0], n_views, generator, c)
    p_cam = torch.einsum("bvij,bvkj->bvki", rot, poses[:, None] - cam_pos[:, :, None])
    pix = focal[..., None, None] * p_cam[..., :2] / p_cam[..., 2:3].clamp_min(0.1)
    noise = u(c.pixel_noise_px, max(c.pixel_noise_px, c.pixel_noise_max_px), b, n_views)
    pix = pix + noise[..., None, None] * g(b, n_views, j, 2)
    if c.outlier_rate_max > 0:
        wrong = torch.rand(b, n_views, j, generator=generator).to(dev, dt) < u(0.0, c.outlier_rate_max, b, n_views, 1)
        angle = u(0.0, 2 * math.pi, b, n_views, j)
        jump = u(20.0, 200.0, b, n_views, j)
        pix = pix + wrong[..., None] * jump[..., None] * torch.stack([torch.cos(angle), torch.sin(angle)], -1)
    rate = u(0.0, c.max_dropout, b, n_views, 1)
    mask = (torch.rand(b, n_views, j, generator=generator).to(dev, dt) >= rate)
    mask = mask | (mask.sum(-1, keepdim=True) < c.min_visible)
    kp, m, _, _ = normalise_2d(pix, mask)
    return {"pixels": pix, "kp": kp, "mask": m, "rotation": rot}
