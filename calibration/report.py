"""The calibration report: what it holds (dataclasses), its JSON file and its one-page PNG.

The JSON's keys are the field names below (documented in ``docs/calibration.md``); a section that
does not apply (the adjustment of an intrinsics-only calibration, the scene points when none were
given...) is left out of the file, and NaN is written as ``null``. Units: pixels (``_px``),
millimetres (``_mm``), metres (``_m``), milliseconds (``_ms``), seconds (``_s``), frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from posestudio.core.files import absent_field, plain, write_json

from .board import BoardSpec
from .quality import BoardSizeError
from .world_frame import ScenePointsFit

REPORT_FORMAT = "posestudio-calibration-report"
REPORT_FORMAT_VERSION = 1


@dataclass
class BoardSummary:
    """The board the calibration used (``board``).

    Attributes:
        type: ``"charuco"`` or ``"checkerboard"``; squares: ``[squares_x, squares_y]``;
        square_length_m: metres; dictionary: ArUco dictionary name; inverted, legacy: as in the board file.
    """

    type: str
    squares: list[int]
    square_length_m: float
    dictionary: str
    inverted: bool
    legacy: bool

    @classmethod
    def of(cls, board: BoardSpec) -> "BoardSummary":
        """The summary of a board description."""
        return cls(board.type, [board.squares_x, board.squares_y], board.square_length, board.dictionary,
                   board.inverted, board.legacy)


@dataclass
class SolveSettings:
    """The options that shaped the solve (``options``).

    Attributes:
        model: lens model; sync: ``"estimate"`` or ``"index"``; origin_frame: frame that set the
        world frame (None: not used); seed: seed of sampled choices; fps: frames per second used
        to convert offsets to time.
    """

    model: str
    sync: str
    origin_frame: int | None
    seed: int
    fps: float


@dataclass
class StageTimes:
    """Wall time of each stage, seconds (``timing_s``); a stage that did not run is left out."""

    intrinsics: float | None = absent_field()
    initialisation: float | None = absent_field()
    bundle_adjustment: float | None = absent_field()
    quality: float | None = absent_field()
    detection: float | None = absent_field()
    total: float | None = absent_field()

    def stages(self) -> dict[str, float]:
        """The stages that ran (``total`` aside), in order: name -> seconds."""
        return {f.name: v for f in fields(self) if f.name != "total" and (v := getattr(self, f.name)) is not None}


@dataclass
class RejectedFrames:
    """Frames where the board was not accepted (``rejected_frames``): their ``count`` and ``by_reason``."""

    count: int
    by_reason: dict[str, int]

    @classmethod
    def of(cls, rejected: list[tuple[int, str]]) -> "RejectedFrames":
        """Counted from ``(frame, reason)`` pairs."""
        reasons: dict[str, int] = {}
        for _, why in rejected:
            reasons[why] = reasons.get(why, 0) + 1
        return cls(len(rejected), reasons)


@dataclass
class RejectedPose:
    """A view whose board pose was not used: its ``frame`` and the ``reason``."""

    frame: int
    reason: str


@dataclass
class CameraEntry:
    """One camera in the report (``cameras.NAME``).

    Attributes:
        image_size: ``[width, height]`` pixels; frames: frames read; board_frames: frames with the board.
        intrinsic_rms_px: reprojection RMS of the per-camera intrinsic solve, pixels (None when the
            intrinsics were fixed); intrinsic_views: frames that solve used.
        rejected_frames: frames without an accepted board, by reason; rejected_poses: views whose
            PnP board pose was rejected.
        coverage: ``(9, 16)`` detected corners per image cell (rows top to bottom).
        reprojection_rms_px: after the bundle adjustment, pixels; corners_used: corners it kept.
        focal_px: ``[fx, fy]``; principal_point_px: ``[cx, cy]``; centre_m: camera centre in the
            world frame, metres; time_offset_ms: milliseconds, relative to the reference camera.
        focal_std_px, principal_point_std_px: one standard deviation of ``[fx, fy]`` and
            ``[cx, cy]``, pixels, from the adjustment's normal matrix (what the corner noise
            leaves; on rendered 4-camera takes the true errors are 1-1.3 times these; on rendered
            16-32 camera rings the cameras with the largest focal errors, which see the board
            small, were 1.5-3.4 times these off).
        distortion: lens coefficients (intrinsics-only calibrations).
    """

    image_size: list[int]
    frames: int
    board_frames: int
    intrinsic_rms_px: float | None
    intrinsic_views: list[int]
    rejected_frames: RejectedFrames
    rejected_poses: list[RejectedPose]
    coverage: list[list[int]]
    reprojection_rms_px: float | None = absent_field()
    corners_used: int | None = absent_field()
    focal_px: list[float] | None = absent_field()
    principal_point_px: list[float] | None = absent_field()
    centre_m: list[float] | None = absent_field()
    time_offset_ms: float | None = absent_field()
    distortion: list[float] | None = absent_field()
    focal_std_px: list[float] | None = absent_field()
    principal_point_std_px: list[float] | None = absent_field()


@dataclass
class TimeOffset:
    """A camera's time offset relative to the reference camera (``time_offsets.NAME``).

    Attributes:
        frames: frames; ms: milliseconds; std_ms: its standard deviation, milliseconds (None when
            not estimated).
    """

    frames: float
    ms: float
    std_ms: float | None


@dataclass
class CameraGraph:
    """Which cameras saw the board together (``camera_graph``).

    Attributes:
        pair_shared_views: ``"A-B"`` -> frames where both posed the board.
        tree: ``[parent, child]`` edges of the spanning tree that placed the cameras.
    """

    pair_shared_views: dict[str, int]
    tree: list[list[str]]


@dataclass
class RejectedCorner:
    """A corner dropped as an outlier by the bundle adjustment (``rejected_corners[]``).

    Attributes:
        camera: camera name; frame: source frame; corner: corner id; error_px: its reprojection
        error, pixels; reason: the threshold it exceeded.
    """

    camera: str
    frame: int
    corner: int
    error_px: float
    reason: str


@dataclass
class AdjustmentSummary:
    """The bundle adjustment (``adjustment``): LM ``iterations`` in all stages, whether the last
    ``converged``, ``corners`` kept, ``board_poses`` solved and the ``time_model`` of the board
    between frames (``"quadratic"`` or ``"linear"``, :mod:`.time_offsets`; absent without time offsets)."""

    iterations: int
    converged: bool
    corners: int
    board_poses: int
    time_model: str | None = absent_field()


@dataclass(kw_only=True)
class CalibrationReport:
    """Everything a calibration says about itself; :meth:`to_dict` is the JSON file's content.

    Attributes:
        format, format_version: identify the file (readers refuse other versions).
        board, options, timing_s, warnings: always present.
        scene_points: the surveyed points' fit, when ``--scene-points`` set the world frame.
        reference_camera, world_frame, reprojection_rms_px (all corners, pixels), time_offsets,
        camera_graph, rejected_corners, adjustment, board_size_error: from the extrinsic solve
        (absent for intrinsics only).
        cameras: camera name -> :class:`CameraEntry`.
        board_size_error_time_aligned: the board-size error with each camera's corners resampled
            at its time offset (offsets estimated only).
        inputs: the recordings, when calibrated from files.
    """

    format: str = REPORT_FORMAT
    format_version: int = REPORT_FORMAT_VERSION
    board: BoardSummary
    options: SolveSettings
    timing_s: StageTimes = field(default_factory=StageTimes)
    warnings: list[str] = field(default_factory=list)
    scene_points: ScenePointsFit | None = absent_field()
    reference_camera: str | None = absent_field()
    world_frame: str | None = absent_field()
    reprojection_rms_px: float | None = absent_field()
    time_offsets: dict[str, TimeOffset] | None = absent_field()
    camera_graph: CameraGraph | None = absent_field()
    cameras: dict[str, CameraEntry] = field(default_factory=dict)
    rejected_corners: list[RejectedCorner] | None = absent_field()
    adjustment: AdjustmentSummary | None = absent_field()
    board_size_error: BoardSizeError | None = absent_field()
    board_size_error_time_aligned: BoardSizeError | None = absent_field()
    inputs: list[str] | None = absent_field()

    def to_dict(self) -> dict[str, Any]:
        """The JSON document: sections as nested dicts, absent sections left out."""
        return plain(self, drop_none=False)


def write_report_json(report: CalibrationReport, path: str | Path) -> None:
    """Write the report as JSON (NaN written as null), atomically."""
    write_json(path, report)


def write_report_png(report: CalibrationReport, path: str | Path) -> None:
    """One-page summary: per-camera reprojection RMS, time offsets, coverage heat maps, board-size error."""
    # Imported here for start-up time: matplotlib takes about 0.15 s, and only this page needs it.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cams = report.cameras
    names = list(cams)
    n = max(len(names), 1)
    fig = plt.figure(figsize=(4 * max(n, 3), 9), dpi=90)
    grid = fig.add_gridspec(2, max(n, 3), height_ratios=[1, 1.1])

    ax = fig.add_subplot(grid[0, 0])
    rms = [cams[c].reprojection_rms_px or cams[c].intrinsic_rms_px or 0.0 for c in names]
    ax.bar(names, rms, color="#4477aa")
    ax.set_ylabel("reprojection RMS (px)")
    ax.set_title("reprojection error per camera")

    ax = fig.add_subplot(grid[0, 1])
    offs = report.time_offsets
    if offs:
        vals = [offs[c].ms for c in names]
        errs = [offs[c].std_ms or 0.0 for c in names]
        ax.bar(names, vals, yerr=errs, color="#ee6677", capsize=4)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylabel("time offset (ms)")
        ax.set_title(f"time offsets (reference {report.reference_camera or '?'})")
    else:
        ax.set_axis_off()

    ax = fig.add_subplot(grid[0, 2])
    bse = report.board_size_error
    if bse and bse.pairs:
        txt = (f"board-size error\n  mean {bse.mean_abs_mm:.2f} mm\n  RMS {bse.rms_mm:.2f} mm\n"
               f"  p95 {bse.p95_abs_mm:.2f} mm\n  scale {bse.scale_error_percent:+.3f} %\n"
               f"  {bse.pairs} corner pairs in {bse.frames} frames\n")
        aligned = report.board_size_error_time_aligned
        if aligned and aligned.pairs:
            txt += (f"time-aligned (offsets applied)\n  mean {aligned.mean_abs_mm:.2f} mm, RMS "
                    f"{aligned.rms_mm:.2f} mm\n  corner reprojection {aligned.reprojection_rms_px:.2f} px\n")
        rms_all = report.reprojection_rms_px if report.reprojection_rms_px is not None else float("nan")
        txt += f"\nadjustment reprojection RMS {rms_all:.3f} px"
    else:
        txt = "intrinsics only: no board-size error"
    ax.text(0.02, 0.98, txt, va="top", family="monospace", fontsize=11)
    ax.set_axis_off()

    for i, c in enumerate(names):
        ax = fig.add_subplot(grid[1, i])
        cov = np.asarray(cams[c].coverage, float)
        w, h = cams[c].image_size
        ax.imshow(cov, cmap="viridis", interpolation="nearest", extent=(0, w, h, 0))
        ax.set_title(f"{c}: corners per cell ({cams[c].board_frames} views)")
        ax.set_xticks([])
        ax.set_yticks([])
    warnings = report.warnings
    if warnings:
        fig.text(0.01, 0.005, "\n".join(f"! {w}" for w in warnings[:6]), fontsize=8, va="bottom", color="#aa3377")
    fig.tight_layout(rect=(0, 0.04 + 0.015 * min(len(warnings), 6), 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
