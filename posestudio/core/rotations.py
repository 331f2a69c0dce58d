"""Rotations: Rodrigues vectors and matrices, composition, averaging, and the rotation derivative.

Conventions: rotations are 3x3 matrices or Rodrigues (axis-angle) vectors in radians;
points are row vectors, ``(..., 3)``; a world-to-camera pose maps ``X_cam = R @ X_world + t``.
"""

from __future__ import annotations

import cv2
import numpy as np

from .arrays import FloatArray


def rodrigues_to_matrix(rvec: FloatArray) -> FloatArray:
    """Rotation vectors to matrices.

    Args:
        rvec: ``(..., 3)`` axis-angle vectors, radians.
    Returns:
        ``(..., 3, 3)`` rotation matrices.
    """
    rvec = np.asarray(rvec, dtype=np.float64)
    theta = np.linalg.norm(rvec, axis=-1, keepdims=True)  # (..., 1)
    small = theta < 1e-12
    kmat = skew(rvec / np.where(small, 1.0, theta))
    sin = np.sin(theta)[..., None]
    cos = np.cos(theta)[..., None]
    eye = np.broadcast_to(np.eye(3), kmat.shape)
    rot = eye + sin * kmat + (1.0 - cos) * (kmat @ kmat)
    # First-order expansion for tiny angles keeps the map smooth at zero.
    return np.where(small[..., None], eye + skew(rvec), rot)


def matrix_to_rodrigues(rot: FloatArray) -> FloatArray:
    """Rotation matrices to rotation vectors.

    Args:
        rot: ``(..., 3, 3)`` rotation matrices.
    Returns:
        ``(..., 3)`` axis-angle vectors, radians, angle in [0, pi].
    """
    rot = np.asarray(rot, dtype=np.float64)
    flat = rot.reshape(-1, 3, 3)
    out = np.empty((flat.shape[0], 3))
    for i, r in enumerate(flat):  # cv2.Rodrigues is robust near pi; counts are small (cameras, poses)
        out[i] = cv2.Rodrigues(np.ascontiguousarray(r))[0].ravel()
    return out.reshape(rot.shape[:-2] + (3,))


def rotation_angle_deg(rot_a: FloatArray, rot_b: FloatArray) -> FloatArray:
    """Angle of the relative rotation ``rot_a @ rot_b.T``, degrees.

    Args:
        rot_a, rot_b: ``(..., 3, 3)`` rotation matrices.
    Returns:
        ``(...)`` angles in degrees.
    """
    rel = np.asarray(rot_a) @ np.swapaxes(np.asarray(rot_b), -1, -2)
    cos = (np.trace(rel, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def compose(r_ab: FloatArray, t_ab: FloatArray, r_bc: FloatArray, t_bc: FloatArray
            ) -> tuple[FloatArray, FloatArray]:
    """Compose transforms: ``(a<-b) o (b<-c) = (a<-c)``.

    Args:
        r_ab, t_ab: ``(3, 3)``, ``(3,)`` maps points from frame b into frame a.
        r_bc, t_bc: ``(3, 3)``, ``(3,)`` maps points from frame c into frame b.
    Returns:
        ``(R_ac, t_ac)``.
    """
    return r_ab @ r_bc, r_ab @ t_bc + t_ab


def invert(rot: FloatArray, t: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Inverse of the rigid transform ``x -> rot @ x + t``."""
    return rot.T, -rot.T @ t


def nearest_rotation(m: FloatArray) -> FloatArray:
    """The proper rotation ``R`` maximising ``tr(R^T m)`` (orthogonal Procrustes, batched).

    With ``m = sum_j w_j a_j b_j^T`` this is the rotation taking the ``b`` onto the ``a``
    (Kabsch/Umeyama); with ``m`` a weighted sum of rotations, their chordal L2 mean.

    Args:
        m: ``(..., 3, 3)`` matrices.
    Returns:
        ``(..., 3, 3)`` rotations (``det = +1``: a reflection is replaced by the best proper rotation).
    """
    u, _, vt = np.linalg.svd(np.asarray(m, dtype=np.float64))
    d = np.sign(np.linalg.det(u @ vt))
    d = np.where(d == 0, 1.0, d)
    u = u.copy()
    u[..., :, -1] *= d[..., None]
    return u @ vt


def average_rotations(rots: FloatArray, weights: FloatArray | None = None) -> FloatArray:
    """Chordal L2 mean of rotations (the nearest rotation to their weighted sum).

    Args:
        rots: ``(N, 3, 3)``.
        weights: ``(N,)`` non-negative, or None for equal weights.
    Returns:
        ``(3, 3)`` rotation.
    """
    w = np.ones(len(rots)) if weights is None else np.asarray(weights, dtype=np.float64)
    return nearest_rotation(np.einsum("n,nij->ij", w, rots))


def axis_rotation(axis: int, angle: FloatArray) -> FloatArray:
    """Right-handed rotations about one coordinate axis.

    Args:
        axis: 0, 1 or 2 (x, y, z).
        angle: ``(...)`` radians.
    Returns:
        ``(..., 3, 3)`` rotation matrices.
    """
    angle = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros(angle.shape + (3, 3))
    i, k = [(1, 2), (2, 0), (0, 1)][axis]
    out[..., axis, axis] = 1.0
    out[..., i, i] = c
    out[..., k, k] = c
    out[..., i, k] = -s
    out[..., k, i] = s
    return out


def skew(v: FloatArray) -> FloatArray:
    """Cross-product matrices ``[v]x``.

    Args:
        v: ``(..., 3)`` vectors.
    Returns:
        ``(..., 3, 3)`` with ``[v]x @ u = v x u``.
    """
    v = np.asarray(v, dtype=np.float64)
    z = np.zeros(v.shape[:-1])
    return np.stack([z, -v[..., 2], v[..., 1], v[..., 2], z, -v[..., 0], -v[..., 1], v[..., 0], z],
                    axis=-1).reshape(v.shape[:-1] + (3, 3))


#: ``(3, 3, 3)`` generators ``E_k`` with ``[v]x = sum_k v_k E_k``.
SKEW_BASIS = skew(np.eye(3))


def rotation_derivative_factor(rvec: FloatArray, rot: FloatArray) -> FloatArray:
    """``M(w)`` such that ``d(R v)/dw = -R [v]x M(w)`` for ``R = rodrigues(w)`` (Gallego & Yezzi, 2015).

    Args:
        rvec: ``(K, 3)`` Rodrigues vectors, radians; rot: ``(K, 3, 3)`` their rotations.
    Returns:
        ``(K, 3, 3)``: ``(w w^T + (R^T - I)[w]x) / |w|^2``, the identity at w = 0.
    """
    theta2 = np.einsum("ni,ni->n", rvec, rvec)
    small = theta2 < 1e-20
    t2 = np.where(small, 1.0, theta2)
    m = (np.einsum("ni,nj->nij", rvec, rvec) + (np.swapaxes(rot, 1, 2) - np.eye(3)) @ skew(rvec)) / t2[:, None, None]
    m[small] = np.eye(3)
    return m


def rotation_jacobian_basis(rot: FloatArray, m: FloatArray) -> FloatArray:
    """Per-rotation tensors ``G_k = -R E_k M`` so that ``d(R v)/dw = sum_k v_k G_k``.

    Args:
        rot, m: ``(K, 3, 3)`` rotations and their :func:`rotation_derivative_factor`.
    Returns:
        ``(K, 3, 3, 3)`` indexed ``[entity, k, i, j]``.
    """
    return -np.einsum("nab,kbc,ncd->nkad", rot, SKEW_BASIS, m)
