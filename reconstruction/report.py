"""What a reconstruction made and how well: :class:`ReconstructionReport`, written as ``report.json``.

:class:`ReportTally` adds frames up as they are made (one at a time live, a window at a time
offline), keeping sums per camera, joint and bone rather than per-frame arrays, so a report over a
take of any length costs a fixed amount of memory. ``docs/reconstruction.md`` describes the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posestudio.core.arrays import BoolArray, FloatArray
from posestudio.core.files import absent_field, write_json
from posestudio.core.keypoints_file import Points3D
from posestudio.core.pose_metrics import reprojection_errors
from posestudio.core.rig import CameraRig
from posestudio.core.skeleton import bone_lengths
from posestudio.models.keypoints import H36M17

from .options import ReconstructionOptions

FORMAT = "posestudio-reconstruction-report"
FORMAT_VERSION = 1


#: Upper edges of the reprojection-error histogram behind the median: 0.05 px steps up to 500 px.
_MEDIAN_BINS_PX = np.arange(1, 10001) * 0.05


@dataclass(kw_only=True)
class ReconstructionReport:
    """The contents of ``report.json`` (NaN is written as ``null``).

    Attributes:
        format, format_version: ``"posestudio-reconstruction-report"``, 1.
        frames: frames reconstructed; fps: their rate, Hz; cameras: the cameras used, in order.
        input_layout: the 2D keypoints' layout (e.g. ``"coco17"``); output_layout: ``"h36m17"``.
        mode: ``"offline"`` (the whole take) or ``"live"`` (causal).
        reprojection_rms_px: RMS distance, pixels, between the output joints projected into each
            camera and the detections they were triangulated from (NaN: none).
        reprojection_rms_px_all_detections: the same over every detection, outliers included.
        reprojection_median_px_all_detections: the median over every detection, pixels (to 0.05 px).
            "The detections" are the 2D the 3D was made from: left/right swaps undone and, offline,
            each view's steady per-joint offset removed (see ``docs/reconstruction.md``).
        reprojection_rms_px_per_camera, reprojection_rms_px_per_joint: the first per camera name
            and per joint name, pixels; reprojection_rms_px_per_camera_joint: per camera, then joint.
        bone_length_cv: mean over bones of each bone length's std / mean over frames (0: rigid).
        fraction_reconstructed: share of (frame, joint) cells output; ..._per_joint: per joint
            name (4 decimals).
        fraction_triangulated: share of cells triangulated from two or more views (and kept).
        fraction_gap_filled, fraction_carried_along_rays, fraction_filled_by_prior: shares of cells
            made by interpolation, by carrying along a single camera's rays, by the prior.
        fraction_filled_by_lifting: share of cells filled by the lifting network.
        prior: the factorization checkpoint used (None: no prior).
        lifting: the lifting checkpoint used to fill joints (None: not used).
        outlier_views_rejected: detections of triangulated joints that triangulation left out.
        smoothing: the filter and refinement used, with their settings.
        triangulation: ``min_confidence`` and ``threshold_px`` (pixels) of the triangulation.
        two_view_joints_dropped_by_bone_lengths: two-view joints dropped as implausible.
        frames_excluded_per_camera_as_another_person: per camera name, frames it was left out
            because its detector followed someone else.
        frames_with_left_right_swapped_per_camera: per camera name, frames in which left and right
            (of the whole body or some joints) were found confused and exchanged back.
        detection: when the 2D came from videos: the detector, its speed, the people followed and
            per-camera counts (see ``reconstruction.videos.VideoKeypoints.summary``); absent otherwise.
    """

    format: str = field(default=FORMAT, init=False)
    format_version: int = field(default=FORMAT_VERSION, init=False)
    frames: int
    fps: float
    cameras: list[str]
    input_layout: str
    output_layout: str
    mode: str
    reprojection_rms_px: float
    reprojection_rms_px_all_detections: float
    reprojection_median_px_all_detections: float
    reprojection_rms_px_per_camera: dict[str, float]
    reprojection_rms_px_per_joint: dict[str, float]
    reprojection_rms_px_per_camera_joint: dict[str, dict[str, float]]
    bone_length_cv: float
    fraction_reconstructed: float
    fraction_reconstructed_per_joint: dict[str, float]
    fraction_triangulated: float
    fraction_gap_filled: float
    fraction_carried_along_rays: float
    fraction_filled_by_prior: float
    prior: str | None
    fraction_filled_by_lifting: float = 0.0
    lifting: str | None = None
    outlier_views_rejected: int
    smoothing: dict[str, Any]
    triangulation: dict[str, float]
    two_view_joints_dropped_by_bone_lengths: int
    frames_excluded_per_camera_as_another_person: dict[str, int]
    frames_with_left_right_swapped_per_camera: dict[str, int]
    detection: dict[str, Any] | None = absent_field()

    def write(self, path: str | Path) -> None:
        """Write ``report.json`` atomically (:func:`posestudio.core.files.write_json`; NaN as null)."""
        write_json(path, self)


@dataclass
class ReconstructionResult:
    """3D joints (``points.points3d`` ``(F, 17, 3)`` metres, ``points.confidence`` ``(F, 17)``) and
    the report that describes them."""

    points: Points3D
    report: ReconstructionReport


def _rms(sum_sq: FloatArray, count: FloatArray) -> float:
    n = float(np.sum(count))
    return float(np.sqrt(np.sum(sum_sq) / n)) if n > 0 else float("nan")


class ReportTally:
    """Sums over the frames made so far, from which :meth:`report` builds the report.

    Args:
        rig: the cameras, in the keypoints' order.
        joints: the output joint names (17).
        bones: ``(B, 2)`` joint index pairs of the output skeleton.
    """

    def __init__(self, rig: CameraRig, joints: list[str] | None = None, bones: np.ndarray | None = None) -> None:
        self.rig = rig
        self.joints = list(H36M17.joints if joints is None else joints)
        self.bones = H36M17.bone_indices if bones is None else bones
        n_c, n_j, n_b = len(rig), len(self.joints), len(self.bones)
        self.frames = 0
        self._sq = np.zeros((2, n_c, n_j))          # squared reprojection errors: inlier views, all
        self._n = np.zeros((2, n_c, n_j))
        self._bone_n = np.zeros(n_b)                # bone length count, mean, sum of squared deviations
        self._bone_mean = np.zeros(n_b)
        self._bone_m2 = np.zeros(n_b)
        self._cells = np.zeros((6, n_j), np.int64)  # reconstructed, triangulated, interpolated, carried, prior, lifting
        self.outlier_views = 0
        self.dropped = 0
        self.excluded = np.zeros(n_c, np.int64)
        self.swapped = np.zeros(n_c, np.int64)
        self._hist = np.zeros(len(_MEDIAN_BINS_PX) + 1, np.int64)   # every detection's reprojection error

    def add(self, points: FloatArray, keypoints: FloatArray, inliers: BoolArray, triangulated: BoolArray,
            interpolated: BoolArray, carried: BoolArray, by_prior: BoolArray, dropped: BoolArray,
            excluded: BoolArray, swapped: BoolArray | None = None, by_lifting: BoolArray | None = None) -> None:
        """Count a run of consecutive output frames.

        Args:
            points: ``(n, J, 3)`` output joints, metres; keypoints: ``(C, n, J, 3)`` the 2D they
                were made from (pixels, confidence; views left out as another person's are NaN).
            inliers: ``(C, n, J)`` views triangulation used.
            triangulated, interpolated, carried, by_prior, dropped: ``(n, J)`` how each cell was
                made (dropped: two-view joints rejected by their bone lengths).
            excluded: ``(C, n)`` cameras left out as following another person.
            swapped: ``(C, n, J)`` detections exchanged with their left/right mirror's (None: none).
            by_lifting: ``(n, J)`` cells filled by the lifting network (None: none).
        """
        reproj_all = reprojection_errors(points, keypoints[..., :2], self.rig)                  # (C, n, J)
        for k, err in enumerate((np.where(inliers, reproj_all, np.nan), reproj_all)):
            ok = np.isfinite(err)
            self._sq[k] += (np.where(ok, err, 0.0) ** 2).sum(axis=1)
            self._n[k] += ok.sum(axis=1)
        seen = reproj_all[np.isfinite(reproj_all)]
        self._hist += np.bincount(np.searchsorted(_MEDIAN_BINS_PX, seen), minlength=len(self._hist))
        lengths = bone_lengths(points, self.bones)                                              # (n, B)
        ok = np.isfinite(lengths)
        n = ok.sum(axis=0)
        has = n > 0
        mean = np.where(has, np.where(ok, lengths, 0.0).sum(axis=0) / np.maximum(n, 1), 0.0)
        m2 = (np.where(ok, lengths - mean, 0.0) ** 2).sum(axis=0)
        total = self._bone_n + n                                   # Chan et al.'s merge of two samples
        delta = mean - self._bone_mean
        with np.errstate(invalid="ignore", divide="ignore"):
            self._bone_mean = np.where(has, self._bone_mean + delta * n / total, self._bone_mean)
            self._bone_m2 = np.where(has, self._bone_m2 + m2 + delta**2 * self._bone_n * n / total, self._bone_m2)
        self._bone_n = total
        made = np.isfinite(points).all(axis=-1)
        lifted = np.zeros_like(made) if by_lifting is None else by_lifting
        for k, mask in enumerate((made, triangulated, interpolated, carried, by_prior, lifted)):
            self._cells[k] += mask.sum(axis=0)
        self.outlier_views += int((np.isfinite(keypoints[..., 0]) & ~inliers & triangulated[None]).sum())
        self.dropped += int(dropped.sum())
        self.excluded += excluded.sum(axis=1)
        if swapped is not None:
            self.swapped += swapped.any(axis=-1).sum(axis=1)
        self.frames += points.shape[0]

    def reprojection_median(self) -> float:
        """Median reprojection error of every detection so far, pixels (to 0.05 px; NaN: none)."""
        total = self._hist.sum()
        if total == 0:
            return float("nan")
        k = int(np.searchsorted(np.cumsum(self._hist), (total + 1) / 2))
        if k >= len(_MEDIAN_BINS_PX):
            return float(_MEDIAN_BINS_PX[-1])
        return float(_MEDIAN_BINS_PX[k] - 0.025)

    def bone_length_cv(self) -> float:
        """Mean over bones of std / mean of the length (population std, as
        :func:`posestudio.core.skeleton.bone_length_cv`); NaN when no bone was seen twice."""
        with np.errstate(invalid="ignore", divide="ignore"):
            cv = np.sqrt(self._bone_m2 / self._bone_n) / self._bone_mean
        cv = np.where((self._bone_n >= 2) & (self._bone_mean > 0), cv, np.nan)
        return float(np.nanmean(cv)) if np.isfinite(cv).any() else float("nan")

    def report(self, fps: float, input_layout: str, live: bool, smoothing: dict[str, Any],
               options: ReconstructionOptions) -> ReconstructionReport:
        """The report of the frames counted so far, made with ``options`` (its prior and
        triangulation thresholds are reported) in the live or offline mode."""
        prior = options.prior
        names, joints = self.rig.names, self.joints
        sq, n = self._sq[0], self._n[0]
        with np.errstate(invalid="ignore", divide="ignore"):           # no frame yet: NaN
            share = self._cells.sum(axis=1) / (self.frames * len(joints))   # (6,)
            per_joint = self._cells[0] / self.frames
        return ReconstructionReport(
            frames=self.frames, fps=float(fps), cameras=list(names), input_layout=input_layout,
            output_layout=H36M17.name, mode="live" if live else "offline",
            reprojection_rms_px=_rms(sq, n), reprojection_rms_px_all_detections=_rms(self._sq[1], self._n[1]),
            reprojection_median_px_all_detections=self.reprojection_median(),
            reprojection_rms_px_per_camera={c: _rms(sq[i], n[i]) for i, c in enumerate(names)},
            reprojection_rms_px_per_joint={j: _rms(sq[:, k], n[:, k]) for k, j in enumerate(joints)},
            reprojection_rms_px_per_camera_joint={c: {j: _rms(sq[i, k], n[i, k]) for k, j in enumerate(joints)}
                                                  for i, c in enumerate(names)},
            bone_length_cv=self.bone_length_cv(),
            fraction_reconstructed=float(share[0]),
            fraction_reconstructed_per_joint=dict(zip(joints, per_joint.round(4).tolist())),
            fraction_triangulated=float(share[1]), fraction_gap_filled=float(share[2]),
            fraction_carried_along_rays=float(share[3]), fraction_filled_by_prior=float(share[4]),
            prior=str(prior) if prior else None, fraction_filled_by_lifting=float(share[5]),
            lifting=str(options.lifting) if options.lifting and not live else None,
            outlier_views_rejected=self.outlier_views,
            smoothing=smoothing, triangulation={"min_confidence": options.triangulation.min_confidence,
                                                 "threshold_px": options.triangulation.threshold_px},
            two_view_joints_dropped_by_bone_lengths=self.dropped,
            frames_excluded_per_camera_as_another_person=dict(zip(names, self.excluded.tolist())),
            frames_with_left_right_swapped_per_camera=dict(zip(names, self.swapped.tolist())))
