"""Refine a take's joints as smooth, skeleton-true trajectories that agree with every camera.

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
conjugate gradients. Offline, :func:`refine_in_windows` solves a take in overlapping windows of a
bounded number of frames, so memory stays that of one window and time grows linearly with the
take; live, :class:`CausalRefiner` refines each frame as it arrives with a few frames before it.
Projection and its Jacobian come from :mod:`posestudio.core.projection`, the Cauchy loss from
:mod:`posestudio.core.robust`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import LinearOperator, cg, spsolve

from posestudio.core.arrays import BoolArray, FloatArray, IntArray
from posestudio.core.projection import normalized_projection, to_camera, world_point_jacobian
from posestudio.core.robust import cauchy_cost, cauchy_weights

from .options import RefineWeights, RefineWindow

__all__ = [
    "CausalRefiner",
    "RefineWeights",
    "RefineWindow",
    "refine_causal",
    "refine_in_windows",
    "refine_trajectories",
]


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


def _normal_matrix(rows: IntArray, cols: IntArray, vals: FloatArray, size: int) -> FloatArray | sparse.csr_matrix:
    """The normal matrix from its ``(rows, cols, values)`` entries, duplicates summed: a dense array
    for small systems (a live window), else sparse."""
    if size <= _DENSE_MAX:
        return np.bincount(rows * size + cols, weights=vals, minlength=size * size).reshape(size, size)
    return sparse.coo_matrix((vals, (rows, cols)), shape=(size, size)).tocsr()


def _solve(a: FloatArray | sparse.csr_matrix, damping: FloatArray, b: FloatArray) -> FloatArray:
    """Solve the damped normal equations ``(a + diag(damping)) x = b`` (``a`` symmetric positive
    definite, 3x3 blocks).

    Small systems (a dense ``a``, a live window) are solved densely: LAPACK beats any sparse
    machinery there. Large ones by conjugate gradients with a 3x3 block-Jacobi preconditioner: the
    system is dominated by each joint's own block (its views, its smoothness, the tie to the
    start), so it converges in tens of iterations, about twice as fast as a sparse LU here; a
    sparse LU takes over if it does not.
    """
    if isinstance(a, np.ndarray):
        damped = a.copy()
        damped[np.diag_indices_from(damped)] += damping
        return np.linalg.solve(damped, b)
    a = a + sparse.diags(damping)
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
        q = to_camera(rc[t.obs_c], tc[t.obs_c], x[t.obs_v])                                  # (O, 3)
        xy, _ = normalized_projection(q)
        r_obs = (xy - t.obs_xy) * s_obs[:, None]                                               # (O, 2)
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
        j_obs = world_point_jacobian(rc[t.obs_c], q) * s_obs[:, None, None]                   # (O, 2, 3)
        j_bone = d / n[:, None] / w.bone_m                                                    # (K, 3) for a; -for b
        return res, j_obs, j_bone

    robust_acc = w.robust_acceleration

    def cost(res) -> float:
        r_obs, r_bone, r_acc, r_model = res
        return float(cauchy_cost((r_obs**2).sum(-1), robust).sum() + (r_bone**2).sum()
                     + cauchy_cost((r_acc**2).sum(-1), robust_acc).sum() + (r_model**2).sum())

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
        wt = cauchy_weights((r_obs**2).sum(-1), robust)                                    # (O,)
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
        wa = cauchy_weights((r_acc**2).sum(-1), robust_acc)                               # (T,)
        for i in range(3):
            ok = t.acc_idx[:, i] >= 0
            np.add.at(g, t.acc_idx[ok, i], acc_coef[i] * s_acc * wa[ok, None] * r_acc[ok])
            for k in range(3):
                entries.append(diagonal_blocks(t.acc_idx[:, i], t.acc_idx[:, k], wa * acc_coef[i] * acc_coef[k] * s_acc**2))
        g += r_model / w.model_m
        rows, cols, vals = (np.concatenate(part) for part in zip(*entries))
        h = _normal_matrix(rows, cols, vals, 3 * n_var)
        diag = h.diagonal()
        improved = False
        for _attempt in range(6):
            step = _solve(h, lam * diag + 1e-9, -g.ravel()).reshape(n_var, 3)
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


#: Frames of final output held fixed at the start of a window: with them the acceleration term
#: carries position and velocity across the seam.
HELD_FRAMES = 2


def refine_in_windows(points: FloatArray, free: BoolArray, fps: float, bones: IntArray, bone_lengths: FloatArray,
                      cam_rotation: FloatArray, cam_translation: FloatArray, focal_px: FloatArray,
                      observed: FloatArray, usable: BoolArray, weights: RefineWeights | None = None,
                      window: RefineWindow | None = None, iterations: int = 8) -> FloatArray:
    """:func:`refine_trajectories` over a take of any length, in overlapping windows.

    Each window solves at most ``window.frames`` frames: the two frames before it, already final,
    held fixed; the frames it keeps; and ``window.overlap_frames`` more after them, solved for
    their look-ahead and solved again by the next window. Memory is that of one window, time
    grows linearly with the take. A take no longer than one window is solved at once, exactly as
    :func:`refine_trajectories` does. A loop over windows; each window is vectorised.

    Args:
        window: :class:`~posestudio.reconstruction.options.RefineWindow` (its ``frames`` and
            ``overlap_frames``).
        Other arguments and the return value: as :func:`refine_trajectories`.
    """
    win = window or RefineWindow()
    if win.frames < win.overlap_frames + HELD_FRAMES + 1:
        raise ValueError(f"a refinement window of {win.frames} frames cannot overlap the next by "
                         f"{win.overlap_frames} frames (needs at least {win.overlap_frames + HELD_FRAMES + 1})")
    out = np.array(points, dtype=np.float64, copy=True)
    n_frames = out.shape[0]
    done = 0                                                     # frames [0, done) are final
    while done < n_frames:
        start = max(0, done - HELD_FRAMES)
        end = min(n_frames, start + win.frames)
        keep = n_frames if end == n_frames else end - win.overlap_frames
        block_free = free[start:end].copy()
        block_free[:done - start] = False
        solved = refine_trajectories(out[start:end], block_free, fps, bones, bone_lengths, cam_rotation,
                                     cam_translation, focal_px, observed[:, start:end], usable[:, start:end],
                                     weights, iterations)
        out[done:keep] = solved[done - start:keep - start]
        done = keep
    return out


class CausalRefiner:
    """Live counterpart of :func:`refine_trajectories`: each frame refined as it arrives.

    For each new frame, the ``window`` frames before it and the frame itself are refined together
    with the two outputs before those held fixed (they carry the motion's velocity into the
    acceleration term); only the new frame is output, so nothing waits for the future (no latency
    beyond the frame's own computation). The state is a fixed number of frames: the cost of a
    frame does not grow with the take.

    Args:
        fps: frame rate, Hz; bones: ``(B, 2)`` joint indices.
        cam_rotation: ``(C, 3, 3)``; cam_translation: ``(C, 3)`` metres; focal_px: ``(C,)`` pixels.
        weights: :class:`RefineWeights`; window: frames before the new one re-estimated with it;
        iterations: Levenberg-Marquardt iterations per frame.
    """

    def __init__(self, fps: float, bones: IntArray, cam_rotation: FloatArray, cam_translation: FloatArray,
                 focal_px: FloatArray, weights: RefineWeights | None = None, window: int = 4,
                 iterations: int = 4) -> None:
        self.fps, self.bones, self.weights = fps, bones, weights
        self.cameras = (cam_rotation, cam_translation, focal_px)
        self.window, self.iterations = window, iterations
        self._inputs: deque[FloatArray] = deque(maxlen=window)                  # (J, 3) estimates
        self._outputs: deque[FloatArray] = deque(maxlen=window + HELD_FRAMES)   # (J, 3) refined
        self._observed: deque[FloatArray] = deque(maxlen=window + HELD_FRAMES + 1)   # (C, J, 2)
        self._usable: deque[BoolArray] = deque(maxlen=window + HELD_FRAMES + 1)      # (C, J)

    def step(self, point: FloatArray, observed: FloatArray, usable: BoolArray, bone_lengths: FloatArray) -> FloatArray:
        """Refine the next frame.

        Args:
            point: ``(J, 3)`` its estimate (triangulated or filled), metres, NaN where none.
            observed: ``(C, J, 2)`` undistorted normalised image coordinates; usable: ``(C, J)``.
            bone_lengths: ``(B,)`` metres, the lengths known at this frame.
        Returns:
            ``(J, 3)`` the refined frame (NaN where ``point`` is NaN).
        """
        self._observed.append(np.asarray(observed, dtype=np.float64))
        self._usable.append(np.asarray(usable, dtype=bool))
        n_prev = len(self._inputs)
        n_held = len(self._outputs) - n_prev
        outputs = list(self._outputs)
        earlier = [np.where(np.isfinite(o), o, i) for o, i in zip(outputs[n_held:], self._inputs)]
        block = np.stack(outputs[:n_held] + earlier + [np.asarray(point, dtype=np.float64)])
        free = np.zeros(block.shape[:2], bool)
        free[n_held:] = np.isfinite(block[n_held:]).all(-1)
        span = n_held + n_prev + 1
        solved = refine_trajectories(block, free, self.fps, self.bones, bone_lengths, *self.cameras,
                                     np.stack(list(self._observed)[-span:], axis=1),
                                     np.stack(list(self._usable)[-span:], axis=1), self.weights, self.iterations)
        self._inputs.append(block[-1])
        self._outputs.append(solved[-1])
        return solved[-1]


def refine_causal(points: FloatArray, fps: float, bones: IntArray, bone_lengths: FloatArray,
                  cam_rotation: FloatArray, cam_translation: FloatArray, focal_px: FloatArray,
                  observed: FloatArray, usable: BoolArray, weights: RefineWeights | None = None,
                  window: int = 4, iterations: int = 4) -> FloatArray:
    """:class:`CausalRefiner` over a whole take, frame by frame (a causal filter's loop over frames).

    Args:
        points: ``(F, J, 3)`` the per-frame estimates (triangulated or filled), metres, NaN where none.
        bone_lengths: ``(B,)`` or causal ``(F, B)`` metres.
        window: frames before each frame re-estimated with it.
        Other arguments: as :func:`refine_trajectories`.
    Returns:
        ``(F, J, 3)`` refined joints (NaN where ``points`` is NaN); frame ``f`` depends on frames
        ``0..f`` only.
    """
    pts = np.asarray(points, dtype=np.float64)
    lengths = np.broadcast_to(np.asarray(bone_lengths, dtype=np.float64), (pts.shape[0], len(bones)))
    refiner = CausalRefiner(fps, bones, cam_rotation, cam_translation, focal_px, weights, window, iterations)
    out = np.empty_like(pts)
    for f in range(pts.shape[0]):
        out[f] = refiner.step(pts[f], observed[:, f], usable[:, f], lengths[f])
    return out
