"""Rig calibration benchmark: PoseStudio against aniposelib and OpenCV's calibrateMultiview.

Run from the repository root: ``.venv/bin/python -m benchmarks.calibration`` (or ``make bench``,
which installs the peers first). Two tables, every tool on the same footage in one run:

1. a rendered synthetic take with ground truth (``posestudio.synthetic``: strong lens
   distortion, motion blur, noise, partial boards, cameras a few ms apart): errors against the
   true rig, board-size error, reprojection RMS and wall time (board detection included);
2. the real caliscope session (``../shared/data/caliscope_session``: hand-held inverted ChArUco,
   four webcams): board-size error and reprojection RMS from one independent set of detections
   (PoseStudio's), and caliscope's own stored calibration scored the same way.

With several ``--cameras`` values (``--cameras 4 8 16 32``) it runs the rig-size sweep of
:mod:`benchmarks.calibration_scale` instead: accuracy, wall time (detection separately) and peak
RSS per rig size, aniposelib in the same run.

Frames are paired by index for every tool's score; PoseStudio's rig with estimated time offsets
is also scored after resampling each camera at its offset ("time-aligned"), which only a rig with
offsets can use.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.peers import PeerResult, aniposelib_peer, caliscope_peer, opencv_multiview_peer
from benchmarks.scoring import score_rig
from posestudio.calibration.board import BoardSpec, load_board
from posestudio.calibration.calibrate import CalibrationOptions, calibrate_rig, detect_sources
from posestudio.commands.demo import studio_board
from posestudio.core.errors import PoseStudioError
from posestudio.core.rig import CameraRig

REPO = Path(__file__).resolve().parents[1]
CALISCOPE = REPO.parent / "shared" / "data" / "caliscope_session"

#: Targets from the issue (synthetic take): PoseStudio must beat every peer on every measure too.
TARGETS = {"focal_error_pct": 0.4, "principal_point_error_px": 2.0, "center_error_mm": 5.0, "rotation_error_deg": 0.2}


def run_posestudio(videos: list[Path], board: BoardSpec, sync: str) -> PeerResult:
    t0 = time.perf_counter()
    try:
        res = calibrate_rig(videos, board, CalibrationOptions(sync=sync), progress=None)
    except PoseStudioError as exc:
        return PeerResult("posestudio", _version(), None, time.perf_counter() - t0, failure=str(exc))
    return PeerResult("posestudio", _version(), res.rig, time.perf_counter() - t0, timings=res.report.timing_s.stages(),
                      info={"report": res.report})


def _version() -> str:
    from posestudio import __version__

    return __version__


def run_take(title: str, videos: list[Path], board: BoardSpec, truth: CameraRig | None,
             caliscope_config: Path | None, skip_aniposelib: bool) -> list[tuple[str, PeerResult, dict]]:
    """Run every tool on one take; print and return ``(label, result, scores)`` rows."""
    t0 = time.perf_counter()
    dets, _ = detect_sources(videos, board, progress=None)
    detect_s = time.perf_counter() - t0
    rows: list[tuple[str, PeerResult, dict]] = []

    def add(label: str, res: PeerResult, time_aligned: bool = False) -> None:
        sc = score_rig(res.rig, dets, board, truth, time_aligned) if res.rig is not None else {}
        rows.append((label, res, sc))

    est = run_posestudio(videos, board, "estimate")
    add("PoseStudio (time offsets estimated)", est)
    if est.rig is not None:
        add("  same rig, scored time-aligned", est, time_aligned=True)
    add("PoseStudio --sync index", run_posestudio(videos, board, "index"))
    if not skip_aniposelib:
        res = aniposelib_peer.calibrate(videos, board, invert_frames=board.inverted)
        add(f"aniposelib {res.version}" + (" (colour-inverted copies)" if board.inverted else ""), res)
    for mode in opencv_multiview_peer.INTRINSICS_MODES:
        res = opencv_multiview_peer.calibrate(videos, board, intrinsics=mode)
        add(f"cv2.calibrateMultiview {res.version} [{mode}]", res)
    if caliscope_config is not None:
        add("caliscope (its stored config.toml)", caliscope_peer.load(caliscope_config))
    print_table(title, rows, truth is not None, detect_s)
    return rows


def print_table(title: str, rows: list[tuple[str, PeerResult, dict]], has_truth: bool, detect_s: float) -> None:
    print(f"\n== {title}\n   (scores use PoseStudio's detections, {detect_s:.1f} s; frames paired by index unless "
          "noted; wall time includes each tool's own board detection)")
    head = f"{'tool':<48}{'board |e| mm':>13}{'board rms mm':>13}{'reproj px':>10}"
    if has_truth:
        head += f"{'focal %':>9}{'pp px':>8}{'centre mm':>10}{'rot deg':>9}{'scale':>8}"
    head += f"{'wall s':>8}"
    print(head)
    print("-" * len(head))
    for label, res, sc in rows:
        if not res.ok:
            print(f"{label:<48}  FAILED after {res.seconds:.1f} s: {res.failure}")
            continue
        b = sc["board"]
        line = f"{label:<48}{b.mean_abs_mm:>13.2f}{b.rms_mm:>13.2f}{b.reprojection_rms_px:>10.2f}"
        if has_truth:
            m = sc["truth"]["mean"]
            line += (f"{m['focal_error_pct']:>9.3f}{m['principal_point_error_px']:>8.2f}{m['center_error_mm']:>10.2f}"
                     f"{m['rotation_error_deg']:>9.3f}{sc['truth']['scale_factor']:>8.4f}")
        line += f"{res.seconds:>8.1f}" if not label.startswith("  ") else f"{'':>8}"
        print(line)
    for label, res, _ in rows:
        extra = [f"{k} {v:.1f} s" for k, v in res.timings.items()]
        if (res.notes or extra) and not label.startswith("  "):
            print(f"  {label.strip()}: " + "; ".join(res.notes + (["timings: " + ", ".join(extra)] if extra else [])))
    est = next((r for r in rows if r[0].startswith("PoseStudio (")), None)
    if est and est[1].ok:
        report = est[1].info["report"]
        print(f"  PoseStudio time offsets (ms, vs reference {report.reference_camera}): "
              + ", ".join(f"{k} {v.ms:+.2f}" + (f"±{v.std_ms:.2f}" if v.std_ms else "") for k, v in
                          (report.time_offsets or {}).items()))


def check_targets(rows: list[tuple[str, PeerResult, dict]], truth: CameraRig) -> None:
    """Say whether PoseStudio meets the absolute targets and beats every peer on every measure."""
    ours = next(sc for label, res, sc in rows if label.startswith("PoseStudio (") and res.ok)["truth"]["mean"]
    peers = [(label, sc["truth"]["mean"]) for label, res, sc in rows
             if res.ok and "truth" in sc and not label.startswith(("PoseStudio", "  "))]
    print("\ntargets (synthetic, PoseStudio with time offsets):")
    for key, limit in TARGETS.items():
        worse = [label for label, m in peers if m[key] <= ours[key]]
        print(f"  {key:<26} {ours[key]:8.3f}  target < {limit:<5} {'met' if ours[key] < limit else 'MISSED':<7}"
              f"  beats every peer: {'yes' if not worse else 'no (' + ', '.join(worse) + ')'}")
    t_ours = next(res.seconds for label, res, _ in rows if label.startswith("PoseStudio (") and res.ok)
    for label, res, _ in rows:
        if res.ok and label.startswith(("aniposelib", "cv2.")):
            goal = "at least 3x faster" if label.startswith("aniposelib") else "within 2x"
            print(f"  wall time vs {label:<40} {res.seconds / t_ours:5.2f}x faster  (target: {goal})")


def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--take", type=Path, help="reuse a synthetic take folder (cam*.mp4, board.toml, truth_rig.toml)")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench_calibration", help="where to render the take")
    ap.add_argument("--frames", type=int, default=None,
                    help="frames of the rendered take (default 450: 15 s at 30 fps; 240 for the rig-size sweep)")
    ap.add_argument("--cameras", type=int, nargs="+", default=[4],
                    help="cameras of the rendered take (default 4); several values, e.g. 4 8 16 32: the rig-size sweep")
    ap.add_argument("--layout", choices=("ring", "overhead"), default="ring", help="rig-size sweep: camera layout")
    ap.add_argument("--size", type=_size, default=(1280, 720), help="rig-size sweep: image WIDTHxHEIGHT (1280x720)")
    ap.add_argument("--workers", type=int, default=0, help="rig-size sweep: recordings detected at once (0: one per core)")
    ap.add_argument("--timeout", type=float, default=900.0,
                    help="rig-size sweep: seconds each tool may take on one rig size (default 900)")
    ap.add_argument("--aniposelib-max-cameras", type=int, default=0,
                    help="rig-size sweep: skip aniposelib above this many cameras (0: never skip)")
    ap.add_argument("--seed", type=int, nargs="+", default=[0],
                    help="seed of the rendered take (default 0); the rig-size sweep takes several, e.g. 0 1 2: the "
                         "sweep once per seed, then the errors per rig size averaged over them")
    ap.add_argument("--offsets-ms", default="0,3,-5,8", help="true time offsets per camera, ms")
    ap.add_argument("--caliscope", type=Path, default=CALISCOPE, help="caliscope_session folder")
    ap.add_argument("--skip-aniposelib", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--views-alike", action="store_true",
                    help="rig-size sweep: also calibrate with every board view weighed alike (untimed comparison)")
    ap.add_argument("--halves", action="store_true",
                    help="rig-size sweep: also solve the largest take's cameras in two halves (paired comparison)")
    args = ap.parse_args(argv)
    if len(args.cameras) > 1:
        from benchmarks import calibration_scale

        return calibration_scale.main(args.cameras, args)
    args.cameras = args.cameras[0]
    args.frames = args.frames or 450

    print(f"tools: PoseStudio {_version()}, aniposelib {aniposelib_peer.version()}, "
          f"OpenCV {opencv_multiview_peer.version()}")
    if not args.skip_synthetic:
        take = args.take
        if take is None:
            from posestudio.synthetic import write_synthetic_session

            offs = [float(v) / 1000 for v in args.offsets_ms.split(",")]
            offs = (offs + [0.0] * args.cameras)[: args.cameras]
            t0 = time.perf_counter()
            take = args.out / "take"
            write_synthetic_session(take, n_cameras=args.cameras, n_frames=args.frames, seed=args.seed[0],
                                    time_offsets_s=offs, board=studio_board())
            print(f"rendered the synthetic take in {time.perf_counter() - t0:.1f} s: {take}")
        truth = CameraRig.load(take / "truth_rig.toml")
        videos = [take / f"{name}.mp4" for name in truth.names]
        rows = run_take(f"synthetic take {take} ({len(videos)} cameras)", videos, load_board(take / "board.toml"),
                        truth, None, args.skip_aniposelib)
        check_targets(rows, truth)
    if not args.skip_real:
        if args.caliscope.is_dir():
            session = args.caliscope
            run_take(f"caliscope session {session} (real)", sorted((session / "videos").glob("cam_*.mp4")),
                     caliscope_peer.board(session), None, session / "config.toml", args.skip_aniposelib)
        else:
            print(f"\nskipping the caliscope session: {args.caliscope} not found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
