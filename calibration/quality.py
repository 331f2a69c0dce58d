"""Accuracy figures that need no ground truth: board-size error, corner reprojection error and
how well each camera's intrinsics are pinned down.

Reprojection error alone cannot see a wrong scale or a rig that is consistently bent; the board
is a ruler of known size. Triangulate its corners in every frame that two or more cameras see,
and compare the distances between the triangulated corners with the printed board's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from posestudio.core.arrays import FloatArray, IntArray
from posestudio.core.rig import CameraRig

from .board import BoardSpec
from .detect import CameraDetections
from .time_offsets import align_in_time, offsets_in_frames

if TYPE_CHECKING:  # the report imports this module's figures
    from .report import CameraEntry

#: A focal length (percent) or principal point (as the angle it turns the camera's rays, degrees)
#: less certain than this is warned about.
UNCERTAIN_FOCAL_PCT = 0.3
UNCERTAIN_PRINCIPAL_POINT_DEG = 0.25


@dataclass
class BoardSizeError:
    """Triangulated board corners against the printed board (NaN and 0 counts when no pair was seen).

    Attributes:
        mean_abs_mm, rms_mm, median_abs_mm, p95_abs_mm, max_abs_mm: of the absolute errors of the
            distances between corners, millimetres.
        scale_error_percent: median relative distance error, percent.
        pairs: corner pairs compared; frames: frames with at least one pair.
        reprojection_rms_px: RMS reprojection error of the triangulated corners in the cameras that
            saw them, pixels; reprojection_rms_px_per_camera: the same per camera name.
    """

    mean_abs_mm: float
    rms_mm: float
    median_abs_mm: float
    p95_abs_mm: float
    max_abs_mm: float
    scale_error_percent: float
    pairs: int
    frames: int
    reprojection_rms_px: float
    reprojection_rms_px_per_camera: dict[str, float]


def stack_detections(rig: CameraRig, detections: list[CameraDetections], board: BoardSpec
                     ) -> tuple[FloatArray, IntArray]:
    """Detections as one array, NaN where a camera did not see a corner.

    Args:
        rig: cameras; ``detections`` are matched to them by name.
    Returns:
        ``(pixels (C, F, K, 2), frames (F,))`` for the F frames where any camera saw the board,
        K = board corners.
    """
    by_name = {d.name: d for d in detections}
    frames = sorted({o.frame for d in detections for o in d.observations})
    index = {f: i for i, f in enumerate(frames)}
    pix = np.full((len(rig), len(frames), board.n_corners, 2), np.nan)
    for c, cam in enumerate(rig.cameras):
        det = by_name.get(cam.name)
        if det is None:
            continue
        for o in det.observations:
            pix[c, index[o.frame], o.ids] = o.pixels
    return pix, np.asarray(frames, np.int64)


def board_size_error(rig: CameraRig, detections: list[CameraDetections], board: BoardSpec,
                     min_views: int = 2, time_aligned: bool = False) -> BoardSizeError:
    """Compare distances between triangulated board corners with the printed board's.

    Frames are paired by index, or, with ``time_aligned``, each camera's corners are first
    resampled at the reference clock using the rig's time offsets
    (:func:`~.time_offsets.align_in_time`, :func:`~.time_offsets.offsets_in_frames`). For every frame, every
    corner seen by at least ``min_views`` cameras is triangulated (DLT); all pairwise distances
    between those corners are compared with the true distances.

    Returns:
        :class:`BoardSizeError`.
    """
    pix, frames = stack_detections(rig, detections, board)
    if time_aligned:
        pix = align_in_time(pix, frames, offsets_in_frames(rig))
    pts = rig.triangulate(pix, min_views=min_views)  # (F, K, 3)
    truth = board.corner_distances()  # (K, K)
    ok = np.isfinite(pts).all(axis=-1)  # (F, K)
    iu = np.triu_indices(board.n_corners, k=1)
    diff = pts[:, :, None, :] - pts[:, None, :, :]
    dist = np.linalg.norm(diff, axis=-1)[:, iu[0], iu[1]]  # (F, P)
    pair_ok = ok[:, iu[0]] & ok[:, iu[1]]
    true = np.broadcast_to(truth[iu], dist.shape)
    err = (dist - true)[pair_ok]
    rel = ((dist - true) / true)[pair_ok]
    frames_used = int(pair_ok.any(axis=1).sum())
    reproj = rig.reprojection_errors(pts, pix)  # (C, F, K)
    seen = np.isfinite(reproj) & ok[None]
    per_cam = {cam.name: (float(np.sqrt(np.mean(reproj[c][seen[c]] ** 2))) if seen[c].any() else float("nan"))
               for c, cam in enumerate(rig.cameras)}
    if err.size == 0:
        nan = float("nan")
        return BoardSizeError(nan, nan, nan, nan, nan, nan, 0, 0, nan, per_cam)
    a = np.abs(err) * 1000.0
    return BoardSizeError(
        mean_abs_mm=float(a.mean()),
        rms_mm=float(np.sqrt(np.mean(a**2))),
        median_abs_mm=float(np.median(a)),
        p95_abs_mm=float(np.percentile(a, 95)),
        max_abs_mm=float(a.max()),
        scale_error_percent=float(np.median(rel) * 100.0),
        pairs=int(err.size),
        frames=frames_used,
        reprojection_rms_px=float(np.sqrt(np.mean(reproj[seen] ** 2))),
        reprojection_rms_px_per_camera=per_cam,
    )


def intrinsics_uncertainty_warnings(cameras: Mapping[str, CameraEntry]) -> list[str]:
    """One warning naming the cameras whose focal length or principal point the take pins down
    poorly (standard deviations beyond :data:`UNCERTAIN_FOCAL_PCT` / :data:`UNCERTAIN_PRINCIPAL_POINT_DEG`),
    with what would fix it; empty when every camera is well constrained.

    A focal length 0.3 % off puts a point 3 m away 9 mm off in depth as that camera sees it; a
    principal point off by 0.25 degree of view (4.4 px at a 1000 px focal length) puts it 13 mm
    off sideways.
    """
    weak = []
    for name, cam in cameras.items():
        if not cam.focal_std_px or not cam.focal_px or not cam.principal_point_std_px:
            continue
        focal_pct = 100.0 * max(s / f for s, f in zip(cam.focal_std_px, cam.focal_px))
        pp_px = float(np.hypot(*cam.principal_point_std_px))
        pp_deg = float(np.degrees(pp_px / np.mean(cam.focal_px)))
        if focal_pct > UNCERTAIN_FOCAL_PCT or pp_deg > UNCERTAIN_PRINCIPAL_POINT_DEG:
            weak.append(f"{name} (focal +/-{focal_pct:.2f} %, principal point +/-{pp_px:.1f} px)")
    if not weak:
        return []
    return [f"intrinsics poorly constrained by this take: {', '.join(weak)}; show these cameras the board "
            "nearer, filling more of the image and tilted towards and away from them"]
