"""The lifting network: a short window of one camera's 2D keypoints to 3D in that camera's frame.

Input, per view: ``T`` frames (sampled at the model's frame rate, the centre frame is the one of
interest) of ``J`` joints in **normalised image coordinates** (``K^-1 [u, v, 1]``, lens undone: the
camera's intrinsics enter here, so one network serves every focal length and image size), with a
weight per joint (the detector's confidence, zero where missing).

Each frame is centred on its visible joints and divided by their RMS radius
(:func:`~posestudio.models.factorization.network.normalise_2d`); the features are those shapes,
the weights, each frame's centre and scale relative to the centre frame's, and the centre frame's
position in the image (perspective depends on it). A residual MLP (Martinez et al. 2017) reads
them into

* a **pose branch**: root-relative joints ``rel`` ``(T, J, 3)`` in metres, camera axes;
* a **root-position branch** (the seed's addition): per frame a log correction of the root's
  depth. The weak-perspective depth ``Z0 = r3d / r2d`` (the RMS radius of the predicted body
  across the optical axis over that of the 2D) is multiplied by ``exp(correction)``; the root's
  ``X, Y`` follow in closed form from the 2D (:func:`root_from_depth`). So absolute position and
  scale come out of the 2D and the intrinsics. Without the branch (``root_branch=False``, the
  ablation) the depth is ``Z0``.

The output ``points = root + rel`` are absolute joints in the camera frame, metres.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from posestudio.models.factorization.network import normalise_2d

#: Index of the root joint (the pelvis in H36M17).
ROOT = 0


@dataclass(frozen=True)
class LiftingConfig:
    """The network's shape (stored in checkpoints as ``net_config``).

    Attributes:
        n_joints: ``J``; window: ``T`` frames (odd: the centre frame is ``T // 2``);
        model_fps: the frame rate the window is sampled at, Hz (takes at other rates are resampled);
        hidden: width of the residual MLP; n_blocks: residual blocks; dropout: their dropout;
        root_branch: predict the depth correction (False: weak-perspective depth, the ablation).
    """

    n_joints: int = 17
    window: int = 9
    model_fps: float = 30.0
    hidden: int = 384
    n_blocks: int = 2
    dropout: float = 0.1
    root_branch: bool = True


def project(points: Tensor, min_depth: float = 0.05) -> Tensor:
    """Pinhole projection to normalised image coordinates.

    Args:
        points: ``(..., 3)`` camera-frame points, metres (Z forward).
        min_depth: depths are clamped to this (metres) so points behind the camera stay finite.
    Returns:
        ``(..., 2)`` ``(X / Z, Y / Z)``.
    """
    return points[..., :2] / points[..., 2:3].clamp_min(min_depth)


def root_from_depth(rel: Tensor, depth: Tensor, xy: Tensor, weight: Tensor) -> Tensor:
    """The root's camera-frame position given its depth, from the 2D in closed form.

    Each visible joint ``j`` says ``u_j (Z + z_j) = X + x_j``; the weighted mean over joints gives
    ``X`` (and ``Y`` alike). Exact when the 2D and ``rel`` agree.

    Args:
        rel: ``(..., J, 3)`` root-relative joints, metres; depth: ``(...,)`` root depth ``Z``, metres;
        xy: ``(..., J, 2)`` normalised image coordinates; weight: ``(..., J)`` (>= 0).
    Returns:
        ``(..., 3)`` root position in the camera frame, metres.
    """
    w = weight / weight.sum(-1, keepdim=True).clamp_min(1e-6)
    along = xy * (depth[..., None, None] + rel[..., 2:3]) - rel[..., :2]          # (..., J, 2)
    root_xy = (w[..., None] * along).sum(-2)
    return torch.cat([root_xy, depth[..., None]], -1)


def weak_perspective_depth(rel: Tensor, weight: Tensor, scale: Tensor) -> Tensor:
    """Depth at which a body of this 3D size shows this 2D size: the visible joints' RMS radius
    across the optical axis (about their mean, as :func:`normalise_2d` measures the 2D) over the
    2D RMS radius.

    Args:
        rel: ``(..., J, 3)`` root-relative joints, metres, camera axes; weight: ``(..., J)`` (> 0
        where visible); scale: ``(...)`` the 2D RMS radius, normalised image units.
    Returns:
        ``(...)`` depth, metres.
    """
    w = (weight > 0).to(rel.dtype)
    n = w.sum(-1).clamp_min(1.0)
    mean = (w[..., None] * rel[..., :2]).sum(-2) / n[..., None]
    r3d = ((w * (rel[..., :2] - mean[..., None, :]).pow(2).sum(-1)).sum(-1) / n).clamp_min(1e-6).sqrt()
    return r3d / scale


def window_features(xy: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """The network's input features of windows of 2D poses.

    Args:
        xy: ``(B, T, J, 2)`` normalised image coordinates (anything where ``weight`` is 0);
        weight: ``(B, T, J)`` joint weights in [0, 1].
    Returns:
        ``(features (B, F), scale (B, T))``: the flat features and each frame's 2D RMS radius
        (normalised image units; 1 for a frame with no joint).
    """
    b, t, j, _ = xy.shape
    visible = weight > 0
    shape, _, centre, scale = normalise_2d(xy, visible)                             # (B,T,J,2) (B,T,2) (B,T)
    mid = t // 2
    present = visible.any(-1)                                                       # (B, T)
    c_mid, s_mid = centre[:, mid], scale[:, mid]
    rel_centre = torch.where(present[..., None], (centre - c_mid[:, None]) / s_mid[:, None, None], 0.0)
    rel_scale = torch.where(present, torch.log(scale / s_mid[:, None]), 0.0)
    feats = torch.cat([shape.reshape(b, -1), weight.reshape(b, -1), rel_centre.reshape(b, -1), rel_scale,
                       present.to(xy.dtype), c_mid], -1)
    return feats, scale


def n_features(n_joints: int, window: int) -> int:
    """Length of :func:`window_features`' feature vector."""
    return window * (3 * n_joints + 4) + 2


class _Block(nn.Module):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(width, width), nn.LayerNorm(width), nn.GELU(), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class LiftingNet(nn.Module):
    """Windows of one view's 2D to absolute 3D in the camera frame (see the module docstring)."""

    def __init__(self, config: LiftingConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or LiftingConfig()
        if c.window < 1 or c.window % 2 == 0:
            raise ValueError(f"window = {c.window}: expected an odd number of frames")
        self.trunk = nn.Sequential(nn.Linear(n_features(c.n_joints, c.window), c.hidden), nn.LayerNorm(c.hidden),
                                   nn.GELU(), *[_Block(c.hidden, c.dropout) for _ in range(c.n_blocks)])
        self.pose_head = nn.Linear(c.hidden, c.window * c.n_joints * 3)
        self.root_head = nn.Linear(c.hidden, c.window) if c.root_branch else None
        # start from a plausible body size: metres per unit of the normalised 2D shape
        nn.init.zeros_(self.pose_head.bias)
        if self.root_head is not None:
            nn.init.zeros_(self.root_head.weight)
            nn.init.zeros_(self.root_head.bias)

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, xy: Tensor, weight: Tensor) -> dict[str, Tensor]:
        """Lift windows.

        Args:
            xy: ``(B, T, J, 2)`` normalised image coordinates; weight: ``(B, T, J)`` in [0, 1].
        Returns:
            dict: ``rel`` ``(B, T, J, 3)`` root-relative joints (metres, camera axes), ``depth``
            ``(B, T)`` root depth (metres), ``root`` ``(B, T, 3)``, ``points`` ``(B, T, J, 3)``
            absolute camera-frame joints (metres).
        """
        c = self.config
        b, t, j, _ = xy.shape
        if t != c.window or j != c.n_joints:
            raise ValueError(f"input of {t} frames x {j} joints: this network reads {c.window} x {c.n_joints}")
        feats, scale = window_features(xy, weight)
        h = self.trunk(feats)
        # outputs of unit size are bodies of a few tenths of a metre: keeps early depths sane
        rel = 0.3 * self.pose_head(h).view(b, t, j, 3)
        rel = rel - rel[:, :, ROOT:ROOT + 1]
        depth = weak_perspective_depth(rel, weight, scale)
        if self.root_head is not None:
            depth = depth * torch.exp(self.root_head(h).clamp(-3.0, 3.0))
        root = root_from_depth(rel, depth, xy, weight)
        return {"rel": rel, "depth": depth, "root": root, "points": root[:, :, None] + rel}


def net_config_dict(model: LiftingNet) -> dict:
    """The constructor arguments to store in a checkpoint."""
    return asdict(model.config)
