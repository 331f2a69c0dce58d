"""Initial camera poses from board poses seen by camera pairs, over a camera graph.

Each frame in which cameras i and j both see the board gives one estimate of their relative pose
``T_ij = T_i,board @ inv(T_j,board)``. The pairs form a graph weighted by their shared views; a
maximum spanning tree from the best-connected camera chains robust pairwise estimates into one
world frame (the root camera's). Chained along a long, thin graph (a ring of 16-32 cameras, each
seeing the board with a few neighbours) the pairwise errors add up around the ring, so the poses
are then solved again from every linked pair at once (:func:`close_loops`: linear chordal rotation
averaging, then the translations by linear least squares, both weighted by shared views), which
spreads the loop's misclosure over all of it. Each board pose is finally averaged over the cameras
that see it; the bundle adjustment closes the loops exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posestudio.core.arrays import FloatArray, IntArray
from posestudio.core.rotations import average_rotations, nearest_rotation, rodrigues_to_matrix, rotation_angle_deg

from .errors import CalibrationFailure

Pose = tuple[FloatArray, FloatArray]  # (R (3, 3), t (3,))


@dataclass
class ExtrinsicInit:
    """Initial world-to-camera poses and board-to-world poses (world = root camera's frame).

    Attributes:
        root: index of the camera whose frame is the world frame.
        cameras: per camera ``(R, t)`` world-to-camera.
        boards: frame -> ``(R, t)`` board-to-world.
        pair_counts: ``(C, C)`` shared views per camera pair.
        tree_edges: the spanning-tree edges ``(parent, child)`` used.
    """

    root: int
    cameras: list[Pose]
    boards: dict[int, Pose]
    pair_counts: IntArray
    tree_edges: list[tuple[int, int]]


#: Camera pairs with fewer shared board views than this do not enter :func:`close_loops`.
MIN_PAIR_VIEWS = 3
#: A pair off the spanning tree's chained poses by more than this (degrees, metres) is left out
#: of :func:`close_loops` (drift around a 32-camera ring measured up to 2.5 degrees, 0.28 m).
GROSS_PAIR_DEG = 15.0
GROSS_PAIR_M = 0.75


def close_loops(relative: dict[tuple[int, int], Pose], weights: dict[tuple[int, int], float], n: int,
                root: int, start: list[Pose]) -> list[Pose]:
    """World-to-camera poses agreeing best with every relative pose at once (world = ``root``'s frame).

    Rotations: the 3 x 3 matrices ``X_c`` minimising ``sum w_ij |R_ji X_i - X_j|_F^2`` with
    ``X_root = I`` (linear least squares; chordal L2), each projected to the nearest rotation.
    Translations: ``t_j = R_j R_i^T t_i + t_ji`` in least squares, ``t_root = 0``. Cameras linked to
    the root only through pairs left out keep their ``start`` pose.

    Args:
        relative: ``(i, j)`` -> ``(R_ji (3, 3), t_ji (3,))``, camera i's frame to camera j's (metres).
        weights: ``(i, j)`` -> weight (shared views).
        n: cameras; root: the camera fixed at the identity.
        start: per camera ``(R, t)`` world-to-camera, the fallback.
    Returns:
        per camera ``(R (3, 3), t (3,))`` world-to-camera.
    """
    pairs = [(i, j) for (i, j) in relative if weights[(i, j)] > 0]
    if not pairs:
        return start
    p = len(pairs)
    ii = np.array([i for i, _ in pairs])
    jj = np.array([j for _, j in pairs])
    w = np.sqrt(np.array([weights[q] for q in pairs], float))
    r_rel = np.stack([relative[q][0] for q in pairs])
    t_rel = np.stack([relative[q][1] for q in pairs])
    free = np.array([c for c in range(n) if c != root])
    col = np.full(n, -1)
    col[free] = np.arange(len(free))

    def system(blocks_i: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Dense ``(3P, 3(n-1))`` matrix of rows ``w (B_p x_i - x_j)`` and the root's columns ``(3P, 3)``."""
        a = np.zeros((p, 3, n, 3))
        a[np.arange(p), :, ii, :] += w[:, None, None] * blocks_i
        a[np.arange(p), :, jj, :] -= w[:, None, None] * np.eye(3)
        a = a.reshape(3 * p, n, 3)
        return a[:, free, :].reshape(3 * p, -1), a[:, root, :]

    a, a_root = system(r_rel)
    x, *_ = np.linalg.lstsq(a, -a_root @ np.eye(3), rcond=None)  # three columns of every X_c at once
    rots = np.empty((n, 3, 3))
    rots[root] = np.eye(3)
    rots[free] = nearest_rotation(x.reshape(len(free), 3, 3))
    a, _ = system(rots[jj] @ np.swapaxes(rots[ii], 1, 2))
    t, *_ = np.linalg.lstsq(a, -(w[:, None] * t_rel).ravel(), rcond=None)
    trans = np.zeros((n, 3))
    trans[free] = t.reshape(len(free), 3)
    linked = _linked(pairs, n, root)
    return [(rots[c], trans[c]) if linked[c] else start[c] for c in range(n)]


def _linked(pairs: list[tuple[int, int]], n: int, root: int) -> list[bool]:
    """Which cameras the pairs connect to ``root``."""
    adj: dict[int, set[int]] = {c: set() for c in range(n)}
    for i, j in pairs:
        adj[i].add(j)
        adj[j].add(i)
    seen, todo = {root}, [root]
    while todo:
        for k in adj[todo.pop()] - seen:
            seen.add(k)
            todo.append(k)
    return [c in seen for c in range(n)]


def _relative_pose(mats: list[dict[int, Pose]], parent: int, child: int) -> Pose:
    """Robust ``T_child<-parent`` from the frames both cameras posed the board in."""
    rel = []
    for f in sorted(mats[parent].keys() & mats[child].keys()):
        rp, tp = mats[parent][f]
        rc, tc = mats[child][f]
        r = rc @ rp.T  # T_child<-parent = T_child<-board @ inv(T_parent<-board)
        rel.append((r, tc - r @ tp))
    return robust_relative_pose(rel)


def robust_relative_pose(rel: list[Pose]) -> Pose:
    """Consensus of relative-pose samples: medoid-seeded inlier average.

    Args:
        rel: samples ``(R (3, 3), t (3,))``.
    """
    rots = np.stack([r for r, _ in rel])
    ts = np.stack([t for _, t in rel])
    t_med = np.median(ts, axis=0)
    r_med = average_rotations(rots)
    ang = rotation_angle_deg(rots, r_med[None])
    dist = np.linalg.norm(ts - t_med, axis=1)
    scale = max(np.median(dist), 1e-3)
    inl = (ang < max(3.0 * np.median(ang), 1.0)) & (dist < 3.0 * scale + 0.01)
    if inl.sum() < 1:
        inl = np.ones(len(rel), bool)
    return average_rotations(rots[inl]), ts[inl].mean(axis=0)


def initialise_extrinsics(names: list[str], board_poses: list[dict[int, tuple[FloatArray, FloatArray]]],
                          loop_closure: bool = True) -> ExtrinsicInit:
    """Chain pairwise poses over a maximum spanning tree of the camera graph, then close its loops.

    Args:
        names: camera names (for messages).
        board_poses: per camera, frame -> ``(rvec, tvec)`` board-to-camera.
        loop_closure: re-solve the poses from every pair with :data:`MIN_PAIR_VIEWS` shared views
            (:func:`close_loops`); False: the spanning tree's chained poses.
    Raises:
        CalibrationFailure: naming the cameras that cannot be linked and each pair's shared views.
    """
    n = len(names)
    mats = [{f: (rodrigues_to_matrix(rv), np.asarray(tv, float)) for f, (rv, tv) in bp.items()} for bp in board_poses]
    counts = np.zeros((n, n), np.int64)
    for i in range(n):
        for j in range(i + 1, n):
            counts[i, j] = counts[j, i] = len(mats[i].keys() & mats[j].keys())
    root = int(np.argmax(counts.sum(axis=1)))
    # Prim's algorithm for the maximum spanning tree.
    in_tree = {root}
    edges: list[tuple[int, int]] = []
    while len(in_tree) < n:
        best = (0, -1, -1)
        for i in in_tree:
            for j in range(n):
                if j not in in_tree and counts[i, j] > best[0]:
                    best = (int(counts[i, j]), i, j)
        if best[0] == 0:
            linked = sorted(names[i] for i in in_tree)
            unlinked = sorted(names[j] for j in range(n) if j not in in_tree)
            pairs = ", ".join(f"{names[i]}-{names[j]}: {counts[i, j]}" for i in range(n) for j in range(i + 1, n))
            raise CalibrationFailure(
                f"cameras {', '.join(unlinked)} never see the board in the same frame as cameras "
                f"{', '.join(linked)}, so they cannot be placed in one world frame. Shared board views per "
                f"pair: {pairs}. Record the board where these cameras overlap.")
        edges.append((best[1], best[2]))
        in_tree.add(best[2])

    cams: list[Pose | None] = [None] * n
    cams[root] = (np.eye(3), np.zeros(3))
    relative: dict[tuple[int, int], Pose] = {}
    for parent, child in edges:
        relative[(parent, child)] = r_cp, t_cp = _relative_pose(mats, parent, child)
        r_pw, t_pw = cams[parent]  # type: ignore[misc]
        cams[child] = (r_cp @ r_pw, r_cp @ t_pw + t_cp)
    if loop_closure:
        for i in range(n):
            for j in range(i + 1, n):
                if counts[i, j] >= MIN_PAIR_VIEWS and (i, j) not in relative and (j, i) not in relative:
                    r_ji, t_ji = _relative_pose(mats, i, j)
                    # A pair far from what the tree says is a wrong consensus, not drift: left out.
                    (r_i, t_i), (r_j, t_j) = cams[i], cams[j]  # type: ignore[misc]
                    r_pred = r_j @ r_i.T
                    if (rotation_angle_deg(r_ji, r_pred) <= GROSS_PAIR_DEG
                            and np.linalg.norm(t_ji - (t_j - r_pred @ t_i)) <= GROSS_PAIR_M):
                        relative[(i, j)] = (r_ji, t_ji)
        weights = {q: float(counts[q]) for q in relative}
        cams = close_loops(relative, weights, n, root, cams)  # type: ignore[arg-type]

    boards: dict[int, Pose] = {}
    frames = sorted(set().union(*[m.keys() for m in mats]))
    for f in frames:
        rs, ts = [], []
        for i in range(n):
            if f in mats[i]:
                r_cw, t_cw = cams[i]  # type: ignore[misc]
                r_cb, t_cb = mats[i][f]
                # board-to-world = inv(world-to-camera) @ board-to-camera
                rs.append(r_cw.T @ r_cb)
                ts.append(r_cw.T @ (t_cb - t_cw))
        boards[f] = (average_rotations(np.stack(rs)), np.median(np.stack(ts), axis=0))
    return ExtrinsicInit(root, cams, boards, counts, edges)  # type: ignore[arg-type]
