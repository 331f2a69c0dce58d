"""Losses of the lifting network; none but :func:`supervised_loss` uses 3D labels.

Units: 2D residuals are normalised image coordinates multiplied by :data:`PIXEL_SCALE` (so about
pixels of a 1000-pixel focal length) and pass through a pseudo-Huber of scale :data:`HUBER_PX`;
3D terms are metres.

* :func:`reprojection_loss`: the lift projected into its own camera agrees with the input 2D.
* :func:`transform_loss` (Li et al., AAAI 2020): the lift of view ``i`` moved into view ``j`` with
  the rig's relative pose and projected agrees with view ``j``'s 2D, each term weighted by view
  ``j``'s confidence. The rig's metric baseline fixes depth and scale.
* :func:`rotation_cycle_loss` (Chen et al., CVPR 2019; single view): the lift turned about the
  vertical through the root by a random angle, re-projected and lifted again, turned back, agrees
  with the first lift.
* :func:`bone_loss`: left and right bones of equal length, bones constant over the window, and a
  weak prior on the body's size (the height of an adult, only to stop the scale drifting where no
  rig says it).
* :func:`supervised_loss`: the upper bound's 3D-label loss.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from posestudio.models.keypoints import H36M17

from .network import LiftingNet, project

#: Normalised image units to "pixels" of a 1000-pixel focal length.
PIXEL_SCALE = 1000.0
#: Pseudo-Huber scale of 2D residuals, pixels at :data:`PIXEL_SCALE`.
HUBER_PX = 5.0
#: Typical adult height (metres) for the weak size prior.
TYPICAL_HEIGHT_M = 1.70

_BONES = [(int(a), int(b)) for a, b in H36M17.bone_indices]


def _bone_index(name_a: str, name_b: str) -> int:
    pair = (H36M17.index(name_a), H36M17.index(name_b))
    for k, (a, b) in enumerate(_BONES):
        if (a, b) == pair or (b, a) == pair:
            return k
    raise KeyError(f"no bone {name_a}-{name_b} in H36M17")


#: Pairs of bone indices (left, right) whose lengths must agree.
SYMMETRIC_BONES = [(_bone_index(f"l_{a}", f"l_{b}"), _bone_index(f"r_{a}", f"r_{b}"))
                   for a, b in (("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"), ("elbow", "wrist"))]
#: Chains from ankle to head top whose lengths sum to about the body's height.
HEIGHT_CHAIN = [_bone_index(a, b) for a, b in (("l_ankle", "l_knee"), ("l_knee", "l_hip"), ("pelvis", "spine"),
                                                ("spine", "thorax"), ("thorax", "neck"), ("neck", "head"))]


def pseudo_huber(residual_px: Tensor, scale: float = HUBER_PX) -> Tensor:
    """Pseudo-Huber of 2D residual vectors ``(..., 2)`` in pixels; returns ``(...)``, about px / scale."""
    return scale * (torch.sqrt(1.0 + residual_px.pow(2).sum(-1) / scale ** 2) - 1.0)


def _weighted_mean(values: Tensor, weight: Tensor) -> Tensor:
    return (values * weight).sum() / weight.sum().clamp_min(1e-6)


def reprojection_loss(points: Tensor, xy: Tensor, weight: Tensor) -> Tensor:
    """The lift projected into its own camera against the input 2D.

    Args:
        points: ``(..., J, 3)`` camera-frame joints, metres; xy: ``(..., J, 2)`` normalised image
        coordinates; weight: ``(..., J)`` confidences (0 where missing).
    """
    return _weighted_mean(pseudo_huber(PIXEL_SCALE * (project(points) - xy)), weight)


def transform_loss(points: Tensor, rotation: Tensor, translation: Tensor, xy: Tensor, weight: Tensor,
                   roots: Tensor | None = None) -> Tensor:
    """Each view's lift moved into every other view of the same instant, projected, against that
    view's 2D, weighted by its confidence.

    Args:
        points: ``(B, V, T, J, 3)`` each view's lift in its camera frame, metres.
        rotation: ``(B, V, 3, 3)`` world-to-camera rotations; translation: ``(B, V, 3)`` metres.
        xy: ``(B, V, T, J, 2)`` normalised image coordinates; weight: ``(B, V, T, J)`` (a view
            not seen at all has weight 0 everywhere).
        roots: ``(B, V, T, 3)`` each view's own root position, or None. Given, the moved body is
            put at view ``j``'s own root (only the rotation is transferred): the pose is checked
            without the error of view ``i``'s depth, which one view cannot know well.
    """
    world = torch.einsum("bvji,bvtkj->bvtki", rotation, points - translation[:, :, None, None])   # R^T (p - t)
    in_j = torch.einsum("bwij,bvtkj->bvwtki", rotation, world) + translation[:, None, :, None, None]
    if roots is not None:
        in_j = in_j - in_j[..., :1, :] + roots[:, None, :, :, None]
    residual = pseudo_huber(PIXEL_SCALE * (project(in_j) - xy[:, None]))                          # (B,Vi,Vj,T,J)
    v = points.shape[1]
    seen = (weight > 0).any(-1).any(-1).to(weight.dtype)                                           # (B, V)
    off_diagonal = 1.0 - torch.eye(v, dtype=weight.dtype, device=weight.device)
    w = weight[:, None] * (seen[:, :, None] * off_diagonal)[..., None, None]
    return _weighted_mean(residual, w)


def turn_about(points: Tensor, centre: Tensor, axis: Tensor, angle: Tensor) -> Tensor:
    """Rotate points about an axis through a centre (Rodrigues).

    Args:
        points: ``(B, T, J, 3)``; centre: ``(B, T, 3)``; axis: ``(B, 3)`` unit; angle: ``(B,)`` radians.
    Returns:
        ``(B, T, J, 3)``.
    """
    k = axis[:, None, None]
    p = points - centre[:, :, None]
    cos, sin = torch.cos(angle)[:, None, None, None], torch.sin(angle)[:, None, None, None]
    turned = p * cos + torch.cross(k.expand_as(p), p, dim=-1) * sin + k * (k * p).sum(-1, keepdim=True) * (1 - cos)
    return turned + centre[:, :, None]


def rotation_cycle_loss(model: LiftingNet, out: dict[str, Tensor], weight: Tensor, up: Tensor,
                        generator: torch.Generator) -> Tensor:
    """Turn the lift about the vertical through its root, re-project, lift again, turn back: the
    two lifts must agree (metres, mean joint distance) and so must the root depths (relative).

    Args:
        model: the network; out: its output for the batch (``rel``, ``root``: ``(B, T, ...)``).
        weight: ``(B, T, J)`` the input weights (the re-projected 2D keeps the same missing joints).
        up: ``(B, 3)`` the world's up direction in camera axes (unit).
        generator: draws the angles (CPU).
    """
    b = weight.shape[0]
    angle = (torch.rand(b, generator=generator) * 2 - 1).to(weight.device, weight.dtype) * math.pi
    points = out["root"][:, :, None] + out["rel"]
    turned = turn_about(points, out["root"], up, angle)
    ok = (turned[..., 2] > 0.5).all(-1)                                                 # (B, T) in front
    w_in = torch.where(ok[..., None], (weight > 0).to(weight.dtype), 0.0)
    again = model(project(turned), w_in)
    back = turn_about(again["root"][:, :, None] + again["rel"], again["root"], up, -angle)
    rel_back = back - again["root"][:, :, None]
    frame_w = (w_in.sum(-1) > 0).to(weight.dtype)
    pose = _weighted_mean((rel_back - out["rel"]).norm(dim=-1).mean(-1), frame_w)
    depth = _weighted_mean((torch.log(again["depth"].clamp_min(1e-3)) - torch.log(out["depth"].clamp_min(1e-3))).abs(),
                           frame_w)
    return pose + 0.1 * depth


def bone_lengths(rel: Tensor) -> Tensor:
    """``(..., J, 3)`` joints to ``(..., B)`` H36M17 bone lengths."""
    a = torch.tensor([i for i, _ in _BONES], device=rel.device)
    b = torch.tensor([j for _, j in _BONES], device=rel.device)
    return (rel[..., a, :] - rel[..., b, :]).norm(dim=-1)


def bone_loss(rel: Tensor, frame_weight: Tensor, size_weight: float = 0.1) -> Tensor:
    """Left/right symmetry and constancy over the window of bone lengths, plus a weak size prior.

    Args:
        rel: ``(B, T, J, 3)`` metres; frame_weight: ``(B, T)`` frames to count (0 where nothing seen);
        size_weight: weight of the log-height prior against :data:`TYPICAL_HEIGHT_M`.
    Returns:
        scalar, about metres.
    """
    lengths = bone_lengths(rel)                                                       # (B, T, nB)
    left = lengths[..., [a for a, _ in SYMMETRIC_BONES]]
    right = lengths[..., [b for _, b in SYMMETRIC_BONES]]
    symmetry = _weighted_mean((left - right).abs().mean(-1), frame_weight)
    w = frame_weight[..., None]
    mean = (lengths * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp_min(1e-6)
    constancy = _weighted_mean((lengths - mean).abs().mean(-1), frame_weight)
    height = lengths[..., HEIGHT_CHAIN].sum(-1)
    size = _weighted_mean(torch.log(height.clamp_min(1e-3) / TYPICAL_HEIGHT_M).pow(2), frame_weight)
    return symmetry + constancy + size_weight * size


def supervised_loss(out: dict[str, Tensor], truth: Tensor, frame_weight: Tensor) -> Tensor:
    """3D-label loss of the upper bound: root-relative joint error plus root position error, metres.

    Args:
        out: the network's output; truth: ``(B, T, J, 3)`` camera-frame joints, metres;
        frame_weight: ``(B, T)``.
    """
    rel_true = truth - truth[:, :, :1]
    pose = (out["rel"] - rel_true).norm(dim=-1).mean(-1)
    root = (out["root"] - truth[:, :, 0]).norm(dim=-1)
    return _weighted_mean(pose + 0.1 * root, frame_weight)
