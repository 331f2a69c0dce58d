"""Linear multi-view triangulation, vectorised over points and cameras."""

from __future__ import annotations

import numpy as np

from .arrays import FloatArray


def triangulate_dlt(poses: FloatArray, normalized: FloatArray, weights: FloatArray | None = None,
                    min_views: int = 2) -> FloatArray:
    """Weighted direct linear triangulation from undistorted normalised coordinates.

    Args:
        poses: ``(C, 3, 4)`` world-to-camera ``[R | t]`` per camera.
        normalized: ``(C, N, 2)`` ideal normalised image coordinates; NaN where a camera does
            not see the point.
        weights: ``(C, N)`` non-negative weights (e.g. detection confidence), or None for 1.
        min_views: points seen by fewer cameras come back NaN.
    Returns:
        ``(N, 3)`` world points, metres.
    """
    poses = np.asarray(poses, dtype=np.float64)
    xy = np.asarray(normalized, dtype=np.float64)
    n_cams, n_pts = xy.shape[:2]
    seen = np.isfinite(xy).all(axis=-1)
    w = np.ones((n_cams, n_pts)) if weights is None else np.nan_to_num(np.asarray(weights, float))
    w = np.where(seen, w, 0.0)
    xy0 = np.where(seen[..., None], xy, 0.0)
    # rows: x * P3 - P1 and y * P3 - P2, each (C, N, 4)
    row_x = xy0[..., 0:1] * poses[:, None, 2, :] - poses[:, None, 0, :]
    row_y = xy0[..., 1:2] * poses[:, None, 2, :] - poses[:, None, 1, :]
    rows = np.stack([row_x, row_y], axis=1) * w[:, None, :, None]  # (C, 2, N, 4)
    a = rows.transpose(2, 0, 1, 3).reshape(n_pts, 2 * n_cams, 4)
    # Inhomogeneous DLT (homogeneous coordinate fixed to 1): the 3x3 normal equations of the
    # algebraic error. Batched 3x3 solves are several times faster than 4x4 eigen-decompositions
    # and give the same point for any point not at infinity.
    ata = np.swapaxes(a, 1, 2) @ a
    m, rhs = ata[:, :3, :3], -ata[:, :3, 3]
    solvable = np.abs(np.linalg.det(m)) > 1e-18
    pts = np.full((n_pts, 3), np.nan)
    if solvable.any():
        pts[solvable] = np.linalg.solve(m[solvable], rhs[solvable][..., None])[..., 0]
    pts[(seen & (w > 0)).sum(axis=0) < min_views] = np.nan
    return pts
