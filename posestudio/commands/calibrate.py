"""``posestudio calibrate``: calibrate a camera rig from board recordings."""

from __future__ import annotations

import argparse
from pathlib import Path

from posestudio.calibration.board import load_board
from posestudio.calibration.calibrate import SYNC_MODES, CalibrationOptions, calibrate_rig
from posestudio.calibration.report import CalibrationReport, write_report_json, write_report_png
from posestudio.core.camera import CAMERA_MODELS
from posestudio.core.rig import CameraRig

EXAMPLE = """example:
  posestudio calibrate --board board.toml --out rig.toml videos/cam1.mp4 videos/cam2.mp4 videos/cam3.mp4
  posestudio calibrate --board board.toml --out rig.toml --origin-frame 40 cams/*/   # image folders
  posestudio calibrate --board board.toml --out rig.toml --fix-intrinsics old_rig.toml --sync index *.mp4

Each INPUT is one camera's video or folder of images; the camera's name is the file or folder
stem, and frames of all inputs are paired by index. The report (REPORT.json and REPORT.png
beside --out unless --report is given) lists per-camera reprojection error, views used, image
coverage, time offsets, board-size error (mm) and warnings."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` subcommand; its defaults are :class:`CalibrationOptions`'."""
    d = CalibrationOptions()
    p = sub.add_parser("calibrate", help="calibrate a multi-camera rig from ChArUco/checkerboard recordings",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", type=Path, help="video file or image folder per camera")
    p.add_argument("--board", required=True, type=Path, help="board description (TOML)")
    p.add_argument("--out", required=True, type=Path, help="rig file to write (rig.toml)")
    p.add_argument("--report", type=Path, default=None,
                   help="report path without suffix (default: OUT's stem + '_report' beside OUT)")
    p.add_argument("--sync", choices=SYNC_MODES, default=d.sync,
                   help=f"estimate each camera's sub-frame time offset or trust the frame pairing (index) "
                        f"(default {d.sync})")
    p.add_argument("--origin-frame", type=int, default=d.origin_frame,
                   help="frame whose board pose sets the world frame (Z out of the board's printed face)")
    p.add_argument("--scene-points", type=Path, default=d.scene_points, metavar="TOML",
                   help="surveyed points (metres) and their pixels per camera that set the world frame")
    p.add_argument("--intrinsics-only", action="store_true", default=d.intrinsics_only,
                   help="solve each camera's intrinsics only")
    p.add_argument("--fix-intrinsics", type=Path, default=None, metavar="RIG",
                   help="keep the intrinsics of this rig's cameras (matched by name); solve extrinsics")
    p.add_argument("--model", choices=CAMERA_MODELS, default=d.model, help=f"lens model (default {d.model})")
    p.add_argument("--fps", type=float, default=d.fps, help="frame rate (default: from the videos, else 30)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed for sampled choices (default {d.seed})")
    p.add_argument("--views-alike", dest="weigh_views", action="store_false", default=d.weigh_views,
                   help="weigh every board view alike (default: each view by its corners' noise)")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> CalibrationOptions:
    """The :class:`CalibrationOptions` the parsed arguments ask for (reads the --fix-intrinsics rig)."""
    fixed = CameraRig.load(args.fix_intrinsics) if args.fix_intrinsics else None
    return CalibrationOptions(model=args.model, sync=args.sync, origin_frame=args.origin_frame,
                              scene_points=args.scene_points, intrinsics_only=args.intrinsics_only,
                              fixed_intrinsics=fixed, fps=args.fps, seed=args.seed, weigh_views=args.weigh_views)


def run(args: argparse.Namespace) -> int:
    """Calibrate, write the rig and the report; returns the exit status."""
    board = load_board(args.board)
    opts = options_from_args(args)
    progress = None if args.quiet else (lambda m: print(m, flush=True))
    result = calibrate_rig(args.inputs, board, opts, progress=progress)
    result.rig.save(args.out)
    stem = args.report or args.out.with_name(args.out.stem + "_report")
    write_report_json(result.report, stem.with_suffix(".json"))
    write_report_png(result.report, stem.with_suffix(".png"))
    print(summary(result.report))
    print(f"wrote {args.out}, {stem.with_suffix('.json')}, {stem.with_suffix('.png')}")
    return 0


def summary(report: CalibrationReport) -> str:
    """A short table of the report for the terminal."""
    lines = [f"{'camera':<10} {'views':>6}  {'reproj RMS px':>12}  "
             + " ".join(f"{h:^15}" for h in ("fx px", "fy px", "cx px", "cy px")) + "  offset ms",
             "(± one standard deviation, where the bundle adjustment gives it)"]
    nan2 = [float("nan")] * 2

    def value(v: float, std: float | None) -> str:
        return f"{v:>8.2f}" + (f" ±{std:<5.2f}" if std is not None else " " * 7)

    for name, c in report.cameras.items():
        rms = c.reprojection_rms_px if c.reprojection_rms_px is not None else c.intrinsic_rms_px
        f = c.focal_px or nan2
        pp = c.principal_point_px or nan2
        fs = c.focal_std_px or [None, None]
        ps = c.principal_point_std_px or [None, None]
        off = (report.time_offsets or {}).get(name)
        off_s = f"{off.ms:+.2f}" + (f" ±{off.std_ms:.2f}" if off.std_ms else "") if off else "-"
        rms_s = f"{rms:.3f}" if rms is not None else "-"
        lines.append(f"{name:<10} {c.board_frames:>6}  {rms_s:>12}  {value(f[0], fs[0])} {value(f[1], fs[1])} "
                     f"{value(pp[0], ps[0])} {value(pp[1], ps[1])}  {off_s}")
    bse = report.board_size_error
    if bse and bse.pairs:
        lines.append(f"board-size error: mean {bse.mean_abs_mm:.2f} mm, RMS {bse.rms_mm:.2f} mm "
                     f"({bse.pairs} corner pairs, {bse.frames} frames); corner reprojection RMS "
                     f"{bse.reprojection_rms_px:.3f} px")
    aligned = report.board_size_error_time_aligned
    if aligned and aligned.pairs:
        lines.append(f"board-size error with the time offsets applied: mean {aligned.mean_abs_mm:.2f} mm, RMS "
                     f"{aligned.rms_mm:.2f} mm; corner reprojection RMS {aligned.reprojection_rms_px:.3f} px")
    for w in report.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)
