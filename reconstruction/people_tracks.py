"""People over time: per-frame multi-view clusters linked into 3D person tracks, and the result.

:func:`link_clusters` links each frame's clusters (from :mod:`~posestudio.reconstruction.people`)
to the live tracks by the 3D distance of their triangulated joints (Hungarian assignment,
:func:`scipy.optimize.linear_sum_assignment`, one small problem per frame), gated by a speed:
a track not seen for ``n`` frames may have moved ``floor + speed * n / fps`` metres. Tracks live
through gaps of up to ``max_gap_frames``; ids are given in order of first appearance and never
change. :func:`attach_unassigned` then gives a track the detections no cluster took (a person seen
by one camera only, a member dropped for a bad frame) where the track's nearby 3D projects onto
them, unambiguously, in a view the track has no detection in. :func:`robust_mean` is the
confidence-weighted, trimmed and truncated mean over joints both modules score people with.
:class:`PeopleTracks` holds the tracks; :func:`choose_subject` picks the performer among them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from posestudio.core.arrays import BoolArray, FloatArray, IntArray
from posestudio.core.errors import InputError
from posestudio.core.projection import to_cameras
from posestudio.core.rig import CameraRig

#: Subject rules by name (see :func:`choose_subject`).
SUBJECT_RULES = ("most_seen",)

#: A detection joins a track only if its cost is below this share of the next track's cost.
AMBIGUITY_RATIO = 0.6

#: :func:`robust_mean` keeps the closest joints holding this share of the confidence.
KEEP_SHARE = 0.5


def robust_mean(distance: FloatArray, weight: FloatArray, cap: float, min_count: int,
                keep: float = KEEP_SHARE) -> FloatArray:
    """Confidence-weighted trimmed mean over the last axis of distances truncated at ``cap``.

    The joints are sorted by distance and only the closest ones holding ``keep`` of the total
    weight count (a detector's few gross outliers, with ordinary confidences, are trimmed); each
    counts at most ``cap``.

    Args:
        distance: ``(..., J)`` distances (pixels or metres), NaN where not measured.
        weight: ``(..., J)`` non-negative weights (0 where a joint does not count).
        cap: each distance counts at most this much.
        min_count: fewer measured joints than this give ``inf``.
        keep: share of the weight kept, in ``(0, 1]``.
    Returns:
        ``(...)`` the means; ``inf`` where fewer than ``min_count`` joints were measured.
    """
    ok = (weight > 0) & np.isfinite(distance)
    d = np.where(ok, np.minimum(distance, cap), np.inf)
    order = np.argsort(d, axis=-1)
    d = np.take_along_axis(d, order, -1)
    w = np.take_along_axis(np.where(ok, weight, 0.0), order, -1)
    total = w.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        before = (np.cumsum(w, -1) - w) / total                 # weight share of the closer joints
        w = np.where(before < keep, w, 0.0)
        out = (w * np.where(w > 0, d, 0.0)).sum(-1) / w.sum(-1)
    return np.where((ok.sum(-1) >= max(min_count, 1)) & (total[..., 0] > 0), out, np.inf)


def _joint_distance(a: FloatArray, b: FloatArray) -> FloatArray:
    """``(A, B)`` median over joints of the distance between skeletons ``a (A, J, 3)`` and ``b (B, J, 3)``
    (joints finite in both; ``inf`` where none is), metres."""
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)                                   # (A, B, J)
    d = np.where(np.isfinite(d), d, np.inf)
    n = np.isfinite(d).sum(-1)
    med = np.sort(d, axis=-1)                                     # the finite ones first, inf last
    idx = np.maximum(n - 1, 0)
    lo = np.take_along_axis(med, (idx // 2)[..., None], -1)[..., 0]
    hi = np.take_along_axis(med, ((idx + 1) // 2)[..., None], -1)[..., 0]
    return np.where(n > 0, 0.5 * (lo + hi), np.inf)


def link_clusters(points: FloatArray, members: IntArray, fps: float, link_gate_m_s: float, link_floor_m: float,
                  max_gap_frames: int, min_track_frames: int) -> tuple[IntArray, FloatArray]:
    """Link per-frame clusters into tracks.

    Args:
        points: ``(F, K, J, 3)`` each cluster's triangulated joints, metres (NaN where absent).
        members: ``(F, K, V)`` the person index each cluster takes in each view (-1: none); clusters
            with fewer than two members are empty slots.
        fps: frame rate, Hz.
        link_gate_m_s: a track may move this fast between sightings, metres per second.
        link_floor_m: plus this much whatever the gap (triangulation noise), metres.
        max_gap_frames: a track not seen for more frames than this ends.
        min_track_frames: tracks seen in fewer frames are dropped (ghosts of a wrong association);
            a take shorter than this keeps tracks seen in all its frames.
    Returns:
        ``(track_members (T, F, V), track_points (T, F, J, 3))``: per track and frame the person
        index in each view (-1: none) and the cluster's joints (NaN where the track was not seen).
    """
    n_frames, _, n_views = members.shape
    n_joints = points.shape[2]
    seen = (members >= 0).sum(-1) >= 2                                                  # (F, K)
    t_members: list[IntArray] = []
    t_points: list[FloatArray] = []
    last_frame: list[int] = []
    last_points: list[FloatArray] = []
    for f in np.flatnonzero(seen.any(-1)):       # one small assignment per frame with people in it
        ks = np.flatnonzero(seen[f])
        alive = [t for t, lf in enumerate(last_frame) if f - lf <= max_gap_frames + 1]
        matched: dict[int, int] = {}                                           # cluster -> track
        if alive:
            cost = _joint_distance(np.stack([last_points[t] for t in alive]), points[f, ks])   # (A, K)
            gate = link_floor_m + link_gate_m_s * (f - np.array([last_frame[t] for t in alive])) / fps
            ok = cost <= gate[:, None]
            rows, cols = linear_sum_assignment(np.where(ok, cost, 1e6))
            matched = {int(ks[c]): alive[r] for r, c in zip(rows, cols) if ok[r, c]}
        linked_first = sorted(ks.tolist(), key=lambda k: k not in matched)   # then splits can join their track
        for k in linked_first:
            t = matched.get(k)
            if t is None:
                t = _duplicate_of(points[f, k], members[f, k], f, matched, last_points, t_members, link_floor_m)
                if t is not None:              # the same person split over two clusters: merge the views
                    free = (members[f, k] >= 0) & (t_members[t][f] < 0)
                    t_members[t][f][free] = members[f, k][free]
                    continue
                t = len(t_members)
                t_members.append(np.full((n_frames, n_views), -1, np.int64))
                t_points.append(np.full((n_frames, n_joints, 3), np.nan))
                last_frame.append(-1)
                last_points.append(points[f, k])
            t_members[t][f] = members[f, k]
            t_points[t][f] = points[f, k]
            last_frame[t] = int(f)
            keep = np.isfinite(points[f, k]).all(-1)
            last_points[t] = np.where(keep[:, None], points[f, k], last_points[t])   # joints carry over gaps
    if not t_members:
        return np.full((0, n_frames, n_views), -1, np.int64), np.full((0, n_frames, n_joints, 3), np.nan)
    track_members, track_points = np.stack(t_members), np.stack(t_points)
    long_enough = ((track_members >= 0).sum(-1) >= 2).sum(-1) >= min(min_track_frames, n_frames)
    return track_members[long_enough], track_points[long_enough]


def _duplicate_of(cluster: FloatArray, cluster_members: IntArray, f: int, matched: dict[int, int],
                  last_points: list[FloatArray], t_members: list[IntArray], floor_m: float) -> int | None:
    """The track already linked in frame ``f`` that this unlinked cluster is a part of (its joints
    within ``floor_m`` of the track's and no view in common), or None."""
    for t in matched.values():
        if _joint_distance(last_points[t][None], cluster[None])[0, 0] <= floor_m and \
                not ((cluster_members >= 0) & (t_members[t][f] >= 0)).any():
            return t
    return None


def _nearest_sighting(track_points: FloatArray, max_gap_frames: int) -> tuple[IntArray, BoolArray]:
    """Per track and frame, the nearest frame with triangulated joints within ``max_gap_frames``.

    Args:
        track_points: ``(T, F, J, 3)`` metres, NaN where unseen.
    Returns:
        ``(frame (T, F), valid (T, F))``.
    """
    n_frames = track_points.shape[1]
    has = np.isfinite(track_points).all(-1).any(-1)                                     # (T, F)
    frames = np.arange(n_frames)
    before = np.maximum.accumulate(np.where(has, frames, -10 * n_frames - 10), axis=1)
    after = np.minimum.accumulate(np.where(has, frames, 20 * n_frames + 10)[:, ::-1], axis=1)[:, ::-1]
    nearest = np.where(frames - before <= after - frames, before, after)
    valid = np.abs(nearest - frames) <= max_gap_frames
    return np.clip(nearest, 0, n_frames - 1), valid


def attach_unassigned(keypoints: FloatArray, valid: BoolArray, rig: CameraRig, track_members: IntArray,
                      track_points: FloatArray, fps: float, gate_px: float, link_gate_m_s: float,
                      max_gap_frames: int) -> IntArray:
    """Give tracks the detections no cluster took, where the track projects onto them.

    A detection of view ``v`` joins track ``t`` in frame ``f`` when ``t`` has no detection in ``v``
    in ``f``, ``t``'s joints from its nearest frame with joints (within ``max_gap_frames``) project
    within ``gate_px`` of it (robust mean over joints; the gate widens by how far the track may have
    moved since, seen from ``v``), and no other track comes close (:data:`AMBIGUITY_RATIO`).
    Vectorised over frames and views; a greedy loop over the people of a view.

    Args:
        keypoints: ``(F, V, P, J, 3)`` every view's people: x, y (pixels), confidence.
        valid: ``(F, V, P, J)`` joints that count.
        rig: the cameras of the views.
        track_members: ``(T, F, V)`` person index per track, frame and view (-1: none).
        track_points: ``(T, F, J, 3)`` the tracks' joints, metres.
        fps: frame rate, Hz; gate_px: pixels; link_gate_m_s: metres per second.
        max_gap_frames: frames a track's joints are carried to a detection.
    Returns:
        ``(T, F, V)`` the members with the attached detections.
    """
    out = track_members.copy()
    n_tracks, n_frames, n_views = track_members.shape
    n_people = keypoints.shape[2]
    if n_tracks == 0 or n_frames == 0:
        return out
    taken = np.zeros((n_frames, n_views, n_people), bool)
    tt, ff, vv = np.nonzero(track_members >= 0)
    taken[ff, vv, track_members[tt, ff, vv]] = True
    loose = valid.any(-1) & ~taken                                                      # (F, V, P)
    frames = np.flatnonzero(loose.any((1, 2)))
    if frames.size == 0:
        return out
    nearest, near_ok = _nearest_sighting(track_points, max_gap_frames)
    ref = track_points[np.arange(n_tracks)[:, None], nearest[:, frames]]                # (T, n, J, 3)
    ref = np.where(near_ok[:, frames, None, None], ref, np.nan)
    cam = to_cameras(rig.rotations, rig.translations, ref)                              # (V, T, n, J, 3)
    z_ok = np.isfinite(cam[..., 2])
    with np.errstate(invalid="ignore", divide="ignore"):
        depth = np.where(z_ok, cam[..., 2], 0.0).sum(-1) / z_ok.sum(-1)                 # (V, T, n) metres
    proj = rig.project(ref).transpose(2, 0, 1, 3, 4)                                    # (n, V, T, J, 2)
    kp = keypoints[frames]                                                              # (n, V, P, J, 3)
    dist = np.linalg.norm(proj[:, :, :, None] - kp[:, :, None, :, :, :2], axis=-1)     # (n, V, T, P, J)
    w = np.where(valid[frames][:, :, None], np.nan_to_num(kp[..., 2])[:, :, None], 0.0)
    cost = robust_mean(dist, w, 2.0 * gate_px, 1)                                       # (n, V, T, P)
    dt = np.abs(nearest[:, frames] - frames[None]) / fps                               # (T, n)
    focal = np.array([np.mean(c.focal) for c in rig.cameras])
    with np.errstate(invalid="ignore", divide="ignore"):
        widen = focal[:, None, None] * link_gate_m_s * dt[None] / depth                 # (V, T, n)
    gate = gate_px + np.nan_to_num(widen.transpose(2, 0, 1), nan=np.inf, posinf=np.inf)  # (n, V, T)
    ordered = np.sort(cost, axis=2)
    second = ordered[:, :, 1] if n_tracks > 1 else np.full(ordered[:, :, 0].shape, np.inf)  # (n, V, P)
    clear = cost < AMBIGUITY_RATIO * second[:, :, None]
    free_track = (track_members[:, frames] < 0).transpose(1, 2, 0)                      # (n, V, T)
    ok = clear & (cost <= gate[..., None]) & free_track[..., None] & loose[frames][:, :, None]
    cost = np.where(ok, cost, np.inf)
    n_idx, v_idx = np.arange(len(frames))[:, None], np.arange(n_views)[None]
    for _ in range(min(n_tracks, n_people)):              # greedy: the closest pair of each view first
        flat = cost.reshape(len(frames), n_views, -1)
        best = flat.argmin(-1)
        hit = np.isfinite(np.take_along_axis(flat, best[..., None], -1)[..., 0])
        if not hit.any():
            break
        t, p = np.divmod(best, n_people)
        nn, vv = np.nonzero(hit)
        out[t[nn, vv], frames[nn], vv] = p[nn, vv]
        cost[n_idx, v_idx, t] = np.where(hit[..., None], np.inf, cost[n_idx, v_idx, t])
        cost[n_idx, v_idx, :, p] = np.where(hit[..., None], np.inf, cost[n_idx, v_idx, :, p])
    return out


# ---------------------------------------------------------------------------------------- the result
@dataclass
class PeopleTracks:
    """People tracked through a take.

    Attributes:
        keypoints: ``(T, C, F, J, 3)`` each track's 2D per view: the detector's row for that person
            (x, y pixels, confidence), NaN where the view did not see the track.
        points: ``(T, F, J, 3)`` rough triangulation of each track, metres (NaN where unseen).
        views_seen: ``(T, F)`` views that saw each track in each frame.
        detections: ``(T, C, F)`` index of the track's person in ``candidates[f][c]``, -1 where none.
        subject: the performer's track id (-1 when there is no track).
        fps: frame rate, Hz.
    """

    keypoints: FloatArray
    points: FloatArray
    views_seen: IntArray
    detections: IntArray
    subject: int
    fps: float

    @property
    def n_tracks(self) -> int:
        """Number of tracks T."""
        return int(self.keypoints.shape[0])

    def track(self, k: int) -> FloatArray:
        """``(C, F, J, 3)`` track ``k``'s 2D in every view (NaN where a view did not see it)."""
        if not 0 <= k < self.n_tracks:
            known = f"tracks: 0..{self.n_tracks - 1}" if self.n_tracks else "there are no tracks"
            raise InputError(f"track {k} does not exist; {known}")
        return self.keypoints[k]

    def for_subject(self) -> FloatArray:
        """``(C, F, J, 3)`` the performer's 2D, the reconstruction pipeline's input."""
        if self.subject < 0:
            raise InputError("no person was seen by two cameras at once: there is no subject to reconstruct")
        return self.track(self.subject)


def check_subject_rule(rule: object, field: str) -> None:
    """Raise :class:`~posestudio.core.errors.InputError` naming ``field`` unless ``rule`` is a subject rule."""
    if isinstance(rule, str):
        if rule not in SUBJECT_RULES:
            raise InputError(f"{field} must be one of {SUBJECT_RULES}, a track id or a point (x, y[, z]) in "
                             f"metres, got {rule!r}")
    elif isinstance(rule, (int, np.integer)) and not isinstance(rule, bool):
        if rule < 0:
            raise InputError(f"{field}: a track id must be >= 0, got {rule}")
    else:
        try:
            point = np.asarray(rule, dtype=np.float64)
        except (TypeError, ValueError):
            point = np.zeros(0)
        if point.shape not in ((2,), (3,)) or not np.isfinite(point).all():
            raise InputError(f"{field} must be one of {SUBJECT_RULES}, a track id or a point (x, y[, z]) in "
                             f"metres, got {rule!r}")


def choose_subject(tracks: PeopleTracks, rule: str | int | Sequence[float] = "most_seen") -> int:
    """The performer's track id.

    Args:
        tracks: the tracks (their ``subject`` is ignored).
        rule: ``"most_seen"``: the largest sum over frames of views seen times the mean confidence
            of the track's joints in that frame; an int: that track id; ``(x, y)`` or ``(x, y, z)``:
            the track whose median centroid (over the frames it was triangulated) is nearest the
            point, metres (``(x, y)``: distance on the floor).
    Returns:
        The track id, -1 when there are no tracks.
    """
    check_subject_rule(rule, "subject")
    if isinstance(rule, (int, np.integer)) and not isinstance(rule, str):
        if rule >= tracks.n_tracks:
            known = f"tracks: 0..{tracks.n_tracks - 1}" if tracks.n_tracks else "there are no tracks"
            raise InputError(f"subject: track {rule} does not exist; {known}")
        return int(rule)
    if tracks.n_tracks == 0:
        return -1
    if isinstance(rule, str):                                                        # "most_seen"
        conf = tracks.keypoints[..., 2]                                              # (T, C, F, J)
        seen = np.isfinite(conf)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_conf = np.where(seen, conf, 0.0).sum((1, 3)) / seen.sum((1, 3))    # (T, F)
        score = (tracks.views_seen * np.nan_to_num(mean_conf)).sum(-1)
        return int(np.argmax(score))
    point = np.asarray(rule, dtype=np.float64)
    pts = tracks.points[..., : point.size]                                           # (T, F, J, d)
    ok = np.isfinite(pts).all(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = np.where(ok[..., None], pts, 0.0).sum(2) / ok.sum(2)[..., None]  # (T, F, d)
    dist = np.linalg.norm(centroid - point, axis=-1)
    dist = np.where(np.isfinite(dist), dist, np.inf)
    middle = (np.isfinite(dist).sum(1) - 1).clip(0) // 2                            # the lower median
    median = np.take_along_axis(np.sort(dist, axis=1), middle[:, None], 1)[:, 0]       # (T,) inf if never seen
    return int(np.argmin(median))
