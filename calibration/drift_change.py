"""Whether, and at which frame, a camera's series of per-frame offsets (or residuals) changed.

Offsets: each joint's detection minus its leave-one-out prediction (:func:`~.drift_residuals.leave_one_out`),
with the joint's steady offset over the camera's frames taken off (a detector's fixed per-joint
bias, and the other cameras' bias as it projects into this one), averaged over the frame's joints
within a few robust spreads of their median (:func:`frame_offsets`): a camera that turned or
shifted moves every joint alike, so the frame's offset steps; a roll about the optical axis moves
the joints apart, but with the performer off the axis (as always, by tens of pixels) it also
steps. (A rotation fitted per frame about the joints' centre was tried: a 3-degree roll is only
4-8 px at the performer's radius, under its own noise under BlazePose-level errors.)

Test: a two-window median change (:func:`change_scores`) against the camera's own spread before;
the frame of the change fitted as one step over the alarm's frames (:func:`change_frame`).
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from posestudio.core.arrays import BoolArray, FloatArray

from .drift_options import DriftOptions


def frame_offsets(offsets: FloatArray, clip: float) -> FloatArray:
    """Each frame's offset of a camera: its joints' offsets, each joint's steady offset (median
    over the frames) taken off, averaged over the joints within ``clip`` robust spreads (1.4826 x
    the median distance from the frame's median, at least 1 px) of the frame's median.

    Args:
        offsets: ``(C, F, J, 2)`` detection minus prediction, pixels, NaN where absent.
        clip: in robust spreads.
    Returns:
        ``(C, F, 2)`` pixels, NaN where a frame has no joint.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        steady = np.nanmedian(offsets, axis=1, keepdims=True)              # (C, 1, J, 2)
        e = offsets - steady
        med = np.nanmedian(e, axis=2, keepdims=True)                       # (C, F, 1, 2)
        dev = np.linalg.norm(e - med, axis=-1)                             # (C, F, J)
        spread = np.maximum(1.4826 * np.nanmedian(dev, axis=2, keepdims=True), 1.0)
        keep = dev <= clip * spread
        return np.nanmean(np.where(keep[..., None], e, np.nan), axis=2)


def _window_stats(r: FloatArray, w: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Median, robust spread and count of finite values of ``r (..., F)`` over every window of ``w``
    frames ending before frame ``t`` (index ``t``, ``(..., F + 1)``; NaN where under half finite)."""
    pad = np.full(r.shape[:-1] + (w,), np.nan)
    win = sliding_window_view(np.concatenate([pad, r], -1), w, axis=-1)  # (..., F + 1, w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        count = np.isfinite(win).sum(-1)
        med = np.nanmedian(win, -1)
        mad = 1.4826 * np.nanmedian(np.abs(win - med[..., None]), -1)
    ok = count >= max(2, w // 2)
    return np.where(ok, med, np.nan), np.where(ok, mad, np.nan), count


def change_scores(series: FloatArray, fps: float, options: DriftOptions) -> tuple[FloatArray, FloatArray]:
    """Two-window median shift of each camera's series over its threshold.

    Args:
        series: ``(C, F)`` per-frame residuals (a rise counts), or ``(C, D, F)`` per-frame offsets
            (a change in any direction counts; their steady level taken off, :func:`frame_offsets`),
            pixels, NaN allowed; fps: frame rate.
    Returns:
        ``scores (C, F)``: at frame ``t``, the change of the median from the window before ``t`` to
        the window from ``t`` on, over the threshold (``max(min_shift_px, spread_factor x spread
        before)``, and for residuals also ``relative_shift x level before``; spread: 1.4826 MAD of
        the per-frame series, per axis, its norm), also
        requiring the median over ``persist_s`` from ``t`` to stay changed (the smaller of the two
        ratios; NaN where a window lacks frames); ``shift (C, F)``: the change, pixels.
    """
    x = series[:, None] if series.ndim == 2 else series
    w = options.window_frames(fps)
    p = max(w, round(options.persist_s * fps))
    f = x.shape[-1]
    before_med, before_mad, _ = _window_stats(x, w)                 # index t: frames [t - w, t)
    rev = x[..., ::-1]
    after_med = _window_stats(rev, w)[0][..., ::-1][..., 1:]        # reversed: frames [t, t + w)
    long_med = _window_stats(rev, p)[0][..., ::-1][..., 1:]
    before_med, before_mad = before_med[..., :f], before_mad[..., :f]
    spread = np.linalg.norm(before_mad, axis=1)
    threshold = np.maximum(options.min_shift_px, options.spread_factor * spread)
    if series.ndim == 2:  # a residual's floor rises with a detector's fixed bias
        threshold = np.maximum(threshold, options.relative_shift * before_med[:, 0])
    # the persistence window may run past the end of the take: then the 1-window after suffices
    long_med = np.where(np.isfinite(long_med), long_med, after_med)
    if series.ndim == 2:
        shift, persist = (after_med - before_med)[:, 0], (long_med - before_med)[:, 0]
    else:
        shift = np.linalg.norm(after_med - before_med, axis=1)
        persist = np.linalg.norm(long_med - before_med, axis=1)
    with np.errstate(invalid="ignore"):
        scores = np.minimum(shift, persist) / threshold
    return scores, shift


def change_frame(alarm: BoolArray, scores: FloatArray, series: FloatArray, w: int) -> tuple[int, float]:
    """The frame one camera's strongest alarm says it moved at, and the alarm's score.

    The two-window shift stays up on a plateau around the change (a median moves once half a
    window has changed), and after a roll the offset keeps drifting as the performer crosses the
    image, so the frame is fitted as a local step: over the alarm's run of frames and a window
    either side, the split ``t`` where two levels (the medians of the window before ``t`` and of
    the window from ``t``) leave the least absolute deviation compared with one level over both
    windows (summed over the axes; vectorised over ``t``). A drift after the change does not pull
    the split later, as one level fitted to everything after would.

    Args:
        alarm, scores: ``(F,)`` one camera's (:func:`change_scores`); series: ``(F,)`` residuals or
        ``(D, F)`` offsets, pixels; w: frames in a window.
    Returns:
        the first frame at the new pose, and the alarm's score.
    """
    t0 = int(np.argmax(np.where(alarm, scores, -np.inf)))
    edges = np.flatnonzero(~alarm)
    a = int(edges[edges < t0].max() + 1) if (edges < t0).any() else 0
    b = int(edges[edges > t0].min()) if (edges > t0).any() else len(alarm)
    x = series[None] if series.ndim == 1 else series
    f = x.shape[-1]
    padded = np.concatenate([np.full(x.shape[:-1] + (w,), np.nan), x, np.full(x.shape[:-1] + (w,), np.nan)], -1)

    def deviation(n: int) -> tuple[FloatArray, FloatArray]:
        """Summed absolute deviation from the median, and finite frames, of every ``n``-frame window
        (index ``i``: frames ``[i - w, i - w + n)``)."""
        win = sliding_window_view(padded, n, axis=-1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            dev = np.nansum(np.abs(win - np.nanmedian(win, -1, keepdims=True)), -1).sum(0)
        return dev, np.isfinite(win).all(0).sum(-1)

    one, count = deviation(w)
    two, _ = deviation(2 * w)
    t = np.arange(max(a - w, 1), min(b + w, f - 1))
    ok = (count[t] >= max(2, w // 2)) & (count[t + w] >= max(2, w // 2))
    if not ok.any():
        return t0, float(scores[t0])
    gain = np.where(ok, two[t] - one[t] - one[t + w], -np.inf)   # one level over [t - w, t + w) against two
    return int(t[int(np.argmax(gain))]), float(scores[t0])


__all__ = ["change_frame", "change_scores", "frame_offsets"]
