"""Realistic multi-view 2D keypoints from known 3D motion (for tests and benchmarks).

Projects ``(frames, joints, 3)`` world points into a calibrated rig and spoils the result the way
detectors do: Gaussian pixel noise, gross outliers whose confidences look like everyone else's,
joints occluded for runs of frames, and joints that leave the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posestudio.core.arrays import BoolArray, FloatArray
from posestudio.core.rig import CameraRig


@dataclass
class DetectorErrors:
    """How the simulated 2D detector errs.

    Attributes:
        noise_px: standard deviation of Gaussian noise on x and y, pixels.
        outlier_rate: share of detections replaced by a gross error (another place in the image
            20-200 px away), with an ordinary confidence.
        occlusion_rate: share of (camera, joint) frames lost to occlusion, in runs.
        occlusion_run: ``(min, max)`` frames of one occlusion run.
        confidence: ``(low, high)`` uniform range of confidences (outliers included).
        seed: random seed.
    """

    noise_px: float = 3.0
    outlier_rate: float = 0.10
    occlusion_rate: float = 0.08
    occlusion_run: tuple[int, int] = (3, 15)
    confidence: tuple[float, float] = (0.5, 1.0)
    seed: int = 0


@dataclass
class SyntheticViews:
    """Simulated detections and what was done to them.

    Attributes:
        keypoints: ``(C, F, J, 3)`` x, y (pixels), confidence; NaN where not detected.
        outliers: ``(C, F, J)`` gross outliers; occluded: ``(C, F, J)``; outside: ``(C, F, J)``
            projections outside the image (or behind the camera).
    """

    keypoints: FloatArray
    outliers: BoolArray
    occluded: BoolArray
    outside: BoolArray


def simulate_detections(rig: CameraRig, points: FloatArray, errors: DetectorErrors | None = None) -> SyntheticViews:
    """Project world points ``(F, J, 3)`` (metres) into every camera and add detector errors."""
    e = errors or DetectorErrors()
    rng = np.random.default_rng(e.seed)
    pix = rig.project(points)  # (C, F, J, 2)
    c, f, j, _ = pix.shape
    sizes = np.array([cam.image_size for cam in rig.cameras], float)[:, None, None, :]
    outside = ~np.isfinite(pix).all(axis=-1) | (pix < -0.5).any(axis=-1) | (pix > sizes - 0.5).any(axis=-1)
    noisy = pix + rng.normal(0.0, e.noise_px, pix.shape)
    outliers = (rng.random((c, f, j)) < e.outlier_rate) & ~outside
    offset_len = rng.uniform(20.0, 200.0, (c, f, j))
    angle = rng.uniform(0, 2 * np.pi, (c, f, j))
    jump = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * offset_len[..., None]
    noisy = np.where(outliers[..., None], noisy + jump, noisy)
    occluded = _occlusion_runs(rng, (c, f, j), e.occlusion_rate, e.occlusion_run)
    conf = rng.uniform(e.confidence[0], e.confidence[1], (c, f, j))
    kp = np.concatenate([noisy, conf[..., None]], axis=-1)
    kp[outside | occluded] = np.nan
    return SyntheticViews(kp, outliers & ~occluded, occluded & ~outside, outside)


def _occlusion_runs(rng: np.random.Generator, shape: tuple[int, int, int], rate: float,
                    run: tuple[int, int]) -> BoolArray:
    """``(C, F, J)`` mask of occlusion runs covering about ``rate`` of the frames (vectorised)."""
    c, f, j = shape
    mean_run = 0.5 * (run[0] + run[1])
    starts = rng.random((c, f, j)) < rate / mean_run
    lengths = rng.integers(run[0], run[1] + 1, (c, f, j))
    # A frame is occluded when a run that started within the last `length` frames covers it:
    # the running maximum of (start frame + length) along time marks run ends.
    frame_idx = np.arange(f)[None, :, None]
    end = np.where(starts, frame_idx + lengths, -1)
    running_end = np.maximum.accumulate(end, axis=1)
    return running_end > frame_idx
