"""Normal equations of the board bundle adjustment, assembled block by block, solved by a Schur complement.

The unknowns fall in two groups: per camera ``K = 16`` (intrinsics 9, extrinsics 6, time offset 1,
in that order) and per board pose 6 (Rodrigues rotation, translation). A corner's residual depends
on one camera and on its frame's board pose and, when time offsets are in play, through the
motion stencil of the time model (:mod:`.time_offsets`) also on the previous and next board
poses. The Gauss-Newton matrix ``H = J^T W J`` is kept in blocks:

- ``h_cc`` ``(C, K, K)``: each camera's own block (two cameras never share a residual);
- ``h_cp`` ``(P, K, 6)``: one block per (camera, pose) pair that shares a residual;
- ``h_pp`` ``(F, 6, 6)``: each board pose's own block, and with time offsets ``band``
  ``(D, F, 6, 6)``: the blocks ``H[f + d, f]`` (``d = 1..D``) coupling poses whose frames are
  neighbours in a stencil (poses are in frame order, so the pose part of ``H`` is block banded).

The board poses are eliminated: the reduced camera system ``S = h_cc - h_cp h_pp^-1 h_pc`` (dense,
``(C K) x (C K)``: 512 x 512 at 32 cameras) is factorised by Cholesky and the pose steps follow
by back-substitution. Without time offsets the pose part is block diagonal and ``S`` is summed
from one ``K x K`` product per pair of cameras that see a common pose (cost linear in frames
times cameras-per-view squared); with them the banded pose part is factorised once (banded
Cholesky) and ``S`` costs one dense product of ``(6 F) x (free camera unknowns)`` matrices.
Units are those of the residuals (pixels) and unknowns (see :mod:`.projection_jacobian`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from posestudio.core.arrays import BoolArray, FloatArray, IntArray

from .projection_jacobian import N_INTRINSICS, CornerJacobians

#: Unknowns per camera: intrinsics, extrinsics (6), time offset (1).
N_CAMERA = N_INTRINSICS + 7
#: Column of the time offset within a camera's unknowns.
OFFSET_COLUMN = N_CAMERA - 1
#: Contribution kinds: the corner's own pose, its stencil's previous and next pose.
OWN, PREV, NEXT = 0, 1, 2


def _indicator(rows: IntArray, n_rows: int) -> sp.csr_matrix:
    """``(n_rows, len(rows))`` 0/1 matrix that sums items into their row."""
    return sp.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(n_rows, len(rows)))


@dataclass
class PoseCoupling:
    """The blocks of ``H`` between two different board poses through one corner (time offsets).

    Attributes:
        kinds: the ``(later, earlier)`` contribution kinds of each coupling (own and previous, next
            and own, next and previous).
        to_band: per coupling, a ``(D * F, N)`` matrix summing each corner's block
            ``J_later^T W J_earlier`` into ``band[d - 1, earlier pose]`` (``d`` the pose index
            difference); corners without that coupling have an empty column.
        bandwidth: ``D``, the largest pose index difference.
    """

    kinds: list[tuple[int, int]]
    to_band: list[sp.csr_matrix]
    bandwidth: int


@dataclass
class BlockStructure:
    """Which blocks of ``H`` are non-zero; depends only on who sees what, so built once per solve.

    A *contribution* is one (corner, board pose) dependency: each corner on its own frame's pose,
    and with ``neighbours`` also on its stencil's previous and next poses (``M`` in all), sorted by
    (camera, pose) so that each pair's are contiguous.

    Attributes:
        n_cams, n_poses: ``C``, ``F``.
        obs_camera: ``(N,)`` camera of each corner.
        contrib_obs: ``(M,)`` the corner; contrib_kind: ``(M,)`` :data:`OWN`, :data:`PREV` or :data:`NEXT`.
        pair_cam, pair_pose: ``(P,)`` the (camera, pose) pairs; pair_start: ``(P,)`` first contribution
            of each pair; cam_start: ``(C + 1,)`` first pair of each camera.
        triple_a, triple_b: ``(T,)`` every ordered pair of pairs that share a pose.
        coupling: pose-pose blocks (None without neighbours: the pose part is block diagonal).
        cam_pair_sum: per camera, ``(its pairs, its contributions)`` summing indicator.
        obs_to_cam: ``(C, N)``, pair_to_pose: ``(F, P)``, pair_to_cam: ``(C, P)``,
            triple_to_block: ``(C * C, T)`` summing indicators.
    """

    n_cams: int
    n_poses: int
    obs_camera: IntArray
    contrib_obs: IntArray
    contrib_kind: IntArray
    pair_cam: IntArray
    pair_pose: IntArray
    pair_start: IntArray
    cam_start: IntArray
    triple_a: IntArray
    triple_b: IntArray
    coupling: PoseCoupling | None
    cam_pair_sum: list[sp.csr_matrix]
    obs_to_cam: sp.csr_matrix
    pair_to_pose: sp.csr_matrix
    pair_to_cam: sp.csr_matrix
    triple_to_block: sp.csr_matrix

    @classmethod
    def build(cls, camera: IntArray, pose: IntArray, pose_prev: IntArray, pose_next: IntArray, n_cams: int,
              n_poses: int, neighbours: bool) -> BlockStructure:
        """The structure of corners seen by ``camera`` ``(N,)`` in board pose ``pose`` ``(N,)``.

        Args:
            pose_prev, pose_next: ``(N,)`` the stencil's neighbour poses (the pose itself where none);
            neighbours: whether residuals depend on the neighbour poses (time offsets in play).
        """
        n = len(camera)
        by_kind = {OWN: pose, PREV: pose_prev, NEXT: pose_next}
        uses = {OWN: np.arange(n)}
        if neighbours:  # a neighbour that is the pose itself has weight zero
            uses[PREV], uses[NEXT] = np.flatnonzero(pose_prev != pose), np.flatnonzero(pose_next != pose)
        c_obs = np.concatenate(list(uses.values()))
        c_kind = np.concatenate([np.full(len(u), k, np.int64) for k, u in uses.items()])
        c_pose = np.concatenate([by_kind[k][u] for k, u in uses.items()])
        key = camera[c_obs] * n_poses + c_pose
        order = np.argsort(key, kind="stable")
        c_obs, c_kind, key = c_obs[order], c_kind[order], key[order]
        pair_key, pair_start = np.unique(key, return_index=True)
        pair_cam, pair_pose = pair_key // n_poses, pair_key % n_poses
        cam_start = np.searchsorted(pair_cam, np.arange(n_cams + 1))
        coupling = _coupling(pose, pose_prev, pose_next, n_poses) if neighbours else None
        triple_a = triple_b = np.zeros(0, np.int64)
        if coupling is None:
            # every ordered (a, b) of pairs seeing the same pose: one product block of S each
            by_pose = np.argsort(pair_pose, kind="stable")
            counts = np.bincount(pair_pose, minlength=n_poses)
            first = np.cumsum(counts) - counts
            size = counts[pair_pose[by_pose]]
            a_pos = np.repeat(np.arange(len(by_pose)), size)
            within = np.arange(len(a_pos)) - np.repeat(np.cumsum(size) - size, size)
            b_pos = first[pair_pose[by_pose][a_pos]] + within
            triple_a, triple_b = by_pose[a_pos], by_pose[b_pos]
        pair_of = np.repeat(np.arange(len(pair_key)), np.diff(np.append(pair_start, len(key))))
        bounds = np.append(pair_start, len(key))
        cam_pair_sum = [_indicator(pair_of[bounds[a]:bounds[b]] - a, b - a)
                        for a, b in itertools.pairwise(cam_start)]
        return cls(n_cams, n_poses, np.asarray(camera), c_obs, c_kind, pair_cam, pair_pose, pair_start, cam_start,
                   triple_a, triple_b, coupling, cam_pair_sum, _indicator(camera, n_cams),
                   _indicator(pair_pose, n_poses), _indicator(pair_cam, n_cams),
                   _indicator(pair_cam[triple_a] * n_cams + pair_cam[triple_b], n_cams * n_cams))


def _coupling(pose: IntArray, pose_prev: IntArray, pose_next: IntArray, n_poses: int) -> PoseCoupling:
    """The pose-pose coupling of corners that depend on two or three poses."""
    poses = {OWN: pose, PREV: pose_prev, NEXT: pose_next}
    has = {OWN: np.ones(len(pose), bool), PREV: pose_prev != pose, NEXT: pose_next != pose}
    kinds = [(OWN, PREV), (NEXT, OWN), (NEXT, PREV)]
    uses, diffs = [], []
    for later, earlier in kinds:
        use = np.flatnonzero(has[later] & has[earlier] & (poses[later] != poses[earlier]))
        d = poses[later][use] - poses[earlier][use]
        if np.any(d <= 0):
            raise ValueError("motion stencil neighbours out of frame order")
        uses.append(use)
        diffs.append(d)
    bandwidth = max((int(d.max()) for d in diffs if len(d)), default=1)
    to_band = [sp.csr_matrix((np.ones(len(use)), ((d - 1) * n_poses + poses[earlier][use], use)),
                             shape=(bandwidth * n_poses, len(pose)))
               for (_, earlier), use, d in zip(kinds, uses, diffs)]
    return PoseCoupling(kinds, to_band, bandwidth)


@dataclass
class NormalEquations:
    """``H`` (in blocks, see the module docstring) and the gradient ``g = J^T W r``.

    Attributes:
        h_cc: ``(C, K, K)``; h_pp: ``(F, 6, 6)``; h_cp: ``(P, K, 6)`` per pair of :class:`BlockStructure`;
        band: ``(D, F, 6, 6)`` pose-pose blocks ``H[f + d + 1, f]`` (None without time offsets);
        g_c: ``(C, K)``; g_p: ``(F, 6)``.
    """

    h_cc: FloatArray
    h_pp: FloatArray
    h_cp: FloatArray
    band: FloatArray | None
    g_c: FloatArray
    g_p: FloatArray


def camera_jacobian(jac: CornerJacobians) -> FloatArray:
    """``(N, 2, K)`` each corner's Jacobian with respect to its camera's unknowns."""
    return np.concatenate([jac.intrinsics, jac.extrinsics, jac.offset], axis=2)


def assemble(st: BlockStructure, jac: CornerJacobians, residual: FloatArray, weight: FloatArray) -> NormalEquations:
    """The normal equations of weighted residuals.

    Args:
        st: the structure; jac: the corners' Jacobian blocks (the neighbour blocks are read only
            when the structure has neighbours); residual: ``(N, 2)`` pixels;
        weight: ``(N,)`` per-corner weight (both coordinates).
    """
    c_count, k = st.n_cams, N_CAMERA
    jc = camera_jacobian(jac)
    jcw = jc * weight[:, None, None]
    wr = residual * weight[:, None]
    g_c = st.obs_to_cam @ (jc.transpose(0, 2, 1) @ wr[:, :, None])[:, :, 0]
    blocks = (jac.pose, jac.pose_prev, jac.pose_next)
    n_pairs = len(st.pair_cam)
    h_cc = np.zeros((c_count, k, k))
    h_cp = np.zeros((n_pairs, k * 6))
    h_pp_pair = np.zeros((n_pairs, 36))
    g_p_pair = np.zeros((n_pairs, 6))
    mine = np.argsort(st.obs_camera, kind="stable")
    obs_bounds = np.searchsorted(st.obs_camera[mine], np.arange(c_count + 1))
    bounds = np.append(st.pair_start, len(st.contrib_obs))
    for c in range(c_count):  # one camera at a time bounds the temporaries (C iterations)
        rows = mine[obs_bounds[c]:obs_bounds[c + 1]]
        h_cc[c] = jc[rows].reshape(-1, k).T @ jcw[rows].reshape(-1, k)
        p0, p1 = st.cam_start[c], st.cam_start[c + 1]
        if p0 == p1:
            continue
        s0, s1 = bounds[p0], bounds[p1]
        obs, kind = st.contrib_obs[s0:s1], st.contrib_kind[s0:s1]
        jp = blocks[OWN][obs] if st.coupling is None else np.empty((len(obs), 2, 6))
        if st.coupling is not None:
            for kd, blk in enumerate(blocks):
                sel = kind == kd
                jp[sel] = blk[obs[sel]]
        jpt = jp.transpose(0, 2, 1)
        m = len(obs)
        total = st.cam_pair_sum[c]
        h_cp[p0:p1] = total @ (jcw[obs].transpose(0, 2, 1) @ jp).reshape(m, k * 6)
        h_pp_pair[p0:p1] = total @ ((jpt * weight[obs, None, None]) @ jp).reshape(m, 36)
        g_p_pair[p0:p1] = total @ (jpt @ wr[obs][:, :, None])[:, :, 0]
    h_cp = h_cp.reshape(n_pairs, k, 6)
    h_pp = (st.pair_to_pose @ h_pp_pair).reshape(-1, 6, 6)
    band = None
    cp = st.coupling
    if cp is not None:
        band = np.zeros((cp.bandwidth * st.n_poses, 36))
        weighted = {kd: blocks[kd].transpose(0, 2, 1) * weight[:, None, None] for kd in (OWN, NEXT)}
        for (later, earlier), to_band in zip(cp.kinds, cp.to_band):
            # every corner at once: a corner without the coupling has an empty column in to_band
            band += to_band @ (weighted[later] @ blocks[earlier]).reshape(-1, 36)
        band = band.reshape(cp.bandwidth, st.n_poses, 6, 6)
    return NormalEquations(h_cc, h_pp, h_cp, band, g_c, st.pair_to_pose @ g_p_pair)


def _damped_pose_blocks(ne: NormalEquations, damping: float) -> FloatArray:
    """``(F, 6, 6)`` pose blocks with ``damping`` times their diagonal added (and a tiny floor)."""
    i6 = np.arange(6)
    hpp = ne.h_pp.copy()
    d = hpp[:, i6, i6]
    hpp[:, i6, i6] += damping * np.maximum(d, 1e-9) + 1e-12 * np.maximum(d.sum(axis=1, keepdims=True), 1.0)
    return hpp


def _damped_camera_blocks(ne: NormalEquations, damping: float) -> FloatArray:
    ik = np.arange(N_CAMERA)
    hcc = ne.h_cc.copy()
    hcc[:, ik, ik] += damping * np.maximum(hcc[:, ik, ik], 1e-9)
    return hcc


@dataclass
class ReducedSystem:
    """The reduced camera system of one damping, on the free camera unknowns.

    Attributes:
        s: ``(n, n)`` Schur complement (damped); rhs: ``(n,)`` its right-hand side;
        pose_solve: ``pose_solve(cam_step (C, K))`` the pose step ``(F, 6)`` that goes with a camera step.
    """

    s: FloatArray
    rhs: FloatArray
    pose_solve: Callable[[FloatArray], FloatArray]


def reduce(st: BlockStructure, ne: NormalEquations, damping: float, camera_free: BoolArray) -> ReducedSystem:
    """Eliminate the board poses from ``(H + damping * diag(H)) x = -g``.

    Args:
        camera_free: ``(C, K)`` which camera unknowns move (the others are held).
    Raises:
        numpy.linalg.LinAlgError: the damped pose part is not positive definite.
    """
    if st.coupling is None:
        return _reduce_block_diagonal(st, ne, damping, camera_free)
    return _reduce_banded(st, ne, damping, camera_free)


def _reduce_block_diagonal(st: BlockStructure, ne: NormalEquations, damping: float, camera_free: BoolArray
                           ) -> ReducedSystem:
    c_count, k = st.n_cams, N_CAMERA
    inv = np.linalg.inv(_damped_pose_blocks(ne, damping))
    y = ne.h_cp @ inv[st.pair_pose]  # (P, K, 6)
    prod = y[st.triple_a] @ ne.h_cp[st.triple_b].transpose(0, 2, 1)  # (T, K, K)
    blocks = -(st.triple_to_block @ prod.reshape(len(prod), k * k)).reshape(c_count, c_count, k, k)
    blocks[np.arange(c_count), np.arange(c_count)] += _damped_camera_blocks(ne, damping)
    free = camera_free.ravel()
    s = blocks.transpose(0, 2, 1, 3).reshape(c_count * k, c_count * k)[np.ix_(free, free)]
    rhs = (-ne.g_c + st.pair_to_cam @ np.einsum("pij,pj->pi", y, ne.g_p[st.pair_pose])).ravel()[free]

    def pose_solve(dc: FloatArray) -> FloatArray:
        back = st.pair_to_pose @ np.einsum("pij,pi->pj", ne.h_cp, dc[st.pair_cam])
        return -np.einsum("fij,fj->fi", inv, ne.g_p + back)
    return ReducedSystem(s, rhs, pose_solve)


def _banded_lower(st: BlockStructure, ne: NormalEquations, damping: float) -> FloatArray:
    """The damped pose part of ``H`` in LAPACK's lower band storage ``(6 D + 6, 6 F)``."""
    f, bw = st.n_poses, st.coupling.bandwidth  # type: ignore[union-attr]
    ab = np.zeros((6 * bw + 6, 6 * f))
    r, s = np.meshgrid(np.arange(6), np.arange(6), indexing="ij")
    lower = r >= s
    hpp = _damped_pose_blocks(ne, damping)
    cols = 6 * np.arange(f)[:, None] + s[lower][None, :]
    ab[(r - s)[lower][None, :].repeat(f, 0), cols] = hpp[:, lower]
    for d in range(1, bw + 1):
        cols = 6 * np.arange(f - d)[:, None] + s.ravel()[None, :]
        ab[(6 * d + r - s).ravel()[None, :].repeat(f - d, 0), cols] = ne.band[d - 1, :f - d].reshape(f - d, 36)
    return ab


def _reduce_banded(st: BlockStructure, ne: NormalEquations, damping: float, camera_free: BoolArray
                   ) -> ReducedSystem:
    c_count, k, f = st.n_cams, N_CAMERA, st.n_poses
    free = camera_free.ravel()
    chol = sla.cholesky_banded(_banded_lower(st, ne, damping), lower=True, check_finite=False)
    # h_pc (6 F, C K) dense, free camera columns only, and g_p as one more column
    h_pc = np.zeros((6 * f, c_count * k))
    rows = 6 * st.pair_pose[:, None, None] + np.arange(6)[None, None, :]
    cols = k * st.pair_cam[:, None, None] + np.arange(k)[None, :, None]
    h_pc[rows, cols] = ne.h_cp
    h_pc = h_pc[:, free]
    rhs_all = np.concatenate([h_pc, ne.g_p.reshape(-1, 1)], axis=1)
    x = sla.cho_solve_banded((chol, True), rhs_all, check_finite=False)  # h_pp^-1 [h_pc, g_p]
    s = np.zeros((c_count, k, c_count, k))
    s[np.arange(c_count), :, np.arange(c_count), :] = _damped_camera_blocks(ne, damping)
    s = s.reshape(c_count * k, c_count * k)[np.ix_(free, free)] - h_pc.T @ x[:, :-1]
    rhs = -ne.g_c.ravel()[free] + h_pc.T @ x[:, -1]

    def pose_solve(dc: FloatArray) -> FloatArray:
        return -(x[:, -1] + x[:, :-1] @ dc.ravel()[free]).reshape(f, 6)
    return ReducedSystem(s, rhs, pose_solve)


def solve_step(st: BlockStructure, ne: NormalEquations, damping: float, camera_free: BoolArray
               ) -> tuple[FloatArray, FloatArray]:
    """The damped Gauss-Newton step.

    Args:
        camera_free: ``(C, K)`` which camera unknowns move (the others' steps are zero).
    Returns:
        ``(camera step (C, K), pose step (F, 6))``.
    Raises:
        numpy.linalg.LinAlgError: the damped system is not positive definite.
    """
    red = reduce(st, ne, damping, camera_free)
    free = camera_free.ravel()
    dc = np.zeros(free.size)
    if free.any():
        dc[free] = sla.cho_solve(sla.cho_factor(red.s, check_finite=False), red.rhs, check_finite=False)
    dc = dc.reshape(st.n_cams, N_CAMERA)
    return dc, red.pose_solve(dc)


def camera_standard_deviations(st: BlockStructure, ne: NormalEquations, camera_free: BoolArray,
                               residual_variance: float) -> FloatArray:
    """Standard deviation of every camera unknown from the normal matrix: ``sqrt(diag(H^-1) sigma^2)``.

    ``H^-1``'s camera block is ``S^-1`` (the board poses eliminated), so only the reduced camera
    system is inverted. These are the uncertainties the corner noise alone leaves (independent
    corners with the residuals' variance); correlated detection errors add to them.

    Args:
        camera_free: ``(C, K)`` which camera unknowns were solved.
        residual_variance: ``sigma^2`` of the (robustly weighted) residuals, pixels squared.
    Returns:
        ``(C, K)`` in each unknown's units (:mod:`.projection_jacobian`); NaN where held.
    """
    red = reduce(st, ne, 0.0, camera_free)
    std = np.full(camera_free.shape, np.nan)
    if camera_free.any():
        factor = sla.lu_factor(red.s, check_finite=False)  # LU: S may be only semi-definite
        diag = np.diag(sla.lu_solve(factor, np.eye(len(red.s)), check_finite=False))
        std[camera_free] = np.sqrt(np.maximum(diag, 0.0) * residual_variance)
    return std
