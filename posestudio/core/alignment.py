"""One similarity alignment (Umeyama, 1991), batched: rotation, translation and scale between point sets.

:func:`similarity_transforms` is the one implementation; :func:`rigid_align` (one point set) and
:func:`procrustes_align` (aligned points, e.g. for P-MPJPE or to place a canonical body shape) are
views of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .arrays import BoolArray, FloatArray
from .rotations import nearest_rotation


@dataclass
class Similarity:
    """Batched similarity transforms ``x -> s R x + t``.

    Attributes:
        rotation: ``(F, 3, 3)``; translation: ``(F, 3)``; scale: ``(F,)`` (1 for rigid fits).
        ok: ``(F,)`` sets that had enough valid points to be aligned (the rest are NaN).
    """

    rotation: FloatArray
    translation: FloatArray
    scale: FloatArray
    ok: BoolArray

    def apply(self, points: FloatArray) -> FloatArray:
        """``(F, N, 3)`` points transformed set by set."""
        return (self.scale[:, None, None] * np.einsum("fik,fjk->fji", self.rotation, points)
                + self.translation[:, None, :])


def similarity_transforms(src: ArrayLike, dst: ArrayLike, valid: ArrayLike | None = None, *,
                          scale: bool = True, allow_reflection: bool = False, min_points: int = 3) -> Similarity:
    """Least-squares ``dst ~ s R src + t`` for each of ``F`` sets of corresponding points.

    Minimises ``sum_j w_j ||s R src_j + t - dst_j||^2`` with ``w_j`` = 1 for valid points, 0 else,
    by a batched SVD of the cross-covariance. ``R`` is a proper rotation unless
    ``allow_reflection`` (when the unconstrained optimum is a reflection, the smallest singular
    direction is flipped, which is the best proper rotation).

    Args:
        src: ``(F, N, 3)`` or ``(N, 3)`` points to move.
        dst: same shape, targets.
        valid: ``(F, N)`` points to fit on; default: finite in both.
        scale: fit the isotropic scale (else ``s = 1``, a rigid fit).
        allow_reflection: allow ``det R = -1``.
        min_points: sets with fewer valid points are not aligned (three non-collinear points fix a
            similarity).
    Returns:
        :class:`Similarity` with a leading axis of ``F`` (1 for ``(N, 3)`` inputs).
    """
    p = np.asarray(src, dtype=np.float64)
    g = np.asarray(dst, dtype=np.float64)
    if p.ndim == 2:
        p, g = p[None], g[None]
    if p.shape != g.shape or p.shape[-1] != 3:
        raise ValueError(f"src and dst must both be (F, N, 3) or (N, 3), got {p.shape} and {g.shape}")
    if valid is None:
        w = np.isfinite(p).all(-1) & np.isfinite(g).all(-1)
    else:
        w = np.asarray(valid, dtype=bool).reshape(p.shape[:2])
    n = w.sum(axis=1).astype(np.float64)                                  # (F,)
    wf = w[..., None].astype(np.float64)
    p0 = np.where(w[..., None], p, 0.0)
    g0 = np.where(w[..., None], g, 0.0)
    nn = np.maximum(n, 1.0)[:, None, None]
    mu_p = (wf * p0).sum(axis=1, keepdims=True) / nn                      # (F, 1, 3)
    mu_g = (wf * g0).sum(axis=1, keepdims=True) / nn
    pc = (p0 - mu_p) * wf
    gc = (g0 - mu_g) * wf
    h = np.einsum("fji,fjk->fik", gc, pc)                                 # (F, 3, 3) sum_j g_j p_j^T
    if allow_reflection:
        u, _, vt = np.linalg.svd(h)
        rot = u @ vt
    else:
        rot = nearest_rotation(h)
    var_p = (pc**2).sum(axis=(1, 2))                                      # (F,)
    if scale:
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.einsum("fij,fij->f", rot, h) / var_p                   # tr(R^T H) / var
    else:
        s = np.ones(p.shape[0])
    ok = (n >= min_points) & np.isfinite(s) & (var_p > 0)
    t = mu_g[:, 0] - s[:, None] * np.einsum("fij,fj->fi", rot, mu_p[:, 0])
    rot[~ok], t[~ok], s = np.nan, np.nan, np.where(ok, s, np.nan)
    return Similarity(rot, t, s, ok)


def rigid_align(src: FloatArray, dst: FloatArray, with_scale: bool = False) -> tuple[FloatArray, FloatArray, float]:
    """One least-squares similarity ``dst ~ s R src + t`` (Umeyama).

    Args:
        src, dst: ``(N, 3)`` corresponding points, N >= 3.
        with_scale: also estimate ``s`` (else 1).
    Returns:
        ``(R (3, 3), t (3,), s)``.
    """
    fit = similarity_transforms(src, dst, np.ones((1, len(src)), bool), scale=with_scale)
    return fit.rotation[0], fit.translation[0], float(fit.scale[0])


def procrustes_align(pred: ArrayLike, gt: ArrayLike, valid: ArrayLike | None = None, *,
                     scale: bool = True, allow_reflection: bool = False,
                     min_joints: int = 3) -> tuple[FloatArray, BoolArray]:
    """Per-frame similarity alignment of ``pred`` onto ``gt`` (see :func:`similarity_transforms`).

    Args:
        pred: ``(F, J, 3)`` or ``(J, 3)`` points to align.
        gt: same shape, target points.
        valid: ``(F, J)`` joints to fit on; default: finite in both.
        scale: fit the isotropic scale (else rigid).
        allow_reflection: allow ``det R = -1``.
        min_joints: frames with fewer valid joints are not aligned.
    Returns:
        ``(aligned, frame_ok)``: ``(F, J, 3)`` aligned prediction (all joints transformed; NaN
        where the input was NaN or the frame could not be aligned) and ``(F,)`` bool.
    """
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    p, g = (p[None], g[None]) if p.ndim == 2 else (p, g)
    fit = similarity_transforms(p, g, valid, scale=scale, allow_reflection=allow_reflection,
                                min_points=min_joints)
    return fit.apply(p), fit.ok
