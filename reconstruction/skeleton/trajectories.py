"""Joint trajectories the solver follows: confident joints closely, doubtful ones loosely, gaps filled.

Each joint's path is the minimiser of a penalised least-squares problem (a Whittaker smoother)::

    sum_f w_f |x_f - y_f|^2  +  lam * sum_f |x_{f-1} - 2 x_f + x_{f+1}|^2

with ``w_f = confidence_f ** 2`` (zero where the reconstruction has no point). ``lam`` is chosen so
that a joint at confidence 1 keeps everything below ``cutoff_hz`` (the filter's half-power
frequency); at confidence ``c`` the cutoff drops roughly as ``sqrt(c)``, so a joint the
reconstruction doubted is followed loosely, and a gap is bridged by the smoothest path (straight
lines at the take's ends). One banded (pentadiagonal) solve per joint: linear in frames.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg, sparse

from posestudio.core.arrays import FloatArray
from posestudio.core.errors import InputError

#: Data weight kept for a finite point at confidence 0, so it still pulls its path a little.
MIN_WEIGHT = 1e-4


def smoothing_weight(fps: float, cutoff_hz: float) -> float:
    """``lam`` giving the half-power cutoff ``cutoff_hz`` at data weight 1 (0 at or above Nyquist).

    The second-difference penalty has the frequency response ``1 / (1 + lam (2 sin(w/2))^4)``
    for ``w`` in radians per frame, which is 1/2 at ``lam = (2 sin(w_c/2))^-4``.
    """
    w_c = 2.0 * np.pi * cutoff_hz / fps
    if w_c >= np.pi:
        return 0.0
    return float((2.0 * np.sin(w_c / 2.0)) ** -4)


def follow_trajectories(points: FloatArray, confidence: FloatArray, fps: float, cutoff_hz: float = 10.0,
                        joint_names: list[str] | tuple[str, ...] | None = None) -> FloatArray:
    """Confidence-weighted, gap-filling smoothing of joint paths.

    Args:
        points: ``(F, J, 3)`` joint positions (metres), NaN where unknown.
        confidence: ``(F, J)`` in [0, 1]; NaN counts as 0.
        fps: frames per second; cutoff_hz: cutoff at confidence 1 (Hz).
        joint_names: ``J`` names, for the error message.
    Returns:
        ``(F, J, 3)`` finite positions (metres).
    Raises:
        InputError: if a joint has fewer than two known frames (nothing to follow).
    """
    pts = np.asarray(points, dtype=np.float64)
    n_f, n_j, _ = pts.shape
    finite = np.isfinite(pts).all(axis=2)
    conf = np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=0.0).clip(0.0, 1.0)
    weight = np.where(finite, np.maximum(conf**2, MIN_WEIGHT), 0.0)
    known = finite.sum(axis=0)
    if (known < min(2, n_f)).any():
        j = int(np.argmin(known))
        name = joint_names[j] if joint_names is not None else f"joint {j}"
        raise InputError(f"joint {name!r} is known in {int(known[j])} of {n_f} frames: the skeleton cannot "
                         "be solved without it (reconstruct it first, or check the 2D of that joint)")
    data = np.where(finite[..., None], pts, 0.0)
    lam = smoothing_weight(fps, cutoff_hz)
    if n_f < 3 or lam == 0.0:
        # Too short to smooth: fill each joint's gaps with its mean known position.
        mean = (data * weight[..., None]).sum(axis=0) / weight.sum(axis=0)[:, None]
        return np.where(finite[..., None], pts, mean[None])
    out = np.empty_like(pts)
    for j in range(n_j):  # one banded solve per joint, all three coordinates at once
        out[:, j] = smooth_weighted(data[:, j], weight[:, j], lam)
    return out


def smooth_weighted(values: FloatArray, weight: FloatArray, lam: float) -> FloatArray:
    """Whittaker smoother: ``argmin_x sum_f w_f |x_f - y_f|^2 + lam sum_f |x_{f-1} - 2 x_f + x_{f+1}|^2``.

    Args:
        values: ``(F, K)`` samples (any finite value where the weight is 0).
        weight: ``(F,)`` non-negative data weights; at least two frames must have weight > 0.
        lam: smoothness weight (:func:`smoothing_weight`); frames with weight 0 are bridged by the
            smoothest path (straight lines beyond the first and last weighted frame).
    Returns:
        ``(F, K)`` smoothed values. One pentadiagonal solve: linear in F.
    """
    n_f = len(values)
    if n_f < 3 or lam == 0.0:
        return np.asarray(values, float).copy()
    d2 = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(n_f - 2, n_f))
    penalty = (d2.T @ d2).tocsr()
    bands = np.zeros((3, n_f))  # upper banded form for solveh_banded: bands[2 + i - j, j] = A[i, j]
    bands[0, 2:] = lam * penalty.diagonal(2)
    bands[1, 1:] = lam * penalty.diagonal(1)
    bands[2] = lam * penalty.diagonal(0) + weight
    return linalg.solveh_banded(bands, weight[:, None] * values, check_finite=False)
