"""Temporal filters for 3D joint trajectories: causal live filter, zero-phase smoother, gap filling.

Arrays follow the studio convention: points ``(F, J, 3)`` (frames, joints, xyz) in metres, time in
seconds, NaN where a joint is unknown. A joint counts as missing in a frame when any of its three
coordinates is non-finite; all three are then treated as missing together.

* :class:`OneEuroFilter` / :func:`one_euro` -- causal adaptive low-pass (Casiez, Roussel & Vogel,
  CHI 2012) for the live path: low cutoff (little jitter) when a joint is slow, higher cutoff
  (little lag) when it moves fast.
* :func:`butterworth_zero_phase` -- offline forward-backward Butterworth smoothing (no phase lag),
  gap-aware.
* :func:`fill_gaps` -- interpolation of short interior gaps, long gaps left NaN, with a mask of
  what was filled.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import interpolate, signal

from posestudio.core.arrays import BoolArray, FloatArray

__all__ = [
    "OneEuroFilter",
    "one_euro",
    "butterworth_zero_phase",
    "fill_gaps",
    "finite_runs",
]


def _smoothing_factor(cutoff_hz: FloatArray | float, dt: FloatArray | float) -> FloatArray:
    """Exponential smoothing factor of a first-order low-pass: ``1 / (1 + tau / dt)``."""
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff_hz, dtype=np.float64))
    return 1.0 / (1.0 + tau / np.asarray(dt, dtype=np.float64))


class OneEuroFilter:
    """Causal 1-euro filter, vectorised over joints (state arrays of shape ``(J, 3)``).

    For each joint, at each call with a new sample ``x`` at time ``t`` (``dt`` since that joint's
    previous valid sample; variable ``dt`` handles dropped frames)::

        dx      = (x - x_hat_prev) / dt                      # m/s
        dx_hat  = lerp(dx_hat_prev, dx, a(d_cutoff, dt))      # smoothed velocity
        cutoff  = min_cutoff + beta * ||dx_hat||              # Hz, one cutoff per joint
        x_hat   = lerp(x_hat_prev, x, a(cutoff, dt))
        a(fc, dt) = 1 / (1 + tau / dt),  tau = 1 / (2 pi fc)

    The speed is the Euclidean norm of the 3D velocity, so the cutoff is the same on all three axes
    and does not depend on the orientation of the world frame (the original filter is scalar).

    **Latency.** The filter is causal: an output depends only on inputs up to its own time, so it
    adds no buffering delay, only the smoothing lag of a first-order low-pass:

    * Ramp (steady motion at speed ``v``): the output trails by about
      ``tau(v) = 1 / (2 pi (min_cutoff + beta * v))`` seconds -- at most
      ``tau_max = 1 / (2 pi min_cutoff)`` (159 ms for ``min_cutoff = 1 Hz``), less when moving.
    * Step: because the cutoff never drops below ``min_cutoff``, the remaining fraction of a step
      after ``n`` samples at period ``dt`` is at most ``(1 + dt / tau_max) ** -n`` (about
      ``exp(-n dt / tau_max)``). Hence the output covers 63 % of any step within
      ``tau_max + 1.5 dt`` and 90 % within ``ln(10) tau_max + 2.5 dt`` of the first sample after the
      step; ``beta > 0`` only makes it faster (in practice much faster: a step is a large speed).
      :meth:`step_latency_bound` returns the exact bound for given ``dt`` and fraction.

    **Missing data.** A joint that is NaN in the input is output as NaN and its state is held (not
    updated). When it reappears the elapsed ``dt`` is used; if the gap is longer than
    ``reset_after_s`` the joint restarts from the new sample instead of blending with stale state.

    Args:
        min_cutoff: minimum cutoff frequency, Hz (lower: less jitter, more lag when slow).
        beta: speed coefficient, Hz per (m/s) (higher: less lag when fast).
        d_cutoff: cutoff of the velocity estimate, Hz.
        reset_after_s: restart a joint after a gap longer than this (seconds); None never resets.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 1.0, d_cutoff: float = 1.0,
                 reset_after_s: float | None = 0.5) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("min_cutoff and d_cutoff must be > 0 and beta >= 0")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset_after_s = reset_after_s
        self.reset()

    def reset(self) -> None:
        """Forget all state; the next sample of every joint is passed through unchanged."""
        self._x: FloatArray | None = None      # (J, 3) filtered position
        self._dx: FloatArray | None = None     # (J, 3) filtered velocity, m/s
        self._t: FloatArray | None = None      # (J,) time of each joint's last valid sample
        self._t_last: float | None = None      # time of the last call

    def step_latency_bound(self, dt: float, fraction: float = 0.63) -> float:
        """Upper bound, seconds, on the time the output needs to cover ``fraction`` of a step.

        Args:
            dt: sample period, seconds.
            fraction: share of the step, in ``(0, 1)``.
        Returns:
            ``n * dt`` with ``n`` the smallest sample count such that
            ``(1 + dt / tau_max) ** -n <= 1 - fraction`` (``tau_max = 1 / (2 pi min_cutoff)``).
        """
        tau = 1.0 / (2.0 * math.pi * self.min_cutoff)
        n = math.ceil(-math.log(1.0 - fraction) / math.log1p(dt / tau))
        return n * dt

    def __call__(self, x: ArrayLike, t: float) -> FloatArray:
        """Filter one frame.

        Args:
            x: ``(J, 3)`` positions, metres; NaN for missing joints.
            t: sample time, seconds; must increase strictly from call to call.
        Returns:
            ``(J, 3)`` filtered positions, metres; NaN where ``x`` is NaN.
        """
        x = np.array(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[-1] != 3:
            raise ValueError(f"x must have shape (joints, 3), got {x.shape}")
        t = float(t)
        if self._t_last is not None and not t > self._t_last:
            raise ValueError(f"timestamps must increase strictly: {t} after {self._t_last}")
        self._t_last = t
        ok = np.isfinite(x).all(axis=-1)                                   # (J,)
        if self._x is None:
            j = x.shape[0]
            self._x = np.full((j, 3), np.nan)
            self._dx = np.zeros((j, 3))
            self._t = np.full(j, np.nan)
        elif self._x.shape != x.shape:
            raise ValueError(f"joint count changed from {self._x.shape[0]} to {x.shape[0]}")
        assert self._dx is not None and self._t is not None
        dt = t - self._t                                                   # NaN if never seen
        fresh = ok & ~np.isfinite(dt)
        if self.reset_after_s is not None:
            fresh |= ok & (dt > self.reset_after_s)
        upd = ok & ~fresh
        if upd.any():
            d = dt[upd][:, None]
            xp = self._x[upd]
            dx = (x[upd] - xp) / d
            dx_hat = self._dx[upd] + _smoothing_factor(self.d_cutoff, d) * (dx - self._dx[upd])
            cutoff = self.min_cutoff + self.beta * np.linalg.norm(dx_hat, axis=-1, keepdims=True)
            self._x[upd] = xp + _smoothing_factor(cutoff, d) * (x[upd] - xp)
            self._dx[upd] = dx_hat
        self._x[fresh] = x[fresh]
        self._dx[fresh] = 0.0
        self._t[ok] = t
        out = self._x.copy()
        out[~ok] = np.nan
        return out


def one_euro(points: ArrayLike, fps: float | None = None, *, times: ArrayLike | None = None,
             min_cutoff: float = 1.0, beta: float = 1.0, d_cutoff: float = 1.0,
             reset_after_s: float | None = 0.5) -> FloatArray:
    """Run a :class:`OneEuroFilter` causally over a whole sequence.

    Args:
        points: ``(F, J, 3)`` positions, metres, NaN where missing.
        fps: frame rate, Hz (frame ``i`` at ``i / fps`` seconds), or
        times: ``(F,)`` strictly increasing timestamps, seconds (use for dropped frames).
        min_cutoff, beta, d_cutoff, reset_after_s: see :class:`OneEuroFilter`.
    Returns:
        ``(F, J, 3)`` filtered positions; output ``i`` depends only on inputs ``0..i``.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[-1] != 3:
        raise ValueError(f"points must have shape (frames, joints, 3), got {pts.shape}")
    if times is None:
        if fps is None or fps <= 0:
            raise ValueError("give fps > 0 or times")
        ts = np.arange(pts.shape[0]) / float(fps)
    else:
        ts = np.asarray(times, dtype=np.float64).ravel()
        if ts.shape[0] != pts.shape[0]:
            raise ValueError(f"times has {ts.shape[0]} entries for {pts.shape[0]} frames")
    filt = OneEuroFilter(min_cutoff, beta, d_cutoff, reset_after_s)
    out = np.empty_like(pts)
    for i in range(pts.shape[0]):                      # recursion in time: inherently sequential
        out[i] = filt(pts[i], ts[i])
    return out


# --------------------------------------------------------------------------------------------
# gaps
# --------------------------------------------------------------------------------------------

def _missing_to_nan(points: ArrayLike) -> tuple[FloatArray, BoolArray]:
    pts = np.array(points, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[-1] != 3:
        raise ValueError(f"points must have shape (frames, joints, 3), got {pts.shape}")
    ok = np.isfinite(pts).all(axis=-1)
    pts[~ok] = np.nan
    return pts, ok


def gap_bounds(ok: BoolArray) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """For every (frame, joint): index of the previous and next valid frame (-1 / F if none)."""
    f = ok.shape[0]
    idx = np.arange(f)[:, None]
    prev = np.maximum.accumulate(np.where(ok, idx, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(ok, idx, f)[::-1], axis=0)[::-1]
    return prev, nxt


def fill_gaps(points: ArrayLike, max_gap_frames: int, method: str = "cubic", *,
              times: ArrayLike | None = None) -> tuple[FloatArray, BoolArray]:
    """Interpolate short interior gaps of each joint's trajectory.

    A gap is a maximal run of frames in which a joint is missing, with a valid frame on both sides.
    Gaps of at most ``max_gap_frames`` frames are interpolated; longer gaps, and missing frames at
    the start or end of the sequence (which would need extrapolation), stay NaN.

    Methods (all exact at the valid samples):

    * ``'linear'``: straight line between the two frames bounding the gap (fully vectorised).
    * ``'cubic'``: :class:`scipy.interpolate.CubicSpline` (not-a-knot) through all valid samples
      of the joint; ``'pchip'``: :class:`scipy.interpolate.PchipInterpolator` (no overshoot).
      Joints sharing the same pattern of valid frames are interpolated together in one call
      (column-wise); a loop runs only over the distinct patterns.

    Args:
        points: ``(F, J, 3)`` positions, metres; a joint with any non-finite coordinate counts as
            missing in that frame.
        max_gap_frames: longest gap, in frames, to fill (0 fills nothing).
        method: ``'cubic'``, ``'linear'`` or ``'pchip'``.
        times: optional ``(F,)`` strictly increasing sample times, seconds, used as the
            interpolation abscissa (uneven frame spacing); gap length is still counted in frames.
    Returns:
        ``(filled, mask)``: ``(F, J, 3)`` copy with short gaps filled, and ``(F, J)`` bool, True
        exactly where a value was filled in.
    """
    if method not in ("cubic", "linear", "pchip"):
        raise ValueError(f"method must be 'cubic', 'linear' or 'pchip', got {method!r}")
    pts, ok = _missing_to_nan(points)
    f, j = ok.shape
    x = np.arange(f, dtype=np.float64) if times is None else np.asarray(times, np.float64).ravel()
    if x.shape[0] != f:
        raise ValueError(f"times has {x.shape[0]} entries for {f} frames")
    prev, nxt = gap_bounds(ok)
    mask = (~ok) & (prev >= 0) & (nxt < f) & (nxt - prev - 1 <= max_gap_frames)
    if not mask.any():
        return pts, mask
    if method == "linear":
        fr, jj = np.nonzero(mask)
        p0, p1 = prev[fr, jj], nxt[fr, jj]
        w = ((x[fr] - x[p0]) / (x[p1] - x[p0]))[:, None]
        pts[fr, jj] = (1.0 - w) * pts[p0, jj] + w * pts[p1, jj]
        return pts, mask
    cls = interpolate.CubicSpline if method == "cubic" else interpolate.PchipInterpolator
    need = np.nonzero(mask.any(axis=0))[0]
    groups: dict[bytes, list[int]] = defaultdict(list)
    for col in need:                                    # group joints by validity pattern
        groups[np.packbits(ok[:, col]).tobytes()].append(int(col))
    for cols in groups.values():
        valid = ok[:, cols[0]]
        rows = mask[:, cols].any(axis=1)
        y = pts[valid][:, cols].reshape(int(valid.sum()), -1)      # (n_valid, k * 3)
        if y.shape[0] < 2:
            continue
        spline = cls(x[valid], y, axis=0)
        vals = spline(x[rows]).reshape(int(rows.sum()), len(cols), 3)
        block = pts[rows][:, cols]
        sel = mask[rows][:, cols]
        block[sel] = vals[sel]
        pts[np.ix_(rows, cols)] = block
    return pts, mask


def finite_runs(ok: ArrayLike) -> list[tuple[int, int]]:
    """Maximal runs of True in a 1-D bool array, as half-open ``(start, stop)`` index pairs."""
    v = np.asarray(ok, dtype=bool).ravel().astype(np.int8)
    edges = np.diff(np.concatenate(([0], v, [0])))
    starts = np.nonzero(edges == 1)[0]
    stops = np.nonzero(edges == -1)[0]
    return list(zip(starts.tolist(), stops.tolist()))


# --------------------------------------------------------------------------------------------
# zero-phase smoothing
# --------------------------------------------------------------------------------------------

def butterworth_zero_phase(points: ArrayLike, fps: float, cutoff_hz: float = 6.0, order: int = 4,
                           *, max_gap_frames: int | None = None, gap_method: str = "cubic",
                           return_mask: bool = False) -> FloatArray | tuple[FloatArray, BoolArray]:
    """Offline zero-phase low-pass: Butterworth run forwards and backwards (``sosfiltfilt``).

    Forward-backward filtering cancels the phase, so there is no lag at any frequency. The
    magnitude response is the square of the single-pass one: ``1 / (1 + (f / cutoff) ** (2 *
    order))`` -- 0.5 (-6 dB) at ``cutoff_hz`` rather than -3 dB, and an effective order of
    ``2 * order``. It is non-causal (needs the whole sequence), hence offline only.

    Gap handling: short gaps (``<= max_gap_frames``) are first filled by :func:`fill_gaps`; then
    every maximal run of finite frames of every joint is filtered separately (runs with identical
    frame ranges are filtered together, column-wise). Long gaps stay NaN and filtering never
    reaches across them. Runs shorter than the filter's default padding (``3 * (2 * n_sections +
    1)`` frames, 15 for order 4) are filtered with a shorter padding; runs under 3 frames are
    returned unfiltered.

    Args:
        points: ``(F, J, 3)`` positions, metres, NaN where missing.
        fps: sampling rate, Hz.
        cutoff_hz: cutoff of the single-pass filter, Hz (< fps / 2). 6 Hz is a common choice for
            whole-body human motion.
        order: Butterworth order of one pass.
        max_gap_frames: longest gap to fill before filtering; default ``round(0.2 * fps)``
            (0.2 s); 0 fills nothing.
        gap_method: interpolation for the gaps, see :func:`fill_gaps`.
        return_mask: also return the ``(F, J)`` mask of filled entries.
    Returns:
        ``(F, J, 3)`` smoothed positions (and the filled mask if ``return_mask``).
    """
    if not 0 < cutoff_hz < fps / 2:
        raise ValueError(f"cutoff_hz must be in (0, fps/2) = (0, {fps / 2}), got {cutoff_hz}")
    gap = int(round(0.2 * fps)) if max_gap_frames is None else int(max_gap_frames)
    pts, filled = fill_gaps(points, gap, gap_method)
    sos = signal.butter(order, cutoff_hz, btype="low", fs=fps, output="sos")
    default_pad = 3 * (2 * len(sos) + 1)
    f, j, _ = pts.shape
    cols = pts.reshape(f, j * 3)                           # view: columns are (joint, axis)
    ok = np.isfinite(cols)
    out = cols.copy()
    full = ok.all(axis=0)
    if full.any() and f >= 3:
        out[:, full] = signal.sosfiltfilt(sos, cols[:, full], axis=0,
                                          padlen=min(default_pad, f - 1))
    runs: dict[tuple[int, int], list[int]] = defaultdict(list)
    for c in np.nonzero(~full)[0]:
        for run in finite_runs(ok[:, c]):
            runs[run].append(int(c))
    for (a, b), cs in runs.items():
        if b - a < 3:
            continue
        out[a:b, cs] = signal.sosfiltfilt(sos, cols[a:b, cs], axis=0,
                                          padlen=min(default_pad, b - a - 1))
    result = out.reshape(f, j, 3)
    return (result, filled) if return_mask else result
