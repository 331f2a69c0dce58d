"""Realistic multi-view 2D keypoints from known 3D motion (for tests and benchmarks).

Projects ``(frames, joints, 3)`` world points into a calibrated rig and spoils the result the way
detectors do: Gaussian pixel noise, gross outliers whose confidences look like everyone else's,
joints occluded for runs of frames, and joints that leave the image; optionally (all off by
default, so the default draws stay as they were) jitter correlated from frame to frame, a fixed
bias per joint and view, and left/right confusions for runs of frames in one view at a time
(:meth:`DetectorErrors.realistic` turns them all on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from posestudio.core.arrays import BoolArray, FloatArray
from posestudio.core.rig import CameraRig
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.swaps import left_right_pairs

#: The limbs a detector confuses on their own (legs crossing, arms passing), by joint name: a
#: single-limb swap exchanges the left and right joints of one of these.
LIMBS = (("knee", "ankle"), ("elbow", "wrist"))


@dataclass
class DetectorErrors:
    """How the simulated 2D detector errs.

    Attributes:
        noise_px: standard deviation of Gaussian noise on x and y, pixels (independent per frame).
        outlier_rate: share of detections replaced by a gross error (another place in the image
            20-200 px away), with an ordinary confidence.
        occlusion_rate: share of (camera, joint) frames lost to occlusion, in runs.
        occlusion_run: ``(min, max)`` frames of one occlusion run.
        confidence: ``(low, high)`` uniform range of confidences (outliers included).
        seed: random seed.
        jitter_px: standard deviation of jitter correlated over frames, on x and y, pixels: an
            AR(1) process per camera, joint and axis (0: none).
        jitter_correlation: its correlation between consecutive frames, in [0, 1); a time
            constant of ``tau`` frames is ``exp(-1 / tau)`` (:meth:`correlation_for`).
        bias_px: a fixed offset of this length (pixels) per camera and joint, in a random
            direction, in every frame (0: none).
        swap_rate: share of each camera's frames in which the detector confuses left and right
            (confidently: ordinary confidences), in runs, one camera at a time (0: none).
        swap_run: ``(min, max)`` frames of one swap run.
        swap_whole_body: share of the swap runs that exchange every left/right pair; the others
            exchange one limb's (:data:`LIMBS`: both knees and ankles, or both elbows and wrists).
    """

    noise_px: float = 3.0
    outlier_rate: float = 0.10
    occlusion_rate: float = 0.08
    occlusion_run: tuple[int, int] = (3, 15)
    confidence: tuple[float, float] = (0.5, 1.0)
    seed: int = 0
    jitter_px: float = 0.0
    jitter_correlation: float = 0.9
    bias_px: float = 0.0
    swap_rate: float = 0.0
    swap_run: tuple[int, int] = (3, 12)
    swap_whole_body: float = 0.5

    @staticmethod
    def correlation_for(time_constant_frames: float) -> float:
        """The frame-to-frame correlation of jitter whose correlation decays by ``e`` in
        ``time_constant_frames`` frames: ``exp(-1 / time_constant_frames)``."""
        return float(np.exp(-1.0 / time_constant_frames))

    @classmethod
    def realistic(cls, seed: int = 0) -> DetectorErrors:
        """The "realistic detector" mode of the benchmark: 2 px white noise, 4 px jitter
        correlated over about 10 frames (correlation 0.9 from frame to frame; 0.3 s at 30 fps), a
        4 px bias per joint and view, 4 % of each view's frames with left and right confused (runs
        of 3-12 frames, half of them the whole body, half one limb), 10 % outliers, 8 % occlusion."""
        return cls(noise_px=2.0, outlier_rate=0.10, occlusion_rate=0.08, seed=seed, jitter_px=4.0,
                   jitter_correlation=0.9, bias_px=4.0, swap_rate=0.04)

    @classmethod
    def measured_blazepose(cls, seed: int = 0) -> DetectorErrors:
        """BlazePose as measured on real footage (``benchmarks/detection.py``: the Pose2Sim demo,
        1080 x 1920 frames, the performer about 1000 px tall, leave-one-camera-out residuals):
        7 px noise correlated 0.9 from frame to frame, a 16 px offset per joint and view, 13 %
        outliers, left and right confused in 8 % of each view's frames; 2 px white noise and 8 %
        occlusion as in the other modes."""
        return cls(noise_px=2.0, outlier_rate=0.13, occlusion_rate=0.08, seed=seed, jitter_px=7.0,
                   jitter_correlation=0.9, bias_px=16.0, swap_rate=0.08)


@dataclass
class SyntheticViews:
    """Simulated detections and what was done to them.

    Attributes:
        keypoints: ``(C, F, J, 3)`` x, y (pixels), confidence; NaN where not detected.
        outliers: ``(C, F, J)`` gross outliers; occluded: ``(C, F, J)``; outside: ``(C, F, J)``
            projections outside the image (or behind the camera).
        swapped: ``(C, F, J)`` joints whose detection is their left/right mirror's (both joints
            of a confused pair; all False without swaps).
    """

    keypoints: FloatArray
    outliers: BoolArray
    occluded: BoolArray
    outside: BoolArray
    swapped: BoolArray


def simulate_detections(rig: CameraRig, points: FloatArray, errors: DetectorErrors | None = None,
                        joints: Sequence[str] = H36M17.joints) -> SyntheticViews:
    """Project world points ``(F, J, 3)`` (metres) into every camera and add detector errors.

    Args:
        rig: the cameras; points: ``(F, J, 3)`` metres, joints named by ``joints`` (left/right
            swaps need their names: ``l_``/``r_`` or ``left_``/``right_`` pairs).
        errors: :class:`DetectorErrors` (default: its defaults).
    Returns:
        :class:`SyntheticViews`.
    """
    e = errors or DetectorErrors()
    rng = np.random.default_rng(e.seed)
    pix = rig.project(points)  # (C, F, J, 2)
    c, f, j, _ = pix.shape
    # the error kinds added later draw from streams of their own, so the default draws are unchanged
    swapped = np.zeros((c, f, j), bool)
    if e.swap_rate > 0:
        swapped = _swap_runs(np.random.default_rng([e.seed, 3]), (c, f), list(joints), e)
        mirror = np.arange(j)
        pairs = left_right_pairs(joints)
        mirror[pairs[:, 0]], mirror[pairs[:, 1]] = pairs[:, 1], pairs[:, 0]
        pix = np.where(swapped[..., None], pix[:, :, mirror], pix)
    sizes = np.array([cam.image_size for cam in rig.cameras], float)[:, None, None, :]
    outside = ~np.isfinite(pix).all(axis=-1) | (pix < -0.5).any(axis=-1) | (pix > sizes - 0.5).any(axis=-1)
    noisy = pix + rng.normal(0.0, e.noise_px, pix.shape)
    if e.jitter_px > 0:
        noisy = noisy + ar1_noise(np.random.default_rng([e.seed, 1]), (c, j, 2), f, e.jitter_px,
                                  e.jitter_correlation).transpose(0, 3, 1, 2)
    if e.bias_px > 0:
        angle = np.random.default_rng([e.seed, 2]).uniform(0, 2 * np.pi, (c, 1, j))
        noisy = noisy + e.bias_px * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    outliers = (rng.random((c, f, j)) < e.outlier_rate) & ~outside
    offset_len = rng.uniform(20.0, 200.0, (c, f, j))
    angle = rng.uniform(0, 2 * np.pi, (c, f, j))
    jump = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * offset_len[..., None]
    noisy = np.where(outliers[..., None], noisy + jump, noisy)
    occluded = _occlusion_runs(rng, (c, f, j), e.occlusion_rate, e.occlusion_run)
    conf = rng.uniform(e.confidence[0], e.confidence[1], (c, f, j))
    kp = np.concatenate([noisy, conf[..., None]], axis=-1)
    kp[outside | occluded] = np.nan
    return SyntheticViews(kp, outliers & ~occluded, occluded & ~outside, outside, swapped & ~(outside | occluded))


def ar1_noise(rng: np.random.Generator, shape: tuple[int, ...], frames: int, std: float,
              correlation: float) -> FloatArray:
    """``shape + (frames,)`` stationary AR(1) noise: each series has standard deviation ``std``
    and correlation ``correlation`` between consecutive frames (vectorised by a linear filter)."""
    eps = rng.normal(0.0, std, shape + (frames,))
    if frames == 0:
        return eps
    innovation = np.sqrt(1.0 - correlation**2)
    eps[..., 0] /= innovation             # the first frame from the stationary distribution
    return lfilter([innovation], [1.0, -correlation], eps, axis=-1)


def _swap_runs(rng: np.random.Generator, shape: tuple[int, int], joints: list[str], e: DetectorErrors) -> BoolArray:
    """``(C, F, J)`` joints whose left and right are confused: runs in one camera at a time,
    covering about ``e.swap_rate`` of each camera's frames (a run started later cuts short the
    one before); each run exchanges every left/right pair or one limb's (vectorised)."""
    c, f = shape
    pairs = left_right_pairs(joints)
    whole = np.zeros(len(joints), bool)
    whole[pairs.ravel()] = True
    limbs = np.array([[any(part in joints[p[0]] for part in limb) for p in pairs] for limb in LIMBS])  # (L, P)
    limb_joints = np.zeros((len(LIMBS), len(joints)), bool)
    for k, chosen in enumerate(limbs):
        limb_joints[k, pairs[chosen].ravel()] = True
    kinds = np.vstack([whole[None], limb_joints])                                   # (1 + L, J)
    mean_run = 0.5 * (e.swap_run[0] + e.swap_run[1])
    frame = np.arange(f)
    starts = rng.random(f) < c * e.swap_rate / mean_run
    lengths = rng.integers(e.swap_run[0], e.swap_run[1] + 1, f)
    camera = rng.integers(0, c, f)
    kind = np.where(rng.random(f) < e.swap_whole_body, 0, 1 + rng.integers(0, len(LIMBS), f))
    last = np.maximum.accumulate(np.where(starts, frame, -1))     # the run most recently started
    run = np.maximum(last, 0)
    active = (last >= 0) & (frame < run + lengths[run])
    out = np.zeros((c, f, len(joints)), bool)
    out[camera[run[active]], frame[active]] = kinds[kind[run[active]]]
    return out


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
