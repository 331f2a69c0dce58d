"""Gaussian heatmap targets, the weighted MSE loss and sub-pixel decoding.

Coordinates: input (crop) pixels with pixel centres at integers; a heatmap with ``stride`` ``s``
(4 for :class:`~.network.TCENet`) has its cell ``u`` centred on input pixel ``(u + 0.5) * s - 0.5``,
so ``u = (x + 0.5) / s - 0.5`` (:func:`to_heatmap`, :func:`from_heatmap`). Every function is
vectorised over batch and joints.
"""

from __future__ import annotations

import torch


def to_heatmap(xy: torch.Tensor, stride: int) -> torch.Tensor:
    """Input-pixel coordinates -> heatmap-cell coordinates (any shape)."""
    return (xy + 0.5) / stride - 0.5


def from_heatmap(uv: torch.Tensor, stride: int) -> torch.Tensor:
    """Heatmap-cell coordinates -> input-pixel coordinates (any shape)."""
    return (uv + 0.5) * stride - 0.5


def gaussian_targets(keypoints: torch.Tensor, size: tuple[int, int], stride: int = 4,
                     sigma: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian target heatmaps and per-joint loss weights.

    Args:
        keypoints: ``(B, J, 3)``: ``x, y`` in input pixels, third column > 0 where labelled (a
            visibility flag or weight; NaN coordinates count as unlabelled).
        size: heatmap ``(h, w)`` cells (input size / ``stride``).
        stride: input pixels per heatmap cell.
        sigma: Gaussian standard deviation in heatmap cells.
    Returns:
        ``(targets (B, J, h, w)`` with peak 1 at the joint, ``weights (B, J))``: the third column
        clipped to ``[0, 1]`` (0 where unlabelled; their target is all zeros).
    """
    if keypoints.dim() != 3 or keypoints.shape[-1] < 3:
        raise ValueError(f"keypoints: expected (B, J, 3), got {tuple(keypoints.shape)}")
    h, w = size
    xy = keypoints[..., :2]
    ok = torch.isfinite(xy).all(-1) & (keypoints[..., 2] > 0)
    weights = torch.where(ok, keypoints[..., 2].clamp(0, 1), torch.zeros_like(keypoints[..., 2]))
    uv = to_heatmap(torch.where(ok[..., None], xy, torch.zeros_like(xy)), stride)
    gx = torch.arange(w, dtype=keypoints.dtype, device=keypoints.device)
    gy = torch.arange(h, dtype=keypoints.dtype, device=keypoints.device)
    ex = torch.exp(-((gx - uv[..., 0:1]) ** 2) / (2 * sigma ** 2))  # (B, J, w)
    ey = torch.exp(-((gy - uv[..., 1:2]) ** 2) / (2 * sigma ** 2))  # (B, J, h)
    targets = ey[..., :, None] * ex[..., None, :] * ok[..., None, None].to(keypoints.dtype)
    return targets, weights


def heatmap_loss(pred: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean squared error: ``sum_bj w_bj * mean_pixels (pred - target)^2 / max(sum w, 1e-6)``.

    Args:
        pred, targets: ``(B, J, h, w)``.
        weights: ``(B, J)`` per-joint weights (0 for unlabelled joints).
    Returns:
        scalar loss.
    """
    per_joint = ((pred - targets) ** 2).mean(dim=(-1, -2))
    return (per_joint * weights).sum() / weights.sum().clamp_min(1e-6)


def decode_heatmaps(heatmaps: torch.Tensor, stride: int = 4) -> torch.Tensor:
    """Keypoints from heatmaps: argmax plus a sub-cell quadratic fit of the log heatmap.

    Along each axis, a parabola through the log values at the peak and its two neighbours gives the
    offset ``0.5 * (l[-1] - l[+1]) / (l[-1] - 2 l[0] + l[+1])`` (exact for a Gaussian), clipped to
    half a cell; 0 at the map's border or where the fit is not a maximum.

    Args:
        heatmaps: ``(B, J, h, w)``.
        stride: input pixels per heatmap cell.
    Returns:
        ``(B, J, 3)``: ``x, y`` in input pixels and the confidence = peak value clipped to ``[0, 1]``.
    """
    b, j, h, w = heatmaps.shape
    flat = heatmaps.reshape(b, j, h * w)
    peak, idx = flat.max(dim=-1)
    iy, ix = idx // w, idx % w
    logs = flat.clamp_min(1e-10).log()
    u = ix.to(heatmaps.dtype) + _parabola_offset(logs, idx, ix, w, 1)
    v = iy.to(heatmaps.dtype) + _parabola_offset(logs, idx, iy, h, w)
    xy = from_heatmap(torch.stack([u, v], dim=-1), stride)
    return torch.cat([xy, peak.clamp(0, 1)[..., None]], dim=-1)


def _parabola_offset(logs: torch.Tensor, idx: torch.Tensor, pos: torch.Tensor, size: int, step: int) -> torch.Tensor:
    """Sub-cell offset of the peak along one axis.

    Args:
        logs: ``(B, J, h * w)`` log heatmaps; idx: ``(B, J)`` flat peak index; pos: the peak's
            index along the axis (of length ``size``); step: flat-index step along the axis.
    """
    inner = (pos > 0) & (pos < size - 1)
    lo = torch.where(inner, idx - step, idx)
    hi = torch.where(inner, idx + step, idx)
    lm, l0, lp = (logs.gather(-1, i[..., None])[..., 0] for i in (lo, idx, hi))
    den = lm - 2 * l0 + lp
    ok = inner & (den < -1e-12)
    off = 0.5 * (lm - lp) / torch.where(ok, den, -torch.ones_like(den))
    return torch.where(ok, off.clamp(-0.5, 0.5), torch.zeros_like(off))
