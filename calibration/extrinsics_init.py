"""Initial camera poses from board poses seen by camera pairs, over a camera graph.

Each frame in which cameras i and j both see the board gives one estimate of their relative pose
``T_ij = T_i,board @ inv(T_j,board)``. The pairs form a graph weighted by their shared views; a
maximum spanning tree from the best-connected camera chains robust pairwise estimates into one
world frame (the root camera's), and each board pose is then averaged over the cameras that see it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posestudio.core.arrays import FloatArray, IntArray
from posestudio.core.rotations import average_rotations, rodrigues_to_matrix, rotation_angle_deg

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


def initialise_extrinsics(names: list[str], board_poses: list[dict[int, tuple[FloatArray, FloatArray]]]
                          ) -> ExtrinsicInit:
    """Chain pairwise poses over a maximum spanning tree of the camera graph.

    Args:
        names: camera names (for messages).
        board_poses: per camera, frame -> ``(rvec, tvec)`` board-to-camera.
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
    for parent, child in edges:
        shared = sorted(mats[parent].keys() & mats[child].keys())
        # T_child<-parent = T_child<-board @ inv(T_parent<-board)
        rel = []
        for f in shared:
            rp, tp = mats[parent][f]
            rc, tc = mats[child][f]
            r = rc @ rp.T
            rel.append((r, tc - r @ tp))
        r_cp, t_cp = robust_relative_pose(rel)
        r_pw, t_pw = cams[parent]  # type: ignore[misc]
        cams[child] = (r_cp @ r_pw, r_cp @ t_pw + t_cp)

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
