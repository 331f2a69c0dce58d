"""Rejecting implausible 3D joints that too few cameras support to check them geometrically.

A joint triangulated from only two views cannot reveal an outlier that moved along the epipolar
line: its reprojection error stays small while the point lands far away. The body can: the
lengths of its bones barely change, so a two-view joint whose bones disagree with the lengths seen
in well-supported frames is dropped (and later filled by interpolation or the prior).
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import NDArray

from posestudio.core.arrays import FloatArray
from posestudio.core.skeleton import bone_lengths


def reference_bone_lengths(points: FloatArray, bones: NDArray[np.int64], trusted: NDArray[np.bool_]) -> FloatArray:
    """Median length of each bone ``(B,)`` over frames where both its joints are trusted.

    Args:
        points: ``(F, J, 3)`` metres; bones: ``(B, 2)`` joint indices; trusted: ``(F, J)``.
    Returns:
        ``(B,)`` metres (NaN where a bone never has two trusted ends).
    """
    a, b = bones[:, 0], bones[:, 1]
    lengths = bone_lengths(points, bones)  # (F, B)
    ok = trusted[:, a] & trusted[:, b] & np.isfinite(lengths)
    masked = np.where(ok, lengths, np.nan)
    with warnings.catch_warnings():  # a bone never seen by three cameras stays NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(masked, axis=0) if ok.any() else np.full(len(bones), np.nan)


def implausible_joints(points: FloatArray, bones: NDArray[np.int64], suspect: NDArray[np.bool_],
                       reference: FloatArray, tolerance: float = 0.25, floor_m: float = 0.04) -> NDArray[np.bool_]:
    """Suspect joints ``(F, J)`` with a bone whose length is off by more than
    ``max(tolerance * reference, floor_m)`` (metres) from the reference length.

    Args:
        points: ``(F, J, 3)``; bones: ``(B, 2)``; suspect: ``(F, J)`` joints to check (e.g. two-view
        joints); reference: ``(B,)`` metres.
    """
    a, b = bones[:, 0], bones[:, 1]
    lengths = bone_lengths(points, bones)  # (F, B)
    tol = np.maximum(tolerance * reference, floor_m)
    with np.errstate(invalid="ignore"):
        bad_bone = np.abs(lengths - reference) > tol  # NaN compares False
    bad = np.zeros(suspect.shape, bool)
    np.logical_or.at(bad, (slice(None), a), bad_bone)
    np.logical_or.at(bad, (slice(None), b), bad_bone)
    return bad & suspect
