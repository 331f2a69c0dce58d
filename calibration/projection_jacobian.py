"""Batched projection of board corners with analytic Jacobians, for bundle adjustment.

Everything is vectorised over N corner observations (no Python loop over points). Rotations and
the perspective division come from the geometry core (:mod:`posestudio.core.rotations`,
:mod:`posestudio.core.projection`), the corner's position at its camera's exposure time from the
time model (:mod:`.time_offsets`); this module adds the lens distortion and chains the blocks.

Intrinsic vector (9,): ``fx, fy, cx, cy, d0..d4`` with ``d = k1, k2, p1, p2, k3`` (pinhole)
or ``k1..k4`` (fisheye; d4 unused). Poses are 6-vectors: Rodrigues rotation (rad), translation (m).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posestudio.core.arrays import BoolArray, FloatArray, IntArray
from posestudio.core.projection import normalized_projection, normalized_projection_jacobian
from posestudio.core.rotations import rodrigues_to_matrix, rotation_derivative_factor, rotation_jacobian_basis

from .time_offsets import exposure_weights

N_INTRINSICS = 9


def _rotate(rot: FloatArray, v: FloatArray) -> FloatArray:
    """``(N, 3, 3) @ (N, 3)`` row by row."""
    return (rot @ v[:, :, None])[:, :, 0]


def _rotate_jac(basis: FloatArray, v: FloatArray) -> FloatArray:
    """``d(R v)/dw`` ``(N, 3, 3)`` from per-point ``basis`` ``(N, 3, 3, 3)`` and ``v`` ``(N, 3)``."""
    return (v[:, None, :] @ basis.reshape(len(v), 3, 9)).reshape(len(v), 3, 3)


def distort_with_jacobian(xy: FloatArray, d: FloatArray, fisheye: BoolArray
                          ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Distort ideal normalised coordinates and differentiate.

    Args:
        xy: ``(N, 2)``; d: ``(N, 5)`` coefficients; fisheye: ``(N,)`` model flags.
    Returns:
        ``(xyd (N, 2), d xyd / d xy (N, 2, 2), d xyd / d d (N, 2, 5))``.
    """
    x, y = xy[:, 0], xy[:, 1]
    k1, k2, p1, p2, k3 = d.T
    r2 = x * x + y * y
    rad = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    drad = k1 + 2 * k2 * r2 + 3 * k3 * r2**2  # d rad / d r2
    xd = x * rad + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * rad + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    j_xy = np.empty((len(x), 2, 2))
    j_xy[:, 0, 0] = rad + 2 * x * x * drad + 2 * p1 * y + 6 * p2 * x
    j_xy[:, 0, 1] = 2 * x * y * drad + 2 * p1 * x + 2 * p2 * y
    j_xy[:, 1, 0] = 2 * x * y * drad + 2 * p1 * x + 2 * p2 * y
    j_xy[:, 1, 1] = rad + 2 * y * y * drad + 6 * p1 * y + 2 * p2 * x
    j_d = np.empty((len(x), 2, 5))
    j_d[:, 0] = np.stack([x * r2, x * r2**2, 2 * x * y, r2 + 2 * x * x, x * r2**3], axis=1)
    j_d[:, 1] = np.stack([y * r2, y * r2**2, r2 + 2 * y * y, 2 * x * y, y * r2**3], axis=1)
    out = np.stack([xd, yd], axis=1)
    if fisheye.any():
        f = fisheye
        fx_, fy_ = x[f], y[f]
        r = np.maximum(np.sqrt(r2[f]), 1e-12)
        th = np.arctan(r)
        t2 = th * th
        kk = d[f, :4]
        poly = 1 + kk[:, 0] * t2 + kk[:, 1] * t2**2 + kk[:, 2] * t2**3 + kk[:, 3] * t2**4
        thd = th * poly
        dthd = 1 + 3 * kk[:, 0] * t2 + 5 * kk[:, 1] * t2**2 + 7 * kk[:, 2] * t2**3 + 9 * kk[:, 3] * t2**4
        s = thd / r
        ds_dr = (dthd / (1 + r * r) * r - thd) / (r * r)
        out[f] = np.stack([fx_ * s, fy_ * s], axis=1)
        jf = np.empty((f.sum(), 2, 2))
        jf[:, 0, 0] = s + fx_ * ds_dr * fx_ / r
        jf[:, 0, 1] = fx_ * ds_dr * fy_ / r
        jf[:, 1, 0] = fy_ * ds_dr * fx_ / r
        jf[:, 1, 1] = s + fy_ * ds_dr * fy_ / r
        j_xy[f] = jf
        powers = np.stack([th**3, th**5, th**7, th**9, np.zeros_like(th)], axis=1) / r[:, None]
        j_d[f] = np.stack([fx_[:, None] * powers, fy_[:, None] * powers], axis=1)
    return out, j_xy, j_d


@dataclass
class CornerJacobians:
    """Per-observation Jacobian blocks of the pixel residual (each ``(N, 2, k)``)."""

    intrinsics: FloatArray  # k = 9
    extrinsics: FloatArray  # k = 6
    pose: FloatArray  # k = 6, the corner's own frame
    pose_prev: FloatArray  # k = 6
    pose_next: FloatArray  # k = 6
    offset: FloatArray  # k = 1


def corner_residuals(intrinsics: FloatArray, extrinsics: FloatArray, poses: FloatArray, offsets: FloatArray,
                     camera: IntArray, pose: IntArray, pose_prev: IntArray,
                     pose_next: IntArray, corner: FloatArray, observed: FloatArray,
                     stencil: FloatArray, fisheye: BoolArray, with_jacobian: bool = False,
                     pose_only: bool = False, neighbours: bool = True) -> tuple[FloatArray, CornerJacobians | None]:
    """Reprojection residuals of board corners at each camera's exposure time.

    The corner's world position at the camera's exposure time (frame + offset frames) is
    ``X = X_f + offset * V + offset**2 / 2 * A`` with the finite-difference velocity and
    acceleration of the board poses around it (``stencil``; see :mod:`.time_offsets`).

    Args:
        intrinsics: ``(C, 9)``; extrinsics: ``(C, 6)`` world-to-camera; poses: ``(F, 6)``
            board-to-world; offsets: ``(C,)`` frames; fisheye: ``(C,)``.
        camera, pose, pose_prev, pose_next: ``(N,)`` indices per observation;
        corner: ``(N, 3)`` board frame, metres; observed: ``(N, 2)`` pixels; stencil: ``(N, 2, 3)``.
        pose_only: compute only the ``pose`` block (the others come back None).
        neighbours: False takes each corner at its own frame, time offsets ignored (for a rig whose
            offsets are all zero and held): the neighbour poses are not evaluated, their blocks come
            back None and the offset block zero.
    Returns:
        ``(residual (N, 2) pixels, Jacobian blocks or None)``.
    """
    rot_b = rodrigues_to_matrix(poses[:, :3])
    rot_c = rodrigues_to_matrix(extrinsics[:, :3])
    xf = _rotate(rot_b[pose], corner) + poses[pose, 3:]
    if neighbours:
        xm = _rotate(rot_b[pose_prev], corner) + poses[pose_prev, 3:]
        xp = _rotate(rot_b[pose_next], corner) + poses[pose_next, 3:]
        weight, dweight = exposure_weights(stencil, offsets[camera])
        stack = np.stack([xm, xf, xp], axis=1)
        world = np.einsum("nk,nkd->nd", weight, stack)
        vel = np.einsum("nk,nkd->nd", dweight, stack)  # d world / d offset
    else:
        weight = np.tile([0.0, 1.0, 0.0], (len(camera), 1))
        world, vel = xf, np.zeros_like(xf)
    rc = rot_c[camera]
    pc = _rotate(rc, world) + extrinsics[camera, 3:]
    xy, _ = normalized_projection(pc)
    intr = intrinsics[camera]
    xyd, jd_xy, jd_d = distort_with_jacobian(xy, intr[:, 4:], fisheye[camera])
    fx, fy = intr[:, 0], intr[:, 1]
    pix = np.stack([fx * xyd[:, 0] + intr[:, 2], fy * xyd[:, 1] + intr[:, 3]], axis=1)
    res = pix - observed
    if not with_jacobian:
        return res, None
    g_b = rotation_jacobian_basis(rot_b, rotation_derivative_factor(poses[:, :3], rot_b))
    n = len(res)
    dpix_dpc = np.stack([fx, fy], axis=1)[:, :, None] * (jd_xy @ normalized_projection_jacobian(pc))
    dpix_dx = dpix_dpc @ rc  # (N, 2, 3) w.r.t. the world point
    if pose_only:
        coef = weight[:, 1]
        j_pf = np.concatenate([dpix_dx @ _rotate_jac(g_b[pose], corner), dpix_dx], axis=2) * coef[:, None, None]
        return res, CornerJacobians(None, None, j_pf, None, None, None)  # type: ignore[arg-type]
    g_c = rotation_jacobian_basis(rot_c, rotation_derivative_factor(extrinsics[:, :3], rot_c))
    j_intr = np.zeros((n, 2, N_INTRINSICS))
    j_intr[:, 0, 0] = xyd[:, 0]
    j_intr[:, 1, 1] = xyd[:, 1]
    j_intr[:, 0, 2] = 1.0
    j_intr[:, 1, 3] = 1.0
    j_intr[:, 0, 4:] = fx[:, None] * jd_d[:, 0]
    j_intr[:, 1, 4:] = fy[:, None] * jd_d[:, 1]
    j_ext = np.concatenate([dpix_dpc @ _rotate_jac(g_c[camera], world), dpix_dpc], axis=2)
    coefs = (weight[:, 1], weight[:, 0], weight[:, 2])
    blocks = []
    for idx, coef in zip((pose, pose_prev, pose_next) if neighbours else (pose,), coefs):
        jr = dpix_dx @ _rotate_jac(g_b[idx], corner)
        blocks.append(np.concatenate([jr, dpix_dx], axis=2) * coef[:, None, None])
    if not neighbours:
        blocks += [None, None]  # type: ignore[list-item]
    j_delta = dpix_dx @ vel[:, :, None]
    return res, CornerJacobians(j_intr, j_ext, blocks[0], blocks[1], blocks[2], j_delta)
