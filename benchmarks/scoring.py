"""Scores for rig calibrations: against a ground-truth rig, and without one (board geometry).

Two kinds of score, both used by ``benchmarks/calibration.py``:

- **Ground truth** (synthetic takes): :func:`align_rig_to_truth` brings an estimated rig into the
  truth's world frame (a calibrator may put its world anywhere; the board fixes the scale, so by
  default the alignment is rigid and the scale factor it would have needed is only reported), then
  :func:`score_against_truth` compares intrinsics and poses camera by camera.
- **No ground truth** (real footage): :func:`board_size_error` triangulates the board corners with
  the rig and compares every pairwise corner distance within a frame with the printed board's;
  :func:`reprojection_rms` reprojects those triangulated corners into the cameras that saw them.

Units: metres and radians inside, reported in millimetres, pixels, degrees and percent (the key
names say which). Frames are paired across cameras by index; the rig's time offsets are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
from numpy.typing import NDArray

from posestudio.calibration.board import BoardSpec
from posestudio.calibration.camera import Camera
from posestudio.calibration.detect import CameraDetections
from posestudio.calibration.geometry import rotation_angle_deg
from posestudio.calibration.rig import CameraRig
from posestudio.calibration.triangulation import triangulate_dlt

FloatArray = NDArray[np.float64]

__all__ = [
    "align_rig_to_truth", "score_against_truth", "board_size_error", "reprojection_rms",
    "TriangulatedBoard", "triangulate_board", "match_cameras",
]


# --------------------------------------------------------------------------- camera matching
def match_cameras(est: CameraRig, names: list[str]) -> list[int]:
    """Indices into ``est`` of the cameras called ``names`` (by name, or by order as a fallback).

    Args:
        est: a rig.
        names: camera names in the order wanted (truth rig or detections).
    Returns:
        ``len(names)`` indices into ``est.cameras``.
    Raises:
        ValueError: when names differ and the camera counts differ too.
    """
    if set(names) <= set(est.names):
        return [est.names.index(n) for n in names]
    if len(names) != len(est):
        raise ValueError(f"cannot pair cameras: rig has {est.names}, wanted {names}")
    return list(range(len(names)))


# --------------------------------------------------------------------------- ground truth
def _similarity_from_cameras(est: CameraRig, truth: CameraRig, order: list[int]
                             ) -> tuple[FloatArray, FloatArray, float]:
    """Best similarity ``X_truth = s * R @ X_est + t`` from camera centres and orientations.

    The rotation maximises ``tr(R^T M)`` with ``M`` the centred cross-covariance of the camera
    centres plus ``lambda * sum_i R_truth_i^T R_est_i`` (each camera's orientation says what the
    world rotation must be); ``lambda`` is the mean squared centre spread, so both terms weigh
    alike and the solution stays defined for two cameras or collinear centres.

    Returns:
        ``(R (3, 3), t (3,), s)``; ``t`` is for ``s`` applied (see :func:`align_rig_to_truth`).
    """
    ce = np.stack([est.cameras[i].center for i in order])        # (C, 3) metres
    ct = np.stack([c.center for c in truth.cameras])              # (C, 3)
    re = np.stack([est.cameras[i].rotation for i in order])       # (C, 3, 3)
    rt = np.stack([c.rotation for c in truth.cameras])            # (C, 3, 3)
    mu_e, mu_t = ce.mean(0), ct.mean(0)
    a, b = ce - mu_e, ct - mu_t
    spread = float((b**2).sum(1).mean())
    lam = spread if spread > 1e-12 else 1.0
    m = b.T @ a / len(a) + lam * np.einsum("cji,cjk->ik", rt, re) / len(a)
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag([1.0, 1.0, d]) @ vt
    den = float((a**2).sum())
    scale = float(np.einsum("ci,ci->", b, a @ rot.T) / den) if den > 1e-12 else 1.0
    return rot, mu_t, scale


def align_rig_to_truth(est: CameraRig, truth: CameraRig, rescale: bool = False) -> CameraRig:
    """Express an estimated rig in the truth's world frame.

    The two world frames differ by a rigid transform (each calibrator picks its own origin and
    axes). The board fixes the scale, so by default the scale is **not** changed; the factor that
    would best match the truth is still computed and stored in the metadata.

    Args:
        est: estimated rig (cameras matched to ``truth`` by name, else by order).
        truth: ground-truth rig.
        rescale: also apply the best scale factor (only to separate scale from shape errors).
    Returns:
        A new rig with ``truth``'s camera order and names of ``est``'s cameras, poses moved into
        the truth's world frame. ``metadata["alignment"]`` holds ``rotation`` (3, 3),
        ``translation`` (3,) metres, ``scale_factor`` (truth / estimate) and ``scale_applied``.
    """
    order = match_cameras(est, truth.names)
    rot, mu_t, scale = _similarity_from_cameras(est, truth, order)
    mu_e = np.stack([est.cameras[i].center for i in order]).mean(0)
    s = scale if rescale else 1.0
    t = mu_t - s * rot @ mu_e
    cams = []
    for i in order:
        c = est.cameras[i]
        # x_cam = R_c X_e + t_c with X_e = R^T (X_t - t) / s, multiplied through by s.
        r_new = c.rotation @ rot.T
        t_new = s * c.translation - r_new @ t
        cams.append(replace(c.copy(), rotation=r_new, translation=t_new))
    meta = dict(est.metadata)
    meta["alignment"] = {"rotation": rot, "translation": t, "scale_factor": scale, "scale_applied": rescale}
    return CameraRig(cams, meta)


def score_against_truth(est: CameraRig, truth: CameraRig, align: bool = True,
                        rescale: bool = False) -> dict:
    """Compare an estimated rig with the ground truth, camera by camera.

    Args:
        est: estimated rig (any world frame when ``align``).
        truth: ground-truth rig.
        align: first align ``est`` to the truth's world frame (:func:`align_rig_to_truth`).
        rescale: let the alignment rescale too (reported either way as ``scale_factor``).
    Returns:
        ``{"cameras": {name: {...}}, "mean": {...}, "scale_factor": float}`` where each camera and
        the mean have ``focal_error_pct`` (mean of |fx - fx*| / fx* and |fy - fy*| / fy*, percent),
        ``principal_point_error_px`` (Euclidean, pixels), ``center_error_mm`` (camera centre,
        millimetres) and ``rotation_error_deg`` (angle of R R*^T, degrees).
    """
    aligned = align_rig_to_truth(est, truth, rescale) if align else est.subset(
        [est.names[i] for i in match_cameras(est, truth.names)])
    per: dict[str, dict[str, float]] = {}
    for ce, ct in zip(aligned.cameras, truth.cameras):
        f_e, f_t = np.array(ce.focal), np.array(ct.focal)
        per[ct.name] = {
            "focal_error_pct": float(np.mean(np.abs(f_e - f_t) / f_t) * 100.0),
            "principal_point_error_px": float(np.linalg.norm(np.subtract(ce.principal_point, ct.principal_point))),
            "center_error_mm": float(np.linalg.norm(ce.center - ct.center) * 1000.0),
            "rotation_error_deg": float(rotation_angle_deg(ce.rotation, ct.rotation)),
        }
    keys = ("focal_error_pct", "principal_point_error_px", "center_error_mm", "rotation_error_deg")
    mean = {k: float(np.mean([v[k] for v in per.values()])) for k in keys}
    scale = float(aligned.metadata.get("alignment", {}).get("scale_factor", 1.0))
    return {"cameras": per, "mean": mean, "scale_factor": scale}


# --------------------------------------------------------------------------- board geometry
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)


def _undistort_pinhole(cam: Camera, pixels: FloatArray) -> FloatArray:
    """``(M, 2)`` distorted pixels (NaN allowed) to ideal normalised coordinates ``(M, 2)``.

    Used only where :meth:`Camera.undistort_points` cannot run (it calls
    ``cv2.undistortPointsIter``, which OpenCV 5.1 no longer has; ``cv2.undistortPoints`` takes
    the termination criteria there instead).
    """
    out = np.full_like(pixels, np.nan)
    ok = np.isfinite(pixels).all(axis=1)
    if ok.any():
        src = np.ascontiguousarray(pixels[ok]).reshape(-1, 1, 2)
        if cam.model == "fisheye":
            und = cv2.fisheye.undistortPoints(src, cam.matrix, cam.dist, criteria=_UNDISTORT_CRITERIA)
        else:
            und = cv2.undistortPoints(src, cam.matrix, cam.dist, None, None, None, _UNDISTORT_CRITERIA)
        out[ok] = und.reshape(-1, 2)
    return out


def _triangulate(rig: CameraRig, pixels: FloatArray, min_views: int) -> FloatArray:
    """:meth:`CameraRig.triangulate` of ``(C, ..., 2)`` pixels into ``(..., 3)`` metres, with a
    fallback to the same DLT on locally undistorted points when the installed OpenCV lacks
    ``cv2.undistortPointsIter`` (OpenCV 5.1)."""
    if hasattr(cv2, "undistortPointsIter"):
        return rig.triangulate(pixels, min_views=min_views)
    lead = pixels.shape[1:-1]
    flat = pixels.reshape(len(rig), -1, 2)
    normed = np.stack([_undistort_pinhole(c, p) for c, p in zip(rig.cameras, flat)])
    poses = np.stack([c.projection_matrix for c in rig.cameras])
    return triangulate_dlt(poses, normed, None, min_views).reshape(lead + (3,))


@dataclass
class TriangulatedBoard:
    """Board corners triangulated by a rig, frame by frame.

    Attributes:
        frames: ``(F,)`` frame indices used (seen by two or more cameras).
        points: ``(F, N, 3)`` triangulated corners, metres (NaN where fewer than two views).
        pixels: ``(C, F, N, 2)`` detected corners per rig camera, pixels (NaN where unseen).
        camera_names: the rig's camera names, in the order of ``pixels``.
    """

    frames: NDArray[np.int64]
    points: FloatArray
    pixels: FloatArray
    camera_names: list[str]


def triangulate_board(rig: CameraRig, detections: list[CameraDetections], board: BoardSpec,
                      min_views: int = 2) -> TriangulatedBoard:
    """Triangulate every board corner seen by ``min_views`` or more cameras in the same frame.

    Detections are matched to rig cameras by name (else by order). Frames are paired by index.

    Args:
        rig: the calibrated rig.
        detections: one :class:`CameraDetections` per camera.
        board: the board (gives the number of corners).
        min_views: cameras needed per corner.
    Returns:
        A :class:`TriangulatedBoard`.
    """
    dnames = [d.name for d in detections]
    order = match_cameras(rig, dnames)
    sub = CameraRig([rig.cameras[i] for i in order], dict(rig.metadata))
    n_frames = max((o.frame for d in detections for o in d.observations), default=-1) + 1
    n = board.n_corners
    pix = np.full((len(detections), max(n_frames, 0), n, 2), np.nan)
    for c, det in enumerate(detections):
        for obs in det.observations:
            pix[c, obs.frame, obs.ids] = obs.pixels
    seen = np.isfinite(pix[..., 0]).sum(0)                      # (F, N) views per corner
    frames = np.flatnonzero((seen >= min_views).any(axis=1))
    pix = pix[:, frames]
    pts = _triangulate(sub, pix, min_views) if frames.size else np.zeros((0, n, 3))
    return TriangulatedBoard(frames.astype(np.int64), pts, pix, sub.names)


def board_size_error(rig: CameraRig, detections: list[CameraDetections], board: BoardSpec,
                     triangulated: TriangulatedBoard | None = None) -> dict:
    """Board-size error: triangulated corner-to-corner distances against the printed board.

    For every frame seen by two or more cameras, all pairs of triangulated corners in that frame
    are compared with the true distance (:meth:`BoardSpec.corner_distances`). Vectorised over
    frames and corner pairs.

    Args:
        rig: the calibrated rig.
        detections: one :class:`CameraDetections` per camera (matched by name, else order).
        board: the printed board.
        triangulated: reuse a :func:`triangulate_board` result.
    Returns:
        ``{"mean_abs_mm", "rms_mm", "median_abs_mm", "max_abs_mm", "mean_signed_mm",
        "n_pairs", "n_frames", "n_points"}``; errors in millimetres (NaN when no pair).
    """
    tb = triangulated if triangulated is not None else triangulate_board(rig, detections, board)
    pts = tb.points                                               # (F, N, 3)
    true = board.corner_distances()                               # (N, N)
    iu, ju = np.triu_indices(board.n_corners, k=1)
    d = np.linalg.norm(pts[:, iu] - pts[:, ju], axis=-1)          # (F, P)
    err = (d - true[iu, ju]) * 1000.0
    ok = np.isfinite(err)
    e = err[ok]
    n_pts = int(np.isfinite(pts[..., 0]).sum())
    if e.size == 0:
        nan = float("nan")
        return {"mean_abs_mm": nan, "rms_mm": nan, "median_abs_mm": nan, "max_abs_mm": nan,
                "mean_signed_mm": nan, "n_pairs": 0, "n_frames": int(len(tb.frames)), "n_points": n_pts}
    return {"mean_abs_mm": float(np.abs(e).mean()), "rms_mm": float(np.sqrt((e**2).mean())),
            "median_abs_mm": float(np.median(np.abs(e))), "max_abs_mm": float(np.abs(e).max()),
            "mean_signed_mm": float(e.mean()), "n_pairs": int(e.size),
            "n_frames": int(ok.any(axis=1).sum()), "n_points": n_pts}


def reprojection_rms(rig: CameraRig, detections: list[CameraDetections], board: BoardSpec,
                     triangulated: TriangulatedBoard | None = None) -> dict:
    """Reprojection error of the triangulated board corners in the cameras that saw them.

    Args:
        rig, detections, board: as for :func:`board_size_error`.
        triangulated: reuse a :func:`triangulate_board` result.
    Returns:
        ``{"rms_px", "median_px", "n_observations", "per_camera_rms_px": {name: px}}``; pixels.
    """
    tb = triangulated if triangulated is not None else triangulate_board(rig, detections, board)
    order = match_cameras(rig, tb.camera_names)
    sub = CameraRig([rig.cameras[i] for i in order])
    err = sub.reprojection_errors(tb.points, tb.pixels)           # (C, F, N) pixels
    ok = np.isfinite(err)
    per = {name: (float(np.sqrt(np.mean(err[c][ok[c]] ** 2))) if ok[c].any() else float("nan"))
           for c, name in enumerate(tb.camera_names)}
    e = err[ok]
    return {"rms_px": float(np.sqrt(np.mean(e**2))) if e.size else float("nan"),
            "median_px": float(np.median(e)) if e.size else float("nan"),
            "n_observations": int(e.size), "per_camera_rms_px": per}
