"""The time model of cameras that are not genlocked: each camera's sub-frame time offset.

Camera ``c`` exposes its frame ``f`` at time ``f + offset_c`` on the reference camera's clock
(frames; the reference camera's offset is 0, and a camera that lags has ``offset_c > 0``). A board
corner's world position at that instant follows the parabola through its positions at the
neighbouring board poses::

    X(f + d) = X_f + d * V_f + d**2 / 2 * A_f,
    V_f = s0 * X_prev + s1 * X_f + s2 * X_next,    A_f = a0 * X_prev + a1 * X_f + a2 * X_next

with per-frame stencil weights (the derivatives at ``f`` of the quadratic that interpolates the
three poses, whatever their spacing; one-sided and linear, ``A = 0``, at the ends of a run; per
frame, so the velocity is metres per frame and the acceleration metres per frame squared). The
curvature term matters: with offsets up to half a frame and a hand-held board, the linear model
left errors of a tenth of a pixel that are the same in every view of a camera and went into its
intrinsics (rendered 32-camera take: intrinsics errors 1.5-2 times what the corner noise explains
with the straight line, about 1 time with the parabola).

Here is everything about that model: the stencils (:func:`motion_stencils`), a corner's position
at a camera's exposure (:func:`exposure_weights`), a rig's offsets in frames
(:func:`offsets_in_frames`), corner tracks resampled at the offsets (:func:`align_in_time`) and what
deserves a warning (:func:`offset_warnings`). The bundle adjustment (:mod:`.bundle_adjust`) solves
the offsets, :mod:`.projection_jacobian` differentiates through them. Units: frames, unless a name
ends in ``_s`` or ``_ms``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from posestudio.core.arrays import FloatArray, IntArray
from posestudio.core.rig import CameraRig

#: Board poses further apart than this (frames) are not used as velocity neighbours.
MAX_STENCIL_GAP = 2
#: Frame rate assumed for a rig whose metadata does not say, frames per second.
DEFAULT_FPS = 30.0
#: An estimated offset beyond this (frames) is warned about: frames are probably paired wrongly.
LARGE_OFFSET_FRAMES = 0.5
#: An offset standard deviation beyond this (frames) is warned about: the board moved too little.
UNCERTAIN_OFFSET_FRAMES = 0.1


@dataclass
class MotionStencils:
    """Finite-difference weights of the board's velocity and acceleration at each board pose (``F`` poses).

    Attributes:
        prev, next: ``(F,)`` indices of the neighbour poses (the pose itself where it has none).
        weights: ``(F, 2, 3)`` weights of the (prev, this, next) positions: row 0 the velocity
            ``(s0, s1, s2)``, 1/frames; row 1 the acceleration ``(a0, a1, a2)``, 1/frames^2 (zero
            unless both neighbours are there); all zero for a pose with no neighbour within
            :data:`MAX_STENCIL_GAP` frames.
    """

    prev: IntArray
    next: IntArray
    weights: FloatArray


#: The time models: the parabola through the neighbouring poses, or the straight line along their velocity.
TIME_MODELS = ("quadratic", "linear")


def motion_stencils(frames: Sequence[int], max_gap: int = MAX_STENCIL_GAP, model: str = "quadratic") -> MotionStencils:
    """Velocity and acceleration stencils of board poses at the sorted source ``frames``.

    With both neighbours (at ``a < 0`` and ``b > 0`` frames from the pose) the weights are the
    first and second derivatives at 0 of the quadratic through the three positions, exact for a
    board moving with constant acceleration whatever the spacing; with one neighbour, the
    one-sided difference. The ``"linear"`` model keeps the velocity and drops the acceleration.

    Args:
        frames: ``(F,)`` increasing frame indices that have a board pose.
        max_gap: neighbours further than this many frames are not used.
        model: one of :data:`TIME_MODELS`.
    Returns:
        :class:`MotionStencils` indexed like ``frames``.
    """
    if model not in TIME_MODELS:
        raise ValueError(f"time model must be one of {TIME_MODELS}, got {model!r}")
    index = {f: i for i, f in enumerate(frames)}
    prev = np.zeros(len(frames), np.int64)
    nxt = np.zeros(len(frames), np.int64)
    weights = np.zeros((len(frames), 2, 3))
    for i, f in enumerate(frames):
        m = next((f - k for k in range(1, max_gap + 1) if f - k in index), None)
        p = next((f + k for k in range(1, max_gap + 1) if f + k in index), None)
        prev[i] = index[m] if m is not None else i
        nxt[i] = index[p] if p is not None else i
        if m is not None and p is not None:
            a, b = float(m - f), float(p - f)
            weights[i, 0] = [-b / (a * (a - b)), -(a + b) / (a * b), -a / (b * (b - a))]
            if model == "quadratic":
                weights[i, 1] = [2.0 / (a * (a - b)), 2.0 / (a * b), 2.0 / (b * (b - a))]
        elif p is not None:
            weights[i, 0] = [0.0, -1.0 / (p - f), 1.0 / (p - f)]
        elif m is not None:
            weights[i, 0] = [-1.0 / (f - m), 1.0 / (f - m), 0.0]
    return MotionStencils(prev, nxt, weights)


def exposure_weights(stencil: FloatArray, offsets: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Weights of the (prev, this, next) positions that give a corner's position at its exposure,
    and their derivatives with respect to the offset.

    Args:
        stencil: ``(N, 2, 3)`` the corner's frame's :class:`MotionStencils` weights.
        offsets: ``(N,)`` time offset of the camera that saw each corner, frames.
    Returns:
        ``(position weights (N, 3), d weights / d offset (N, 3) per frame)``.
    """
    d = offsets[:, None]
    position = d * stencil[:, 0] + 0.5 * d**2 * stencil[:, 1]
    position[:, 1] += 1.0
    return position, stencil[:, 0] + d * stencil[:, 1]


def offsets_in_frames(rig: CameraRig) -> FloatArray:
    """``(C,)`` each camera's time offset in frames (its ``time_offset`` seconds times the rig's ``fps``)."""
    fps = float(rig.metadata.get("fps", DEFAULT_FPS))
    return np.array([cam.time_offset * fps for cam in rig.cameras])


def align_in_time(pixels: FloatArray, frames: IntArray, offsets: FloatArray) -> FloatArray:
    """Resample each camera's corner tracks at the reference clock's frame times.

    Camera c's frame k was exposed at time ``k + offsets[c]`` (frames); its corner positions at
    reference frame f are interpolated linearly between its frames around ``f - offsets[c]``.
    Corners missing in either neighbouring frame come back NaN.

    Args:
        pixels: ``(C, F, K, 2)`` detections at the source frames ``frames`` (F,), pixels.
        offsets: ``(C,)`` frames.
    Returns:
        ``(C, F, K, 2)`` at the reference times of ``frames``, pixels.
    """
    n_all = int(frames.max()) + 2 if len(frames) else 0
    full = np.full((pixels.shape[0], n_all, pixels.shape[2], 2), np.nan)
    full[:, frames] = pixels
    out = np.empty_like(pixels)
    for c, off in enumerate(np.asarray(offsets, float)):
        t = frames - off
        k0 = np.clip(np.floor(t).astype(int), 0, n_all - 1)
        k1 = np.clip(k0 + 1, 0, n_all - 1)
        w = (t - np.floor(t))[:, None, None]
        a, b = full[c, k0], full[c, k1]
        out[c] = np.where(w < 1e-9, a, (1 - w) * a + w * b)
    return out


def offset_warnings(names: Sequence[str], offsets: FloatArray, std: FloatArray, fps: float,
                    reference: int) -> list[str]:
    """Warnings about estimated offsets that are large (frames paired wrongly?) or uncertain.

    Args:
        names: camera names; offsets, std: ``(C,)`` frames (std NaN where unknown);
        fps: frames per second; reference: index of the reference camera (never warned about).
    """
    out = []
    for c, name in enumerate(names):
        if c == reference:
            continue
        if abs(offsets[c]) > LARGE_OFFSET_FRAMES:
            out.append(f"camera {name}: estimated time offset {offsets[c]:.2f} frames "
                       f"({offsets[c] / fps * 1000:.1f} ms) is large: check that its frames are paired "
                       "correctly (a dropped frame at the start shows as an offset near 1 frame)")
        if np.isfinite(std[c]) and std[c] > UNCERTAIN_OFFSET_FRAMES:
            out.append(f"camera {name}: time offset uncertain (+/- {std[c] / fps * 1000:.1f} ms): the board moved "
                       "too little while this camera saw it")
    return out
