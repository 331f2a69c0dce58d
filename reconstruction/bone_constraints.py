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

from posestudio.core.arrays import BoolArray, FloatArray


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


def parent_sphere(points: FloatArray, rows: NDArray[np.intp] | BoolArray, j: int, parents: NDArray[np.int64],
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
        par, length = parent_sphere(out, rows, j, parents, bone_length, guess)
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
