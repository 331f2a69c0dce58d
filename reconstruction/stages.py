"""Pieces the live and the offline paths share: the 2D the stages work from, the confidence each
joint gets, the prior's checkpoint cache.

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


