"""Foot contacts: when a foot is planted, and keeping it still there.

A foot is planted while its ankle is near its lowest height in the take and moves slowly over
the ground. While planted, the solved ankle is held at the segment's mean position (no sliding);
the hold fades in and out over ``blend_s`` so the foot does not snap. Works in skeleton axes (Y up).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from posestudio.core.arrays import BoolArray, FloatArray


@dataclass(frozen=True)
class ContactOptions:
    """Thresholds of :func:`detect_contacts`.

    Attributes:
        max_speed_mps: horizontal ankle speed below which a foot may be planted (m/s).
        max_correction_m: the most a hold moves the ankle; a foot that rolls further during a
            contact (heel to toe) keeps the rest of that motion.
        height_margin_m: how far above the ankle's low level (its 5th height percentile) it may be.
        min_duration_s: shorter stillness is not a contact.
        blend_s: fade of the hold at each end of a contact (s).
    """

    max_speed_mps: float = 0.15
    max_correction_m: float = 0.02
    height_margin_m: float = 0.05
    min_duration_s: float = 0.1
    blend_s: float = 0.1


def contact_segments(contact: BoolArray) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """``(starts, ends)`` of the True runs of ``contact`` (``ends`` exclusive)."""
    edges = np.diff(np.concatenate([[0], contact.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def horizontal_speed(ankle: FloatArray, fps: float, span_s: float = 0.05) -> FloatArray:
    """``(F,)`` ground-plane speed (m/s) of ``(F, 3)`` Y-up positions.

    Central differences over ``+-span_s`` (at least one frame), so that a few millimetres of
    reconstruction jitter do not read as motion; the ends use one-sided differences.
    """
    n = len(ankle)
    if n < 2:
        return np.zeros(n)
    k = max(1, int(round(span_s * fps)))
    ground = ankle[:, [0, 2]]
    hi = np.minimum(np.arange(n) + k, n - 1)
    lo = np.maximum(np.arange(n) - k, 0)
    return np.linalg.norm(ground[hi] - ground[lo], axis=-1) * fps / (hi - lo)


def detect_contacts(ankle: FloatArray, fps: float, options: ContactOptions = ContactOptions()) -> BoolArray:
    """Frames where one foot is planted.

    Args:
        ankle: ``(F, 3)`` ankle positions, metres, Y up.
        fps: frames per second.
    Returns:
        ``(F,)`` True while planted.
    """
    low = np.percentile(ankle[:, 1], 5.0)
    still = (horizontal_speed(ankle, fps) < options.max_speed_mps) & (ankle[:, 1] < low + options.height_margin_m)
    starts, ends = contact_segments(still)
    keep = (ends - starts) >= max(2, int(round(options.min_duration_s * fps)))
    out = np.zeros(len(ankle), bool)
    for s, e in zip(starts[keep], ends[keep]):  # loop over contact segments, not frames
        out[s:e] = True
    return out


def pin_contacts(ankle: FloatArray, contact: BoolArray, fps: float, blend_s: float = 0.1,
                 max_correction_m: float = 0.02) -> FloatArray:
    """Ankle targets held still during each contact, fading back to ``ankle`` around it.

    Args:
        ankle: ``(F, 3)`` positions (metres); contact: ``(F,)`` from :func:`detect_contacts`.
    Returns:
        ``(F, 3)`` targets: each contact's mean position inside it, ``ankle`` far from contacts.
    """
    starts, ends = contact_segments(contact)
    if len(starts) == 0:
        return ankle.copy()
    seg = np.cumsum(np.isin(np.arange(len(ankle)), starts)) - 1  # segment number of each frame
    counts = (ends - starts).astype(float)
    held = np.stack([np.bincount(seg[contact], ankle[contact, k], minlength=len(starts)) for k in range(3)],
                    axis=-1) / counts[:, None]
    inside = held[seg.clip(0)] - ankle  # correction applied inside contacts, at most max_correction_m
    inside *= np.minimum(1.0, max_correction_m / np.maximum(np.linalg.norm(inside, axis=-1), 1e-12))[:, None]
    ramp = max(1, int(round(blend_s * fps)))
    # Knots of the correction outside contacts: the boundary values, and zero `ramp` frames away
    # (dropped where two contacts are closer than two ramps, so the fades join).
    knot_f: list[float] = []
    knot_v: list[FloatArray] = []
    for k, (s, e) in enumerate(zip(starts, ends)):
        gap_before = s - (ends[k - 1] if k else -10 * ramp)
        if gap_before > 2 * ramp:
            knot_f.append(s - ramp)
            knot_v.append(np.zeros(3))
        knot_f += [s, e - 1]
        knot_v += [inside[s], inside[e - 1]]
        gap_after = (starts[k + 1] if k + 1 < len(starts) else len(ankle) + 10 * ramp) - e
        if gap_after > 2 * ramp:
            knot_f.append(e - 1 + ramp)
            knot_v.append(np.zeros(3))
    kf, kv = np.asarray(knot_f), np.asarray(knot_v)
    frames = np.arange(len(ankle))
    outside = np.stack([np.interp(frames, kf, kv[:, k]) for k in range(3)], axis=-1)
    return ankle + np.where(contact[:, None], inside, outside)


def foot_slide_mm(ankle: FloatArray, contact: BoolArray) -> float:
    """Mean ground-plane motion of the ankle per frame between consecutive planted frames (mm)."""
    both = contact[1:] & contact[:-1]
    if not both.any():
        return float("nan")
    step = np.linalg.norm(np.diff(ankle[:, [0, 2]], axis=0), axis=-1)
    return float(1000.0 * step[both].mean())
