"""``posestudio reconstruct``: 3D skeletons from multi-view 2D keypoints and a calibrated rig."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from posestudio.core.errors import InputError
from posestudio.models.detectors.backends import DETECTORS
from posestudio.reconstruction.options import ReconstructionOptions

if TYPE_CHECKING:
    from posestudio.core.rig import CameraRig
    from posestudio.reconstruction.monocular import MonocularReport
    from posestudio.reconstruction.report import ReconstructionReport

EXAMPLE = """example:
  posestudio reconstruct --calibration rig.toml --videos take1/cam01.mp4 take1/cam02.mp4 take1/cam03.mp4 --out results/take1 --overlay
  posestudio reconstruct --calibration Calib.qca.txt --videos videos/*.mp4 --out out --detector tce --all-people
  posestudio reconstruct --calibration rig.toml --keypoints2d keypoints2d.npz --out results/take1
  posestudio reconstruct --calibration rig.toml --keypoints2d k.npz --out live_out --live
  posestudio reconstruct --calibration rig.toml --keypoints2d k.npz --out take1 --prior ours.pt
  posestudio reconstruct --calibration rig.toml --keypoints2d k.npz --monocular cam02 --height 1.75 --out mono
  posestudio reconstruct --calibration rig.toml --videos take1/cam02.mp4 --monocular cam02 --out mono

--videos: one recording per camera, named after it (cam01.mp4 for camera cam01; any subset of
the rig), frame i of each exposed at the same instant. Each is decoded once; the detector
(BlazePose by default, or our TCE network) finds people per view; frame sizes that differ from
the calibration are explained (crop or rescale) or refused; the subject is the person seen best
by the most cameras (--all-people: everyone followed, under OUT/people/). Writes
OUT/keypoints2d.npz too, and with --overlay OUT/overlay/<camera>.mp4 and a contact sheet.
--calibration takes rig.toml or any format 'posestudio rig convert' reads.

keypoints2d.npz holds keypoints (cameras, frames, joints, 3) = x, y in pixels and a confidence
(NaN where absent), camera_names matching the rig, joint_names of a known layout (H36M17,
COCO17, BlazePose33) and fps. Writes OUT/points3d.npz (frames, 17, 3) in metres in the rig's
world frame with per-joint confidence, and OUT/report.json. A joint's confidence says how it was
made: from the cameras, or 0.3 interpolated, 0.25 carried along one camera's rays, 0.22 filled by
the lifting network where one camera alone sees the body (offline; --lifting-checkpoint, or the
shipped models/lifting checkpoint when present; --no-lifting: not), 0.2 filled by the
factorization prior (--prior: a checkpoint from 'posestudio train factorization', e.g.
fine-tuned on the studio's own sessions).

--monocular CAM: 3D from that camera alone, in metres, by the lifting network (depth and scale from
its root-position branch; --lifting-checkpoint: a checkpoint from 'posestudio train lifting'),
scaled to the performer's height when --height is given (metres, ankle to head top), else at the
network's estimate; the body is put in the rig's world frame and lightly smoothed. Every joint's
confidence is 0.22 (lifted from one view). Writes the same OUT/points3d.npz, OUT/report.json
(camera, frames lifted, height used and whether given or estimated) and OUT/rig.toml, so
'posestudio export' and 'posestudio view' read it alike. With --videos, the 2D comes from the
videos given (at least CAM's) as above."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``reconstruct`` subcommand; its defaults are :class:`ReconstructionOptions`'."""
    d = ReconstructionOptions(prior=None, lifting=None)   # reading the shipped checkpoints' paths would load torch
    p = sub.add_parser("reconstruct", help="triangulate and smooth 3D skeletons from 2D keypoints",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("session", nargs="?", type=Path, default=None,
                   help="a recorded session folder (posestudio serve --record): its frames are detected and "
                        "reconstructed into SESSION/offline/ (--calibration and --out default to the session's)")
    p.add_argument("--calibration", type=Path, default=None, help="rig file (rig.toml)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--session", dest="session_dir", type=Path, default=None, help="the same as SESSION")
    source.add_argument("--keypoints2d", type=Path, help="2D keypoint file (.npz)")
    source.add_argument("--videos", type=Path, nargs="+", help="one recording per camera, named after it")
    p.add_argument("--detector", choices=DETECTORS, default="blazepose",
                   help="2D detector for --videos (default blazepose)")
    p.add_argument("--checkpoint", type=Path, default=None, help="TCE weights (default: the shipped checkpoint)")
    p.add_argument("--max-people", type=int, default=2, help="people looked for per view (default 2)")
    p.add_argument("--all-people", action="store_true", help="reconstruct everyone followed, under OUT/people/")
    p.add_argument("--overlay", action="store_true",
                   help="write 2D keypoints and reprojected 3D over the videos (OUT/overlay/)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default for a session: SESSION/offline)")
    p.add_argument("--live", action="store_true", default=d.live,
                   help="causal: each frame refined as it arrives, no look-ahead (default: the whole take at once)")
    p.add_argument("--threshold-px", type=float, default=d.triangulation.threshold_px,
                   help=f"outlier view threshold, pixels (default {d.triangulation.threshold_px:g})")
    p.add_argument("--min-confidence", type=float, default=d.triangulation.min_confidence,
                   help=f"ignore detections below this (default {d.triangulation.min_confidence:g})")
    p.add_argument("--max-gap-s", type=float, default=d.max_gap_s,
                   help=f"offline: interpolate gaps up to this long, seconds (default {d.max_gap_s:g})")
    p.add_argument("--max-carry-s", type=float, default=d.max_carry_s,
                   help=f"carry joints along a single camera's rays at most this long, seconds (default {d.max_carry_s:g})")
    prior = p.add_mutually_exclusive_group()
    prior.add_argument("--prior", type=Path, default=None,
                       help="factorization checkpoint for joints no two cameras give (default: the shipped one)")
    prior.add_argument("--no-prior", action="store_true", help="leave joints no two cameras give empty")
    p.add_argument("--monocular", metavar="CAM", default=None,
                   help="3D from this one camera, by the lifting network (metres; see below)")
    p.add_argument("--height", type=float, default=None,
                   help="with --monocular: the performer's height, metres (default: the network's estimate)")
    lifting = p.add_mutually_exclusive_group()
    lifting.add_argument("--lifting-checkpoint", type=Path, default=None,
                         help="lifting network weights ('posestudio train lifting'): for --monocular, and offline for "
                              "bodies one camera alone sees (default: the shipped checkpoint)")
    lifting.add_argument("--no-lifting", action="store_true",
                         help="offline, leave bodies one camera alone sees to the rays and the prior")
    p.add_argument("--no-refine", action="store_false", dest="refine", default=d.refine,
                   help="skip the refinement (bone lengths, smoothness, reprojection): offline keeps the "
                        "zero-phase smoothing, live uses the One Euro filter")
    p.add_argument("--refine-rig", action="store_true",
                   help="a camera found moved during the take (always warned about) is used at its pose re-solved "
                        "from the performer, from the frame it moved (see 'posestudio rig refine')")
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> ReconstructionOptions:
    """The :class:`ReconstructionOptions` the parsed arguments ask for; every other setting keeps its default.

    Raises:
        InputError: a negative duration or threshold.
    """
    for name in ("max_gap_s", "max_carry_s", "threshold_px"):
        if getattr(args, name) < 0:
            raise InputError(f"--{name.replace('_', '-')} must be zero or more, got {getattr(args, name)}")
    opts = ReconstructionOptions(live=args.live, max_gap_s=args.max_gap_s, max_carry_s=args.max_carry_s,
                                 refine=args.refine)
    opts.triangulation.min_confidence = args.min_confidence
    opts.triangulation.threshold_px = args.threshold_px
    if args.no_prior:
        opts.prior = None
    elif args.prior is not None:
        opts.prior = args.prior
    if getattr(args, "no_lifting", False):
        opts.lifting = None
    elif getattr(args, "lifting_checkpoint", None) is not None:
        opts.lifting = args.lifting_checkpoint
    return opts


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: the pipeline loads torch, which would slow down every command line
    from posestudio.reconstruction.rig_check import run_reconstruction_checked

    check_monocular_args(args)
    session = args.session or args.session_dir
    if session is not None:
        return run_session(args, session)
    if args.calibration is None or args.out is None or not (args.videos or args.keypoints2d):
        raise InputError("expected a SESSION folder, or --calibration, --out and one of --keypoints2d / --videos")
    if args.videos:
        return run_videos(args)
    if args.overlay or args.all_people:
        raise InputError("--overlay and --all-people need --videos")
    if args.monocular:
        return run_monocular_keypoints(args)
    result = run_reconstruction_checked(args.calibration, args.keypoints2d, args.out, options_from_args(args),
                                        refine_rig=args.refine_rig)
    _print_summary(result.report)
    print(f"wrote {args.out / 'points3d.npz'} and {args.out / 'report.json'}")
    return 0


def check_monocular_args(args: argparse.Namespace) -> None:
    """``--height`` belongs to ``--monocular`` and is in metres; ``--monocular`` neither turns
    lifting off nor follows every person.

    Raises:
        InputError: naming the option and the value.
    """
    from posestudio.reconstruction.monocular import check_height  # imported when the command runs: see run()

    if args.monocular is None:
        if args.height is not None:
            raise InputError("--height needs --monocular CAM")
        return
    if args.no_lifting:
        raise InputError("--no-lifting cannot be used with --monocular (it lifts)")
    if args.all_people:
        raise InputError("--all-people cannot be used with --monocular (one camera, one performer)")
    check_height(args.height)


def run_monocular_keypoints(args: argparse.Namespace) -> int:
    """``--monocular CAM`` with ``--keypoints2d``: lift, write, summarise."""
    from posestudio.reconstruction.monocular import run_monocular

    result = run_monocular(args.calibration, args.keypoints2d, args.monocular, args.out, args.height,
                           args.lifting_checkpoint)
    _print_monocular(result.report)
    print(f"wrote {args.out / 'points3d.npz'}, {args.out / 'report.json'} and {args.out / 'rig.toml'}")
    return 0


def _print_monocular(r: MonocularReport) -> None:
    print(f"{r.frames} frames from camera {r.camera}, layout {r.input_layout} -> {r.output_layout}: "
          f"{r.frames_lifted} lifted ({r.fraction_reconstructed:.1%} of joints), height {r.height_m:.3f} m "
          f"({r.height_source}), joint confidence {r.confidence:g}")


def run_videos(args: argparse.Namespace) -> int:
    """``--videos``: detect, reconstruct, write; overlays on request."""
    # imported when the command runs (torch, MediaPipe, OpenCV video): see run()
    from posestudio.calibration.rig_formats import import_rig
    from posestudio.models.detectors.backends import create_detector
    from posestudio.reconstruction.videos import VideoOptions, run_video_reconstruction

    if args.max_people < 1:
        raise InputError(f"--max-people must be at least 1, got {args.max_people}")
    options = options_from_args(args)
    rig = import_rig(args.calibration)
    if args.monocular is not None:
        if args.monocular not in rig.names:
            raise InputError(f"--monocular {args.monocular}: no such camera in the rig (rig cameras: "
                             f"{', '.join(rig.names)})")
        if args.monocular not in {Path(v).stem for v in args.videos}:
            raise InputError(f"--monocular {args.monocular}: no recording of that camera among --videos "
                             f"({', '.join(str(v) for v in args.videos)}); name it {args.monocular}.mp4 or similar")
    if args.monocular is not None:
        return _run_videos_monocular(args, rig)
    detector = create_detector(args.detector, args.checkpoint, max_people=args.max_people)
    try:
        fps = getattr(args, "session_fps", None)     # image folders carry no frame rate: a session's is known
        made = run_video_reconstruction(rig, args.videos, args.out, detector, options,
                                        video_options=VideoOptions(fps=fps) if fps else None,
                                        all_people=args.all_people, progress=stage_progress(f"2D ({args.detector})"))
    finally:
        detector.close()
    det = made.result.report.detection or {}
    print(f"2D: {det.get('frames')} frames x {len(made.video.keypoints.camera_names)} views in {det.get('seconds')} s "
          f"({det.get('ms_per_frame_per_view')} ms per frame and view), {det.get('people_followed')} people followed")
    for cam, words in (det.get("size_adjustments") or {}).items():
        print(f"  {cam}: {words}")
    _print_summary(made.result.report)
    if args.overlay:
        from posestudio.viewer.overlay import write_overlays

        files = write_overlays(args.out / "overlay", made.video.rig, args.videos, made.video.keypoints,
                               made.result.points, progress=stage_progress("overlay"))
        made.files += files
    print("wrote " + ", ".join(str(f) for f in made.files))
    return 0


def _run_videos_monocular(args: argparse.Namespace, rig: CameraRig) -> int:
    """``--videos`` with ``--monocular CAM``: the videos' 2D stage (decoding, detection, sizes,
    the subject), then CAM's 2D lifted; writes OUT/keypoints2d.npz too."""
    from posestudio.core.keypoints_file import write_keypoints2d
    from posestudio.models.detectors.backends import create_detector
    from posestudio.models.lifting.lifter import DEFAULT_CHECKPOINT
    from posestudio.reconstruction.monocular import reconstruct_monocular, write_monocular
    from posestudio.reconstruction.stages import load_lifter
    from posestudio.reconstruction.videos import VideoOptions, detect_videos

    checkpoint = args.lifting_checkpoint or DEFAULT_CHECKPOINT
    lifter = load_lifter(checkpoint)        # a missing checkpoint is refused before the videos are decoded
    detector = create_detector(args.detector, args.checkpoint, max_people=args.max_people)
    try:
        fps = getattr(args, "session_fps", None)
        video = detect_videos(rig, args.videos, detector, VideoOptions(fps=fps) if fps else None,
                              progress=stage_progress(f"2D ({args.detector})"))
    finally:
        detector.close()
    result = reconstruct_monocular(video.rig, video.keypoints, args.monocular, lifter, args.height,
                                   source="videos", checkpoint=str(checkpoint))
    result.report.detection = video.summary()
    files = write_monocular(args.out, result, video.rig)
    write_keypoints2d(args.out / "keypoints2d.npz", video.keypoints)
    files.append(args.out / "keypoints2d.npz")
    _print_monocular(result.report)
    if args.overlay:
        from posestudio.viewer.overlay import write_overlays

        files += write_overlays(args.out / "overlay", video.rig, args.videos, video.keypoints, result.points,
                                progress=stage_progress("overlay"))
    print("wrote " + ", ".join(str(f) for f in files))
    return 0


def run_session(args: argparse.Namespace, session_dir: Path) -> int:
    """A recorded session: its frames (in lockstep, a missing frame black) through the ``--videos`` path."""
    # imported when the command runs (OpenCV, the reconstruction): see run()
    from posestudio.reconstruction.live.session_reader import offline_inputs, open_session

    if args.keypoints2d or args.videos:
        raise InputError("a SESSION folder replaces --keypoints2d and --videos; give one or the other")
    session = open_session(session_dir)
    args.out = args.out or session.folder / "offline"
    args.calibration = args.calibration or session.folder / "rig.toml"
    args.videos = offline_inputs(session, args.out / "inputs")
    args.session_fps = session.fps
    state = "complete" if session.complete else f"status {session.metadata.get('status')!r} (not closed cleanly)"
    print(f"session {session.folder}: {len(session.index)} frame sets at {session.fps:g}/s, cameras "
          f"{', '.join(session.cameras)}, {state}")
    return run_videos(args)


def stage_progress(stage: str) -> Callable[[int, int | None], None]:
    """A progress callback printing ``stage: frame done/total (rate)`` on one line of stderr."""
    start = time.perf_counter()

    def show(done: int, total: int | None) -> None:
        rate = done / max(1e-9, time.perf_counter() - start)
        of = f"/{total}" if total else ""
        end = "\n" if total and done >= total else ""
        if done == 1 or done % 10 == 0 or end:
            print(f"\r{stage}: frame {done}{of} ({rate:.1f} frames/s)", end=end, file=sys.stderr, flush=True)

    return show


def _print_summary(r: ReconstructionReport) -> None:
    print(f"{r.frames} frames, {len(r.cameras)} cameras, layout {r.input_layout} -> {r.output_layout}: "
          f"{r.fraction_reconstructed:.1%} of joints reconstructed, reprojection RMS "
          f"{r.reprojection_rms_px:.2f} px, bone-length CV {r.bone_length_cv:.3f}")
