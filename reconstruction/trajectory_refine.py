"""Refine a take's joints as smooth, skeleton-true trajectories that agree with every camera (offline).

Triangulation treats each frame and joint on its own; a joint seen by a single camera is known
only along that camera's ray. Across a take, motion is smooth and bones do not stretch.
:func:`refine_trajectories` re-estimates all free joints of a take at once by robust
Gauss-Newton (Levenberg-Marquardt) over

* reprojection into the cameras whose detections were used (pixels; Cauchy-weighted, so the
  wrong detection that is often why a joint could not be triangulated stops pulling);
* bone lengths against the performer's (metres);
* acceleration: second differences of each joint's track (metres per frame squared, scaled with
  the frame rate), which ties a gap to the frames around it and keeps depth along single rays
  continuous; it is also the smoother, in place of a low-pass filter;
* the starting estimate, weakly, so that a joint seen along one ray only cannot drift along it.

The normal equations are sparse (each joint couples to its bones within a frame and to itself two
frames either side); they are assembled with vectorised numpy and solved with a sparse
conjugate gradients, so the cost grows linearly with the take's length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import LinearOperator, cg, spsolve

from posestudio.core.arrays import BoolArray, FloatArray, IntArray


@dataclass
class RefineWeights:
    """Standard deviations of the terms of :func:`refine_trajectories`.

    Attributes:
        reprojection_px: 2D residual, pixels (detector noise).
        robust_px: residuals beyond about this (pixels) are down-weighted (Cauchy).
        bone_m: bone length, metres.
        acceleration_m: second difference of a joint's track at 30 fps, metres per frame squared
            (scaled to other frame rates; 0.01 m at 30 fps is 9 m/s^2).
        robust_acceleration: accelerations beyond this many ``acceleration_m`` are down-weighted
            (Cauchy), so a kick or a dash is followed rather than smoothed away.
        model_m: distance from the starting estimate, metres.
    """

    reprojection_px: float = 4.0
    robust_px: float = 8.0
    bone_m: float = 0.01
    acceleration_m: float = 0.01
    robust_acceleration: float = 3.0
    model_m: float = 0.20


@dataclass
class _Terms:
    """Index arrays of every residual term (built once)."""

    obs_c: IntArray       # (O,) camera of each observation
    obs_v: IntArray       # (O,) variable of each observation
    obs_xy: FloatArray    # (O, 2) normalised image coordinates
    bone_a: IntArray      # (K,) variable of the bone's first end (-1: fixed)
    bone_b: IntArray
    fixed_a: FloatArray   # (K, 3) fixed positions where an end is not a variable
    fixed_b: FloatArray
    bone_len: FloatArray  # (K,)
    acc_idx: IntArray     # (T, 3) variables of frames f-1, f, f+1 (-1: fixed)
    acc_fixed: FloatArray  # (T, 3, 3)


def _build_terms(p0: FloatArray, var: BoolArray, index: IntArray, bones: IntArray, lengths: FloatArray,
                 observed: FloatArray, usable: BoolArray) -> _Terms:
    present = np.isfinite(p0).all(-1)
    n_frames = p0.shape[0]
    vf, vj = np.nonzero(var)
    obs_c, obs_v = np.nonzero(usable[:, vf, vj] & np.isfinite(observed[:, vf, vj]).all(-1))
    a, b = bones[:, 0], bones[:, 1]
    bf, bb = np.nonzero((var[:, a] | var[:, b]) & present[:, a] & present[:, b] & np.isfinite(lengths)[None])
    mid = np.arange(1, n_frames - 1)
    trip = present[mid - 1] & present[mid] & present[mid + 1] & (var[mid - 1] | var[mid] | var[mid + 1])
    tf, tj = np.nonzero(trip)
    tf = tf + 1
    return _Terms(obs_c, obs_v, observed[obs_c, vf[obs_v], vj[obs_v]],
                  index[bf, a[bb]], index[bf, b[bb]], p0[bf, a[bb]], p0[bf, b[bb]], lengths[bb],
                  np.stack([index[tf - 1, tj], index[tf, tj], index[tf + 1, tj]], 1),
                  np.stack([p0[tf - 1, tj], p0[tf, tj], p0[tf + 1, tj]], 1))


#: Systems up to this size are solved densely.
_DENSE_MAX = 600


def _solve(a: sparse.spmatrix, b: FloatArray) -> FloatArray:
    """Solve the damped normal equations ``a x = b`` (``a`` symmetric positive definite, 3x3 blocks).

    Conjugate gradients with a 3x3 block-Jacobi preconditioner: the system is dominated by each
    joint's own block (its views, its smoothness, the tie to the start), so it converges in tens of
    iterations, about twice as fast as a sparse LU here; a sparse LU takes over if it does not.
    Small systems (a live window) are solved densely.
    """
    if a.shape[0] <= _DENSE_MAX:  # a live window: dense LAPACK beats any sparse machinery
        return np.linalg.solve(a.toarray(), b)
    a = a.tocsr()
    n = a.shape[0] // 3
    rows = 3 * np.arange(n)
    blocks = np.empty((n, 3, 3))
    for i in range(3):
        for k in range(3):
            blocks[:, i, k] = a.diagonal(k - i)[rows + min(i, k)]
    inv = np.linalg.inv(blocks)
    precondition = LinearOperator(a.shape, matvec=lambda v: np.einsum("nij,nj->ni", inv, v.reshape(n, 3)).ravel(),
                                  dtype=np.float64)
    x, info = cg(a, b, rtol=1e-5, maxiter=500, M=precondition)
    if info != 0:
        x = spsolve(a.tocsc(), b, permc_spec="MMD_AT_PLUS_A")
    return x


def _gather(x: FloatArray, idx: IntArray, fixed: FloatArray) -> FloatArray:
    return np.where((idx >= 0)[..., None], x[np.maximum(idx, 0)], fixed)


def refine_trajectories(points: FloatArray, free: BoolArray, fps: float, bones: IntArray, bone_lengths: FloatArray,
                        cam_rotation: FloatArray, cam_translation: FloatArray, focal_px: FloatArray,
                        observed: FloatArray, usable: BoolArray, weights: RefineWeights | None = None,
                        iterations: int = 8) -> FloatArray:
    """Re-estimate the ``free`` joints of a take.

    Args:
        points: ``(F, J, 3)`` metres: fixed joints, and the starting estimate of each free joint
            (NaN: not solved, stays NaN).
        free: ``(F, J)`` joints to solve (the rest are held fixed).
        fps: frame rate, Hz.
        bones: ``(B, 2)`` joint indices; bone_lengths: ``(B,)`` metres (NaN: not constrained).
        cam_rotation: ``(C, 3, 3)`` world-to-camera; cam_translation: ``(C, 3)`` metres;
            focal_px: ``(C,)`` pixels.
        observed: ``(C, F, J, 2)`` undistorted normalised image coordinates (``x/z, y/z``).
        usable: ``(C, F, J)`` the observations to use (e.g. triangulation's inlier views).
        weights: term standard deviations (:class:`RefineWeights`).
        iterations: Levenberg-Marquardt iterations.
    Returns:
        ``(F, J, 3)``: ``points`` with the free joints replaced.
    """
    w = weights or RefineWeights()
    p0 = np.array(points, dtype=np.float64, copy=True)
    var = free & np.isfinite(p0).all(-1)
    if not var.any():
        return p0
    vf, vj = np.nonzero(var)
    n_var = vf.size
    index = np.full(var.shape, -1, dtype=np.int64)
    index[vf, vj] = np.arange(n_var)
    lengths = np.asarray(bone_lengths, dtype=np.float64)
    t = _build_terms(p0, var, index, np.asarray(bones), lengths, np.asarray(observed, float), usable)
    start = p0[vf, vj]                                                                     # (V, 3) the weak tie
    rc, tc = np.asarray(cam_rotation, float), np.asarray(cam_translation, float)
    fpx = np.asarray(focal_px, float)
    s_obs = fpx[t.obs_c] / w.reprojection_px                                               # (O,)
    robust = w.robust_px / w.reprojection_px
    s_acc = 1.0 / (w.acceleration_m * (30.0 / fps) ** 2)
    acc_coef = np.array([1.0, -2.0, 1.0])

    def evaluate(x: FloatArray, with_jacobian: bool):
        """Residual blocks (and their Jacobian entries), each in units of its standard deviation."""
        q = np.einsum("nij,nj->ni", rc[t.obs_c], x[t.obs_v]) + tc[t.obs_c]
        z = np.where(q[:, 2] > 1e-6, q[:, 2], 1e-6)
        r_obs = (q[:, :2] / z[:, None] - t.obs_xy) * s_obs[:, None]                        # (O, 2)
        pa, pb = _gather(x, t.bone_a, t.fixed_a), _gather(x, t.bone_b, t.fixed_b)
        d = pa - pb
        n = np.maximum(np.linalg.norm(d, axis=-1), 1e-9)
        r_bone = (n - t.bone_len) / w.bone_m                                                  # (K,)
        pt = _gather(x, t.acc_idx, t.acc_fixed)
        r_acc = (pt[:, 0] - 2 * pt[:, 1] + pt[:, 2]) * s_acc                                  # (T, 3)
        r_model = (x - start) / w.model_m                                                    # (V, 3)
        res = (r_obs, r_bone, r_acc, r_model)
        if not with_jacobian:
            return res
        dproj = np.zeros((q.shape[0], 2, 3))
        dproj[:, 0, 0] = dproj[:, 1, 1] = 1.0 / z
        dproj[:, 0, 2] = -q[:, 0] / z**2
        dproj[:, 1, 2] = -q[:, 1] / z**2
        j_obs = np.einsum("oab,obc->oac", dproj, rc[t.obs_c]) * s_obs[:, None, None]         # (O, 2, 3)
        j_bone = d / n[:, None] / w.bone_m                                                    # (K, 3) for a; -for b
        return res, j_obs, j_bone

    robust_acc = w.robust_acceleration

    def cauchy(e: FloatArray, scale: float) -> FloatArray:
        return scale**2 * np.log1p(e / scale**2)

    def cost(res) -> float:
        r_obs, r_bone, r_acc, r_model = res
        return float(cauchy((r_obs**2).sum(-1), robust).sum() + (r_bone**2).sum()
                     + cauchy((r_acc**2).sum(-1), robust_acc).sum() + (r_model**2).sum())

    def diagonal_blocks(vi: IntArray, vk: IntArray, coef: FloatArray) -> tuple[IntArray, IntArray, FloatArray]:
        """Entries ``(rows, cols, values)`` of ``coef * I3`` at variable blocks (vi, vk) where both are variables."""
        ok = (vi >= 0) & (vk >= 0)
        return ((3 * vi[ok, None] + np.arange(3)).ravel(), (3 * vk[ok, None] + np.arange(3)).ravel(),
                np.repeat(coef[ok], 3))

    def full_blocks(vi: IntArray, vk: IntArray, blocks: FloatArray) -> tuple[IntArray, IntArray, FloatArray]:
        """Entries of the ``(n, 3, 3)`` blocks at variable blocks (vi, vk) where both are variables."""
        ok = (vi >= 0) & (vk >= 0)
        rows = np.broadcast_to(3 * vi[ok, None, None] + np.arange(3)[None, :, None], blocks[ok].shape)
        cols = np.broadcast_to(3 * vk[ok, None, None] + np.arange(3)[None, None, :], blocks[ok].shape)
        return rows.ravel(), cols.ravel(), blocks[ok].ravel()

    every = np.arange(n_var)
    model_entries = diagonal_blocks(every, every, np.full(n_var, 1.0 / w.model_m**2))

    x = start.copy()
    lam = 1e-3
    res = evaluate(x, False)
    current = cost(res)
    for _ in range(iterations):
        (r_obs, r_bone, r_acc, r_model), j_obs, j_bone = evaluate(x, True)
        g = np.zeros((n_var, 3))
        entries = [model_entries]                  # (rows, cols, values) of the normal matrix
        # observations, Cauchy IRLS weight each
        wt = 1.0 / (1.0 + (r_obs**2).sum(-1) / robust**2)                                  # (O,)
        np.add.at(g, t.obs_v, wt[:, None] * np.einsum("oab,oa->ob", j_obs, r_obs))
        entries.append(full_blocks(t.obs_v, t.obs_v, wt[:, None, None] * np.einsum("oai,oaj->oij", j_obs, j_obs)))
        # bones: residual r = |a - b| - L; dr/da = u, dr/db = -u
        jb_outer = np.einsum("ki,kj->kij", j_bone, j_bone)                                   # (K, 3, 3)
        for va, sa in ((t.bone_a, 1.0), (t.bone_b, -1.0)):
            ok = va >= 0
            np.add.at(g, va[ok], sa * j_bone[ok] * r_bone[ok, None])
            for vb, sb in ((t.bone_a, 1.0), (t.bone_b, -1.0)):
                entries.append(full_blocks(va, vb, sa * sb * jb_outer))
        # acceleration, Cauchy IRLS weight per (joint, frame)
        wa = 1.0 / (1.0 + (r_acc**2).sum(-1) / robust_acc**2)                             # (T,)
        for i in range(3):
            ok = t.acc_idx[:, i] >= 0
            np.add.at(g, t.acc_idx[ok, i], acc_coef[i] * s_acc * wa[ok, None] * r_acc[ok])
            for k in range(3):
                entries.append(diagonal_blocks(t.acc_idx[:, i], t.acc_idx[:, k], wa * acc_coef[i] * acc_coef[k] * s_acc**2))
        g += r_model / w.model_m
        rows, cols, vals = (np.concatenate(part) for part in zip(*entries))
        h = sparse.coo_matrix((vals, (rows, cols)), shape=(3 * n_var, 3 * n_var)).tocsr()   # sums duplicates
        diag = h.diagonal()
        improved = False
        for _attempt in range(6):
            step = _solve(h + sparse.diags(lam * diag + 1e-9), -g.ravel()).reshape(n_var, 3)
            candidate = x + step
            new_res = evaluate(candidate, False)
            new_cost = cost(new_res)
            if np.isfinite(new_cost) and new_cost < current:
                x, current = candidate, new_cost
                lam = max(lam * 0.3, 1e-7)
                improved = True
                break
            lam *= 10.0
        if not improved or np.abs(step).max() < 1e-5:
            break
    out = p0.copy()
    out[vf, vj] = x
    return out


def refine_causal(points: FloatArray, fps: float, bones: IntArray, bone_lengths: FloatArray,
                  cam_rotation: FloatArray, cam_translation: FloatArray, focal_px: FloatArray,
                  observed: FloatArray, usable: BoolArray, weights: RefineWeights | None = None,
                  window: int = 4, iterations: int = 4) -> FloatArray:
    """Live counterpart of :func:`refine_trajectories`: each frame refined as it arrives.

    For frame ``f``, the last ``window`` frames and ``f`` are refined together with the two
    outputs before them held fixed (they carry the motion's velocity into the acceleration term);
    only frame ``f`` is output, so nothing waits for the future (no latency beyond the frame's own
    computation, a few milliseconds). A Python loop over frames is inherent to a causal filter;
    each step is vectorised over joints and cameras.

    Args:
        points: ``(F, J, 3)`` the per-frame estimates (triangulated or filled), metres, NaN where none.
        bone_lengths: ``(B,)`` or causal ``(F, B)`` metres.
        window: frames before ``f`` re-estimated with it.
        Other arguments: as :func:`refine_trajectories`.
    Returns:
        ``(F, J, 3)`` refined joints (NaN where ``points`` is NaN).
    """
    pts = np.asarray(points, dtype=np.float64)
    lengths = np.broadcast_to(np.asarray(bone_lengths, dtype=np.float64), (pts.shape[0], len(bones)))
    out = np.full(pts.shape, np.nan)
    for f in range(pts.shape[0]):
        first = max(0, f - window)
        held = max(0, first - 2)
        block = np.concatenate([out[held:first], pts[first:f + 1]])
        earlier = out[first:f]                                   # this filter's own earlier outputs
        block[first - held:first - held + len(earlier)] = np.where(np.isfinite(earlier), earlier, pts[first:f])
        free = np.zeros(block.shape[:2], bool)
        free[first - held:] = np.isfinite(block[first - held:]).all(-1)
        solved = refine_trajectories(block, free, fps, bones, lengths[f], cam_rotation, cam_translation, focal_px,
                                     observed[:, held:f + 1], usable[:, held:f + 1], weights, iterations)
        out[f] = solved[-1]
    return out
