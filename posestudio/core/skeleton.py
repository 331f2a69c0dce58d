"""Skeleton helpers: bone lengths from points, their variation over time, per-joint lengths.

Bones are ``(B, 2)`` (parent, child) joint index pairs, as
:attr:`posestudio.models.keypoints.KeypointLayout.bone_indices` gives them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .arrays import FloatArray


def bone_pairs(bones: Any) -> NDArray[np.intp]:
    """``(B, 2)`` joint index pairs from a sequence of pairs or an object with ``.bone_indices``."""
    if hasattr(bones, "bone_indices"):
        bones = bones.bone_indices
    arr = np.asarray(bones, dtype=np.intp)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"bones must be (B, 2) joint index pairs, got shape {arr.shape}")
    return arr


def bone_lengths(points: ArrayLike, bones: Any) -> FloatArray:
    """Bone lengths.

    Args:
        points: ``(..., J, D)`` points (D = 3 for 3D, 2 for image points).
        bones: ``(B, 2)`` (parent, child) joint indices, or a keypoint layout.
    Returns:
        ``(..., B)`` lengths in the input unit, NaN where either end is NaN.
    """
    p = np.asarray(points, dtype=np.float64)
    b = bone_pairs(bones)
    return np.linalg.norm(p[..., b[:, 1], :] - p[..., b[:, 0], :], axis=-1)


def bone_length_cv(points: ArrayLike, bones: Any, *, per_bone: bool = False) -> float | FloatArray:
    """Coefficient of variation of bone lengths over time (0 for a rigid skeleton).

    For each bone: ``std / mean`` of its length over the frames where both ends are finite
    (population std); bones with fewer than two such frames give NaN and are left out of the mean.

    Args:
        points: ``(F, J, 3)`` points.
        bones: ``(B, 2)`` joint index pairs, or a keypoint layout.
        per_bone: return the ``(B,)`` per-bone values.
    Returns:
        Mean CV over bones (dimensionless), or ``(B,)``; NaN when no bone has two valid frames.
    """
    lengths = bone_lengths(points, bones).reshape(-1, len(bone_pairs(bones)))
    ok = np.isfinite(lengths)
    n = ok.sum(axis=0)
    l0 = np.where(ok, lengths, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = l0.sum(axis=0) / n
        var = (np.where(ok, lengths - mean, 0.0) ** 2).sum(axis=0) / n
        cv = np.sqrt(var) / mean
    cv = np.where((n >= 2) & (mean > 0), cv, np.nan)
    if per_bone:
        return cv
    return float(np.nanmean(cv)) if np.isfinite(cv).any() else float("nan")


def bone_length_per_joint(lengths: FloatArray, bones: Any, n_joints: int) -> FloatArray:
    """``(..., B)`` bone lengths to ``(..., J)``: the length of the bone ending at each joint (NaN at roots)."""
    lengths = np.asarray(lengths, dtype=np.float64)
    out = np.full(lengths.shape[:-1] + (n_joints,), np.nan)
    out[..., bone_pairs(bones)[:, 1]] = lengths
    return out


def scale_to_lengths(shape_lengths: FloatArray, target_lengths: FloatArray, min_bones: int = 4) -> FloatArray:
    """Least-squares scale ``s`` with ``s * shape_lengths ~ target_lengths`` per row.

    Args:
        shape_lengths: ``(..., B)`` bone lengths of a shape (any unit).
        target_lengths: ``(..., B)`` the lengths it should have, metres (NaN where unknown).
        min_bones: rows with fewer known target lengths give NaN.
    Returns:
        ``(...)`` scales (metres per shape unit).
    """
    good = np.isfinite(target_lengths) & np.isfinite(shape_lengths)
    num = np.where(good, target_lengths * shape_lengths, 0.0).sum(-1)
    den = np.maximum(np.where(good, shape_lengths**2, 0.0).sum(-1), 1e-12)
    return np.where(good.sum(-1) >= min_bones, num / den, np.nan)
