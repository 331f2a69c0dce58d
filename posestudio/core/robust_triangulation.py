"""Robust multi-view triangulation of keypoints, vectorised over frames x joints x cameras (shared by
the reconstruction, :mod:`posestudio.reconstruction.triangulation`, and the calibration layer's
moved-camera check, :mod:`posestudio.calibration.drift_residuals`, which may not import reconstruction).

Pipeline for every point (one joint in one frame) at once:

1. undistort each camera's 2D keypoints once (normalised image coordinates);
2. hypotheses: a 2-view DLT from every camera pair that sees the point with enough confidence;
   each hypothesis is scored by how many views reproject within ``threshold_px`` (ties: smaller
   summed error) — a RANSAC over camera pairs, exhaustive because rigs have few cameras, so
   confident-looking gross outliers cannot pull the result;
3. a confidence-weighted DLT on the inlier views of the best hypothesis;
4. Gauss-Newton refinement of the reprojection error (pixels, weighted by confidence) on the
   inlier views.

There is no Python loop over points, frames or joints; the loops are over camera pairs and
refinement iterations.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from numpy.typing import NDArray

from .arrays import BoolArray, FloatArray
from .dlt import triangulate_dlt
from .projection import MIN_DEPTH_M, normalized_projection, to_cameras, world_point_jacobian
from .rig import CameraRig


@dataclass
class TriangulationOptions:
    """Settings of :func:`triangulate_robust`.

    Attributes:
        min_confidence: 2D detections below this confidence are ignored.
        threshold_px: a view whose reprojection error exceeds this is an outlier, pixels.
        min_views: points seen by fewer inlier views come back NaN.
        refine_iterations: Gauss-Newton iterations on the reprojection error (0: DLT only).
    """

    min_confidence: float = 0.3
    threshold_px: float = 12.0
    min_views: int = 2
    refine_iterations: int = 2


@dataclass
class Triangulation:
    """Result of :func:`triangulate_robust`.

    Attributes:
        points: ``(..., 3)`` world points, metres (NaN where not reconstructed).
        inliers: ``(C, ...)`` views used for each point.
        reprojection_px: ``(C, ...)`` reprojection error of every view that saw the point, pixels
            (NaN where the camera had no detection).
    """

    points: FloatArray
    inliers: BoolArray
    reprojection_px: FloatArray

    @property
    def n_views(self) -> NDArray[np.int64]:
        """``(...)`` inlier views per point."""
        return self.inliers.sum(axis=0)


def _midpoint_two_views(pose_a: FloatArray, pose_b: FloatArray, xy_a: FloatArray, xy_b: FloatArray) -> FloatArray:
    """Closed-form two-view triangulation: midpoint of the closest points of the two rays.

    Args:
        pose_a, pose_b: ``(3, 4)`` world-to-camera; xy_a, xy_b: ``(N, 2)`` normalised coordinates.
    Returns:
        ``(N, 3)`` world points (NaN for parallel rays).
    """
    ra, rb = pose_a[:, :3], pose_b[:, :3]
    ca, cb = -ra.T @ pose_a[:, 3], -rb.T @ pose_b[:, 3]
    da = np.c_[xy_a, np.ones(len(xy_a))] @ ra  # ray directions in the world (R^T d)
    db = np.c_[xy_b, np.ones(len(xy_b))] @ rb
    w0 = ca - cb
    a, b, c = (da * da).sum(1), (da * db).sum(1), (db * db).sum(1)
    d, e = da @ w0, db @ w0
    den = a * c - b * b
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (b * e - c * d) / den
        t = (a * e - b * d) / den
    pts = 0.5 * ((ca + s[:, None] * da) + (cb + t[:, None] * db))
    pts[~(np.abs(den) > 1e-12 * a * c)] = np.nan
    return pts


def triangulate_robust(rig: CameraRig, keypoints: FloatArray,
                       options: TriangulationOptions | None = None) -> Triangulation:
    """Triangulate 2D keypoints seen by a calibrated rig, rejecting outlier views.

    Args:
        rig: the calibrated cameras, in the order of the keypoints' first axis.
        keypoints: ``(C, ..., 3)``: x, y in distorted pixels and a confidence in [0, 1]
            (NaN where absent), e.g. ``(C, F, J, 3)``.
        options: thresholds (see :class:`TriangulationOptions`).
    Returns:
        :class:`Triangulation` with points ``(..., 3)`` in metres.
    """
    opts = options or TriangulationOptions()
    kp = np.asarray(keypoints, dtype=np.float64)
    n_cams = len(rig)
    if kp.shape[0] != n_cams or kp.shape[-1] != 3:
        raise ValueError(f"keypoints must be (cameras={n_cams}, ..., 3), got {kp.shape}")
    lead = kp.shape[1:-1]
    flat = kp.reshape(n_cams, -1, 3)
    n = flat.shape[1]
    conf = np.nan_to_num(flat[..., 2], nan=0.0)
    valid = np.isfinite(flat[..., :2]).all(axis=-1) & (conf >= opts.min_confidence)
    normed = rig.undistort(np.where(valid[..., None], flat[..., :2], np.nan))  # (C, N, 2)
    valid &= np.isfinite(normed).all(axis=-1)
    poses = np.stack([c.projection_matrix for c in rig.cameras])  # (C, 3, 4)
    focal = np.array([np.mean(c.focal) for c in rig.cameras])  # pixels per normalised unit

    def view_errors(points: FloatArray, idx: NDArray[np.int64] | slice = slice(None)) -> FloatArray:
        """Reprojection error ``(C, n)`` of points ``(n, 3)`` (the columns ``idx``), in pixels
        (normalised error times focal length); inf behind a camera or where unseen."""
        pc = to_cameras(poses[:, :, :3], poses[:, :, 3], points)                             # (C, n, 3)
        err = np.linalg.norm(normalized_projection(pc)[0] - normed[:, idx], axis=-1) * focal[:, None]
        return np.where((pc[..., 2] > MIN_DEPTH_M) & valid[:, idx], err, np.inf)

    # --- 2. hypotheses from camera pairs -------------------------------------------------------
    best_count = np.zeros(n, np.int64)
    best_sum = np.full(n, np.inf)
    best_pts = np.full((n, 3), np.nan)
    for a, b in combinations(range(n_cams), 2):
        both = valid[a] & valid[b]
        if not both.any():
            continue
        idx = np.flatnonzero(both)
        pts = _midpoint_two_views(poses[a], poses[b], normed[a, idx], normed[b, idx])
        err = view_errors(pts, idx)  # (C, n_idx)
        inl = err < opts.threshold_px
        count = inl.sum(axis=0)
        ssum = np.where(inl, err, 0.0).sum(axis=0)
        better = (count > best_count[idx]) | ((count == best_count[idx]) & (ssum < best_sum[idx]))
        sel = idx[better]
        best_count[sel], best_sum[sel], best_pts[sel] = count[better], ssum[better], pts[better]

    # --- 3. weighted DLT on the inliers of the best hypothesis -----------------------------------
    err = view_errors(np.nan_to_num(best_pts))
    inliers = valid & (err < opts.threshold_px) & np.isfinite(best_pts).all(axis=1)[None]
    points = triangulate_dlt(poses, np.where(inliers[..., None], normed, np.nan), conf * inliers, opts.min_views)

    # --- 4. Gauss-Newton on the weighted reprojection error --------------------------------------
    w = np.where(inliers, conf, 0.0) * focal[:, None] ** 2  # (C, N)
    for _ in range(opts.refine_iterations):
        ok = np.isfinite(points).all(axis=1)
        if not ok.any():
            break
        pc = to_cameras(poses[:, :, :3], poses[:, :, 3], np.nan_to_num(points))  # (C, N, 3)
        r = normalized_projection(pc)[0] - np.nan_to_num(normed)  # (C, N, 2)
        jac = world_point_jacobian(poses[:, None, :, :3], pc)  # (C, N, 2, 3)
        wjac = jac * w[..., None, None]
        h = (np.swapaxes(wjac, -1, -2) @ jac).sum(axis=0)  # (N, 3, 3)
        g = (np.swapaxes(wjac, -1, -2) @ r[..., None])[..., 0].sum(axis=0)  # (N, 3)
        solvable = ok & (np.linalg.det(h) > 1e-12)
        step = np.zeros((n, 3))
        step[solvable] = -np.linalg.solve(h[solvable], g[solvable][..., None])[..., 0]
        points = np.where(solvable[:, None], points + step, points)

    reproj = np.where(np.isfinite(flat[..., :2]).all(axis=-1) & np.isfinite(points).all(axis=1)[None],
                      np.linalg.norm(rig.project(points) - flat[..., :2], axis=-1), np.nan)
    inliers &= np.isfinite(points).all(axis=1)[None]
    return Triangulation(points.reshape(lead + (3,)), inliers.reshape((n_cams,) + lead),
                         reproj.reshape((n_cams,) + lead))
