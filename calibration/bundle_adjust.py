"""Global sparse bundle adjustment of a camera rig on board observations.

Unknowns: each camera's intrinsics (fx, fy, cx, cy, distortion), world-to-camera pose and time
offset (in frames, relative to a reference camera), and the board's pose in every frame. The
residual of each detected corner is its reprojection error; the corner's world position is taken
at the camera's exposure time (frame + offset) from a finite-difference board velocity, which is
how a sub-frame lag between unsynchronised cameras is absorbed into the time offset rather than
into a wrong camera pose.

Solver: Levenberg-Marquardt with a Huber loss (iteratively reweighted, :mod:`posestudio.core.robust`),
analytic per-corner Jacobian blocks (:mod:`.projection_jacobian`) assembled into a sparse matrix,
and sparse normal equations solved with SuperLU. The gauge (world frame) is fixed by holding the
reference camera's pose. The time model (velocity stencils, offset uncertainties) is
:mod:`.time_offsets`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from posestudio.core.arrays import BoolArray, FloatArray, IntArray
from posestudio.core.robust import huber_cost, huber_weights

from .board import BoardSpec
from .detect import CameraDetections
from .projection_jacobian import N_INTRINSICS, corner_residuals
from .time_offsets import offset_standard_deviations, velocity_stencils


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

    def subset(self, keep: BoolArray) -> "Observations":
        """The rows where ``keep`` ``(N,)`` is true."""
        return Observations(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))

    @classmethod
    def from_detections(cls, dets: list[CameraDetections], board: BoardSpec, frames: list[int]) -> "Observations":
        """One row per corner detected in a frame of ``frames`` (the frames with a board pose).

        Args:
            dets: per camera, in rig order; board: the board (corner positions);
            frames: sorted frame indices; pose ``i`` is the board in ``frames[i]``.
        """
        pose_index = {f: i for i, f in enumerate(frames)}
        stencils = velocity_stencils(frames)
        corners = board.corner_points()
        cols: dict[str, list] = {k: [] for k in ("camera", "pose", "corner_id", "pixel", "frame")}
        for c, d in enumerate(dets):
            for o in d.observations:
                if o.frame not in pose_index:
                    continue
                n = len(o.ids)
                cols["camera"].append(np.full(n, c))
                cols["pose"].append(np.full(n, pose_index[o.frame]))
                cols["frame"].append(np.full(n, o.frame))
                cols["corner_id"].append(o.ids)
                cols["pixel"].append(o.pixels)
        cam = np.concatenate(cols["camera"]).astype(np.int64)
        pose = np.concatenate(cols["pose"]).astype(np.int64)
        cid = np.concatenate(cols["corner_id"]).astype(np.int64)
        return cls(cam, pose, stencils.prev[pose], stencils.next[pose], stencils.weights[pose], corners[cid],
                   np.concatenate(cols["pixel"]).astype(np.float64),
                   np.concatenate(cols["frame"]).astype(np.int64), cid)


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
    fisheye: BoolArray

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
        outlier_px: corners reprojecting worse than ``max(outlier_px, 4.5 * robust sigma)`` after a
            round are dropped and the problem is solved again, with the Huber threshold lowered to
            2.5 robust sigma (within [0.3, huber_px]).
        rounds: solves in all (outlier rejection between them).
    """

    refine_intrinsics: bool = True
    estimate_offsets: bool = True
    reference_camera: int = 0
    huber_px: float = 1.5
    offset_prior_frames: float = 1.0
    max_iterations: int = 60
    outlier_px: float = 1.0
    rounds: int = 3


@dataclass
class Outlier:
    """A corner dropped by an outlier round.

    Attributes:
        camera: camera index; frame: source frame; corner: corner id;
        error_px: its reprojection error, pixels; threshold_px: the round's threshold, pixels.
    """

    camera: int
    frame: int
    corner: int
    error_px: float
    threshold_px: float

    @property
    def reason(self) -> str:
        """Why it was dropped, for the report."""
        return f"reprojection error above {self.threshold_px:.2f} px (4.5 sigma)"


@dataclass
class AdjustmentResult:
    """Solved parameters and what the solve says about them.

    Attributes:
        params: the solution.
        observations: the corners kept.
        residuals: ``(N, 2)`` final residuals of the kept corners, pixels.
        rejected: the corners dropped as outliers.
        offset_std: ``(C,)`` standard deviation of each time offset, frames (NaN when fixed).
        iterations: LM iterations in all rounds; converged: whether the last round converged.
        huber_px: the Huber threshold of the last round, pixels.
    """

    params: RigParameters
    observations: Observations
    residuals: FloatArray
    rejected: list[Outlier] = field(default_factory=list)
    offset_std: FloatArray = field(default_factory=lambda: np.zeros(0))
    iterations: int = 0
    converged: bool = False
    huber_px: float = 0.0


def _free_mask(params: RigParameters, opts: AdjustmentOptions) -> BoolArray:
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
    """Residuals and sparse Jacobians of the corner reprojections.

    The Jacobian's sparsity pattern depends only on which corner sees which camera and pose, so
    it is built once (in the column order of the free parameters) and each evaluation only fills
    in the values.
    """

    def __init__(self, obs: Observations, params: RigParameters, free: BoolArray,
                 with_neighbours: bool) -> None:
        self.obs = obs
        self.n_cams = len(params.intrinsics)
        self.n_poses = len(params.poses)
        c = self.n_cams
        self.off_intr, self.off_ext = 0, c * N_INTRINSICS
        self.off_pose = self.off_ext + 6 * c
        self.off_delta = self.off_pose + 6 * self.n_poses
        self.n_params = self.off_delta + c
        self.free_order = _ordered_free(free, self)
        self._build_pattern(with_neighbours)
        n = len(obs)
        #: (poses, N) indicator: sums per-corner quantities into their board pose
        self.pose_sum = sp.csr_matrix((np.ones(n), (obs.pose, np.arange(n))), shape=(self.n_poses, n))

    def _evaluate(self, p: RigParameters, with_jacobian: bool, pose_only: bool = False):
        o = self.obs
        return corner_residuals(p.intrinsics, p.extrinsics, p.poses, p.offsets, o.camera, o.pose, o.pose_prev,
                                o.pose_next, o.corner, o.pixel, o.stencil, p.fisheye, with_jacobian, pose_only)

    def residuals(self, p: RigParameters) -> FloatArray:
        """``(N, 2)`` reprojection residuals, pixels."""
        return self._evaluate(p, False)[0]

    def _build_pattern(self, with_neighbours: bool) -> None:
        o = self.obs
        n = len(o)
        ar = lambda k: np.arange(k)[None, :]  # noqa: E731
        cols_full = [
            self.off_intr + o.camera[:, None] * N_INTRINSICS + ar(N_INTRINSICS),
            self.off_ext + o.camera[:, None] * 6 + ar(6),
            self.off_pose + o.pose[:, None] * 6 + ar(6),
            self.off_pose + o.pose_prev[:, None] * 6 + ar(6),
            self.off_pose + o.pose_next[:, None] * 6 + ar(6),
            self.off_delta + o.camera[:, None] + ar(1),
        ]
        position = np.full(self.n_params, -1, np.int64)
        position[self.free_order] = np.arange(len(self.free_order))
        use = [np.ones(n, bool)] * 6
        if with_neighbours:  # a neighbour that is the frame itself carries a zero coefficient
            use[3], use[4] = o.pose_prev != o.pose, o.pose_next != o.pose
        else:
            use[3] = use[4] = np.zeros(n, bool)
        base_rows = np.arange(2 * n).reshape(n, 2)
        rows, cols, take = [], [], []
        start = 0
        for cf, u in zip(cols_full, use):
            k = cf.shape[1]
            pos = np.broadcast_to(position[cf][:, None, :], (n, 2, k))
            keep = (pos >= 0) & u[:, None, None]
            rows.append(np.broadcast_to(base_rows[:, :, None], (n, 2, k))[keep])
            cols.append(pos[keep])
            take.append(start + np.flatnonzero(keep.ravel()))
            start += n * 2 * k
        rows_a, cols_a, take_a = np.concatenate(rows), np.concatenate(cols), np.concatenate(take)
        order = np.lexsort((cols_a, rows_a))
        self._take = take_a[order]
        self._indices = cols_a[order].astype(np.int32)
        self._indptr = np.concatenate([[0], np.cumsum(np.bincount(rows_a, minlength=2 * n))]).astype(np.int32)
        self._shape = (2 * n, len(self.free_order))

    def jacobian(self, p: RigParameters) -> sp.csr_matrix:
        """Sparse ``(2N, free parameters)`` Jacobian, columns in :attr:`free_order`."""
        _, jac = self._evaluate(p, True)
        vals = np.concatenate([b.ravel() for b in (jac.intrinsics, jac.extrinsics, jac.pose, jac.pose_prev,
                                                    jac.pose_next, jac.offset)])
        return sp.csr_matrix((vals[self._take], self._indices, self._indptr), shape=self._shape)


def _ordered_free(free: BoolArray, ev: "_Evaluator") -> IntArray:
    """Free parameter columns with the board poses first and camera-level unknowns last.

    In that order the normal matrix factorises with fill-in only in the small camera block, so a
    sparse LU with the natural ordering is an order of magnitude faster than a general ordering.
    """
    idx = np.flatnonzero(free)
    is_pose = (idx >= ev.off_pose) & (idx < ev.off_delta)
    return np.concatenate([idx[is_pose], idx[~is_pose]])


def _factorise_spd(a: sp.spmatrix) -> spla.SuperLU:
    """LU of a symmetric positive definite sparse matrix ordered as by :func:`_ordered_free`."""
    return spla.splu(a.tocsc(), permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})


def _solve_spd(a: sp.spmatrix, b: FloatArray) -> FloatArray:
    """Solve a system as factorised by :func:`_factorise_spd`."""
    return _factorise_spd(a).solve(b)


def _refine_poses(ev: "_Evaluator", p: RigParameters, huber: float) -> RigParameters:
    """One Gauss-Newton step on every board pose alone, cameras held ("embedded" pose iterations).

    Board poses are local unknowns: re-solving them after each joint step keeps the joint solve
    from crawling along the curved valley that couples camera and board poses. Vectorised: one
    6 x 6 system per pose.
    """
    r, jac = ev._evaluate(p, True, pose_only=True)
    w = huber_weights(np.linalg.norm(r, axis=1), huber)
    j = jac.pose  # (N, 2, 6), the corner's own frame
    h_obs = np.einsum("nki,nkj,n->nij", j, j, w)
    g_obs = np.einsum("nki,nk,n->ni", j, r, w)
    n_poses = len(p.poses)
    h = (ev.pose_sum @ h_obs.reshape(-1, 36)).reshape(n_poses, 6, 6)
    g = ev.pose_sum @ g_obs
    h += 1e-9 * np.eye(6) * np.maximum(np.trace(h, axis1=1, axis2=2), 1.0)[:, None, None]
    step = -np.linalg.solve(h, g[..., None])[..., 0]
    return RigParameters(p.intrinsics, p.extrinsics, p.poses + step, p.offsets, p.fisheye)


def _levenberg_marquardt(ev: _Evaluator, p: RigParameters, free: BoolArray, opts: AdjustmentOptions
                         ) -> tuple[RigParameters, int, bool, sp.csc_matrix, float]:
    """Minimise the Huber cost over the free parameters. Returns params, iterations, converged,
    the final free-parameter normal matrix and the robust residual variance."""
    x = p.vector()
    free_idx = ev.free_order
    c = ev.n_cams
    delta_cols = np.flatnonzero(free[ev.off_delta:ev.off_delta + c]) + ev.off_delta
    prior_w = 1.0 / max(opts.offset_prior_frames, 1e-9) ** 2
    position = {int(col): k for k, col in enumerate(free_idx)}
    delta_in_free = np.array([position[int(col)] for col in delta_cols], dtype=np.int64)

    def cost_of(params: RigParameters) -> tuple[float, FloatArray]:
        r = ev.residuals(params)
        e = np.linalg.norm(r, axis=1)
        prior = 0.5 * prior_w * float(np.sum(params.offsets ** 2))
        return huber_cost(e, opts.huber_px) + prior, r

    cost, r = cost_of(p)
    lam = 1e-3
    converged = False
    it = 0
    h = None
    for it in range(1, opts.max_iterations + 1):
        e = np.linalg.norm(r, axis=1)
        w = np.repeat(huber_weights(e, opts.huber_px), 2)
        jac = ev.jacobian(p)
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
            p_new = _refine_poses(ev, p_new, opts.huber_px)
            x_new = p_new.vector()
            new_cost, r_new = cost_of(p_new)
            if np.isfinite(new_cost) and new_cost < cost:
                rel = (cost - new_cost) / max(cost, 1e-12)
                x, p, r, cost = x_new, p_new, r_new, new_cost
                lam = max(lam / 5, 1e-12)
                improved = True
                if rel < 1e-6 or np.max(np.abs(step)) < 1e-10:
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
    sigma2 = float(np.sum(huber_weights(e, opts.huber_px) * e**2) / dof)
    return p, it, converged, h, sigma2


def adjust(obs: Observations, params: RigParameters, opts: AdjustmentOptions) -> AdjustmentResult:
    """Solve the bundle adjustment, with outlier rounds; see the module docstring."""
    rejected: list[Outlier] = []
    iterations = 0
    converged = False
    huber = opts.huber_px
    h = None
    neighbours = opts.estimate_offsets or bool(np.any(params.offsets != 0))
    for rnd in range(max(opts.rounds, 1)):
        free = _free_mask(params, opts)
        ev = _Evaluator(obs, params, free, neighbours)
        params, its, converged, h, sigma2 = _levenberg_marquardt(ev, params, free, replace(opts, huber_px=huber))
        iterations += its
        if rnd == opts.rounds - 1:
            break
        err = np.linalg.norm(ev.residuals(params), axis=1)
        # The error norm of 2D Gaussian noise is Rayleigh distributed: median = 1.1774 sigma.
        sigma = float(np.median(err)) / 1.1774
        thresh = max(opts.outlier_px, 4.5 * sigma)
        huber = float(np.clip(2.5 * sigma, 0.3, opts.huber_px))
        bad = err > thresh
        rejected.extend(Outlier(int(obs.camera[i]), int(obs.frame[i]), int(obs.corner_id[i]),
                                round(float(err[i]), 2), thresh) for i in np.flatnonzero(bad))
        if bad.any():
            obs = obs.subset(~bad)
    free = _free_mask(params, opts)
    ev = _Evaluator(obs, params, free, neighbours)
    r = ev.residuals(params)
    offset_std = np.full(len(params.offsets), np.nan)
    if opts.estimate_offsets and h is not None:
        position = {int(col): k for k, col in enumerate(ev.free_order)}
        columns = [position.get(ev.off_delta + cam) for cam in range(len(params.offsets))]
        offset_std = offset_standard_deviations(_factorise_spd(h).solve, columns, len(ev.free_order), sigma2)
    return AdjustmentResult(params, obs, r, rejected, offset_std, iterations, converged, huber)
