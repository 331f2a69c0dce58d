"""Carry joints seen by one camera along its rays, frame to frame, at their bone lengths.

Where two cameras lose a joint but one still sees it, the joint's depth along that camera's ray is
the only unknown: the neighbouring frame's position (moved with the body) and the bone's length
from its parent fix it. :func:`propagate_along_rays` steps outwards from the reconstructed frames.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from posestudio.core.arrays import BoolArray, FloatArray

from .bone_constraints import parent_sphere, snap_to_rays


def propagate_along_rays(points: FloatArray, parents: NDArray[np.int64], order: list[int],
                         bone_length: FloatArray, origins: FloatArray, directions: FloatArray,
                         usable: BoolArray, root_track: FloatArray | None = None, *, causal: bool = False,
                         max_frames: int = 30, gate_m: float = 0.15) -> tuple[FloatArray, BoolArray]:
    """Carry joints into neighbouring frames where only one camera sees them.

    A joint missing in frame ``f`` but placed in frame ``f - 1`` (or ``f + 1`` offline) is
    guessed at its neighbour's position moved with the body (``root_track``), then put on a camera
    ray through its 2D detection at its bone's length from its parent (the ray/sphere intersection
    nearer the guess: between neighbouring frames a limb cannot flip towards or away from the
    camera). Where no camera ray passes within ``gate_m`` of the guess the joint stays missing, so
    this never invents a joint no camera sees. Steps outwards from the reconstructed frames one
    frame at a time, all frames of a step at once.

    Args:
        points: ``(F, J, 3)`` metres, NaN where missing.
        parents, order: the skeleton (parent per joint, -1 for the root; joints, parents first).
        bone_length: ``(J,)`` or ``(F, J)`` length of the bone ending at each joint, metres.
        origins: ``(C, 3)`` camera centres; directions: ``(C, F, J, 3)`` unit rays (NaN where
            unseen); usable: ``(C, F, J)`` rays that may be used.
        root_track: optional ``(F, 3)`` where the body is (e.g. pelvis anchors), metres; its
            frame-to-frame motion moves the guesses (NaN: no motion).
        causal: only carry forward in time (live).
        max_frames: farthest a joint is carried from where it was reconstructed.
        gate_m: largest distance between guess and ray point accepted, metres.
    Returns:
        ``(points (F, J, 3), carried (F, J))``.
    """
    out = np.array(points, dtype=np.float64, copy=True)
    f_count = out.shape[0]
    have = np.isfinite(out).all(-1)
    carried = np.zeros(have.shape, bool)
    lengths = np.broadcast_to(np.asarray(bone_length, dtype=np.float64), have.shape)
    motion = np.zeros((f_count, 3))
    if root_track is not None:
        step = np.diff(np.asarray(root_track, dtype=np.float64), axis=0)
        motion[1:] = np.where(np.isfinite(step).all(-1, keepdims=True), step, 0.0)  # motion[f] = track[f] - track[f-1]
    frames = np.arange(f_count)
    for _ in range(max_frames):
        changed = False
        for direction in ((1,) if causal else (1, -1)):
            src = frames - direction
            inside = (src >= 0) & (src < f_count)
            src_c = np.clip(src, 0, f_count - 1)
            shift = motion if direction == 1 else -motion[np.clip(frames + 1, 0, f_count - 1)]
            for j in order:
                rows = np.nonzero(inside & ~have[:, j] & have[src_c, j] & usable[:, :, j].any(0))[0]
                if rows.size == 0:
                    continue
                guess = out[src_c[rows], j] + shift[rows]
                par, length = parent_sphere(out, rows, j, parents, lengths, guess)
                placed, hit = snap_to_rays(guess, par, length, origins, directions[:, rows, j], usable[:, rows, j], gate_m)
                rows = rows[hit]
                out[rows, j] = placed[hit]
                have[rows, j] = True
                carried[rows, j] = True
                changed = changed or rows.size > 0
        if not changed:
            break
    return out, carried
