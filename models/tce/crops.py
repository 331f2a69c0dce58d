"""Top-down square crops: boxes from keypoints, crop affines, warping and keypoint mapping.

A box is ``(cx, cy, size)`` in full-frame pixels (pixel centres at integers): the square
``[cx - size/2, cx + size/2] x [cy - size/2, cy + size/2]``. Its crop of ``out_size`` pixels maps
that square onto the crop's pixel area ``[-0.5, out_size - 0.5]^2`` (the convention of
``cv2.warpAffine``: ``crop(u, v) = frame(A^-1 (u, v))``). The same box is used for frames
``t - 1, t, t + 1``, so motion between them stays in the crops (what the temporal module aligns).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.errors import InputError

Image = np.ndarray
"""An ``(H, W, C)`` image (uint8 BGR from OpenCV, or float)."""


@dataclass(frozen=True)
class CropBoxOptions:
    """How training crops are boxed around a person, as the tracker (and the detector's whole-frame
    search) frames them; one definition for every source of TCE training crops (the trainer's own
    crops, :class:`~posestudio.models.tce.train.AugmentConfig`; rendered ones,
    ``posestudio.synthetic.tce_data.RenderedSourceOptions``; a studio session's,
    ``posestudio.reconstruction.tce_sessions.SessionOptions``), each with its own values. Shares are
    probabilities per sample.

    Attributes:
        scale: box side / the person's extent (of the labelled joints), uniform in this range:
            tracker-like boxes.
        jitter: box centre shift, uniform in ``+-jitter`` x the side, per axis.
        wide_share, wide_scale: share of boxes ``U(wide_scale)`` x the extent instead (a tracker that
            lost part of the body, a box being re-centred, a small person).
        search_share: share of whole-frame-search views (the detector's first-frame search), for a
            source that makes them; 0: none.
    """

    scale: tuple[float, float] = (1.1, 1.5)
    jitter: float = 0.08
    wide_share: float = 0.1
    wide_scale: tuple[float, float] = (1.5, 3.0)
    search_share: float = 0.15

    def check(self, what: str = "crop") -> CropBoxOptions:
        """Raise :class:`InputError` naming ``what`` and the first setting out of range; returns self."""
        for name in ("scale", "wide_scale"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise InputError(f"{what} boxes.{name} = {(lo, hi)}: expected 0 < low <= high")
        for name in ("jitter", "wide_share", "search_share"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise InputError(f"{what} boxes.{name} = {v}: expected a value in [0, 1]")
        return self

    @classmethod
    def from_dict(cls, d: dict, what: str = "crop") -> CropBoxOptions:
        """Inverse of ``dataclasses.asdict`` (lists read as tuples; unknown keys an error naming them)."""
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise InputError(f"{what} boxes: unknown fields {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def box_from_keypoints(kp: FloatArray, margin: float = 1.25, min_confidence: float = 0.0,
                       min_joints: int = 2, min_size: float = 16.0) -> FloatArray:
    """Square box around the confident joints.

    Args:
        kp: ``(..., J, 3)``: ``x, y`` pixels, confidence (or visibility); NaN where absent.
        margin: box side = ``margin`` x the larger extent (x or y) of the used joints.
        min_confidence: joints with confidence ``<=`` this are ignored.
        min_joints: fewer used joints -> no box.
        min_size: smallest box side, pixels.
    Returns:
        ``(..., 3)`` ``(cx, cy, size)``, pixels; NaN where there is no box.
    """
    kp = np.asarray(kp, dtype=np.float64)
    if kp.ndim < 2 or kp.shape[-1] < 3:
        raise ValueError(f"keypoints: expected (..., J, 3), got {kp.shape}")
    ok = np.isfinite(kp[..., :3]).all(-1) & (kp[..., 2] > min_confidence)
    xy = np.where(ok[..., None], kp[..., :2], np.nan)
    with warnings.catch_warnings():  # all-NaN rows become NaN boxes
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanmin(xy, axis=-2)
        hi = np.nanmax(xy, axis=-2)
    centre = 0.5 * (lo + hi)
    size = np.maximum(margin * (hi - lo).max(-1), min_size)
    box = np.concatenate([centre, size[..., None]], axis=-1)
    box[ok.sum(-1) < min_joints] = np.nan
    return box


def frame_box(width: int, height: int) -> FloatArray:
    """The box that letterboxes a whole ``width x height`` frame (centred, side = the longer side)."""
    return np.array([(width - 1) / 2.0, (height - 1) / 2.0, float(max(width, height))])


def crop_affine(box: FloatArray, out_size: int) -> FloatArray:
    """``(..., 2, 3)`` affine(s) mapping full-frame pixels to crop pixels for ``(..., 3)`` box(es)."""
    box = np.asarray(box, dtype=np.float64)
    s = out_size / box[..., 2]
    a = np.zeros(box.shape[:-1] + (2, 3))
    a[..., 0, 0] = s
    a[..., 1, 1] = s
    a[..., 0, 2] = (box[..., 2] / 2 - box[..., 0]) * s - 0.5
    a[..., 1, 2] = (box[..., 2] / 2 - box[..., 1]) * s - 0.5
    return a


def invert_affine(a: FloatArray) -> FloatArray:
    """Inverse of ``(..., 2, 3)`` affine(s)."""
    a = np.asarray(a, dtype=np.float64)
    lin = np.linalg.inv(a[..., :2, :2])
    t = -np.einsum("...ij,...j->...i", lin, a[..., :2, 2])
    return np.concatenate([lin, t[..., None]], axis=-1)


def apply_affine(a: FloatArray, kp: FloatArray) -> FloatArray:
    """Map keypoints ``(..., J, C>=2)`` through affine(s) ``(..., 2, 3)``; columns past x, y are kept."""
    kp = np.asarray(kp, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    out = kp.copy()
    out[..., :2] = np.einsum("...ij,...kj->...ki", a[..., :2, :2], kp[..., :2]) + a[..., None, :2, 2]
    return out


def keypoints_to_crop(kp: FloatArray, box: FloatArray, out_size: int) -> FloatArray:
    """Full-frame keypoints ``(..., J, 3)`` -> crop pixels of box(es) ``(..., 3)``."""
    return apply_affine(crop_affine(box, out_size), kp)


def keypoints_from_crop(kp: FloatArray, box: FloatArray, out_size: int) -> FloatArray:
    """Crop-pixel keypoints ``(..., J, 3)`` of box(es) ``(..., 3)`` -> full-frame pixels."""
    return apply_affine(invert_affine(crop_affine(box, out_size)), kp)


def warp_crop(frame: Image, box: FloatArray, out_size: int, border_value: float = 0.0) -> Image:
    """One ``(out_size, out_size, C)`` crop of ``frame`` (bilinear; area-averaged when shrinking).

    When the crop shrinks the frame by more than 1.5x, the box's region is first reduced with
    ``cv2.INTER_AREA`` (no aliasing) and the affine composed accordingly; outside the frame the
    crop is ``border_value``.
    """
    box = np.asarray(box, dtype=np.float64)
    a = crop_affine(box, out_size)
    scale = out_size / box[2]
    h, w = frame.shape[:2]
    src = frame
    if scale < 1 / 1.5:
        x0 = int(np.clip(np.floor(box[0] - box[2] / 2) - 1, 0, w - 1))
        x1 = int(np.clip(np.ceil(box[0] + box[2] / 2) + 2, x0 + 1, w))
        y0 = int(np.clip(np.floor(box[1] - box[2] / 2) - 1, 0, h - 1))
        y1 = int(np.clip(np.ceil(box[1] + box[2] / 2) + 2, y0 + 1, h))
        roi = frame[y0:y1, x0:x1]
        rw, rh = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
        src = cv2.resize(roi, (rw, rh), interpolation=cv2.INTER_AREA)
        sx, sy = rw / (x1 - x0), rh / (y1 - y0)
        # frame pixel x -> reduced-ROI pixel: (x - x0 + 0.5) * sx - 0.5; compose: A o inverse of that
        to_roi = np.array([[sx, 0.0, (0.5 - x0) * sx - 0.5], [0.0, sy, (0.5 - y0) * sy - 0.5]])
        a = a @ np.vstack([invert_affine(to_roi), [0.0, 0.0, 1.0]])
    bv = (border_value,) * (src.shape[2] if src.ndim == 3 else 1)
    return cv2.warpAffine(src, a, (out_size, out_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=bv)


def warp_crops(frames: Sequence[Image], box: FloatArray, out_size: int, border_value: float = 0.0) -> np.ndarray:
    """The same box cropped from every frame (e.g. ``t - 1, t, t + 1``): ``(T, out_size, out_size, C)``."""
    return np.stack([warp_crop(f, box, out_size, border_value) for f in frames])


def bgr_to_tensor_layout(crops: np.ndarray) -> np.ndarray:
    """uint8 BGR crops ``(..., S, S, 3)`` -> float32 RGB in [0, 1], channels first ``(..., 3, S, S)``."""
    rgb = crops[..., ::-1].astype(np.float32) / 255.0
    return np.moveaxis(rgb, -1, -3)
