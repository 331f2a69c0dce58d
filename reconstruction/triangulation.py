"""Robust multi-view triangulation of keypoints (the reconstruction's name for it).

The algorithm lives in :mod:`posestudio.core.robust_triangulation`, shared with the calibration
layer's moved-camera check (which may not import reconstruction): pair hypotheses scored by inlier
views, a confidence-weighted DLT on the best hypothesis's inliers, Gauss-Newton on the reprojection
error; vectorised over frames x joints x cameras.
"""

from __future__ import annotations

from posestudio.core.robust_triangulation import Triangulation, TriangulationOptions, triangulate_robust

__all__ = ["Triangulation", "TriangulationOptions", "triangulate_robust"]
