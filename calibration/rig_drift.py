"""Keeping the rig calibrated during a session: a camera that moved, found and re-solved from a take's 2D.

The performer is the calibration object. For every camera, each frame's joints are triangulated
from the *other* cameras (leave-one-camera-out, robust: Cauchy-reweighted DLT that also sets aside a
view disagreeing as a whole), projected into the camera and compared with its own detections
(their left/right mirror where that fits better: a detector's confusion is no move). The frame's
median offset (detection minus prediction, per axis over joints, a 2D vector) is that camera's
series: a camera that turned shifts every joint alike, while a detector's fixed per-joint bias and
noise mostly cancel in the median (``statistic="error"``: the median error instead).

Detection is a two-window median test: at frame ``t`` the change of the median over the next
``window_s`` seconds from the median over the previous ``window_s`` seconds, against a threshold
made from the camera's own spread before ``t`` (``spread_factor`` x 1.4826 MAD), its level
(``relative_shift``) and a floor (``min_shift_px``); the change must also hold over the following
``persist_s`` seconds. Detector noise, outliers and left/right swaps lasting under half a window do
not move a median, so they do not raise an alarm. The frame of the change is fitted as a step
around the peak. A moved camera also pulls the others' references, so every camera whose score
rose near an alarm is a suspect; the one blamed is the camera whose detections, set aside from the
change on, leave the others flat (an alarm no single camera explains is no move).

Re-solve: the moved camera's extrinsics from the frames after the change (intrinsics fixed):
the joints triangulated from the other cameras (so the world frame and scale stay the rig's) and
its own detections, PnP with RANSAC on undistorted points, then a robust (Cauchy) Levenberg-Marquardt
on the 6 pose parameters against distorted pixels, then a bundle adjustment by alternation (the
joints triangulated from every camera, the moved one at its new pose; the pose re-solved against
them; the other cameras fixed, so the gauge is theirs). Cameras that did not move keep their pose
exactly. After a camera is re-solved it counts as a new camera from the change on (its old pose
before), and detection runs again, so several cameras, or one camera twice, can be found.

Arrays follow the project: keypoints ``(C, F, J, 3)`` x, y (pixels), confidence, NaN where
absent, any joint layout (the command maps the detector's layout); metres, seconds, degrees.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.optimize import least_squares

from posestudio.core.arrays import BoolArray, FloatArray, IntArray
from posestudio.core.camera import Camera
from posestudio.core.dlt import triangulate_dlt
from posestudio.core.rig import CameraRig
from posestudio.core.robust import cauchy_weights
from posestudio.core.rotations import rodrigues_to_matrix, rotation_angle_deg

from .errors import CalibrationInputError

#: separates a camera's name from the frame its re-solved pose starts at, in a segmented rig
SEGMENT_MARK = "@"


class RigDriftError(CalibrationInputError):
    """Keypoints that cannot show whether a camera moved (too few cameras or frames, wrong shape)."""


@dataclass(frozen=True)
class DriftOptions:
    """How a moved camera is found and re-solved.

    Attributes:
        statistic: ``"offset"``: the frame's median offset (a 2D vector) is tested for a change in
            any direction (a turn or a shift: the joints move alike); ``"error"``: the frame's
            median error is tested for a rise (also sees a roll about the optical axis with the
            performer mid-image, which moves the joints apart rather than alike, but a detector's
            fixed per-joint bias raises its floor).
        window_s: length of each of the two windows compared, seconds.
        persist_s: the shift must hold over this long after the change, seconds.
        spread_factor: threshold in robust spreads (1.4826 MAD) of the camera's residual before.
        relative_shift: threshold as a share of the camera's median residual before.
        min_shift_px: threshold floor, pixels.
        min_confidence: detections less confident are ignored.
        min_joints: a frame's residual needs at least this many joints.
        suspect_score: near an alarm, every camera whose score (shift over threshold) passes this is
            a suspect, tested for whether its move alone explains the others' rise.
        robust_px: Cauchy scale of the triangulation's reweighting and the pose solve, pixels.
        consistency_px: joints with a view further off are left out of a pose solve, pixels.
        reference_views: joints seen by fewer cameras are left out of a pose solve.
        max_moves: most moves looked for in one take.
        max_solve_points: the pose solve uses at most this many joints (evenly subsampled).
        adjust_rounds: rounds of the bundle adjustment by alternation after the first solve.
        bias_correction: take the camera's fixed per-joint offset, measured before the change, off
            its detections after it (a detector errs alike on a view turned by a few degrees).
    """

    statistic: str = "offset"
    window_s: float = 2.0
    persist_s: float = 3.0
    spread_factor: float = 3.0
    relative_shift: float = 0.5
    min_shift_px: float = 5.0
    min_confidence: float = 0.3
    min_joints: int = 5
    suspect_score: float = 0.5
    robust_px: float = 6.0
    consistency_px: float = 30.0
    reference_views: int = 2
    max_moves: int = 4
    max_solve_points: int = 6000
    adjust_rounds: int = 4
    bias_correction: bool = True

    def window_frames(self, fps: float) -> int:
        """Frames in one window at ``fps`` (at least 3)."""
        return max(3, round(self.window_s * fps))


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


# --------------------------------------------------------------------------- geometry
def segment_ranges(segment_camera: list[int], segment_start: list[int], n_frames: int) -> list[tuple[int, int]]:
    """``[start, stop)`` frames of each segment camera: from its start to the next start of the
    same camera (or the end of the take)."""
    out = []
    for cam, start in zip(segment_camera, segment_start):
        later = [b for c, b in zip(segment_camera, segment_start) if c == cam and b > start]
        out.append((start, min(later, default=n_frames)))
    return out


def split_keypoints(keypoints: FloatArray, segment_camera: list[int], segment_start: list[int]) -> FloatArray:
    """``(C, F, J, D)`` -> ``(S, F, J, D)``: each segment camera's detections over its own frames."""
    kp = np.asarray(keypoints, float)
    out = np.full((len(segment_camera),) + kp.shape[1:], np.nan)
    for s, (a, b) in enumerate(segment_ranges(segment_camera, segment_start, kp.shape[1])):
        out[s, a:b] = kp[segment_camera[s], a:b]
    return out


def robust_triangulate(rig: CameraRig, pixels: FloatArray, weights: FloatArray, robust_px: float,
                       joints: int = 1, iterations: int = 3) -> tuple[FloatArray, FloatArray]:
    """Cauchy-reweighted DLT (iteratively reweighted least squares) that also sets aside, frame by
    frame, a view that disagrees as a whole (a detector that confused left and right, or followed
    someone else, or a camera that moved): the view whose median error over the frame's joints
    exceeds both ``2 x robust_px`` and twice the next view's, when at least two views remain.

    Args:
        rig: ``C`` cameras; pixels: ``(C, N, 2)`` distorted pixels, NaN where unseen, ``N = F x
        joints`` (frame-major); weights: ``(C, N)`` confidences (0 where unseen); robust_px: Cauchy
        scale, pixels; joints: joints per frame (1: no view set aside).
    Returns:
        ``(N, 3)`` points (metres, NaN with fewer than two views) and ``(C, N)`` each view's
        reprojection error, pixels (views set aside included).
    """
    poses = np.stack([c.projection_matrix for c in rig.cameras])
    normed = rig.undistort(pixels)
    focal = rig.focal_x[:, None]
    w = np.where(np.isfinite(normed).all(-1), np.nan_to_num(weights), 0.0)
    c = w.shape[0]

    def errors(pts: FloatArray) -> FloatArray:
        cam = np.einsum("cij,nj->cni", poses[:, :, :3], pts) + poses[:, None, :, 3]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(w > 0, focal * np.linalg.norm(cam[..., :2] / cam[..., 2:3] - normed, axis=-1), np.nan)

    def irls(weights0: FloatArray) -> tuple[FloatArray, FloatArray]:
        pts = triangulate_dlt(poses, normed, weights0, 2)
        err = errors(pts)
        for _ in range(iterations):
            pts = triangulate_dlt(poses, normed, weights0 * cauchy_weights(np.nan_to_num(err, nan=1e6) ** 2, robust_px), 2)
            err = errors(pts)
        return pts, err

    pts, err = irls(w)
    if joints > 1 and c >= 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            view_med = np.nanmedian(err.reshape(c, -1, joints), axis=-1)            # (C, F)
        ranked = np.sort(np.nan_to_num(view_med, nan=-1.0), axis=0)
        worst, second = ranked[-1], ranked[-2]
        views = np.isfinite(view_med).sum(0)
        drop = (np.nan_to_num(view_med, nan=-1.0) == worst) & (worst > 2 * robust_px) & (worst > 2 * second) \
            & (views >= 3)
        if drop.any():
            keep = np.repeat(~drop, joints, axis=1)
            pts, _ = irls(w * keep)
            err = errors(pts)
    return pts, err


def sound_points(points: FloatArray, errors: FloatArray, options: DriftOptions) -> FloatArray:
    """``(N, 3)`` triangulated points kept as a reference for a pose solve: seen by at least
    ``reference_views`` cameras (or all ``C``) and no view more than ``consistency_px`` off; NaN
    elsewhere.

    Args:
        points: ``(N, 3)`` metres; errors: ``(C, N)`` each view's reprojection error, pixels (NaN
            where a camera does not see the point).
    """
    views = np.isfinite(errors).sum(0)
    worst = np.max(np.nan_to_num(errors, nan=0.0), axis=0)
    keep = (views >= min(options.reference_views, errors.shape[0])) & (worst <= options.consistency_px)
    return np.where(keep[:, None], points, np.nan)


def leave_one_out(rig: CameraRig, keypoints: FloatArray, frames: list[tuple[int, int]] | None,
                  options: DriftOptions, mirror: IntArray | None = None
                  ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Each camera against the joints triangulated from the other cameras.

    Args:
        rig: ``C`` cameras; keypoints: ``(C, F, J, 3)``; frames: each camera's ``[start, stop)``
            (None: every frame); options: :class:`DriftOptions`; mirror: ``(J,)`` each joint's
            left/right twin (itself when none), or None: a frame's residual is then the smaller of
            the detections' and their mirror's (a detector's left/right confusion is no move).
    Returns:
        ``residual (C, F)``: median error over the frame's joints, pixels (NaN with fewer than
        ``min_joints``); ``errors (C, F, J)``: each joint's error, pixels; ``points (C, F, J, 3)``:
        the joints triangulated without that camera, metres, kept only where they are a sound
        reference (:func:`sound_points`; NaN elsewhere); ``offset (C, F, 2)``: the frame's median
        (per axis, over joints) of detection minus prediction, pixels: a camera that turned shifts
        every joint alike, while a detector's fixed per-joint bias and noise mostly cancel.
    """
    c, f, j, _ = keypoints.shape
    conf = np.nan_to_num(keypoints[..., 2])
    seen = np.isfinite(keypoints[..., :2]).all(-1) & (conf >= options.min_confidence)
    if frames is not None:
        active = np.zeros((c, f), bool)
        for i, (a, b) in enumerate(frames):
            active[i, a:b] = True
        seen &= active[..., None]
    pix = np.where(seen[..., None], keypoints[..., :2], np.nan).reshape(c, f * j, 2)
    w = np.where(seen, conf, 0.0).reshape(c, f * j)
    errors = np.full((c, f * j), np.nan)
    points = np.full((c, f * j, 3), np.nan)
    mirrored = np.full((c, f * j), np.nan)
    delta = np.full((c, f * j, 2), np.nan)
    delta_mirrored = np.full((c, f * j, 2), np.nan)
    for i in range(c):  # one camera left out at a time; frames x joints vectorised
        keep = [k for k in range(c) if k != i]
        pts, err = robust_triangulate(rig.subset([rig.names[k] for k in keep]), pix[keep], w[keep],
                                      options.robust_px, j)
        points[i] = sound_points(pts, err, options)
        predicted = rig.cameras[i].project(pts)
        delta[i] = pix[i] - predicted
        errors[i] = np.linalg.norm(delta[i], axis=-1)
        if mirror is not None:
            twin = pix[i].reshape(f, j, 2)[:, mirror].reshape(-1, 2)
            delta_mirrored[i] = twin - predicted
            mirrored[i] = np.linalg.norm(delta_mirrored[i], axis=-1)
    errors = errors.reshape(c, f, j)
    enough = np.isfinite(errors).sum(-1) >= options.min_joints
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        residual = np.where(enough, np.nanmedian(errors, axis=-1), np.nan)
        offset = np.where(enough[..., None], np.nanmedian(delta.reshape(c, f, j, 2), axis=2), np.nan)
        if mirror is not None:
            twin_residual = np.where(enough, np.nanmedian(mirrored.reshape(c, f, j), axis=-1), np.nan)
            swapped = twin_residual < residual
            residual = np.where(swapped, twin_residual, residual)
            offset = np.where(swapped[..., None], np.nanmedian(delta_mirrored.reshape(c, f, j, 2), axis=2), offset)
    return residual, errors, points.reshape(c, f, j, 3), offset


# --------------------------------------------------------------------------- detection
def _window_stats(r: FloatArray, w: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Median, robust spread and count of finite values of ``r (..., F)`` over every window of ``w``
    frames ending before frame ``t`` (index ``t``, ``(..., F + 1)``; NaN where under half finite)."""
    pad = np.full(r.shape[:-1] + (w,), np.nan)
    win = sliding_window_view(np.concatenate([pad, r], -1), w, axis=-1)  # (..., F + 1, w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        count = np.isfinite(win).sum(-1)
        med = np.nanmedian(win, -1)
        mad = 1.4826 * np.nanmedian(np.abs(win - med[..., None]), -1)
    ok = count >= max(2, w // 2)
    return np.where(ok, med, np.nan), np.where(ok, mad, np.nan), count


def change_scores(series: FloatArray, fps: float, options: DriftOptions) -> tuple[FloatArray, FloatArray]:
    """Two-window median shift of each camera's residual over its threshold.

    Args:
        series: ``(C, F)`` per-frame residuals (a rise counts), or ``(C, D, F)`` per-frame offsets
            (a change in any direction counts), pixels, NaN allowed; fps: frame rate.
    Returns:
        ``scores (C, F)``: at frame ``t``, the change of the median from the window before ``t`` to
        the window from ``t`` on, over the threshold (``max(min_shift_px, spread_factor x spread
        before, relative_shift x level before)``; spread: 1.4826 MAD, per axis, its norm), also
        requiring the median over ``persist_s`` from ``t`` to stay changed (the smaller of the two
        ratios; NaN where a window lacks frames); ``shift (C, F)``: the change, pixels.
    """
    x = series[:, None] if series.ndim == 2 else series
    w = options.window_frames(fps)
    p = max(w, round(options.persist_s * fps))
    f = x.shape[-1]
    before_med, before_mad, _ = _window_stats(x, w)                 # index t: frames [t - w, t)
    rev = x[..., ::-1]
    after_med = _window_stats(rev, w)[0][..., ::-1][..., 1:]        # reversed: frames [t, t + w)
    long_med = _window_stats(rev, p)[0][..., ::-1][..., 1:]
    before_med, before_mad = before_med[..., :f], before_mad[..., :f]
    spread = np.linalg.norm(before_mad, axis=1)
    level = np.linalg.norm(before_med, axis=1)
    threshold = np.maximum(options.min_shift_px,
                           np.maximum(options.spread_factor * spread, options.relative_shift * level))
    # the persistence window may run past the end of the take: then the 1-window after suffices
    long_med = np.where(np.isfinite(long_med), long_med, after_med)
    if series.ndim == 2:
        shift, persist = (after_med - before_med)[:, 0], (long_med - before_med)[:, 0]
    else:
        shift = np.linalg.norm(after_med - before_med, axis=1)
        persist = np.linalg.norm(long_med - before_med, axis=1)
    with np.errstate(invalid="ignore"):
        scores = np.minimum(shift, persist) / threshold
    return scores, shift


# --------------------------------------------------------------------------- re-solve
def solve_camera_pose(camera: Camera, points: FloatArray, pixels: FloatArray, robust_px: float,
                      max_points: int = 6000, pnp: bool = True) -> tuple[FloatArray, FloatArray, float, int]:
    """A camera's world-to-camera pose from known 3D points and its detections (intrinsics fixed).

    PnP with RANSAC on undistorted points (the camera's current pose tried too), then
    Levenberg-Marquardt with a Cauchy loss (scale ``robust_px``) on the rotation vector and
    translation against distorted pixels.

    Args:
        camera: the camera (its intrinsics and current pose); points: ``(N, 3)`` metres;
        pixels: ``(N, 2)`` its detections, pixels (rows with a NaN are ignored);
        pnp: also start from PnP (False: from the current pose only).
    Returns:
        ``rotation (3, 3)``, ``translation (3,)`` metres, median reprojection error (pixels) and the
        number of points used.
    """
    ok = np.isfinite(points).all(-1) & np.isfinite(pixels).all(-1)
    pts, pix = points[ok], pixels[ok]
    if len(pts) > max_points:
        pick = np.linspace(0, len(pts) - 1, max_points).round().astype(int)
        pts, pix = pts[pick], pix[pick]
    if len(pts) < 12:
        raise RigDriftError(f"camera {camera.name}: only {len(pts)} joints after the change to solve its pose from")
    normed = camera.undistort_points(pix)
    focal = camera.focal[0]

    def residuals(x: FloatArray) -> FloatArray:
        res = camera.with_pose(rodrigues_to_matrix(x[:3]), x[3:]).project(pts) - pix
        return np.nan_to_num(res, nan=10 * robust_px).ravel()

    starts = [np.r_[camera.rvec, camera.translation]]
    if pnp:
        found, rvec, tvec, inliers = cv2.solvePnPRansac(
            pts.astype(np.float64), normed.astype(np.float64), np.eye(3), None,
            reprojectionError=2.0 * robust_px / focal, iterationsCount=200, confidence=0.999)
        if found and inliers is not None and len(inliers) >= 6:
            starts.append(np.r_[rvec.ravel(), tvec.ravel()])
    best = None
    for x0 in starts:
        sol = least_squares(residuals, x0, loss="cauchy", f_scale=robust_px, x_scale="jac", method="trf")
        if best is None or sol.cost < best.cost:
            best = sol
    rot, t = rodrigues_to_matrix(best.x[:3]), best.x[3:].copy()
    err = np.linalg.norm(camera.with_pose(rot, t).project(pts) - pix, axis=-1)
    return rot, t, float(np.nanmedian(err)), len(pts)


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
            ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, BoolArray]:
    """One detection pass over the segmented rig: ``residual (S, F)``, ``points (S, F, J, 3)``, the
    series tested (``(S, F)`` residuals or ``(S, 2, F)`` offsets, by ``o.statistic``), ``scores``,
    ``shift`` and ``alarm``, each ``(S, F)``."""
    f = kp.shape[1]
    w = o.window_frames(fps)
    ranges = segment_ranges(seg_cam, seg_start, f)
    residual, _, points, offset = leave_one_out(CameraRig(cams), split_keypoints(kp, seg_cam, seg_start), ranges, o,
                                                mirror)
    series = offset.transpose(0, 2, 1) if o.statistic == "offset" else residual
    scores, shift = change_scores(series, fps, o)
    alarm = np.nan_to_num(scores) > 1.0
    for s, (a, b) in enumerate(ranges):  # a change needs a full window of the segment before it
        alarm[s, :a + w] = False
        alarm[s, b:] = False
    return residual, points, series, scores, shift, alarm


def _peak(alarm: BoolArray, scores: FloatArray, shift: FloatArray, series: FloatArray, w: int) -> tuple[int, float]:
    """The frame one camera's strongest alarm says it moved at, and the alarm's score.

    The two-window shift peaks on a plateau around the change (a median moves once half a window
    has changed), so the frame is then fitted as a step: within a window either side of the peak,
    the split that leaves the fewest frames on the wrong side of the midpoint between the levels
    before and after (vectorised by cumulative sums); ``series`` is ``(F,)`` residuals or ``(D, F)``
    offsets (then their distance from the level before)."""
    t0 = int(np.argmax(np.where(alarm, scores, -np.inf)))
    edges = np.flatnonzero(~alarm)
    a = int(edges[edges < t0].max() + 1) if (edges < t0).any() else 0
    b = int(edges[edges > t0].min()) if (edges > t0).any() else len(alarm)
    peak = a + int(np.nanargmax(shift[a:b]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if series.ndim == 2:
            series = np.linalg.norm(series - np.nanmedian(series[:, max(peak - w, 0):peak], axis=1)[:, None], axis=0)
        low = np.nanmedian(series[max(peak - w, 0):peak])
        high = np.nanmedian(series[peak:peak + w])
    if not (np.isfinite(low) and np.isfinite(high)):
        return peak, float(scores[t0])
    lo, hi = max(peak - w, 0), min(peak + w, len(series))
    seg = series[lo:hi]
    mid = 0.5 * (low + high)
    above = np.r_[0, np.cumsum(np.nan_to_num(seg, nan=-np.inf) > mid)]   # above mid before each split
    below = np.r_[0, np.cumsum(np.nan_to_num(seg, nan=np.inf) < mid)]
    wrong = above + (below[-1] - below)                                   # high before + low after
    best = np.flatnonzero(wrong == wrong.min())
    return lo + int(best[len(best) // 2]), float(scores[t0])


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
    _, _, _, scores, _, _ = _detect(cams, seg_cam, seg_start, held, fps, o, mirror)
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


def view_bias(camera: Camera, points: FloatArray, keypoints: FloatArray, o: DriftOptions) -> FloatArray:
    """A camera's fixed offset per joint: the median over frames of its detection minus the
    projection of the joints the other cameras triangulate (detections further off than
    ``consistency_px`` left out; 0 where fewer than 10 frames remain).

    Args:
        points: ``(F, J, 3)`` metres (the other cameras' joints); keypoints: ``(F, J, 3)`` its own.
    Returns:
        ``(J, 2)`` pixels.
    """
    res = keypoints[..., :2] - camera.project(points)
    ok = (np.linalg.norm(res, axis=-1) <= o.consistency_px) & (np.nan_to_num(keypoints[..., 2]) >= o.min_confidence)
    res = np.where(ok[..., None], res, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        bias = np.nanmedian(res, axis=0)
    return np.where((ok.sum(0) >= 10)[:, None], np.nan_to_num(bias), 0.0)


def refine_moved_pose(cams: list[Camera], seg_cam: list[int], seg_start: list[int], kp: FloatArray, s: int,
                      frame: int, points: FloatArray, o: DriftOptions) -> tuple[FloatArray, FloatArray, float, int]:
    """Segment camera ``s``'s new pose from ``frame`` on: PnP and a robust solve against the joints the
    other cameras triangulate, then ``o.adjust_rounds`` rounds of bundle adjustment by alternation
    (joints triangulated from every camera with the new pose, the pose re-solved against them; the
    other cameras fixed, so they keep the world frame and scale). With ``o.bias_correction`` the
    camera's fixed per-joint offset, measured before the change (:func:`view_bias`), is taken off
    its detections after it.

    Args:
        cams, seg_cam, seg_start: the segmented rig; kp: ``(C, F, J, 3)`` the take; s: the segment
        camera that moved at ``frame``; points: ``(F, J, 3)`` its leave-one-out reference joints.
    Returns: rotation ``(3, 3)``, translation ``(3,)`` metres, median reprojection error (pixels),
    joints used."""
    start, stop = segment_ranges(seg_cam, seg_start, kp.shape[1])[s]
    own = kp[seg_cam[s]]
    obs = own[frame:stop, :, :2]
    if o.bias_correction:
        obs = obs - view_bias(cams[s], points[start:frame], own[start:frame], o)
    ok = np.nan_to_num(own[frame:stop, :, 2]) >= o.min_confidence
    pix = np.where(ok[..., None], obs, np.nan).reshape(-1, 2)
    rot, t, err, n = solve_camera_pose(cams[s], points[frame:stop].reshape(-1, 3), pix, o.robust_px,
                                       o.max_solve_points)
    if o.adjust_rounds == 0:
        return rot, t, err, n
    # the take from `frame` to `stop` with camera s at its new pose, as one more segment camera
    trial = cams + [replace(cams[s], name=f"{cams[s].name}{SEGMENT_MARK}{frame}", rotation=rot, translation=t)]
    t_cam, t_start = seg_cam + [seg_cam[s]], seg_start + [frame]
    split = split_keypoints(kp, t_cam, t_start)[:, frame:stop]
    conf = np.nan_to_num(split[..., 2])
    seen = np.isfinite(split[..., :2]).all(-1) & (conf >= o.min_confidence)
    flat = np.where(seen[..., None], split[..., :2], np.nan).reshape(len(trial), -1, 2)
    flat[-1] = pix
    weights = np.where(seen, conf, 0.0).reshape(len(trial), -1)
    for _ in range(o.adjust_rounds):
        joint, err = robust_triangulate(CameraRig(trial), flat, weights, o.robust_px)
        joint = sound_points(joint, err, o)
        rot, t, err, n = solve_camera_pose(trial[-1], joint, pix, o.robust_px, o.max_solve_points, pnp=False)
        trial[-1] = trial[-1].with_pose(rot, t)
    return rot, t, err, n


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
        residual, points, series, scores, shift, alarm = _detect(cams, seg_cam, seg_start, kp, fps, o, mirror)
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
        candidates = [(s,) + _peak(rose[s], scores[s], shift[s], series[s], w) for s in np.flatnonzero(rose.any(1))]
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
        try:
            rot, t, _, n_obs = refine_moved_pose(cams, seg_cam, seg_start, kp, s, frame, points[s], o)
        except RigDriftError:  # too little seen after the change to solve a pose from
            set_aside.append((s, frame - 2 * w, frame + 2 * w))
            continue
        cam = cams[s]
        new = cam.with_pose(rot, t)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            before = float(np.nanmedian(residual[s, max(frame - w, 0):frame]))
            after = float(np.nanmedian(residual[s, frame:stop]))
            own = kp[seg_cam[s], frame:stop, :, :2]
            solved = float(np.nanmedian(np.linalg.norm(new.project(points[s, frame:stop]) - own, axis=-1)))
        if not solved < before + 0.5 * (after - before):  # the new pose does not explain the rise
            set_aside.append((s, frame - 2 * w, frame + 2 * w))
            continue
        phys = seg_cam[s]
        moves.append(CameraMove(
            camera=rig.names[phys], frame=frame, time_s=frame / fps,
            rotation_deg=float(rotation_angle_deg(rot, cam.rotation)),
            shift_m=float(np.linalg.norm(new.center - cam.center)),
            residual_before_px=before, residual_after_px=after, residual_solved_px=solved,
            score=score, observations=n_obs, rotation=rot, translation=t))
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
           "find_moved_cameras", "leave_one_out", "pose_error", "refine_moved_pose", "robust_triangulate",
           "segment_ranges", "solve_camera_pose", "sound_points", "split_keypoints", "view_bias"]
