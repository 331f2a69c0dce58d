"""Several people in view: every view's detected people grouped into consistent 3D person tracks.

A detector returns, per frame and view, a list of people ``(P, J, 3)`` in no particular order.
:func:`track_people` turns a take of such lists into :class:`PeopleTracks`, each track one person's
2D in every view (exactly the detector's rows) and a rough triangulation; :func:`choose_subject`
picks the performer the reconstruction pipeline gets (:meth:`PeopleTracks.for_subject`).

Method, all frames at once (frames processed in chunks that bound memory):

1. Pairwise costs. Keypoints are undistorted to normalised coordinates; for every pair of views
   ``(i, j)`` (essential matrix from the rig's poses) and every person ``a`` of ``i`` and ``b`` of
   ``j``, the symmetric epipolar distance of each joint (pixels: normalised distance times each
   view's focal length, the mean of both directions), averaged over joints weighted by both
   confidences, trimmed to the closest joints holding half the weight and truncated at twice the
   gate (:func:`~posestudio.reconstruction.people_tracks.robust_mean`: a detector's gross outliers
   do not count). One tensor ``(F, V, P, V, P)``, no loop over joints, people or frames.
2. Clusters, in rounds over all frames at once (each round claims one person per frame): the seed
   is the consistent pair (cost under ``epipolar_gate_px``) that the most other views agree with,
   where a view agrees when one of its people is consistent with both (cycle consistency, as in
   MVPose; a pair that only looks consistent because the two people lie on each other's epipolar
   lines finds no third view); the cluster then grows view by view by complete linkage (a person
   joins only if consistent with every member). A person joins one cluster at most and a cluster
   holds one person per view, so two people are never fused.
3. Verification: every cluster triangulated (robust,
   :func:`~posestudio.reconstruction.triangulation.triangulate_robust`); members whose reprojection
   error (robust mean over joints) exceeds ``reprojection_gate_px`` are dropped, clusters left with
   fewer than two members dissolved.
4. Tracks (:mod:`~posestudio.reconstruction.people_tracks`): clusters linked frame to frame by 3D
   distance (Hungarian), detections no cluster took attached where a track projects onto them,
   then each track triangulated again from all its views.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from posestudio.core.arrays import BoolArray, FloatArray, IntArray
from posestudio.core.errors import InputError
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import skew
from posestudio.models.keypoints import H36M17

from .people_tracks import (
    PeopleTracks,
    attach_unassigned,
    check_subject_rule,
    choose_subject,
    link_clusters,
    robust_mean,
)
from .triangulation import TriangulationOptions, triangulate_robust

__all__ = ["PeopleOptions", "PeopleTracks", "associate", "choose_subject", "cluster_people", "epipolar_costs",
           "pad_candidates", "track_people"]

#: Frames per chunk are chosen so that the largest array of a chunk holds about this many values.
CHUNK_VALUES = 4_000_000


@dataclass
class PeopleOptions:
    """Settings of :func:`track_people`.

    Attributes:
        epipolar_gate_px: two people of two views are consistent below this symmetric epipolar
            distance (confidence-weighted robust mean over joints), pixels.
        reprojection_gate_px: a cluster member whose robust mean reprojection error exceeds this
            is dropped, pixels; also the gate for attaching a detection to a track's projection.
        link_gate_m_s: a track links to a cluster whose joints (median distance) moved at most
            this fast since the track was last seen, metres per second.
        link_floor_m: plus this much at any frame rate (triangulation noise), metres.
        max_gap_frames: tracks live through this many frames without a sighting.
        min_track_frames: tracks seen by two views in fewer frames are dropped as ghosts.
        min_joints: two people are compared only on at least this many joints both see.
        min_confidence: joints below this confidence are not used for association (they are
            still returned in the tracks' 2D).
        subject: which track is the performer: ``"most_seen"`` (the most views times mean
            confidence, summed over frames), a track id, or a point ``(x, y)`` / ``(x, y, z)``
            in metres (the track whose median position is nearest; ``(x, y)`` on the floor).
    """

    epipolar_gate_px: float = 20.0
    reprojection_gate_px: float = 20.0
    link_gate_m_s: float = 4.0
    link_floor_m: float = 0.15
    max_gap_frames: int = 10
    min_track_frames: int = 5
    min_joints: int = 4
    min_confidence: float = 0.3
    subject: str | int | tuple[float, ...] = "most_seen"

    def check(self) -> None:
        """Raise :class:`~posestudio.core.errors.InputError` naming the first unusable field."""
        for name in ("epipolar_gate_px", "reprojection_gate_px", "link_gate_m_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise InputError(f"people.{name} must be a positive number, got {value!r}")
        if not (isinstance(self.link_floor_m, (int, float)) and 0 <= self.link_floor_m < np.inf):
            raise InputError(f"people.link_floor_m must be a number >= 0 (metres), got {self.link_floor_m!r}")
        for name, low in (("max_gap_frames", 0), ("min_track_frames", 1), ("min_joints", 1)):
            value = getattr(self, name)
            if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= low):
                raise InputError(f"people.{name} must be an integer >= {low}, got {value!r}")
        if not (isinstance(self.min_confidence, (int, float)) and 0 <= self.min_confidence <= 1):
            raise InputError(f"people.min_confidence must be in [0, 1], got {self.min_confidence!r}")
        check_subject_rule(self.subject, "people.subject")


# ------------------------------------------------------------------------------------------ input
def pad_candidates(candidates: Sequence[Sequence[FloatArray]], n_views: int, n_joints: int = H36M17.n_joints
                   ) -> FloatArray:
    """Stack per-frame, per-view people into one array.

    Args:
        candidates: ``[frame][view]`` -> ``(P, J, 3)`` x, y (pixels), confidence; ``P`` may vary
            and be 0.
        n_views: views expected per frame (the rig's cameras).
        n_joints: joints per person.
    Returns:
        ``(F, V, P_max, J, 3)`` with NaN rows where a view had fewer people (``P_max >= 1``).
    """
    rows: list[list[FloatArray]] = []
    for f, frame in enumerate(candidates):
        if len(frame) != n_views:
            raise InputError(f"candidates[{f}] has {len(frame)} views; the rig has {n_views} cameras")
        per_view = []
        for v, people in enumerate(frame):
            arr = np.asarray(people, dtype=np.float64)
            if arr.size == 0:
                arr = arr.reshape(0, n_joints, 3)
            if arr.ndim != 3 or arr.shape[1:] != (n_joints, 3):
                raise InputError(f"candidates[{f}][{v}] has shape {arr.shape}; expected (people, {n_joints}, 3)")
            per_view.append(arr)
        rows.append(per_view)
    n_people = max([1] + [a.shape[0] for frame in rows for a in frame])
    out = np.full((len(rows), n_views, n_people, n_joints, 3), np.nan)
    for f, frame in enumerate(rows):
        for v, arr in enumerate(frame):
            out[f, v, : arr.shape[0]] = arr
    return out


# ------------------------------------------------------------------------------------ association
def epipolar_costs(normalised: FloatArray, weight: FloatArray, rig: CameraRig, cap_px: float,
                   min_joints: int) -> FloatArray:
    """Symmetric epipolar distance between every two people of every two views.

    Args:
        normalised: ``(F, V, P, J, 3)`` homogeneous undistorted coordinates ``(x/z, y/z, 1)``, NaN
            where a joint is absent.
        weight: ``(F, V, P, J)`` joint confidences (0 where a joint does not count).
        rig: the cameras of the views.
        cap_px: each joint's distance counts at most this much, pixels.
        min_joints: pairs of people with fewer joints in common get ``inf``.
    Returns:
        ``(F, V, P, V, P)`` costs in pixels (symmetric; ``inf`` within one view).
    """
    n_frames, n_views, n_people = normalised.shape[:3]
    qi, qj = np.triu_indices(n_views, 1)
    rot, trans = rig.rotations, rig.translations
    r_ij = rot[qj] @ np.swapaxes(rot[qi], 1, 2)                                         # (Q, 3, 3)
    t_ij = trans[qj] - np.einsum("qkl,ql->qk", r_ij, trans[qi])
    essential = skew(t_ij) @ r_ij                                                       # x_j^T E x_i = 0
    focal = np.array([np.mean(c.focal) for c in rig.cameras])
    xi, xj = normalised[:, qi], normalised[:, qj]                                       # (F, Q, P, J, 3)
    line_j = np.einsum("qkl,fqajl->fqajk", essential, xi)             # epipolar lines in view j
    line_i = np.einsum("qlk,fqbjl->fqbjk", essential, xj)             # in view i (E^T x_j)
    algebraic = np.abs(np.einsum("fqbjk,fqajk->fqabj", xj, line_j))                     # (F, Q, P, P, J)
    with np.errstate(invalid="ignore", divide="ignore"):
        to_j = focal[qj][None, :, None, None] / np.linalg.norm(line_j[..., :2], axis=-1)  # (F, Q, P, J)
        to_i = focal[qi][None, :, None, None] / np.linalg.norm(line_i[..., :2], axis=-1)
        dist = 0.5 * algebraic * (to_j[:, :, :, None] + to_i[:, :, None, :])
    w = weight[:, qi][:, :, :, None] * weight[:, qj][:, :, None, :]                     # (F, Q, P, P, J)
    cost = robust_mean(dist, w, cap_px, min_joints)                                     # (F, Q, P, P)
    full = np.full((n_frames, n_views, n_people, n_views, n_people), np.inf)
    full[:, qi, :, qj, :] = cost.transpose(1, 0, 2, 3)
    full[:, qj, :, qi, :] = cost.transpose(1, 0, 3, 2)
    return full


def cluster_people(cost: FloatArray, available: BoolArray, gate_px: float) -> IntArray:
    """Multi-view clusters of people from their pairwise costs, all frames at once.

    Args:
        cost: ``(F, V, P, V, P)`` pairwise costs, pixels (``inf`` within a view).
        available: ``(F, V, P)`` people that may be clustered.
        gate_px: people with a cost below this are consistent.
    Returns:
        ``(F, K, V)`` person index per cluster and view, -1 where none (a cluster slot of a frame
        with fewer clusters is all -1).
    """
    n_frames, n_views, n_people = available.shape
    n = n_views * n_people
    pair = cost.reshape(n_frames, n, n)
    edge = pair < gate_px
    free = available.reshape(n_frames, n).copy()
    view_of, person_of = np.repeat(np.arange(n_views), n_people), np.tile(np.arange(n_people), n_views)
    frames = np.arange(n_frames)
    rounds: list[IntArray] = []
    while True:
        usable = edge & free[:, :, None] & free[:, None, :]                             # (F, n, n)
        by_view = usable.reshape(n_frames, n, n_views, n_people).transpose(0, 2, 1, 3).astype(np.float32)
        agree = (by_view @ np.swapaxes(by_view, -1, -2)) > 0       # (F, V, n, n) a view's person fits both
        score = np.where(usable, 2.0 + agree.sum(1) + 1.0 / (1.0 + pair), -np.inf).reshape(n_frames, -1)
        seed = score.argmax(1)
        active = np.isfinite(score[frames, seed])
        if not active.any():
            break
        x, y = np.divmod(seed, n)
        members = np.full((n_frames, n_views), -1, np.int64)
        members[frames, view_of[x]] = person_of[x]
        members[frames, view_of[y]] = person_of[y]
        worst = np.maximum(pair[frames, x], pair[frames, y])                            # (F, n) complete linkage
        for _ in range(n_views - 2):
            grow = np.where(free & (members[:, view_of] < 0), worst, np.inf)
            z = grow.argmin(1)
            ok = active & (grow[frames, z] < gate_px)
            if not ok.any():
                break
            fz, zz = frames[ok], z[ok]
            members[fz, view_of[zz]] = person_of[zz]
            worst[ok] = np.maximum(worst[ok], pair[fz, zz])
        members[~active] = -1
        fm, vm = np.nonzero(members >= 0)
        free[fm, vm * n_people + members[fm, vm]] = False
        rounds.append(members)
    if not rounds:
        return np.full((n_frames, 0, n_views), -1, np.int64)
    return np.stack(rounds, 1)


def _gather(keypoints: FloatArray, members: IntArray, frames: IntArray | None = None) -> FloatArray:
    """The members' rows of every view.

    Args:
        keypoints: ``(F, V, P, J, 3)``.
        members: ``(..., V)`` person index per view, -1 for none (NaN rows).
        frames: ``(...)`` the frame of each entry of ``members``; None: ``members`` is ``(F, ..., V)``.
    Returns:
        ``(V, ..., J, 3)``.
    """
    if frames is None:
        frames = np.arange(keypoints.shape[0]).reshape((-1,) + (1,) * (members.ndim - 2))
    out = keypoints[frames[..., None], np.arange(keypoints.shape[1]), np.maximum(members, 0)]  # (..., V, J, 3)
    out = np.where((members >= 0)[..., None, None], out, np.nan)
    return np.moveaxis(out, -3, 0)


def _verify(keypoints: FloatArray, valid: BoolArray, members: IntArray, rig: CameraRig,
            options: PeopleOptions) -> tuple[IntArray, FloatArray]:
    """Triangulate clusters, drop members that reproject badly, dissolve clusters left with one.

    Args:
        keypoints: ``(F, V, P, J, 3)``; valid: ``(F, V, P, J)``; members: ``(F, K, V)``.
    Returns:
        ``(members (F, K, V), points (F, K, J, 3))`` metres (NaN for empty cluster slots).
    """
    tri_opts = TriangulationOptions(min_confidence=options.min_confidence)
    gate = options.reprojection_gate_px
    members = members.copy()
    points = np.full(members.shape[:2] + keypoints.shape[3:4] + (3,), np.nan)
    real = (members >= 0).sum(-1) >= 2                                                  # (F, K)
    if not real.any():
        return np.where(real[..., None], members, -1), points
    gathered = _gather(np.where(valid[..., None], keypoints, np.nan), members[real], np.nonzero(real)[0])
    tri = triangulate_robust(rig, gathered, tri_opts)                                   # (V, N, J, 3)
    error = robust_mean(tri.reprojection_px, np.nan_to_num(gathered[..., 2]), 2.0 * gate, 1)   # (V, N)
    bad = (np.isfinite(error) & (error > gate)).T                                       # (N, V)
    kept = np.where(bad, -1, members[real])
    enough = (kept >= 0).sum(-1) >= 2
    kept[~enough] = -1
    pts = tri.points
    redo = bad.any(-1) & enough
    if redo.any():
        again = np.where(bad[redo].T[..., None, None], np.nan, gathered[:, redo])
        pts[redo] = triangulate_robust(rig, again, tri_opts).points
    pts[~enough] = np.nan
    members[real], points[real] = kept, pts
    members[~real] = -1
    return members, points


def associate(keypoints: FloatArray, rig: CameraRig, options: PeopleOptions) -> tuple[IntArray, FloatArray]:
    """Per-frame multi-view clusters of people (steps 1-3 of the module's method).

    Args:
        keypoints: ``(F, V, P, J, 3)`` every view's people (see :func:`pad_candidates`).
        rig: the cameras of the views.
        options: :class:`PeopleOptions`.
    Returns:
        ``(members (F, K, V), points (F, K, J, 3))``: the person index each cluster takes in each
        view (-1: none) and its triangulated joints, metres.
    """
    n_frames, n_views, n_people, n_joints = keypoints.shape[:4]
    valid = np.isfinite(keypoints[..., :2]).all(-1) & (np.nan_to_num(keypoints[..., 2]) >= options.min_confidence)
    per_frame = n_views ** 2 * n_people ** 2 * max(n_joints, n_views * n_people)
    chunk = max(1, CHUNK_VALUES // per_frame)
    members_parts, points_parts = [], []
    for start in range(0, n_frames, chunk):                     # chunks bound memory; each is vectorised
        kp, ok = keypoints[start:start + chunk], valid[start:start + chunk]
        xy = np.where(ok[..., None], kp[..., :2], np.nan)
        normed = rig.undistort(np.moveaxis(xy, 1, 0).reshape(n_views, -1, 2))
        normed = np.moveaxis(normed.reshape((n_views,) + kp.shape[:1] + kp.shape[2:4] + (2,)), 0, 1)
        homog = np.concatenate([normed, np.ones(normed.shape[:-1] + (1,))], -1)
        weight = np.where(ok & np.isfinite(normed).all(-1), np.nan_to_num(kp[..., 2]), 0.0)
        cost = epipolar_costs(homog, weight, rig, 2.0 * options.epipolar_gate_px, options.min_joints)
        available = (weight > 0).sum(-1) >= options.min_joints
        members = cluster_people(cost, available, options.epipolar_gate_px)
        members, points = _verify(kp, ok, members, rig, options)
        members_parts.append(members)
        points_parts.append(points)
    n_clusters = max([0] + [m.shape[1] for m in members_parts])
    members = np.full((n_frames, n_clusters, n_views), -1, np.int64)
    points = np.full((n_frames, n_clusters, n_joints, 3), np.nan)
    for start, m, p in zip(range(0, n_frames, chunk), members_parts, points_parts):
        members[start:start + len(m), : m.shape[1]] = m
        points[start:start + len(m), : m.shape[1]] = p
    return members, points


# ------------------------------------------------------------------------------------------ entry
def track_people(candidates: Sequence[Sequence[FloatArray]], rig: CameraRig, fps: float,
                 options: PeopleOptions | None = None) -> PeopleTracks:
    """Consistent 3D person tracks from every view's detected people.

    Args:
        candidates: ``[frame][view]`` -> ``(P, 17, 3)`` H36M17 keypoints: x, y in distorted pixels,
            confidence; NaN for missing joints; ``P`` varies (0: nobody), the order is arbitrary.
        rig: the cameras, in the order of the views.
        fps: frame rate, Hz.
        options: :class:`PeopleOptions`.
    Returns:
        :class:`PeopleTracks`, tracks numbered in order of first appearance, the subject chosen by
        ``options.subject``.
    """
    opts = options or PeopleOptions()
    opts.check()
    if not (isinstance(fps, (int, float, np.number)) and np.isfinite(fps) and fps > 0):
        raise InputError(f"fps must be a positive number, got {fps!r}")
    kp = pad_candidates(candidates, len(rig))
    members, points = associate(kp, rig, opts)
    track_members, track_points = link_clusters(points, members, fps, opts.link_gate_m_s, opts.link_floor_m,
                                                opts.max_gap_frames, opts.min_track_frames)
    valid = np.isfinite(kp[..., :2]).all(-1) & (np.nan_to_num(kp[..., 2]) >= opts.min_confidence)
    track_members = attach_unassigned(kp, valid, rig, track_members, track_points, fps, opts.reprojection_gate_px,
                                      opts.link_gate_m_s, opts.max_gap_frames)
    keypoints = np.moveaxis(_gather(kp, np.moveaxis(track_members, 0, 1)), 2, 0)      # (T, V, F, J, 3)
    n_seen = (track_members >= 0).sum(-1)                                               # (T, F)
    as_clustered = (track_members[:, :, None, :] == members[None]).all(-1).any(-1)      # points still valid
    redo = (n_seen >= 2) & ~as_clustered                      # views merged or attached: triangulate again
    if redo.any():
        again = keypoints.transpose(0, 2, 1, 3, 4)[redo]                                # (N, V, J, 3)
        track_points[redo] = triangulate_robust(rig, np.moveaxis(again, 1, 0), TriangulationOptions(
            min_confidence=opts.min_confidence)).points
    track_points[n_seen < 2] = np.nan
    tracks = PeopleTracks(keypoints, track_points, n_seen, np.swapaxes(track_members, 1, 2), -1, float(fps))
    tracks.subject = choose_subject(tracks, opts.subject)
    return tracks
