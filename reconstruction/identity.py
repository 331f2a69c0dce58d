"""Cameras whose detector is following someone else: find them by continuity, leave them out.

A 2D keypoint file holds one performer, but a detector can lock onto a bystander in some cameras
for a while. One such camera is outvoted by triangulation's consensus; two of four are not (two
cameras agree on the bystander, two on the performer, and cross-pairs make ghosts).
:class:`IdentityTracker` (:func:`exclude_other_people` over a whole take) uses the body's continuity
instead: wherever a camera disagrees wholesale with the first reconstruction, the frames are
revisited in order and each camera's detections are compared with the previous frame's skeleton
projected into it (from the first such frame to the end of the take, a cheap projection per frame);
a camera whose joints are, as a whole, far from where the performer just was is left out of that
frame. Only earlier frames are used, so it is causal (the same live and offline).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posestudio.core.arrays import BoolArray, FloatArray
from posestudio.core.rig import CameraRig

from .triangulation import TriangulationOptions, triangulate_robust


@dataclass
class IdentityOptions:
    """Settings of :func:`exclude_other_people`.

    Attributes:
        min_joints: a camera is judged on a frame only if it sees at least this many joints.
        disagree_px: a camera whose median joint is farther than this from the reconstruction
            (first pass) or from the previous frame's skeleton (second pass) disagrees, pixels
            at 30 fps (scaled for other frame rates: the body moves farther between frames).
        min_reference_joints: the previous frame must have this many joints to vouch.
    """

    min_joints: int = 6
    disagree_px: float = 60.0
    min_reference_joints: int = 8


def _median_distance(rig: CameraRig, points: FloatArray, keypoints: FloatArray, valid: BoolArray) -> FloatArray:
    """``(C, F)`` median pixel distance between each camera's detections and ``points`` projected.

    Args:
        points: ``(F, J, 3)``; keypoints: ``(C, F, J, 3)``; valid: ``(C, F, J)``.
    """
    proj = rig.project(points)                                                          # (C, F, J, 2)
    dist = np.linalg.norm(proj - keypoints[..., :2], axis=-1)
    dist = np.where(valid & np.isfinite(dist), dist, np.nan)
    out = np.full(dist.shape[:2], np.nan)
    has = np.isfinite(dist).any(-1)
    out[has] = np.nanmedian(dist[has], axis=-1)
    return out


def exclude_other_people(rig: CameraRig, keypoints: FloatArray, points: FloatArray, fps: float,
                         triangulation: TriangulationOptions | None = None,
                         options: IdentityOptions | None = None) -> tuple[FloatArray, BoolArray]:
    """Leave out the views of cameras that follow another person.

    Args:
        rig: the cameras of ``keypoints``.
        keypoints: ``(C, F, J, 3)`` x, y (pixels), confidence; NaN where absent.
        points: ``(F, J, 3)`` a first reconstruction (triangulation), metres.
        fps: frame rate, Hz.
        triangulation: settings for re-triangulating the revisited frames.
        options: :class:`IdentityOptions`.
    Returns:
        ``(keypoints, excluded)``: a copy with excluded views set to NaN, and ``(C, F)`` the
        (camera, frame) pairs left out.
    """
    return IdentityTracker(rig, fps, triangulation, options).update(keypoints, points)


class IdentityTracker:
    """Cameras following another person, found frame by frame and left out; fed a run of frames at a time.

    The same result for a frame whatever run it arrives in: until a camera first disagrees wholesale
    with a frame's reconstruction, nothing is checked; from that frame on, every frame's cameras
    are compared with the previous frame's skeleton projected into them, and a camera whose joints
    are, as a whole, far from it is left out of the frame. The state is that one skeleton, so a
    stream of any length costs the same per frame.

    Args:
        rig: the cameras; fps: frame rate, Hz.
        triangulation: settings for re-triangulating a frame without the cameras left out.
        options: :class:`~posestudio.reconstruction.identity.IdentityOptions`.
    """

    def __init__(self, rig: CameraRig, fps: float, triangulation: TriangulationOptions | None = None,
                 options: IdentityOptions | None = None) -> None:
        self.rig = rig
        self.triangulation = triangulation or TriangulationOptions()
        self.options = options or IdentityOptions()
        self.gate_px = self.options.disagree_px * max(1.0, 30.0 / fps)
        self._checking = False                      # a camera has disagreed: check every frame from now on
        self._previous: FloatArray | None = None    # (J, 3) the last frame's skeleton

    def update(self, keypoints: FloatArray, points: FloatArray) -> tuple[FloatArray, BoolArray]:
        """Check the next frames.

        Args:
            keypoints: ``(C, n, J, 3)`` x, y (pixels), confidence of consecutive frames.
            points: ``(n, J, 3)`` their first reconstruction (triangulation), metres.
        Returns:
            ``(keypoints, excluded)``: a copy with the excluded views NaN, and ``(C, n)`` the
            (camera, frame) pairs left out (their frames need triangulating again).
        """
        opts, gate = self.options, self.gate_px
        kp = np.array(keypoints, dtype=np.float64, copy=True)
        valid = np.isfinite(kp[..., :2]).all(-1) & (np.nan_to_num(kp[..., 2]) >= self.triangulation.min_confidence)
        judged = valid.sum(-1) >= opts.min_joints                                            # (C, n)
        excluded = np.zeros(judged.shape, bool)
        current = np.array(points, dtype=np.float64, copy=True)
        begin = 0
        if not self._checking:
            suspect = (judged & (_median_distance(self.rig, current, kp, valid) > gate)).any(axis=0)
            begin = int(np.argmax(suspect)) if suspect.any() else kp.shape[1]
            self._checking = bool(suspect.any())
        # a loop over frames: each is checked against the skeleton the frame before it ended with
        for f in range(begin, kp.shape[1]):
            reference = current[f - 1] if f > 0 else self._previous
            if reference is None or np.isfinite(reference).all(-1).sum() < opts.min_reference_joints:
                continue
            far = _median_distance(self.rig, reference[None], kp[:, f:f + 1], valid[:, f:f + 1])[:, 0] > gate
            out = judged[:, f] & far
            if not out.any() or (judged[:, f] & ~far).sum() < 2:
                continue                                   # nobody to exclude, or too few cameras left
            kp[out, f] = np.nan
            excluded[out, f] = True
            redo = triangulate_robust(self.rig, kp[:, f:f + 1], self.triangulation).points[0]
            current[f] = np.where(np.isfinite(redo), redo, reference)   # the reference carries gaps
        if current.shape[0]:
            self._previous = current[-1]
        return kp, excluded

    def triangulate(self, keypoints: FloatArray) -> tuple[FloatArray, FloatArray, BoolArray, BoolArray]:
        """Triangulate the next frames, leaving out the cameras that follow someone else.

        Args:
            keypoints: ``(C, n, J, 3)`` x, y (pixels), confidence of consecutive frames.
        Returns:
            ``(keypoints, points (n, J, 3), inliers (C, n, J), excluded (C, n))``: the keypoints
            with the excluded views NaN (the same array when nothing was excluded), the points in
            metres and the views they were made from.
        """
        tri = triangulate_robust(self.rig, keypoints, self.triangulation)
        cleaned, excluded = self.update(keypoints, tri.points)
        if not excluded.any():
            return keypoints, tri.points, tri.inliers, excluded
        redo = excluded.any(axis=0)                       # triangulated again without the cameras left out
        again = triangulate_robust(self.rig, cleaned[:, redo], self.triangulation)
        tri.points[redo], tri.inliers[:, redo] = again.points, again.inliers
        return cleaned, tri.points, tri.inliers, excluded
