"""Put filled-in joints at the performer's bone lengths, on a camera's ray where one sees them.

A joint the prior filled in is a guess from a body model. Two facts beat the guess: the
performer's bone lengths (measured over the whole take from well-triangulated frames) and, where
a single camera sees the joint, the ray through its 2D detection. :func:`constrain_filled_joints`
walks the skeleton from the root, and for each filled joint whose parent is placed

* with a camera ray that passes near the model's guess: the point on that ray at the bone's length
  from the parent (the ray/sphere intersection nearest the guess; the nearest ray point when the
  ray misses the sphere);
* otherwise: the point at the bone's length from the parent, in the model's direction.

Vectorised over frames and cameras; the only loop is over the skeleton's joints (parents first).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def snap_to_rays(guess: FloatArray, parent: FloatArray | None, length: FloatArray | float,
                 origins: FloatArray, directions: FloatArray, usable: BoolArray, gate_m: float
                 ) -> tuple[FloatArray, BoolArray]:
    """Best ray point for each guess.

    Args:
        guess: ``(F, 3)`` model positions, metres.
        parent: ``(F, 3)`` parent joint positions (or None for the root: nearest ray point).
        length: ``(F,)`` or scalar bone length, metres (NaN: nearest ray point).
        origins: ``(C, 3)`` camera centres; directions: ``(C, F, 3)`` unit rays (NaN where unseen).
        usable: ``(C, F)`` rays that may be used.
        gate_m: rays whose candidate lies farther than this from the guess are ignored.
    Returns:
        ``(points (F, 3), snapped (F,))``: the candidate nearest the guess (the guess itself where
        no ray qualified).
    """
    d = np.nan_to_num(directions)
    o = origins[:, None, :]                                                                  # (C,1,3)
    # nearest point of each ray to the guess
    lam_near = ((guess[None] - o) * d).sum(-1)                                               # (C,F)
    cand = o + lam_near[..., None] * d
    if parent is not None:
        length = np.broadcast_to(np.asarray(length, dtype=np.float64), guess.shape[:1])
        op = o - parent[None]                                                                 # (C,F,3)
        b = (d * op).sum(-1)
        c = (op**2).sum(-1) - np.nan_to_num(length, nan=0.0)[None] ** 2
        disc = b**2 - c
        root = np.sqrt(np.maximum(disc, 0.0))
        lam_a, lam_b = -b - root, -b + root
        pa, pb = o + lam_a[..., None] * d, o + lam_b[..., None] * d
        pick_b = np.linalg.norm(pb - guess[None], axis=-1) < np.linalg.norm(pa - guess[None], axis=-1)
        on_sphere = np.where(pick_b[..., None], pb, pa)
        hits = (disc >= 0) & np.isfinite(length)[None]
        # the ray misses the sphere: nearest ray point to the parent's sphere along the ray
        lam_p = -b
        cand = np.where(hits[..., None], on_sphere, np.where(np.isfinite(length)[None, :, None],
                                                             o + lam_p[..., None] * d, cand))
    dist = np.linalg.norm(cand - guess[None], axis=-1)
    ok = usable & np.isfinite(directions).all(-1) & (dist <= gate_m) & (((cand - o) * d).sum(-1) > 0)
    dist = np.where(ok, dist, np.inf)
    best = np.argmin(dist, axis=0)                                                          # (F,)
    snapped = np.isfinite(dist.min(axis=0))
    chosen = np.take_along_axis(cand, best[None, :, None], axis=0)[0]
    return np.where(snapped[:, None], chosen, guess), snapped


def _parent_sphere(points: FloatArray, rows: NDArray[np.intp] | BoolArray, j: int, parents: NDArray[np.int64],
                   bone_length: FloatArray, guess: FloatArray) -> tuple[FloatArray | None, FloatArray]:
    """The sphere joint ``j`` must lie on in frames ``rows``: its parent and its bone's length.

    Returns:
        ``(parent (n, 3) or None for the root, length (n,))``; where the parent is missing, the
        length is NaN and the parent is the guess itself (so :func:`snap_to_rays` takes the ray
        point nearest the guess).
    """
    n = guess.shape[0]
    p = parents[j]
    if p < 0:
        return None, np.full(n, np.nan)
    par = points[rows, p]
    known = np.isfinite(par).all(-1)
    return np.where(known[:, None], par, guess), np.where(known, bone_length[rows, j], np.nan)


def constrain_filled_joints(points: FloatArray, filled: BoolArray, parents: NDArray[np.int64],
                            order: list[int], bone_length: FloatArray, origins: FloatArray,
                            directions: FloatArray, usable: BoolArray, gate_m: float = 0.12
                            ) -> tuple[FloatArray, BoolArray]:
    """Move filled joints onto camera rays and to the reference bone lengths.

    Args:
        points: ``(F, J, 3)`` joints, metres; the filled ones hold the model's guess.
        filled: ``(F, J)`` joints that were filled in (only these move).
        parents: ``(J,)`` parent index per joint (-1 for the root); order: joints, parents first.
        bone_length: ``(J,)`` or ``(F, J)`` reference length of the bone ending at each joint,
            metres (NaN for the root or an unknown length: the joint then keeps the model's distance).
        origins: ``(C, 3)`` camera centres; directions: ``(C, F, J, 3)`` unit rays through each
            camera's 2D joint (NaN where unseen).
        usable: ``(C, F, J)`` rays that may be used (confident detections).
        gate_m: a ray is used only if its candidate point lies within this of the model's guess
            (metres), so a wrong detection in a single camera is not followed.
    Returns:
        ``(points (F, J, 3), on_ray (F, J))``: constrained joints and which filled joints were put
        on a camera ray.
    """
    out = np.array(points, dtype=np.float64, copy=True)
    bone_length = np.broadcast_to(np.asarray(bone_length, dtype=np.float64), filled.shape)
    on_ray = np.zeros(filled.shape, bool)
    for j in order:
        rows = filled[:, j] & np.isfinite(out[:, j]).all(-1)
        if not rows.any():
            continue
        guess = out[rows, j]
        par, length = _parent_sphere(out, rows, j, parents, bone_length, guess)
        if par is not None:
            # no ray: keep the model's direction from the parent, at the bone's length
            v = guess - par
            n = np.linalg.norm(v, axis=-1, keepdims=True)
            along = par + v / np.maximum(n, 1e-9) * np.nan_to_num(length, nan=0.0)[:, None]
            guess_at_length = np.where((np.isfinite(length) & (n[:, 0] > 1e-9))[:, None], along, guess)
        else:
            guess_at_length = guess
        snapped, hit = snap_to_rays(guess, par, length, origins, directions[:, rows, j], usable[:, rows, j], gate_m)
        out[rows, j] = np.where(hit[:, None], snapped, guess_at_length)
        on_ray[np.nonzero(rows)[0][hit], j] = True
    return out, on_ray


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
                par, length = _parent_sphere(out, rows, j, parents, lengths, guess)
                placed, hit = snap_to_rays(guess, par, length, origins, directions[:, rows, j], usable[:, rows, j], gate_m)
                rows = rows[hit]
                out[rows, j] = placed[hit]
                have[rows, j] = True
                carried[rows, j] = True
                changed = changed or rows.size > 0
        if not changed:
            break
    return out, carried


def ray_directions(rig, xy: FloatArray) -> FloatArray:
    """World-frame unit directions of the rays through undistorted image points.

    Args:
        rig: a :class:`~posestudio.calibration.rig.CameraRig`; its cameras' centres
            (``rig.centers``) are the rays' origins.
        xy: ``(C, ...)`` + ``(2,)`` normalised image coordinates (``x/z, y/z``, lens undone), NaN
            where a camera has no detection.
    Returns:
        ``(C, ..., 3)`` unit directions (NaN where ``xy`` is).
    """
    rays = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], -1)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    rot = rig.rotations
    return np.einsum("c...k,ckl->c...l", rays, rot)


def bone_length_per_joint(bone_lengths: FloatArray, bones: NDArray[np.int64], n_joints: int) -> FloatArray:
    """``(..., B)`` bone lengths to ``(..., J)``: the length of the bone ending at each joint (NaN at roots)."""
    lengths = np.asarray(bone_lengths, dtype=np.float64)
    out = np.full(lengths.shape[:-1] + (n_joints,), np.nan)
    out[..., bones[:, 1]] = lengths
    return out
