"""Settings and the input error of the moved-camera check (:mod:`posestudio.calibration.rig_drift`)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import CalibrationInputError


class RigDriftError(CalibrationInputError):
    """Keypoints that cannot show whether a camera moved (too few cameras or frames, wrong shape)."""


@dataclass(frozen=True)
class DriftOptions:
    """How a moved camera is found and re-solved.

    Attributes:
        statistic: ``"offset"``: each frame's offset (a 2D vector, pixels: the joints' detection
            minus prediction, each joint's steady offset over the camera's frames taken off, a
            clipped mean over joints) is tested for a change in any direction (a turn, a shift, or a
            roll with the performer off the optical axis: the joints move alike); ``"error"``: the
            frame's median error is tested for a rise (a detector's fixed per-joint bias raises its
            floor).
        window_s: length of each of the two windows compared, seconds.
        persist_s: the shift must hold over this long after the change, seconds.
        spread_factor: threshold in robust spreads (1.4826 MAD) of the camera's per-frame series before.
        relative_shift: ``"error"`` only: threshold as a share of the camera's median residual before.
        min_shift_px: threshold floor, pixels.
        offset_clip: a frame's offset averages the joints within this many robust spreads (1.4826
            median distance, at least 1 px) of the frame's median offset.
        min_confidence: detections less confident are ignored.
        min_joints: a frame's residual needs at least this many joints.
        suspect_score: near an alarm, every camera whose score (shift over threshold) passes this is
            a suspect, tested for whether its move alone explains the others' rise.
        robust_px: half the triangulation's inlier threshold, and the pose solve's Cauchy scale, pixels.
        consistency_px: joints with a view further off are left out of a pose solve, pixels.
        reference_views: joints seen by fewer cameras are left out of a pose solve.
        max_moves: most moves looked for in one take.
        max_solve_points: the pose solve uses at most this many joints (evenly subsampled).
        adjust_rounds: rounds of the bundle adjustment by alternation after the first solve.
        bias_correction: take the camera's fixed per-joint offset, measured before the change, off
            its detections after it (a detector errs alike on a view turned by a few degrees).
        noise_scale_px: the re-solve's ``robust_px`` and ``consistency_px`` grow in proportion to the
            camera's median residual before the change (its fixed per-joint offset taken off) beyond
            this, pixels (BlazePose-level errors: about 15-25 px, so 1.5-2.5 times); 0: fixed.
    """

    statistic: str = "offset"
    window_s: float = 3.0
    persist_s: float = 4.0
    spread_factor: float = 2.0
    relative_shift: float = 0.5
    min_shift_px: float = 5.0
    offset_clip: float = 2.0
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
    noise_scale_px: float = 10.0

    def window_frames(self, fps: float) -> int:
        """Frames in one window at ``fps`` (at least 3)."""
        return max(3, round(self.window_s * fps))


__all__ = ["DriftOptions", "RigDriftError"]
