"""Windows of a take's frames at the model's frame rate: which frames each window reads.

A take at ``fps`` is read by a network trained at ``model_fps``: window ``t`` takes the frames
nearest to ``t + k * fps / model_fps`` for ``k = -h .. h`` (``h = T // 2``). Frames beyond the take
are marked absent (their weight is zero), as the network saw at the ends of training clips.
"""

from __future__ import annotations

import numpy as np

from posestudio.core.arrays import BoolArray, FloatArray, IntArray


def window_frames(centres: IntArray, n_frames: int, window: int, fps: float, model_fps: float,
                  ) -> tuple[IntArray, BoolArray]:
    """Frame indices read by windows centred on ``centres``.

    Args:
        centres: ``(N,)`` frame indices; n_frames: length of the take; window: ``T`` (odd);
        fps: the take's frame rate, Hz; model_fps: the network's, Hz.
    Returns:
        ``(frames (N, T), present (N, T))``: indices clipped into the take, and whether each is
        inside it.
    """
    if not fps > 0:
        raise ValueError(f"fps = {fps}: expected a frame rate > 0")
    h = window // 2
    offsets = np.rint(np.arange(-h, h + 1) * (fps / model_fps)).astype(np.int64)
    frames = np.asarray(centres, dtype=np.int64)[:, None] + offsets[None]
    present = (frames >= 0) & (frames < n_frames)
    return np.clip(frames, 0, n_frames - 1), present


def gather_windows(xy: FloatArray, weight: FloatArray, frames: IntArray, present: BoolArray,
                   ) -> tuple[FloatArray, FloatArray]:
    """The 2D of windows, ``xy (..., F, J, 2)`` and ``weight (..., F, J)`` gathered at
    ``frames (N, T)``; absent frames and non-finite joints get weight 0 and coordinates 0.

    Returns:
        ``(xy (..., N, T, J, 2), weight (..., N, T, J))``.
    """
    x = xy[..., frames, :, :]
    w = np.where(present[..., None], weight[..., frames, :], 0.0)
    w = np.where(np.isfinite(x).all(-1), np.nan_to_num(w), 0.0)
    return np.where(w[..., None] > 0, np.nan_to_num(x), 0.0), w
