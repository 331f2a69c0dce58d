"""Orthonormal frames from two directions, and the rotation that carries a rest frame onto one.

A joint's orientation is fixed by where its bone points (the primary direction, matched exactly)
and by a second direction that settles the twist about the bone (e.g. a knee's hinge axis). The
rotation taking the rest pose's pair of directions onto the observed pair is ``F_obs @ F_rest.T``
with ``F = [e1 e2 e3]``, ``e1`` the primary, ``e2`` the secondary made perpendicular to it.
"""

from __future__ import annotations

import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.rotations import rodrigues_to_matrix

_EPS = 1e-12


def unit(v: FloatArray) -> FloatArray:
    """``v / |v|`` along the last axis (zero vectors stay zero)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, _EPS)


def frame_from(primary: FloatArray, secondary: FloatArray) -> FloatArray:
    """Right-handed orthonormal frames with columns ``(e1, e2, e3)``.

    Args:
        primary: ``(..., 3)`` direction of ``e1``.
        secondary: ``(..., 3)`` direction giving ``e2`` (its part perpendicular to ``e1``); it must
            not be parallel to ``primary``.
    Returns:
        ``(..., 3, 3)`` rotation matrices; ``e3 = e1 x e2``.
    """
    e1 = unit(primary)
    e2 = unit(secondary - (secondary * e1).sum(-1, keepdims=True) * e1)
    e3 = np.cross(e1, e2)
    return np.stack([e1, e2, e3], axis=-1)


def aim_rotation(primary: FloatArray, secondary: FloatArray, rest_primary: FloatArray,
                 rest_secondary: FloatArray) -> FloatArray:
    """Rotations ``R`` with ``R @ rest_primary`` along ``primary`` and the twist set by the secondaries.

    Args:
        primary, secondary: ``(F, 3)`` observed directions.
        rest_primary, rest_secondary: ``(3,)`` the same directions in the rest pose.
    Returns:
        ``(F, 3, 3)`` rotations.
    """
    rest = frame_from(np.asarray(rest_primary, float), np.asarray(rest_secondary, float))
    return frame_from(primary, secondary) @ rest.T


def perpendicular(v: FloatArray, axis: FloatArray) -> FloatArray:
    """The part of ``v`` perpendicular to the unit ``axis`` (both ``(..., 3)``)."""
    return v - (v * axis).sum(-1, keepdims=True) * axis



def minimal_rotations(a: FloatArray, b: FloatArray) -> FloatArray:
    """The smallest rotations taking directions ``a`` to directions ``b`` (both ``(..., 3)``).

    Returns:
        ``(..., 3, 3)``: about ``a x b`` by the angle between them (identity where they agree).
    """
    a, b = unit(a), unit(b)
    axis = np.cross(a, b)
    angle = np.arctan2(np.linalg.norm(axis, axis=-1), (a * b).sum(-1))
    return rodrigues_to_matrix(unit(axis) * angle[..., None])


def fit_rotations(rest: FloatArray, observed: FloatArray, weights: FloatArray) -> FloatArray:
    """Rotations about a fixed origin that best carry rest offsets onto observed ones (Kabsch).

    Unlike :func:`posestudio.core.alignment.similarity_transforms` there is no translation: the
    origin is the joint itself (e.g. the pelvis, whose path is the root's).

    Args:
        rest: ``(N, 3)`` offsets in the joint's rest frame.
        observed: ``(F, N, 3)`` the same points relative to the joint, per frame.
        weights: ``(F, N)`` non-negative weights.
    Returns:
        ``(F, 3, 3)`` proper rotations minimising ``sum_n w_n |R rest_n - observed_n|^2``.
    """
    cov = np.einsum("fn,fni,nj->fij", weights, observed, rest)  # sum w d o^T
    u, _, vt = np.linalg.svd(cov)
    fix = np.ones(cov.shape[:2])
    fix[:, 2] = np.sign(np.linalg.det(u @ vt))
    return (u * fix[:, None, :]) @ vt
