"""Global sparse bundle adjustment of a camera rig on board observations.

Unknowns: each camera's intrinsics (fx, fy, cx, cy, distortion), world-to-camera pose and time
offset (in frames, relative to a reference camera), and the board's pose in every frame. The
residual of each detected corner is its reprojection error; the corner's world position is taken
at the camera's exposure time (frame + offset) from a finite-difference board velocity, which is
how a sub-frame lag between unsynchronised cameras is absorbed into the time offset rather than
into a wrong camera pose.

Solver: Levenberg-Marquardt with a Huber loss (iteratively reweighted), analytic per-corner
Jacobian blocks (:mod:`.projection_jacobian`) assembled into a sparse matrix, and sparse normal equations solved
with SuperLU. The gauge (world frame) is fixed by holding the reference camera's pose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.typing import NDArray

from .projection_jacobian import N_INTRINSICS, corner_residuals

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
_TRACE = False


@dataclass
class Observations:
    """Flat arrays, one row per detected corner (N rows).

    Attributes:
        camera: ``(N,)`` camera index.
        pose: ``(N,)`` index of the board pose of the corner's frame.
        pose_prev, pose_next: ``(N,)`` neighbour pose indices used for the velocity stencil.
        stencil: ``(N, 3)`` velocity weights for (prev, this, next) poses, per frame.
        corner: ``(N, 3)`` board-frame corner position, metres.
        pixel: ``(N, 2)`` detected position, pixels.
        frame: ``(N,)`` source frame index; corner_id: ``(N,)`` corner id (for reports).
    """

    camera: IntArray
    pose: IntArray
    pose_prev: IntArray
    pose_next: IntArray
    stencil: FloatArray
    corner: FloatArray
    pixel: FloatArray
    frame: IntArray
    corner_id: IntArray

    def __len__(self) -> int:
        return len(self.camera)

    def subset(self, keep: NDArray[np.bool_]) -> "Observations":
        return Observations(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))


@dataclass
class RigParameters:
    """The unknowns.

    Attributes:
        intrinsics: ``(C, 9)`` fx, fy, cx, cy, d0..d4.
        extrinsics: ``(C, 6)`` world-to-camera rvec (rad), t (m).
        poses: ``(F, 6)`` board-to-world rvec, t per board pose.
        offsets: ``(C,)`` time offset of each camera, frames.
        fisheye: ``(C,)`` bool.
    """

    intrinsics: FloatArray
    extrinsics: FloatArray
    poses: FloatArray
    offsets: FloatArray
    fisheye: NDArray[np.bool_]

    def vector(self) -> FloatArray:
        return np.concatenate([self.intrinsics.ravel(), self.extrinsics.ravel(), self.poses.ravel(), self.offsets])

    def with_vector(self, x: FloatArray) -> "RigParameters":
        c, f = len(self.intrinsics), len(self.poses)
        a = c * N_INTRINSICS
        b = a + 6 * c
        d = b + 6 * f
        return RigParameters(x[:a].reshape(c, N_INTRINSICS).copy(), x[a:b].reshape(c, 6).copy(),
                             x[b:d].reshape(f, 6).copy(), x[d:].copy(), self.fisheye)


@dataclass
class AdjustmentOptions:
    """What the adjustment may change and how it weighs residuals.

    Attributes:
        refine_intrinsics: solve K and distortion jointly (else hold them).
        estimate_offsets: solve per-camera time offsets (else all zero).
        reference_camera: camera whose pose (gauge) and offset stay fixed.
        huber_px: Huber loss threshold, pixels.
        offset_prior_frames: standard deviation of a weak zero-mean prior on offsets, frames
            (keeps them defined when the board barely moves).
        max_iterations: LM iterations per round.
        outlier_px: corners reprojecting worse than ``max(outlier_px, 5 * robust sigma)`` after a
            round are dropped and the problem is solved again.
    """

    refine_intrinsics: bool = True
    estimate_offsets: bool = True
    reference_camera: int = 0
    huber_px: float = 1.5
    offset_prior_frames: float = 1.0
    max_iterations: int = 60
    outlier_px: float = 4.0
    rounds: int = 2


@dataclass
class AdjustmentResult:
    """Solved parameters and what the solve says about them.

    Attributes:
        params: the solution.
        observations: the corners kept.
        residuals: ``(N, 2)`` final residuals of the kept corners, pixels.
        rejected: the corners dropped as outliers and their error (pixels).
        offset_std: ``(C,)`` standard deviation of each time offset, frames (NaN when fixed).
        iterations: LM iterations in all rounds; converged: whether the last round converged.
    """

    params: RigParameters
    observations: Observations
    residuals: FloatArray
    rejected: list[dict] = field(default_factory=list)
    offset_std: FloatArray = field(default_factory=lambda: np.zeros(0))
    iterations: int = 0
    converged: bool = False


def _free_mask(params: RigParameters, opts: AdjustmentOptions) -> NDArray[np.bool_]:
    c = len(params.intrinsics)
    intr = np.full((c, N_INTRINSICS), opts.refine_intrinsics)
    intr[params.fisheye, 8] = False  # fisheye has 4 coefficients
    ext = np.ones((c, 6), bool)
    ext[opts.reference_camera] = False
    poses = np.ones(params.poses.shape, bool)
    offs = np.full(c, opts.estimate_offsets)
    offs[opts.reference_camera] = False
    return np.concatenate([intr.ravel(), ext.ravel(), poses.ravel(), offs])


class _Evaluator:
    """Residuals and sparse Jacobians of the corner reprojections."""

    def __init__(self, obs: Observations, params: RigParameters) -> None:
        self.obs = obs
        self.n_cams = len(params.intrinsics)
        self.n_poses = len(params.poses)
        c = self.n_cams
        self.off_intr, self.off_ext = 0, c * N_INTRINSICS
        self.off_pose = self.off_ext + 6 * c
        self.off_delta = self.off_pose + 6 * self.n_poses
        self.n_params = self.off_delta + c
        self._cols = self._column_indices()

    def _evaluate(self, p: RigParameters, with_jacobian: bool):
        o = self.obs
        return corner_residuals(p.intrinsics, p.extrinsics, p.poses, p.offsets, o.camera, o.pose, o.pose_prev,
                                o.pose_next, o.corner, o.pixel, o.stencil, p.fisheye, with_jacobian)

    def residuals(self, p: RigParameters) -> FloatArray:
        """``(N, 2)`` reprojection residuals, pixels."""
        return self._evaluate(p, False)[0]

    def _column_indices(self) -> list[IntArray]:
        o = self.obs
        ar = lambda k: np.arange(k)[None, :]  # noqa: E731
        return [
            self.off_intr + o.camera[:, None] * N_INTRINSICS + ar(N_INTRINSICS),
            self.off_ext + o.camera[:, None] * 6 + ar(6),
            self.off_pose + o.pose[:, None] * 6 + ar(6),
            self.off_pose + o.pose_prev[:, None] * 6 + ar(6),
            self.off_pose + o.pose_next[:, None] * 6 + ar(6),
            self.off_delta + o.camera[:, None] + ar(1),
        ]

    def jacobian(self, p: RigParameters) -> sp.csr_matrix:
        """Sparse ``(2N, n_params)`` Jacobian of the residuals."""
        _, jac = self._evaluate(p, True)
        blocks = (jac.intrinsics, jac.extrinsics, jac.pose, jac.pose_prev, jac.pose_next, jac.offset)
        n = len(self.obs)
        base_rows = np.arange(2 * n).reshape(n, 2)
        rows_all, cols_all, vals_all = [], [], []
        for b, cols in zip(blocks, self._cols):
            k = b.shape[2]
            rows_all.append(np.broadcast_to(base_rows[:, :, None], (n, 2, k)).ravel())
            cols_all.append(np.broadcast_to(cols[:, None, :], (n, 2, k)).ravel())
            vals_all.append(b.ravel())
        rows, cols, vals = np.concatenate(rows_all), np.concatenate(cols_all), np.concatenate(vals_all)
        nz = vals != 0.0
        return sp.coo_matrix((vals[nz], (rows[nz], cols[nz])), shape=(2 * n, self.n_params)).tocsr()


def _huber_weights(err: FloatArray, delta: float) -> FloatArray:
    return np.where(err <= delta, 1.0, delta / np.maximum(err, 1e-12))


def _huber_cost(err: FloatArray, delta: float) -> float:
    return float(np.sum(np.where(err <= delta, 0.5 * err**2, delta * (err - 0.5 * delta))))


def _ordered_free(free: NDArray[np.bool_], ev: "_Evaluator") -> IntArray:
    """Free parameter columns with the board poses first and camera-level unknowns last.

    In that order the normal matrix factorises with fill-in only in the small camera block, so a
    sparse LU with the natural ordering is an order of magnitude faster than a general ordering.
    """
    idx = np.flatnonzero(free)
    is_pose = (idx >= ev.off_pose) & (idx < ev.off_delta)
    return np.concatenate([idx[is_pose], idx[~is_pose]])


def _solve_spd(a: sp.spmatrix, b: FloatArray) -> FloatArray:
    """Solve a symmetric positive definite sparse system ordered as by :func:`_ordered_free`."""
    lu = spla.splu(a.tocsc(), permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    return lu.solve(b)


def _levenberg_marquardt(ev: _Evaluator, p: RigParameters, free: NDArray[np.bool_], opts: AdjustmentOptions
                         ) -> tuple[RigParameters, int, bool, sp.csc_matrix, float]:
    """Minimise the Huber cost over the free parameters. Returns params, iterations, converged,
    the final free-parameter normal matrix and the robust residual variance."""
    x = p.vector()
    free_idx = _ordered_free(free, ev)
    c = ev.n_cams
    delta_cols = np.flatnonzero(free[ev.off_delta:ev.off_delta + c]) + ev.off_delta
    prior_w = 1.0 / max(opts.offset_prior_frames, 1e-9) ** 2
    position = {int(col): k for k, col in enumerate(free_idx)}
    delta_in_free = np.array([position[int(col)] for col in delta_cols], dtype=np.int64)

    def cost_of(params: RigParameters) -> tuple[float, FloatArray]:
        r = ev.residuals(params)
        e = np.linalg.norm(r, axis=1)
        prior = 0.5 * prior_w * float(np.sum(params.offsets ** 2))
        return _huber_cost(e, opts.huber_px) + prior, r

    cost, r = cost_of(p)
    lam = 1e-3
    converged = False
    it = 0
    h = None
    for it in range(1, opts.max_iterations + 1):
        e = np.linalg.norm(r, axis=1)
        w = np.repeat(_huber_weights(e, opts.huber_px), 2)
        jac = ev.jacobian(p)[:, free_idx]
        jw = jac.multiply(w[:, None]).tocsr()
        h = (jac.T @ jw).tocsc()
        g = jw.T @ r.ravel()
        if len(delta_in_free):
            h = h + sp.csc_matrix((np.full(len(delta_in_free), prior_w), (delta_in_free, delta_in_free)), shape=h.shape)
            g[delta_in_free] += prior_w * x[delta_cols]
        diag = np.maximum(h.diagonal(), 1e-9)
        improved = False
        for _ in range(12):
            try:
                step = -_solve_spd(h + sp.diags(lam * diag), g)
            except RuntimeError:
                lam *= 10
                continue
            x_new = x.copy()
            x_new[free_idx] += step
            p_new = p.with_vector(x_new)
            new_cost, r_new = cost_of(p_new)
            if _TRACE:
                print(f"  it {it} lam {lam:.1e} cost {cost:.6g} -> {new_cost:.6g}")
            if np.isfinite(new_cost) and new_cost < cost:
                rel = (cost - new_cost) / max(cost, 1e-12)
                x, p, r, cost = x_new, p_new, r_new, new_cost
                lam = max(lam / 5, 1e-12)
                improved = True
                if rel < 1e-7 or np.max(np.abs(step)) < 1e-10:
                    converged = True
                break
            lam *= 8
        if not improved:
            converged = True  # no downhill step at any damping: a (local) minimum
            break
        if converged:
            break
    e = np.linalg.norm(r, axis=1)
    dof = max(2 * len(e) - len(free_idx), 1)
    sigma2 = float(np.sum(_huber_weights(e, opts.huber_px) * e**2) / dof)
    return p, it, converged, h, sigma2


def adjust(obs: Observations, params: RigParameters, opts: AdjustmentOptions) -> AdjustmentResult:
    """Solve the bundle adjustment, with outlier rounds; see the module docstring."""
    rejected: list[dict] = []
    iterations = 0
    converged = False
    for rnd in range(max(opts.rounds, 1)):
        ev = _Evaluator(obs, params)
        free = _free_mask(params, opts)
        params, its, converged, h, sigma2 = _levenberg_marquardt(ev, params, free, opts)
        iterations += its
        r = ev.residuals(params)
        err = np.linalg.norm(r, axis=1)
        if rnd == opts.rounds - 1:
            break
        robust_sigma = 1.4826 * np.median(err)
        thresh = max(opts.outlier_px, 5.0 * robust_sigma)
        bad = err > thresh
        if not bad.any():
            break
        for i in np.flatnonzero(bad):
            rejected.append({"camera": int(obs.camera[i]), "frame": int(obs.frame[i]),
                             "corner": int(obs.corner_id[i]), "error_px": round(float(err[i]), 2),
                             "reason": f"reprojection error above {thresh:.1f} px"})
        obs = obs.subset(~bad)
    ev = _Evaluator(obs, params)
    r = ev.residuals(params)
    offset_std = np.full(len(params.offsets), np.nan)
    if opts.estimate_offsets and h is not None:
        free = _free_mask(params, opts)
        free_idx = _ordered_free(free, ev)
        lu = spla.splu(h.tocsc(), permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        for cam in range(len(params.offsets)):
            col = ev.off_delta + cam
            if free[col]:
                k = int(np.flatnonzero(free_idx == col)[0])
                e = np.zeros(len(free_idx))
                e[k] = 1.0
                offset_std[cam] = float(np.sqrt(max(lu.solve(e)[k], 0.0) * sigma2))
    return AdjustmentResult(params, obs, r, rejected, offset_std, iterations, converged)
