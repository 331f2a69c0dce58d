"""Global sparse bundle adjustment of a camera rig on board observations.

Unknowns: each camera's intrinsics (fx, fy, cx, cy, distortion), world-to-camera pose and time
offset (in frames, relative to a reference camera), and the board's pose in every frame. The
residual of each detected corner is its reprojection error; the corner's world position is taken
at the camera's exposure time (frame + offset) from a finite-difference board velocity, which is
how a sub-frame lag between unsynchronised cameras is absorbed into the time offset rather than
into a wrong camera pose.

Solver: Levenberg-Marquardt with a Huber loss (iteratively reweighted, :mod:`posestudio.core.robust`),
analytic per-corner Jacobian blocks (:mod:`.projection_jacobian`) summed straight into the blocks
of the normal equations, the board poses eliminated by a Schur complement and the reduced camera
system solved densely (:mod:`.normal_equations`); after each joint step every board pose takes one
more Gauss-Newton step alone. Between outlier rounds each board view is weighed by its corners'
noise, as its residuals show it (:mod:`.view_noise`). The gauge (world frame) is fixed by holding
the reference camera's pose. The time model (motion stencils, offset uncertainties) is :mod:`.time_offsets`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from posestudio.core.arrays import BoolArray, FloatArray, IntArray
from posestudio.core.robust import huber_cost, huber_weights

from .board import BoardSpec
from .detect import CameraDetections
from .normal_equations import (
    N_CAMERA,
    OFFSET_COLUMN,
    BlockStructure,
    NormalEquations,
    assemble,
    camera_standard_deviations,
    solve_step,
)
from .projection_jacobian import N_INTRINSICS, corner_residuals
from .time_offsets import motion_stencils
from .view_noise import robust_sigma, view_precisions


@dataclass
class Observations:
    """Flat arrays, one row per detected corner (N rows).

    Attributes:
        camera: ``(N,)`` camera index.
        pose: ``(N,)`` index of the board pose of the corner's frame.
        pose_prev, pose_next: ``(N,)`` neighbour pose indices used for the motion stencil.
        stencil: ``(N, 2, 3)`` velocity (1/frame) and acceleration (1/frame^2) weights of the
            (prev, this, next) poses (:class:`.time_offsets.MotionStencils`).
        corner: ``(N, 3)`` board-frame corner position, metres.
        pixel: ``(N, 2)`` detected position, pixels.
        frame: ``(N,)`` source frame index; corner_id: ``(N,)`` corner id (for reports).
        precision: ``(N,)`` relative weight of the corner, its view's noise variance over the
            typical corner's inverted (:func:`.view_noise.view_precisions`; 1 until estimated).
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
    precision: FloatArray

    def __len__(self) -> int:
        return len(self.camera)

    def subset(self, keep: BoolArray) -> "Observations":
        """The rows where ``keep`` ``(N,)`` is true."""
        return Observations(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))

    def with_time_model(self, model: str) -> "Observations":
        """The same corners with the stencils of another time model (:func:`.time_offsets.motion_stencils`)."""
        frames = np.zeros(int(self.pose.max()) + 1, np.int64)
        frames[self.pose] = self.frame
        st = motion_stencils(frames.tolist(), model=model)
        return replace(self, pose_prev=st.prev[self.pose], pose_next=st.next[self.pose], stencil=st.weights[self.pose])

    @classmethod
    def from_detections(cls, dets: list[CameraDetections], board: BoardSpec, frames: list[int]) -> "Observations":
        """One row per corner detected in a frame of ``frames`` (the frames with a board pose), with
        the quadratic time model's stencils (:meth:`with_time_model` gives the other's).

        Args:
            dets: per camera, in rig order; board: the board (corner positions);
            frames: sorted frame indices; pose ``i`` is the board in ``frames[i]``.
        """
        pose_index = {f: i for i, f in enumerate(frames)}
        stencils = motion_stencils(frames)
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
                   np.concatenate(cols["frame"]).astype(np.int64), cid, np.ones(len(cid)))


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
        tolerance: a round has converged when a step lowers the cost by less than this fraction.
        outlier_px: corners reprojecting worse than ``max(outlier_px, 4.5 * robust sigma)`` after a
            round are dropped and the problem is solved again, with the Huber threshold lowered to
            2.5 robust sigma (within [0.3, huber_px]).
        rounds: solves in all (outlier rejection between them).
        weigh_views: between rounds, also weigh each board view by its corners' noise as its
            residuals show it (:func:`.view_noise.view_precisions`; the Huber loss is then taken of
            residuals scaled to the typical corner's noise).
        standard_deviations: compute every camera unknown's standard deviation at the solution
            (:attr:`AdjustmentResult.camera_std`; one more reduction of the normal equations, so
            only for the solution that is kept; NaN otherwise).
    """

    refine_intrinsics: bool = True
    estimate_offsets: bool = True
    reference_camera: int = 0
    huber_px: float = 1.5
    offset_prior_frames: float = 1.0
    max_iterations: int = 60
    tolerance: float = 1e-6
    outlier_px: float = 1.0
    rounds: int = 3
    standard_deviations: bool = False
    weigh_views: bool = True


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
        camera_std: ``(C, K)`` standard deviation of each camera unknown (intrinsics, extrinsics,
            time offset; :func:`.normal_equations.camera_standard_deviations`), NaN where held or
            not asked for (:attr:`AdjustmentOptions.standard_deviations`).
        iterations: LM iterations in all rounds; converged: whether the last round converged.
        huber_px: the Huber threshold of the last round, pixels.
        time_model: the time model of the observations' stencils, when the caller chose one.
    """

    params: RigParameters
    observations: Observations
    residuals: FloatArray
    rejected: list[Outlier] = field(default_factory=list)
    camera_std: FloatArray = field(default_factory=lambda: np.zeros((0, N_CAMERA)))
    iterations: int = 0
    converged: bool = False
    huber_px: float = 0.0
    time_model: str | None = None

    @property
    def offset_std(self) -> FloatArray:
        """``(C,)`` standard deviation of each time offset, frames (NaN when held)."""
        return self.camera_std[:, OFFSET_COLUMN]


def _camera_free(params: RigParameters, opts: AdjustmentOptions) -> BoolArray:
    """``(C, K)`` which camera unknowns (:data:`.normal_equations.N_CAMERA` each) the solve may change."""
    c = len(params.intrinsics)
    free = np.zeros((c, N_CAMERA), bool)
    free[:, :N_INTRINSICS] = opts.refine_intrinsics
    free[params.fisheye, 8] = False  # fisheye has 4 coefficients
    free[:, N_INTRINSICS:OFFSET_COLUMN] = True
    free[:, OFFSET_COLUMN] = opts.estimate_offsets
    free[opts.reference_camera, N_INTRINSICS:] = False  # the gauge: its pose and clock
    return free


class _Evaluator:
    """Residuals, Jacobian blocks and normal equations of the corner reprojections.

    The block structure of the normal equations depends only on which corner sees which camera
    and pose, so it is built once; each evaluation fills in the values.
    """

    def __init__(self, obs: Observations, params: RigParameters, with_neighbours: bool) -> None:
        self.obs = obs
        self.neighbours = with_neighbours
        self.structure = BlockStructure.build(obs.camera, obs.pose, obs.pose_prev, obs.pose_next,
                                              len(params.intrinsics), len(params.poses), with_neighbours)
        n = len(obs)
        #: (N,) square root of each corner's precision, scaling its residual to the typical noise
        self.sqrt_precision = np.sqrt(obs.precision)
        #: (poses, N) indicator: sums per-corner quantities into their board pose
        self.pose_sum = sp.csr_matrix((np.ones(n), (obs.pose, np.arange(n))), shape=(len(params.poses), n))

    def _evaluate(self, p: RigParameters, with_jacobian: bool, pose_only: bool = False):
        o = self.obs
        return corner_residuals(p.intrinsics, p.extrinsics, p.poses, p.offsets, o.camera, o.pose, o.pose_prev,
                                o.pose_next, o.corner, o.pixel, o.stencil, p.fisheye, with_jacobian, pose_only,
                                self.neighbours)

    def residuals(self, p: RigParameters) -> FloatArray:
        """``(N, 2)`` reprojection residuals, pixels."""
        return self._evaluate(p, False)[0]

    def whitened_norms(self, r: FloatArray) -> FloatArray:
        """``(N,)`` residual norms of ``r`` ``(N, 2)`` scaled to the typical corner's noise, pixels."""
        return np.linalg.norm(r, axis=1) * self.sqrt_precision

    def weights(self, r: FloatArray, huber: float) -> FloatArray:
        """``(N,)`` IRLS weights of residuals ``r`` ``(N, 2)``: precision times the Huber weight."""
        return self.obs.precision * huber_weights(self.whitened_norms(r), huber)

    def normal_equations(self, p: RigParameters, weight: FloatArray) -> NormalEquations:
        """The blocks of ``J^T W J`` and ``J^T W r`` at ``p`` with per-corner weights ``(N,)``."""
        r, jac = self._evaluate(p, True)
        return assemble(self.structure, jac, r, weight)


def _refine_poses(ev: _Evaluator, p: RigParameters, huber: float) -> RigParameters:
    """One Gauss-Newton step on every board pose alone, cameras held ("embedded" pose iterations).

    Board poses are local unknowns: re-solving them after each joint step keeps the joint solve
    from crawling along the curved valley that couples camera and board poses. Vectorised: one
    6 x 6 system per pose.
    """
    r, jac = ev._evaluate(p, True, pose_only=True)
    w = ev.weights(r, huber)
    jt = jac.pose.transpose(0, 2, 1)  # (N, 6, 2), the corner's own frame
    h_obs = (jt * w[:, None, None]) @ jac.pose
    g_obs = (jt @ (r * w[:, None])[:, :, None])[:, :, 0]
    n_poses = len(p.poses)
    h = (ev.pose_sum @ h_obs.reshape(-1, 36)).reshape(n_poses, 6, 6)
    g = ev.pose_sum @ g_obs
    h += 1e-9 * np.eye(6) * np.maximum(np.trace(h, axis1=1, axis2=2), 1.0)[:, None, None]
    step = -np.linalg.solve(h, g[..., None])[..., 0]
    return RigParameters(p.intrinsics, p.extrinsics, p.poses + step, p.offsets, p.fisheye)


def _stepped(p: RigParameters, camera_step: FloatArray, pose_step: FloatArray) -> RigParameters:
    """``p`` moved by a camera step ``(C, K)`` and a pose step ``(F, 6)``."""
    return RigParameters(p.intrinsics + camera_step[:, :N_INTRINSICS],
                         p.extrinsics + camera_step[:, N_INTRINSICS:OFFSET_COLUMN], p.poses + pose_step,
                         p.offsets + camera_step[:, OFFSET_COLUMN], p.fisheye)


def _levenberg_marquardt(ev: _Evaluator, p: RigParameters, camera_free: BoolArray, opts: AdjustmentOptions
                         ) -> tuple[RigParameters, int, bool, NormalEquations | None, float]:
    """Minimise the Huber cost over the free parameters. Returns params, iterations, converged,
    the last normal equations (offset prior included) and the robust residual variance."""
    st = ev.structure
    offset_free = camera_free[:, OFFSET_COLUMN]
    prior_w = 1.0 / max(opts.offset_prior_frames, 1e-9) ** 2

    def cost_of(params: RigParameters) -> tuple[float, FloatArray]:
        r = ev.residuals(params)
        e = ev.whitened_norms(r)
        prior = 0.5 * prior_w * float(np.sum(params.offsets ** 2))
        return huber_cost(e, opts.huber_px) + prior, r

    cost, r = cost_of(p)
    lam = 1e-3
    converged = False
    it = 0
    ne = None
    for it in range(1, opts.max_iterations + 1):
        ne = ev.normal_equations(p, ev.weights(r, opts.huber_px))
        ne.h_cc[offset_free, OFFSET_COLUMN, OFFSET_COLUMN] += prior_w
        ne.g_c[offset_free, OFFSET_COLUMN] += prior_w * p.offsets[offset_free]
        improved = False
        for _ in range(12):
            try:
                dc, dp = solve_step(st, ne, lam, camera_free)
            except np.linalg.LinAlgError:
                lam *= 10
                continue
            p_new = _refine_poses(ev, _stepped(p, dc, dp), opts.huber_px)
            new_cost, r_new = cost_of(p_new)
            if np.isfinite(new_cost) and new_cost < cost:
                rel = (cost - new_cost) / max(cost, 1e-12)
                step_max = max(float(np.max(np.abs(dc))), float(np.max(np.abs(dp), initial=0.0)))
                p, r, cost = p_new, r_new, new_cost
                lam = max(lam / 5, 1e-12)
                improved = True
                if rel < opts.tolerance or step_max < 1e-10:
                    converged = True
                break
            lam *= 8
        if not improved:
            converged = True  # no downhill step at any damping: a (local) minimum
            break
        if converged:
            break
    e = ev.whitened_norms(r)
    dof = max(2 * len(e) - int(camera_free.sum()) - p.poses.size, 1)
    sigma2 = float(np.sum(huber_weights(e, opts.huber_px) * e**2) / dof)
    return p, it, converged, ne, sigma2


def adjust(obs: Observations, params: RigParameters, opts: AdjustmentOptions) -> AdjustmentResult:
    """Solve the bundle adjustment, with outlier rounds; see the module docstring."""
    rejected: list[Outlier] = []
    iterations = 0
    converged = False
    huber = opts.huber_px
    ne = None
    neighbours = opts.estimate_offsets or bool(np.any(params.offsets != 0))
    free = _camera_free(params, opts)
    for rnd in range(max(opts.rounds, 1)):
        ev = _Evaluator(obs, params, neighbours)
        params, its, converged, ne, sigma2 = _levenberg_marquardt(ev, params, free, replace(opts, huber_px=huber))
        iterations += its
        if rnd == opts.rounds - 1:
            break
        err = np.linalg.norm(ev.residuals(params), axis=1)
        sigma = robust_sigma(err)
        thresh = max(opts.outlier_px, 4.5 * sigma)
        huber = float(np.clip(2.5 * sigma, 0.3, opts.huber_px))
        bad = err > thresh
        rejected.extend(Outlier(int(obs.camera[i]), int(obs.frame[i]), int(obs.corner_id[i]),
                                round(float(err[i]), 2), thresh) for i in np.flatnonzero(bad))
        if bad.any():
            obs = obs.subset(~bad)
            err = err[~bad]
        if opts.weigh_views:
            obs = replace(obs, precision=view_precisions(obs.camera * len(params.poses) + obs.pose, err))
    ev = _Evaluator(obs, params, neighbours)
    r = ev.residuals(params)
    camera_std = np.full(free.shape, np.nan)
    if opts.standard_deviations and ne is not None:
        # the last round's normal equations, on the corners kept (rejection happens between rounds)
        camera_std = camera_standard_deviations(ev.structure, ne, free, sigma2)
    return AdjustmentResult(params, obs, r, rejected, camera_std, iterations, converged, huber)
