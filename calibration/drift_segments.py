"""A segmented rig: a camera that moved during a take counts as a new camera from the frame it
moved (``NAME@FRAME``), its old pose before. Index helpers shared by the moved-camera check."""

from __future__ import annotations

import numpy as np

from posestudio.core.arrays import FloatArray

#: separates a camera's name from the frame its re-solved pose starts at, in a segmented rig
SEGMENT_MARK = "@"


def segment_ranges(segment_camera: list[int], segment_start: list[int], n_frames: int) -> list[tuple[int, int]]:
    """``[start, stop)`` frames of each segment camera: from its start to the next start of the
    same camera (or the end of the take, ``n_frames``)."""
    out = []
    for cam, start in zip(segment_camera, segment_start):
        later = [b for c, b in zip(segment_camera, segment_start) if c == cam and b > start]
        out.append((start, min(later, default=n_frames)))
    return out


def split_keypoints(keypoints: FloatArray, segment_camera: list[int], segment_start: list[int]) -> FloatArray:
    """``(C, F, J, D)`` -> ``(S, F, J, D)``: each segment camera's detections over its own frames
    (NaN elsewhere); ``segment_camera`` ``(S,)``: each segment's camera index in ``C``."""
    kp = np.asarray(keypoints, float)
    out = np.full((len(segment_camera),) + kp.shape[1:], np.nan)
    for s, (a, b) in enumerate(segment_ranges(segment_camera, segment_start, kp.shape[1])):
        out[s, a:b] = kp[segment_camera[s], a:b]
    return out


__all__ = ["SEGMENT_MARK", "segment_ranges", "split_keypoints"]
