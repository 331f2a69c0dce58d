"""Keeping the rig calibrated during a session: a camera that moved, found and re-solved from a take's 2D.

The performer is the calibration object. For every camera, each frame's joints are triangulated
from the *other* cameras (leave-one-camera-out, robust: the project's triangulator,
:mod:`posestudio.core.robust_triangulation`, with a view disagreeing as a whole set aside), projected into the camera and compared with its own detections
(their left/right mirror where that fits better: a detector's confusion is no move)
(:mod:`.drift_residuals`). Each joint's steady offset over the take is taken off and the frame's
joints averaged (a clipped mean): that 2D offset per frame is the camera's series
(:func:`~.drift_change.frame_offsets`); ``statistic="error"``: the frame's median error instead.

Detection is a two-window median test (:mod:`.drift_change`): at frame ``t`` the change of the
median over the next ``window_s`` seconds from the median over the previous ``window_s`` seconds,
against a threshold made from the camera's own spread before ``t`` (``spread_factor`` x 1.4826 MAD)
and a floor (``min_shift_px``); the change must also hold over the following ``persist_s`` seconds.
Detector noise, outliers and left/right swaps lasting under half a window do not move a median, so
they do not raise an alarm. The frame of the change is fitted as a step around the peak. A moved
camera also pulls the others' references, so every camera whose score rose near an alarm is a
suspect; the one blamed is the camera whose detections, set aside from the change on, leave the
others flat (an alarm no single camera explains is no move).

Re-solve (:mod:`.drift_resolve`): the moved camera's extrinsics from the frames after the change,
intrinsics and the other cameras fixed. Cameras that did not move keep their pose exactly. After a
camera is re-solved it counts as a new camera from the change on (its old pose before,
:mod:`.drift_segments`), and detection runs again, so several cameras, or one camera twice, can be
found. The whole rig's extrinsics can be re-solved jointly instead (:mod:`.drift_whole_rig`).

Arrays follow the project: keypoints ``(C, F, J, 3)`` x, y (pixels), confidence, NaN where
absent, any joint layout (the command maps the detector's layout); metres, seconds, degrees.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from posestudio.core.arrays import BoolArray, FloatArray, IntArray
from posestudio.core.camera import Camera
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import rotation_angle_deg

from .drift_change import change_frame, change_scores, frame_offsets
from .drift_options import DriftOptions, RigDriftError
from .drift_residuals import leave_one_out, robust_triangulate, sound_points
from .drift_resolve import refine_moved_pose, solve_camera_pose, view_bias
from .drift_segments import SEGMENT_MARK, segment_ranges, split_keypoints


@dataclass
class CameraMove:
    """One camera found moved, and its re-solved pose.

    Attributes:
        camera: the camera's name; frame: first frame at the new pose; time_s: ``frame / fps``.
        rotation_deg: rotation between the old and the new pose, degrees.
        shift_m: distance between the old and the new camera centre, metres.
        residual_before_px / residual_after_px: the camera's median residual over the window before
            and after it to the end of the segment (old pose), pixels; residual_solved_px: after, at
            the new pose (against the other cameras' joints), pixels.
        score: the shift over its threshold at the change (above 1: an alarm).
        observations: joints the pose was solved from.
        rotation: ``(3, 3)``, translation: ``(3,)`` the new world-to-camera pose (metres).
    """

    camera: str
    frame: int
    time_s: float
    rotation_deg: float
    shift_m: float
    residual_before_px: float
    residual_after_px: float
    residual_solved_px: float
    score: float
    observations: int
    rotation: FloatArray
    translation: FloatArray

    def line(self) -> str:
        """One line for the user."""
        return (f"camera {self.camera} moved at frame {self.frame} ({self.time_s:.2f} s): turned "
                f"{self.rotation_deg:.2f} deg, shifted {100 * self.shift_m:.1f} cm; residual "
                f"{self.residual_before_px:.1f} -> {self.residual_after_px:.1f} px, "
                f"{self.residual_solved_px:.1f} px at the re-solved pose")

    def to_json(self) -> dict:
        """The move as a JSON-ready dict."""
        return {"camera": self.camera, "frame": self.frame, "time_s": self.time_s,
                "rotation_deg": self.rotation_deg, "shift_m": self.shift_m,
                "residual_before_px": self.residual_before_px, "residual_after_px": self.residual_after_px,
                "residual_solved_px": self.residual_solved_px, "score": self.score,
                "observations": self.observations, "rotation": self.rotation.tolist(),
                "translation": self.translation.tolist()}


@dataclass
class RigDrift:
    """What a take says about its rig.

    Attributes:
        rig: the rig as given; fps: frames per second of the take.
        moves: cameras found moved, in the order found.
        segmented: the rig with one extra camera per move (``NAME@FRAME``, the re-solved pose).
        segment_camera: ``(S,)`` the index in ``rig`` of each camera of ``segmented``.
        segment_start: ``(S,)`` first frame each camera of ``segmented`` holds (0 for the rig's own).
        residual_px: ``(S, F)`` each segment camera's leave-one-out residual, pixels (NaN outside
            its frames or with too few joints), after the re-solves.
        scores: ``(S, F)`` the last detection pass's shift over threshold.
    """

    rig: CameraRig
    fps: float
    moves: list[CameraMove]
    segmented: CameraRig
    segment_camera: list[int]
    segment_start: list[int]
    residual_px: FloatArray
    scores: FloatArray = field(repr=False)

    @property
    def moved(self) -> bool:
        return bool(self.moves)

    def end_rig(self) -> CameraRig:
        """The rig as it stands at the end of the take: each moved camera at its last pose, the
        others exactly as given."""
        cams = [c.copy() for c in self.rig.cameras]
        for move in sorted(self.moves, key=lambda m: m.frame):  # a camera found twice ends at its later move
            i = self.rig.names.index(move.camera)
            cams[i] = cams[i].with_pose(move.rotation.copy(), move.translation.copy())
        meta = dict(self.rig.metadata)
        if self.moves:
            meta["rig_refine"] = [f"{m.camera} moved at frame {m.frame}" for m in self.moves]
        return CameraRig(cams, meta)

    def split_keypoints(self, keypoints: FloatArray) -> FloatArray:
        """``(C, F, J, D)`` keypoints of ``rig`` laid out for :attr:`segmented`: ``(S, F, J, D)``,
        each segment camera holding its camera's detections over its own frames (NaN elsewhere),
        so a reconstruction uses the re-solved pose from the change on."""
        return split_keypoints(keypoints, self.segment_camera, self.segment_start)

    def lines(self) -> list[str]:
        """The report as lines for the user."""
        if not self.moves:
            return [f"no camera moved ({len(self.rig)} cameras, {self.residual_px.shape[1]} frames)"]
        return [m.line() for m in self.moves]

    def to_json(self) -> dict:
        """The findings as a JSON-ready dict (pixels, degrees, metres, seconds)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(self.residual_px, axis=1)
        return {"cameras": self.rig.names, "frames": int(self.residual_px.shape[1]), "fps": self.fps,
                "moves": [m.to_json() for m in self.moves],
                "median_residual_px": {n: float(v) for n, v in zip(self.segmented.names, med)}}


# --------------------------------------------------------------------------- the whole thing
def check_keypoints(rig: CameraRig, keypoints: FloatArray, fps: float, options: DriftOptions, source: str) -> None:
    """Refuse keypoints that cannot show a move, naming ``source``."""
    kp = np.asarray(keypoints)
    if kp.ndim != 4 or kp.shape[-1] != 3:
        raise RigDriftError(f"{source}: keypoints must be (cameras, frames, joints, 3), got shape {kp.shape}")
    if kp.shape[0] != len(rig):
        raise RigDriftError(f"{source}: keypoints for {kp.shape[0]} cameras, the rig has {len(rig)}")
    if len(rig) < 3:
        raise RigDriftError(f"{source}: finding a moved camera needs at least 3 cameras (the others "
                            f"triangulate its reference), got {len(rig)}: {', '.join(rig.names)}")
    if not (np.isfinite(fps) and fps > 0):
        raise RigDriftError(f"{source}: fps must be positive, got {fps}")
    need = 2 * options.window_frames(fps)
    if kp.shape[1] < need:
        raise RigDriftError(f"{source}: {kp.shape[1]} frames; finding a moved camera needs at least {need} "
                            f"(two windows of {options.window_s:g} s at {fps:g} fps)")


def _detect(cams: list[Camera], seg_cam: list[int], seg_start: list[int], kp: FloatArray, fps: float,
            o: DriftOptions, mirror: IntArray | None
            ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray]:
    """One detection pass over the segmented rig: ``residual (S, F)``, ``points (S, F, J, 3)``, the
    series tested (``(S, F)`` residuals or ``(S, 2, F)`` offsets, by ``o.statistic``), ``scores``
    and ``alarm``, each ``(S, F)``."""
    f = kp.shape[1]
    w = o.window_frames(fps)
    ranges = segment_ranges(seg_cam, seg_start, f)
    residual, _, points, offsets = leave_one_out(CameraRig(cams), split_keypoints(kp, seg_cam, seg_start), ranges, o,
                                                 mirror)
    series = frame_offsets(offsets, o.offset_clip).transpose(0, 2, 1) if o.statistic == "offset" else residual
    scores, _ = change_scores(series, fps, o)
    alarm = np.nan_to_num(scores) > 1.0
    for s, (a, b) in enumerate(ranges):  # a change needs a full window of the segment before it
        alarm[s, :a + w] = False
        alarm[s, b:] = False
    return residual, points, series, scores, alarm


def _unexplained(cams: list[Camera], seg_cam: list[int], seg_start: list[int], kp: FloatArray, fps: float,
                 o: DriftOptions, mirror: IntArray | None, s: int, frame: int) -> float:
    """The other cameras' largest score near ``frame`` once segment camera ``s``'s detections from
    ``frame`` on are set aside: near 0 when ``s`` alone moved, above 1 when another camera did;
    infinite when too little is left to tell (under half the other cameras' frames near ``frame``
    scored, e.g. a 3-camera rig)."""
    w = o.window_frames(fps)
    _, stop = segment_ranges(seg_cam, seg_start, kp.shape[1])[s]
    held = kp.copy()
    held[seg_cam[s], frame:stop] = np.nan
    _, _, _, scores, _ = _detect(cams, seg_cam, seg_start, held, fps, o, mirror)
    own = [k for k, c in enumerate(seg_cam) if c == seg_cam[s]]
    near = np.delete(scores, own, axis=0)[:, max(frame - w, 0):frame + w]
    frames = np.arange(max(frame - w, 0), min(frame + w, kp.shape[1]))
    bounds = np.asarray(segment_ranges(seg_cam, seg_start, kp.shape[1]))
    active = np.delete((frames >= bounds[:, :1]) & (frames < bounds[:, 1:]), own, axis=0)
    if np.isfinite(near).sum() < 0.5 * max(active.sum(), 1):
        return float("inf")
    return float(np.nanmax(near))


def _left_after_solve(cams: list[Camera], seg_cam: list[int], seg_start: list[int], kp: FloatArray, fps: float,
                      o: DriftOptions, mirror: IntArray | None, s: int, frame: int, points: FloatArray) -> float:
    """The cameras' median leave-one-out error (pixels) over ``2 x window_s`` from ``frame`` once
    segment camera ``s`` is re-solved from ``frame`` on: the suspect that did move leaves the least
    (the pair of a moved and an unmoved camera disagrees whatever a third camera does)."""
    w = o.window_frames(fps)
    try:
        rot, t, _, _ = refine_moved_pose(cams, seg_cam, seg_start, kp, s, frame, points, o)
    except RigDriftError:  # too little seen after the change to solve a pose from
        return float("inf")
    trial = cams + [replace(cams[s], name=f"{cams[s].name}{SEGMENT_MARK}{frame}", rotation=rot, translation=t)]
    residual = _detect(trial, seg_cam + [seg_cam[s]], seg_start + [frame], kp, fps, o, mirror)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        left = np.nanmedian(residual[:, frame:frame + 2 * w])
    return float(left) if np.isfinite(left) else float("inf")


def _median_error(camera: Camera, points: FloatArray, pixels: FloatArray) -> float:
    """Median reprojection error (pixels) of ``points (..., 3)`` against ``pixels (..., 2)``; inf
    when none is seen."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        err = float(np.nanmedian(np.linalg.norm(camera.project(points) - pixels, axis=-1)))
    return err if np.isfinite(err) else float("inf")


def _move(name: str, frame: int, fps: float, old: Camera, new: Camera, before: float, after: float, solved: float,
          score: float, observations: int) -> CameraMove:
    """A :class:`CameraMove` from the pose before (``old``) and after (``new``)."""
    return CameraMove(camera=name, frame=frame, time_s=frame / fps,
                      rotation_deg=float(rotation_angle_deg(new.rotation, old.rotation)),
                      shift_m=float(np.linalg.norm(new.center - old.center)), residual_before_px=before,
                      residual_after_px=after, residual_solved_px=solved, score=score, observations=observations,
                      rotation=new.rotation.copy(), translation=new.translation.copy())


def find_moved_cameras(rig: CameraRig, keypoints: FloatArray, fps: float, options: DriftOptions | None = None,
                       source: str = "<keypoints>", mirror: IntArray | None = None) -> RigDrift:
    """Find cameras that moved during a take and re-solve their poses from the frame they moved.

    Each pass finds the alarms (:func:`change_scores`), blames the camera whose detections, set
    aside from its change on, leave the others' residuals flat, re-solves that camera
    (:func:`refine_moved_pose`) and adds it as a new segment camera; passes repeat until no alarm.
    An alarm no single camera explains (every camera's residual up at once), or whose re-solved
    pose does not bring the camera's residual at least halfway back down, is set aside: no move.
    With too few cameras to set one aside (3), each suspect is re-solved and the one that leaves
    the cameras agreeing best is blamed.

    Args:
        rig: the rig the take was calibrated with, ``C`` cameras in the keypoints' order.
        keypoints: ``(C, F, J, 3)`` x, y (pixels), confidence; NaN where absent; any joint layout.
        fps: frames per second; options: :class:`DriftOptions`; source: named in errors;
        mirror: ``(J,)`` each joint's left/right twin (see :func:`leave_one_out`), or None.
    Returns:
        :class:`RigDrift` (``moves`` empty when no camera moved; unmoved cameras never change).
    Raises:
        RigDriftError: fewer than 3 cameras, too few frames, or keypoints of the wrong shape.
    """
    o = options or DriftOptions()
    kp = np.asarray(keypoints, float)
    check_keypoints(rig, kp, fps, o, source)
    mirror = None if mirror is None else np.asarray(mirror, int)
    seg_cam, seg_start = list(range(len(rig))), [0] * len(rig)
    cams = [c.copy() for c in rig.cameras]
    moves: list[CameraMove] = []
    set_aside: list[tuple[int, int, int]] = []  # (segment camera, first, last frame) of rejected alarms
    w = o.window_frames(fps)
    for _ in range(4 * o.max_moves + len(rig)):
        residual, points, series, scores, alarm = _detect(cams, seg_cam, seg_start, kp, fps, o, mirror)
        for k, a, b in set_aside:
            alarm[k, max(a, 0):max(b, 0)] = False
        if not alarm.any() or len(moves) >= o.max_moves:
            break
        # the strongest alarm, and every camera whose residual rose near it (a moved camera pulls the
        # others' references, sometimes above its own threshold): the suspects
        first, t_alarm = np.unravel_index(int(np.argmax(np.where(alarm, scores, -np.inf))), alarm.shape)
        near = np.zeros(alarm.shape[1], bool)
        near[max(t_alarm - w, 0):t_alarm + w] = True
        rose = near & (np.nan_to_num(scores, nan=0.0) > o.suspect_score)
        rose[first] |= alarm[first]
        candidates = [(s,) + change_frame(rose[s], scores[s], series[s], w) for s in np.flatnonzero(rose.any(1))]
        if len(candidates) > 1:  # the camera that explains every alarm: the others flat without it
            left = np.array([_unexplained(cams, seg_cam, seg_start, kp, fps, o, mirror, s, frame)
                             for s, frame, _ in candidates])
            if not np.isfinite(left).any():  # too few cameras to set one aside: re-solve each suspect
                best = int(np.argmin([_left_after_solve(cams, seg_cam, seg_start, kp, fps, o, mirror, s, frame,
                                                        points[s]) for s, frame, _ in candidates]))
            elif left.min() >= 1.0:  # no one camera explains it: the whole take's 2D went bad for a while
                set_aside += [(s, frame - 2 * w, frame + 2 * w) for s, frame, _ in candidates]
                continue
            else:
                best = int(np.argmin(left))
            s, frame, score = candidates[best]
        else:
            s, frame, score = candidates[0]
        stop = segment_ranges(seg_cam, seg_start, kp.shape[1])[s][1]
        cam, phys = cams[s], seg_cam[s]
        own = kp[phys, frame:stop, :, :2]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            before = float(np.nanmedian(residual[s, max(frame - w, 0):frame]))
            after = float(np.nanmedian(residual[s, frame:stop]))
        # the same camera's next segment (found first, e.g. where a roll's offset kept drifting):
        # when its pose already explains these frames, the move began here, not later
        later = next((k for k, (c, b) in enumerate(zip(seg_cam, seg_start)) if c == phys and b == stop), None)
        if later is not None and _median_error(cams[later], points[s, frame:stop], own) < before + 0.5 * (after - before):
            keep = [k for k in range(len(cams)) if k != later]
            reference = np.where(np.isfinite(points[s]), points[s], points[later])
            try:
                rot, t, _, n_obs = refine_moved_pose([cams[k] for k in keep], [seg_cam[k] for k in keep],
                                                     [seg_start[k] for k in keep], kp, keep.index(s), frame,
                                                     reference, o)
            except RigDriftError:
                set_aside.append((s, frame - 2 * w, frame + 2 * w))
                continue
            end = segment_ranges(seg_cam, seg_start, kp.shape[1])[later][1]
            new = cam.with_pose(rot, t)
            new.name = f"{rig.names[phys]}{SEGMENT_MARK}{frame}"
            first = next(i for i, m in enumerate(moves) if m.camera == rig.names[phys] and m.frame == stop)
            moves[first] = _move(rig.names[phys], frame, fps, cam, new, before, after,
                                 _median_error(new, reference[frame:end], kp[phys, frame:end, :, :2]),
                                 max(score, moves[first].score), n_obs)
            cams[later], seg_start[later] = new, frame
            continue
        try:
            rot, t, _, n_obs = refine_moved_pose(cams, seg_cam, seg_start, kp, s, frame, points[s], o)
        except RigDriftError:  # too little seen after the change to solve a pose from
            set_aside.append((s, frame - 2 * w, frame + 2 * w))
            continue
        new = cam.with_pose(rot, t)
        solved = _median_error(new, points[s, frame:stop], own)
        if not solved < before + 0.5 * (after - before):  # the new pose does not explain the rise
            set_aside.append((s, frame - 2 * w, frame + 2 * w))
            continue
        moves.append(_move(rig.names[phys], frame, fps, cam, new, before, after, solved, score, n_obs))
        new.name = f"{rig.names[phys]}{SEGMENT_MARK}{frame}"
        cams.append(new)
        seg_cam.append(phys)
        seg_start.append(frame)
    return RigDrift(rig, fps, moves, CameraRig(cams), seg_cam, seg_start, residual, scores)


def pose_error(estimate: Camera, truth: Camera) -> tuple[float, float]:
    """Rotation (degrees) and centre distance (metres) between two poses of one camera."""
    return (float(rotation_angle_deg(estimate.rotation, truth.rotation)),
            float(np.linalg.norm(estimate.center - truth.center)))


__all__ = ["SEGMENT_MARK", "CameraMove", "DriftOptions", "RigDrift", "RigDriftError", "change_scores",
           "find_moved_cameras", "frame_offsets", "leave_one_out", "pose_error", "refine_moved_pose",
           "robust_triangulate", "segment_ranges", "solve_camera_pose", "sound_points", "split_keypoints",
           "view_bias"]
