"""The time model of cameras that are not genlocked: each camera's sub-frame time offset.

Camera ``c`` exposes its frame ``f`` at time ``f + offset_c`` on the reference camera's clock
(frames; the reference camera's offset is 0, and a camera that lags has ``offset_c > 0``). A board
corner's world position at that instant is its position at frame ``f`` moved along the board's
finite-difference velocity::

    X(f + offset_c) = X_f + offset_c * V_f,    V_f = s0 * X_prev + s1 * X_f + s2 * X_next

with per-frame stencil weights ``(s0, s1, s2)`` (a central difference when both neighbours have a
board pose, one-sided at the ends of a run; per frame, so the velocity is metres per frame).

Here is everything about that model: the stencils (:func:`velocity_stencils`), a corner's position
at a camera's exposure (:func:`exposure_positions`), the offsets' standard deviations from the
adjustment's normal matrix (:func:`offset_standard_deviations`), a rig's offsets in frames
(:func:`offsets_in_frames`), corner tracks resampled at the offsets (:func:`align_in_time`) and what
deserves a warning (:func:`offset_warnings`). The bundle adjustment (:mod:`.bundle_adjust`) solves
the offsets, :mod:`.projection_jacobian` differentiates through them. Units: frames, unless a name
ends in ``_s`` or ``_ms``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
class VelocityStencils:
    """Finite-difference weights of the board's velocity at each board pose (``F`` poses).

    Attributes:
        prev, next: ``(F,)`` indices of the neighbour poses (the pose itself where it has none).
        weights: ``(F, 3)`` weights ``(s0, s1, s2)`` of the (prev, this, next) positions, 1/frames;
            all zero for a pose with no neighbour within :data:`MAX_STENCIL_GAP` frames.
    """

    prev: IntArray
    next: IntArray
    weights: FloatArray


def velocity_stencils(frames: Sequence[int], max_gap: int = MAX_STENCIL_GAP) -> VelocityStencils:
    """Velocity stencils of board poses at the sorted source ``frames``.

    Args:
        frames: ``(F,)`` increasing frame indices that have a board pose.
        max_gap: neighbours further than this many frames are not used.
    Returns:
        :class:`VelocityStencils` indexed like ``frames``.
    """
    index = {f: i for i, f in enumerate(frames)}
    prev = np.zeros(len(frames), np.int64)
    nxt = np.zeros(len(frames), np.int64)
    weights = np.zeros((len(frames), 3))
    for i, f in enumerate(frames):
        m = next((f - k for k in range(1, max_gap + 1) if f - k in index), None)
        p = next((f + k for k in range(1, max_gap + 1) if f + k in index), None)
        prev[i] = index[m] if m is not None else i
        nxt[i] = index[p] if p is not None else i
        if m is not None and p is not None:
            weights[i] = [-1.0 / (p - m), 0.0, 1.0 / (p - m)]
        elif p is not None:
            weights[i] = [0.0, -1.0 / (p - f), 1.0 / (p - f)]
        elif m is not None:
            weights[i] = [-1.0 / (f - m), 1.0 / (f - m), 0.0]
    return VelocityStencils(prev, nxt, weights)


def exposure_positions(x_prev: FloatArray, x_this: FloatArray, x_next: FloatArray, weights: FloatArray,
                       offsets: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Corner positions at their camera's exposure time, and the board velocity used.

    Args:
        x_prev, x_this, x_next: ``(N, 3)`` world positions at the previous, own and next board pose, metres.
        weights: ``(N, 3)`` stencil weights of the corner's frame (:class:`VelocityStencils`).
        offsets: ``(N,)`` time offset of the camera that saw each corner, frames.
    Returns:
        ``(positions (N, 3) metres, velocity (N, 3) metres per frame)``.
    """
    velocity = weights[:, 0:1] * x_prev + weights[:, 1:2] * x_this + weights[:, 2:3] * x_next
    return x_this + offsets[:, None] * velocity, velocity


def offset_standard_deviations(solve: Callable[[FloatArray], FloatArray], columns: Sequence[int | None],
                               n_unknowns: int, residual_variance: float) -> FloatArray:
    """Standard deviation of each camera's time offset from the adjustment's normal matrix ``H``.

    ``std_c = sqrt((H^-1)_kk * sigma^2)`` with ``k`` the offset's column.

    Args:
        solve: solves ``H x = b`` for a right-hand side ``(n_unknowns,)`` (a factorisation of ``H``).
        columns: per camera, the column of its offset among the unknowns, or None when it was held.
        n_unknowns: size of ``H``.
        residual_variance: ``sigma^2`` of the (robustly weighted) residuals, pixels squared.
    Returns:
        ``(C,)`` frames; NaN for cameras whose offset was held.
    """
    std = np.full(len(columns), np.nan)
    for cam, k in enumerate(columns):
        if k is not None:
            unit = np.zeros(n_unknowns)
            unit[k] = 1.0
            std[cam] = float(np.sqrt(max(solve(unit)[k], 0.0) * residual_variance))
    return std


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
