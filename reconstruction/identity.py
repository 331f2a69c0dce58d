"""Cameras whose detector is following someone else: find them by continuity, leave them out.

A 2D keypoint file holds one performer, but a detector can lock onto a bystander in some cameras
for a while. One such camera is outvoted by triangulation's consensus; two of four are not (two
cameras agree on the bystander, two on the performer, and cross-pairs make ghosts).
:func:`exclude_other_people` uses the body's continuity instead: wherever a camera disagrees
wholesale with the first reconstruction, the frames are revisited in order and each camera's
detections are compared with the previous frame's skeleton projected into it (from the first
such frame to the end of the take, a cheap projection per frame); a camera whose
joints are, as a whole, far from where the performer just was is left out of that frame. Only
earlier frames are used, so it is causal (the same live and offline).
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
    opts = options or IdentityOptions()
    tri_opts = triangulation or TriangulationOptions()
    kp = np.array(keypoints, dtype=np.float64, copy=True)
    valid = np.isfinite(kp[..., :2]).all(-1) & (np.nan_to_num(kp[..., 2]) >= tri_opts.min_confidence)
    judged = valid.sum(-1) >= opts.min_joints                                            # (C, F)
    gate = opts.disagree_px * max(1.0, 30.0 / fps)
    excluded = np.zeros(judged.shape, bool)
    suspect = (judged & (_median_distance(rig, points, kp, valid) > gate)).any(axis=0)  # (F,)
    if not suspect.any():
        return kp, excluded
    current = np.array(points, dtype=np.float64, copy=True)
    # from the first suspect frame on, every frame is checked against the one before: inside a
    # swap the first reconstruction can look self-consistent (a mix of both people)
    for f in range(int(np.flatnonzero(suspect)[0]), kp.shape[1]):
        reference = current[f - 1] if f > 0 else None
        if reference is None or np.isfinite(reference).all(-1).sum() < opts.min_reference_joints:
            continue
        far = _median_distance(rig, reference[None], kp[:, f:f + 1], valid[:, f:f + 1])[:, 0] > gate
        out = judged[:, f] & far
        if not out.any() or (judged[:, f] & ~far).sum() < 2:
            continue                                   # nobody to exclude, or too few cameras left
        kp[out, f] = np.nan
        excluded[out, f] = True
        redo = triangulate_robust(rig, kp[:, f:f + 1], tri_opts).points[0]
        current[f] = np.where(np.isfinite(redo), redo, reference)   # the reference carries gaps
    return kp, excluded
