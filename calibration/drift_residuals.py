"""Each camera against the others: the performer's joints triangulated from the other cameras
(leave-one-camera-out, the project's robust triangulator with a whole-view rule on top), projected into the camera and compared with its own detections.

A joint's offset is its detection minus that prediction (pixels); a frame's residual is the median
of the offsets' lengths over its joints. A camera that turned or shifted moves every joint's
offset alike; a detector's noise, outliers and fixed per-joint bias do not.
"""

from __future__ import annotations

import warnings

import numpy as np

from posestudio.core.arrays import FloatArray, IntArray
from posestudio.core.rig import CameraRig
from posestudio.core.robust_triangulation import TriangulationOptions, triangulate_robust

from .drift_options import DriftOptions


def robust_triangulate(rig: CameraRig, pixels: FloatArray, weights: FloatArray, robust_px: float,
                       joints: int = 1) -> tuple[FloatArray, FloatArray]:
    """The project's robust triangulation (:func:`~posestudio.core.robust_triangulation.triangulate_robust`:
    pair hypotheses, inlier views within ``2 x robust_px``, weighted DLT and Gauss-Newton on them)
    that also sets aside, frame by frame, a view that disagrees as a whole (a detector that confused
    left and right, or followed someone else, or a camera that moved): the view whose median error
    over the frame's joints exceeds both ``2 x robust_px`` and twice the next view's, when at least
    two views remain.

    Args:
        rig: ``C`` cameras; pixels: ``(C, N, 2)`` distorted pixels, NaN where unseen, ``N = F x
        joints`` (frame-major); weights: ``(C, N)`` confidences (0 where unseen); robust_px: half the
        inlier threshold, pixels; joints: joints per frame (1: no view set aside).
    Returns:
        ``(N, 3)`` points (metres, NaN with fewer than two inlier views) and ``(C, N)`` each view's
        reprojection error, pixels (views set aside and outliers included; NaN where unseen).
    """
    seen = np.isfinite(pixels).all(-1) & (np.nan_to_num(weights) > 0)
    w = np.where(seen, np.nan_to_num(weights), 0.0)
    c = w.shape[0]
    opts = TriangulationOptions(min_confidence=np.finfo(float).tiny, threshold_px=2.0 * robust_px)

    def run(use: FloatArray) -> tuple[FloatArray, FloatArray]:
        tri = triangulate_robust(rig, np.concatenate([pixels, use[..., None]], axis=-1), opts)
        err = np.linalg.norm(rig.project(tri.points) - pixels, axis=-1)
        return tri.points, np.where(seen, err, np.nan)

    pts, err = run(w)
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
            pts, err = run(w * np.repeat(~drop, joints, axis=1))
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
        reference (:func:`sound_points`; NaN elsewhere); ``offsets (C, F, J, 2)``: each joint's
        detection minus prediction, pixels (the mirror's where the frame's residual took it; NaN
        where unseen or in a frame with under ``min_joints`` joints).
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
        delta = delta.reshape(c, f, j, 2)
        if mirror is not None:
            twin_residual = np.where(enough, np.nanmedian(mirrored.reshape(c, f, j), axis=-1), np.nan)
            swapped = twin_residual < residual
            residual = np.where(swapped, twin_residual, residual)
            delta = np.where(swapped[..., None, None], delta_mirrored.reshape(c, f, j, 2), delta)
    offsets = np.where(enough[..., None, None], delta, np.nan)
    return residual, errors, points.reshape(c, f, j, 3), offsets


__all__ = ["leave_one_out", "robust_triangulate", "sound_points"]
