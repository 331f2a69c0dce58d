"""``posestudio synth rig``: generate a synthetic multi-camera board take with ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = """example:
  posestudio synth rig /tmp/synth --cameras 4 --frames 150 --size 1920x1080 --seed 0 --offsets-ms 0,3,-5,8

writes OUT_DIR/cam0.mp4 ... (or cam0/000000.png ... with --images), board.toml,
truth_rig.toml (true cameras; time_offset per camera in seconds) and truth.json (board poses,
true corner pixels, exposure times, settings)."""


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1920x1080, got {text!r}") from None
    if w < 64 or h < 64:
        raise argparse.ArgumentTypeError(f"image size {w}x{h} is too small (at least 64x64)")
    return w, h


def _offsets(text: str) -> list[float] | str:
    if text.strip().lower() == "random":
        return "random"
    try:
        return [float(v) / 1000.0 for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated milliseconds such as 0,3,-5,8 or 'random', "
                                         f"got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("synth", help="generate synthetic data with ground truth",
                                   description=__doc__)
    sub = parser.add_subparsers(dest="synth_command", metavar="WHAT", required=True)
    rig = sub.add_parser("rig", help="a rendered multi-camera calibration-board take and its true rig",
                         description="Render a seeded studio rig filming a hand-held calibration board "
                                     "(lens distortion, motion blur, noise, sub-frame time offsets).",
                         epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    rig.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="output folder (created)")
    rig.add_argument("--cameras", type=int, default=4, help="number of cameras (default 4)")
    rig.add_argument("--frames", type=int, default=120, help="frames per camera (default 120)")
    rig.add_argument("--fps", type=float, default=30.0, help="frame rate in Hz (default 30)")
    rig.add_argument("--size", type=_size, default=(1920, 1080), help="image WIDTHxHEIGHT (default 1920x1080)")
    rig.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    rig.add_argument("--offsets-ms", type=_offsets, default=None,
                     help="per-camera time offsets in ms, e.g. 0,3,-5,8, or 'random' (default all 0)")
    rig.add_argument("--board", type=Path, default=None, help="board TOML file (default ChArUco 7x5, 8 cm)")
    rig.add_argument("--images", action="store_true", help="write PNG folders instead of mp4 videos")
    rig.add_argument("--distortion", choices=("strong", "mild", "none"), default="strong",
                     help="lens distortion (default strong)")
    rig.add_argument("--fisheye", action="store_true", help="fisheye lenses")
    rig.add_argument("--no-blur", action="store_true", help="no motion blur")
    rig.add_argument("--noise", type=float, default=2.0, help="sensor noise sigma, grey levels (default 2)")
    rig.add_argument("--workers", type=int, default=None, help="parallel processes (default: CPU count)")
    rig.set_defaults(func=run_rig)


def run_rig(args: argparse.Namespace) -> int:
    from posestudio.calibration.board import load_board
    from posestudio.synthetic import write_synthetic_session

    if args.cameras < 1:
        raise ValueError(f"--cameras must be at least 1, got {args.cameras}")
    if args.frames < 1:
        raise ValueError(f"--frames must be at least 1, got {args.frames}")
    if isinstance(args.offsets_ms, list) and len(args.offsets_ms) != args.cameras:
        raise ValueError(f"--offsets-ms has {len(args.offsets_ms)} values for {args.cameras} cameras")
    board = load_board(args.board) if args.board else None
    session = write_synthetic_session(
        args.out_dir, n_cameras=args.cameras, n_frames=args.frames, fps=args.fps, image_size=args.size,
        seed=args.seed, time_offsets_s=args.offsets_ms, blur=not args.no_blur, noise_sigma=args.noise,
        video=not args.images, board=board, distortion=args.distortion, fisheye=args.fisheye,
        workers=args.workers)
    n = session.visible_corner_counts()
    for i, cam in enumerate(session.rig.cameras):
        print(f"{cam.name}: {session.paths[cam.name]}  offset {cam.time_offset * 1000:+.2f} ms  "
              f"board in view {int((n[i] > 0).sum())}/{n.shape[1]} frames ({int(session.partial_mask()[i].sum())} "
              f"partial), {session.takes[i].seconds:.1f} s")
    print(f"truth: {session.paths['truth_rig']}, {session.paths['truth']}  ({session.seconds:.1f} s)")
    return 0
