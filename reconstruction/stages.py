"""Pieces the live and the offline paths share: the 2D the stages work from, the identity check
frame by frame, the confidence each joint gets, the prior's checkpoint cache.

Each works on a run of consecutive frames (one frame live, a chunk offline) and gives the same
result for a frame whatever run it arrives in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestudio.core.arrays import BoolArray, FloatArray
from posestudio.core.rig import CameraRig
from posestudio.models.factorization.prior import FactorizationPrior
from posestudio.models.keypoints import H36M17

from .identity import IdentityOptions, _median_distance
from .triangulation import TriangulationOptions, triangulate_robust

#: Joints that move smoothly enough to be carried across a gap as anchors for the prior's fit.
TORSO = [H36M17.index(j) for j in ("pelvis", "r_hip", "l_hip", "spine", "thorax")]

#: Confidence given to joints filled by the factorization prior (not observed by two cameras).
PRIOR_CONFIDENCE = 0.2
#: Confidence of joints carried from a neighbouring frame along a single camera's ray.
CARRIED_CONFIDENCE = 0.25
#: Confidence of joints interpolated across a short gap.
GAP_FILL_CONFIDENCE = 0.3

_PRIORS: dict[str, FactorizationPrior] = {}


def load_prior(path: str | Path) -> FactorizationPrior:
    """The :class:`~posestudio.models.factorization.prior.FactorizationPrior` of a checkpoint, loaded
    once per process; a missing or foreign file raises
    :class:`~posestudio.models.checkpoints.CheckpointError` naming it."""
    key = str(path)
    if key not in _PRIORS:
        _PRIORS[key] = FactorizationPrior.load(path)
    return _PRIORS[key]


@dataclass
class Detections:
    """The 2D every stage after triangulation works from, lenses undone once.

    Attributes:
        keypoints: ``(C, n, 17, 3)`` pixels and confidence (the prior reads these).
        xy: ``(C, n, 17, 2)`` normalised image coordinates; usable: ``(C, n, 17)`` confident ones.
        inliers: ``(C, n, 17)`` views triangulation used; triangulated: ``(n, 17)``.
    """

    keypoints: FloatArray
    xy: FloatArray
    usable: BoolArray
    inliers: BoolArray
    triangulated: BoolArray

    @classmethod
    def of(cls, rig: CameraRig, keypoints: FloatArray, inliers: BoolArray, triangulated: BoolArray,
           min_confidence: float) -> Detections:
        xy = rig.undistort(keypoints[..., :2])
        usable = np.isfinite(xy).all(-1) & (np.nan_to_num(keypoints[..., 2]) >= min_confidence)
        return cls(keypoints, xy, usable, inliers, triangulated)

    @property
    def refine_views(self) -> BoolArray:
        """``(C, n, 17)`` views the refinement fits: triangulated joints keep to the views they were
        made from; the rest use every confident detection (the robust loss sorts them out)."""
        return np.where(self.triangulated[None], self.inliers, self.usable)


def joint_confidence(inliers: BoolArray, detector_confidence: FloatArray, points: FloatArray,
                     interpolated: BoolArray, carried: BoolArray, by_prior: BoolArray) -> FloatArray:
    """``(n, 17)`` confidence of each output joint, in [0, 1].

    Triangulated joints: the mean detector confidence of their inlier views, scaled down below
    three views; joints made otherwise: :data:`GAP_FILL_CONFIDENCE`, :data:`CARRIED_CONFIDENCE`,
    :data:`PRIOR_CONFIDENCE`; 0 where there is no joint.

    Args:
        inliers: ``(C, n, 17)``; detector_confidence: ``(C, n, 17)``; points: ``(n, 17, 3)``;
        interpolated, carried, by_prior: ``(n, 17)`` how each joint was made.
    """
    conf_sum = np.where(inliers, np.nan_to_num(detector_confidence), 0.0).sum(axis=0)
    n_views = inliers.sum(axis=0)
    confidence = np.divide(conf_sum, n_views, out=np.zeros_like(conf_sum), where=n_views > 0)
    confidence = confidence * np.clip((n_views - 1) / 2.0, 0.0, 1.0)
    for made, value in ((interpolated, GAP_FILL_CONFIDENCE), (carried, CARRIED_CONFIDENCE),
                        (by_prior, PRIOR_CONFIDENCE)):
        confidence = np.where(made, value, confidence)
    return np.where(np.isfinite(points).all(axis=-1), confidence, 0.0)


class IdentityTracker:
    """:func:`~posestudio.reconstruction.identity.exclude_other_people`, fed a run of frames at a time.

    The same rule and the same result, frame for frame: until a camera first disagrees wholesale
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
