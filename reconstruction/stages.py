"""Pieces the live and the offline paths share: the front end (left/right swaps undone, robust
triangulation, cameras following someone else left out), the 2D the stages work from, the
confidence each joint gets, the prior's and the lifting network's checkpoint caches.

Each works on a run of consecutive frames (one frame live, a chunk offline) and gives the same
result for a frame whatever run it arrives in.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestudio.core.arrays import BoolArray, FloatArray, IntArray
from posestudio.core.rig import CameraRig
from posestudio.models.factorization.prior import FactorizationPrior
from posestudio.models.keypoints import H36M17
from posestudio.models.lifting.lifter import Lifter

from .identity import IdentityTracker
from .options import ReconstructionOptions
from .swaps import SwapCorrector

#: Joints that move smoothly enough to be carried across a gap as anchors for the prior's fit.
TORSO = [H36M17.index(j) for j in ("pelvis", "r_hip", "l_hip", "spine", "thorax")]

#: Joints the 17-joint body defines as the midpoint of two others, ``(joint, end, end)``: the pelvis
#: is the hips' midpoint (as every detector layout is mapped to H36M17, ``models/keypoints.py``, and
#: as the motion-capture truth is made, ``models/datasets/bandai.py``).
MIDPOINTS = np.array([[H36M17.index("pelvis"), H36M17.index("l_hip"), H36M17.index("r_hip")]])

#: Confidence given to joints filled by the factorization prior (not observed by two cameras).
PRIOR_CONFIDENCE = 0.2
#: Confidence of joints filled by the lifting network (:mod:`posestudio.models.lifting`) from one
#: camera's 2D, and of every joint of a monocular reconstruction (:mod:`.monocular`): above the
#: prior's (the lift reads that camera's 2D over a window of frames, in metres, where the prior's
#: shape is orthographic and placed afterwards), below a joint carried along a ray (whose direction
#: is measured, only its depth is guessed).
LIFTED_CONFIDENCE = 0.22
#: Confidence of joints carried from a neighbouring frame along a single camera's ray.
CARRIED_CONFIDENCE = 0.25
#: Confidence of joints interpolated across a short gap.
GAP_FILL_CONFIDENCE = 0.3

@functools.cache
def _loaded(kind: type, path: str):  # noqa: ANN202 - an instance of ``kind``
    return kind.load(path)


def load_prior(path: str | Path) -> FactorizationPrior:
    """The :class:`~posestudio.models.factorization.prior.FactorizationPrior` of a checkpoint, loaded
    once per process; a missing or foreign file raises
    :class:`~posestudio.models.checkpoints.CheckpointError` naming it."""
    return _loaded(FactorizationPrior, str(path))


def load_lifter(path: str | Path) -> Lifter:
    """The :class:`~posestudio.models.lifting.lifter.Lifter` of a ``posestudio train lifting``
    checkpoint, loaded once per process (on the GPU when there is one); a missing or foreign file
    raises :class:`~posestudio.models.checkpoints.CheckpointError` naming it."""
    return _loaded(Lifter, str(path))


@dataclass
class Triangulated:
    """What the front end made of a run of frames.

    Attributes:
        keypoints: ``(C, n, 17, 3)`` the 2D every later stage reads: left/right swaps undone,
            views of cameras following someone else NaN (the input array where neither happened).
        points: ``(n, 17, 3)`` triangulated joints, metres (NaN where not); inliers: ``(C, n, 17)``
            the views each was made from.
        excluded: ``(C, n)`` cameras left out as following another person.
        swapped: ``(C, n, 17)`` joints whose detection was exchanged with its left/right mirror's.
    """

    keypoints: FloatArray
    points: FloatArray
    inliers: BoolArray
    excluded: BoolArray
    swapped: BoolArray


class FrontEnd:
    """Runs of consecutive frames to triangulated joints, the same live and offline: left/right
    swaps undone (:class:`~.swaps.SwapCorrector`), then robust triangulation leaving out cameras
    that follow someone else (:class:`~.identity.IdentityTracker`). Both keep state from run to
    run, so a frame's result does not depend on the run it arrives in.

    Args:
        rig: the cameras, in the keypoints' order; fps: frame rate, Hz; options: the settings.
    """

    def __init__(self, rig: CameraRig, fps: float, options: ReconstructionOptions) -> None:
        self.swaps = SwapCorrector(rig, options.triangulation, options.swaps)
        self.identity = IdentityTracker(rig, fps, options.triangulation, options.identity)

    def __call__(self, keypoints: FloatArray) -> Triangulated:
        """Triangulate the next frames, ``(C, n, 17, 3)`` H36M17 keypoints (pixels, confidence)."""
        kp, swapped = self.swaps.correct(keypoints)
        kp, points, inliers, excluded = self.identity.triangulate(kp)
        return Triangulated(kp, points, inliers, excluded, self.swaps.joints_swapped(swapped))


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


def tie_midpoints(points: FloatArray, midpoints: IntArray = MIDPOINTS) -> FloatArray:
    """Joints defined as the midpoint of two others made so, by the least change: each of the three
    moves (equal weights), so the midpoint joint's error is averaged with its ends' (each joint is
    detected on its own, the pelvis as much as the hips).

    Args:
        points: ``(n, J, 3)`` metres, NaN where missing; midpoints: ``(M, 3)`` ``(joint, end, end)``.
    Returns:
        ``(n, J, 3)`` a copy; where one of the three is missing they are left as they are.
    """
    out = np.array(points, dtype=np.float64, copy=True)
    for mid, a, b in midpoints:
        gap = out[:, mid] - 0.5 * (out[:, a] + out[:, b])                            # (n, 3)
        ok = np.isfinite(gap).all(-1, keepdims=True)
        gap = np.where(ok, gap, 0.0)
        # the least-squares correction along the constraint (1, -1/2, -1/2): mid -2/3, ends +1/3
        out[:, mid] -= gap * (2.0 / 3.0)
        out[:, a] += gap / 3.0
        out[:, b] += gap / 3.0
    return out


def joint_confidence(inliers: BoolArray, detector_confidence: FloatArray, points: FloatArray,
                     interpolated: BoolArray, carried: BoolArray, by_prior: BoolArray,
                     by_lifting: BoolArray | None = None) -> FloatArray:
    """``(n, 17)`` confidence of each output joint, in [0, 1].

    Triangulated joints: the mean detector confidence of their inlier views, scaled down below
    three views; joints made otherwise: :data:`GAP_FILL_CONFIDENCE`, :data:`CARRIED_CONFIDENCE`,
    :data:`LIFTED_CONFIDENCE`, :data:`PRIOR_CONFIDENCE`; 0 where there is no joint.

    Args:
        inliers: ``(C, n, 17)``; detector_confidence: ``(C, n, 17)``; points: ``(n, 17, 3)``;
        interpolated, carried, by_prior, by_lifting: ``(n, 17)`` how each joint was made (by_lifting
            None: none).
    """
    conf_sum = np.where(inliers, np.nan_to_num(detector_confidence), 0.0).sum(axis=0)
    n_views = inliers.sum(axis=0)
    confidence = np.divide(conf_sum, n_views, out=np.zeros_like(conf_sum), where=n_views > 0)
    confidence = confidence * np.clip((n_views - 1) / 2.0, 0.0, 1.0)
    lifted = np.zeros_like(by_prior) if by_lifting is None else by_lifting
    for made, value in ((interpolated, GAP_FILL_CONFIDENCE), (carried, CARRIED_CONFIDENCE),
                        (lifted, LIFTED_CONFIDENCE), (by_prior, PRIOR_CONFIDENCE)):
        confidence = np.where(made, value, confidence)
    return np.where(np.isfinite(points).all(axis=-1), confidence, 0.0)


