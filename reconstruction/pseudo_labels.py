"""Multi-view bootstrapping: 2D training labels for a studio's own footage from its own 3D.

A detector's keypoints in every view -> the robust triangulation and refinement -> the 3D joints
reprojected into every view are labels better than any single view's detection, wherever the
views agree. A label is kept for a (camera, frame, joint) only where

* the joint was triangulated from at least ``min_views`` cameras (not interpolated, carried
  along one camera's rays or filled by the prior: the reconstruction's confidence says which), and
* that camera's own detection lies within ``agree_px`` of the reprojection, or the other cameras
  agree among themselves (the joint was triangulated from at least ``min_views`` *other* cameras),
  so a view whose detector failed there still gets the label the others vouch for.

Labels are written as keypoints (``x, y, 1``) with NaN where none is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posestudio.core.arrays import BoolArray, FloatArray
from posestudio.core.keypoints_file import Keypoints2D, Points3D
from posestudio.core.rig import CameraRig
from posestudio.models.keypoints import H36M17, keypoints_for_rig

from .triangulation import TriangulationOptions, triangulate_robust


@dataclass
class PseudoLabelOptions:
    """Which reprojected joints become labels.

    Attributes:
        min_views: cameras that must have triangulated the joint.
        min_confidence: the reconstruction's joint confidence at least this (triangulated joints
            score above 0.5; interpolated, carried and prior-filled ones 0.3 or less).
        agree_px: a view's detection within this of the reprojection agrees, pixels.
        margin_px: labels this close to the frame's edge or beyond are dropped, pixels.
    """

    min_views: int = 3
    min_confidence: float = 0.5
    agree_px: float = 15.0
    margin_px: float = 2.0


@dataclass
class PseudoLabels:
    """Labels per view: ``keypoints (C, F, 17, 3)`` x, y pixels and 1 (NaN where none), H36M17;
    ``agreed (C, F, 17)`` where the view's own detection agreed; ``camera_names``."""

    keypoints: FloatArray
    agreed: BoolArray
    camera_names: list[str]

    @property
    def kept(self) -> BoolArray:
        """``(C, F, 17)`` labels kept."""
        return np.isfinite(self.keypoints[..., 0])

    def as_keypoints2d(self, fps: float) -> Keypoints2D:
        return Keypoints2D(self.keypoints, list(self.camera_names), list(H36M17.joints), fps)


def pseudo_labels(rig: CameraRig, detections: Keypoints2D, points: Points3D,
                  options: PseudoLabelOptions | None = None) -> PseudoLabels:
    """Labels from a reconstruction of ``detections`` (``points``), for every camera of the detections.

    Args:
        rig: the rig the reconstruction used.
        detections: the 2D the reconstruction was made from (any known layout).
        points: its result, ``(F, 17, 3)`` metres with confidence ``(F, 17)``.
    """
    o = options or PseudoLabelOptions()
    sub, kp17, _ = keypoints_for_rig(rig, detections, "detections")
    tri = triangulate_robust(sub, kp17, TriangulationOptions())
    inliers = tri.inliers  # (C, F, 17)
    n_views = inliers.sum(axis=0)
    solid = (n_views >= o.min_views) & (points.confidence >= o.min_confidence) & np.isfinite(points.points3d).all(-1)
    projected = sub.project(points.points3d)  # (C, F, 17, 2)
    dist = np.linalg.norm(projected - kp17[..., :2], axis=-1)
    agreed = solid[None] & (dist <= o.agree_px)
    others_agree = solid[None] & ((n_views[None] - inliers) >= o.min_views)
    keep = agreed | others_agree
    sizes = np.array([cam.image_size for cam in sub.cameras], float)[:, None, None, :]
    inside = ((projected >= o.margin_px) & (projected <= sizes - 1 - o.margin_px)).all(-1)
    keep &= inside
    labels = np.full(kp17.shape, np.nan)
    labels[..., :2] = np.where(keep[..., None], projected, np.nan)
    labels[..., 2] = np.where(keep, 1.0, np.nan)
    return PseudoLabels(labels, agreed & keep, list(sub.names))
