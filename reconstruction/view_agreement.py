"""How well a 2D detector agrees with the other cameras: a measure that does not grade itself.

Reconstruct from every camera but one, project into the one left out and compare with that
camera's own detections (leave-one-camera-out, each camera in turn). Unlike the reprojection
error of a reconstruction, the camera being judged had no say in the 3D it is compared with, so
the residuals measure the detector (plus calibration), not how well the 3D fits its own inputs.
The residuals also give the detector's error statistics: spread, correlation from frame to frame,
a fixed offset per joint and view, gross errors and left/right swaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from posestudio.core.arrays import BoolArray, FloatArray
from posestudio.core.keypoints_file import Keypoints2D
from posestudio.core.rig import CameraRig
from posestudio.models.keypoints import H36M17, keypoints_for_rig

from .options import ReconstructionOptions
from .pipeline import reconstruct
from .swaps import H36M17_PAIRS


@dataclass
class LeaveOneOut:
    """Leave-one-camera-out residuals.

    Attributes:
        camera_names: ``(C,)``.
        detections: ``(C, F, 17, 3)`` each camera's own 2D (H36M17), pixels and confidence.
        predicted: ``(C, F, 17, 2)`` the 3D from the other cameras projected into it, pixels.
        residual: ``(C, F, 17, 2)`` detection minus prediction, pixels (NaN where either is missing).
        mirrored_residual: the same with the detection's left and right joints exchanged.
    """

    camera_names: list[str]
    detections: FloatArray
    predicted: FloatArray
    residual: FloatArray
    mirrored_residual: FloatArray

    @property
    def error_px(self) -> FloatArray:
        """``(C, F, 17)`` Euclidean distance, pixels."""
        return np.linalg.norm(self.residual, axis=-1)

    def median_px(self) -> dict[str, float]:
        """Median error per camera, pixels."""
        return {n: float(np.nanmedian(e)) for n, e in zip(self.camera_names, self.error_px)}


def mirror_left_right(keypoints: FloatArray) -> FloatArray:
    """``(..., 17, D)`` H36M17 keypoints with every left joint exchanged with its right twin."""
    out = np.array(keypoints, copy=True)
    left, right = H36M17_PAIRS[:, 0], H36M17_PAIRS[:, 1]
    out[..., left, :], out[..., right, :] = keypoints[..., right, :], keypoints[..., left, :]
    return out


def leave_one_camera_out(rig: CameraRig, kp: Keypoints2D, options: ReconstructionOptions | None = None,
                         method: Callable[[CameraRig, Keypoints2D], FloatArray] | None = None) -> LeaveOneOut:
    """Reconstruct without each camera in turn and compare its detections with the others' 3D.

    Args:
        rig: the rig (at least three of its cameras in ``kp``: two remain to triangulate).
        kp: the 2D keypoints, any known layout.
        options: reconstruction settings for each pass (default: the offline pipeline's).
        method: another 3D method to judge instead (a peer's), called with the remaining cameras
            and their H36M17 keypoints, returning ``(F, 17, 3)`` metres; ``options`` is then unused.
    """
    sub, kp17, _ = keypoints_for_rig(rig, kp, "keypoints")
    c = len(sub)
    if c < 3:
        raise ValueError(f"leave-one-camera-out needs at least 3 cameras, got {c}")
    predicted = np.full(kp17.shape[:-1] + (2,), np.nan)
    for i in range(c):
        keep = [j for j in range(c) if j != i]
        others = Keypoints2D(kp17[keep], [sub.names[j] for j in keep], list(H36M17.joints), kp.fps)
        rest = sub.subset(others.camera_names)
        points = (method(rest, others) if method is not None
                  else reconstruct(rest, others, options, f"leave out {sub.names[i]}").points.points3d)
        predicted[i] = sub.cameras[i].project(points)
    residual = kp17[..., :2] - predicted
    mirrored = mirror_left_right(kp17)[..., :2] - predicted
    return LeaveOneOut(list(sub.names), kp17, predicted, residual, mirrored)


@dataclass
class DetectorErrorStats:
    """A detector's errors as the other cameras see them (pixels unless said).

    Attributes:
        median_px: median leave-one-out error over every detection.
        noise_px: robust spread (1.4826 x MAD) of residual x and y after removing each
            (camera, joint)'s mean offset, gross errors excluded.
        lag1_correlation: correlation of that noise between consecutive frames (0: white; near 1:
            slowly drifting).
        bias_px: median over (camera, joint) of the length of the mean offset.
        outlier_rate: share of detections more than ``outlier_px`` off.
        swap_rate: share of (camera, frame) whose left/right-mirrored detections agree with the
            other cameras much better (half the error or less) than the detections themselves.
    """

    median_px: float
    noise_px: float
    lag1_correlation: float
    bias_px: float
    outlier_rate: float
    swap_rate: float
    outlier_px: float

    @classmethod
    def measure(cls, loo: LeaveOneOut, min_confidence: float = 0.5, outlier_px: float = 40.0) -> "DetectorErrorStats":
        """Statistics of ``loo``'s residuals for detections at least ``min_confidence`` confident."""
        conf = loo.detections[..., 2]
        res = np.where((conf >= min_confidence)[..., None], loo.residual, np.nan)
        err = np.linalg.norm(res, axis=-1)
        seen = np.isfinite(err)
        outlier: BoolArray = seen & (err > outlier_px)
        inlier = np.where((seen & ~outlier)[..., None], res, np.nan)
        bias = np.nanmean(inlier, axis=1, keepdims=True)  # (C, 1, J, 2)
        noise = inlier - bias
        centred = noise - np.nanmedian(noise)
        mad = 1.4826 * np.nanmedian(np.abs(centred))
        a, b = noise[:, :-1], noise[:, 1:]
        both = np.isfinite(a) & np.isfinite(b)
        lag1 = float(np.corrcoef(a[both], b[both])[0, 1]) if both.sum() > 10 else float("nan")
        err_frame = np.nanmean(np.linalg.norm(loo.residual, axis=-1), axis=-1)
        mirr_frame = np.nanmean(np.linalg.norm(loo.mirrored_residual, axis=-1), axis=-1)
        framed = np.isfinite(err_frame) & np.isfinite(mirr_frame)
        swaps = framed & (mirr_frame < 0.5 * err_frame) & (err_frame > 10.0)
        return cls(median_px=float(np.nanmedian(err)), noise_px=float(mad), lag1_correlation=lag1,
                   bias_px=float(np.nanmedian(np.linalg.norm(bias, axis=-1))),
                   outlier_rate=float(outlier.sum() / max(1, seen.sum())),
                   swap_rate=float(swaps.sum() / max(1, framed.sum())), outlier_px=outlier_px)
