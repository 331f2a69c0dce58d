"""``posestudio synth rig``: generate a synthetic multi-camera board take with ground truth.

``posestudio synth performance``: videos of rendered people (real motion capture) with known 3D and 2D truth."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from posestudio.calibration.board import load_board
from posestudio.core.errors import InputError
from posestudio.synthetic.studio_rig import LAYOUTS

EXAMPLE = """example:
  posestudio synth rig /tmp/synth --cameras 4 --frames 150 --size 1920x1080 --seed 0 --offsets-ms 0,3,-5,8
  posestudio synth rig /tmp/studio32 --cameras 32 --layout overhead --frames 240 --size 1280x720

writes OUT_DIR/cam0.mp4 ... (or cam0/000000.png ... with --images), board.toml,
truth_rig.toml (true cameras; time_offset per camera in seconds) and truth.json (board poses,
true corner pixels, exposure times, settings)."""

DISTORTIONS = ("strong", "mild", "none")


@dataclass
class SynthRigOptions:
    """The rendered take ``posestudio synth rig`` makes; the command line's defaults.

    Attributes:
        cameras: number of cameras; frames: frames per camera; fps: frame rate, Hz;
        size: image ``(width, height)``, pixels; seed: seeds everything;
        offsets_s: per-camera time offsets, seconds, ``"random"`` or None (all 0);
        board: board TOML file (None: ChArUco 7 x 5, 8 cm); images: PNG folders instead of mp4;
        distortion: lens distortion, one of :data:`DISTORTIONS`; fisheye: fisheye lenses;
        blur: motion blur; noise: sensor noise sigma, grey levels; workers: processes (None: CPU count);
        layout: ``"ring"`` (cameras around the volume) or ``"overhead"`` (every other camera
        overhead, looking down).
    """

    cameras: int = 4
    frames: int = 120
    fps: float = 30.0
    size: tuple[int, int] = (1920, 1080)
    seed: int = 0
    offsets_s: list[float] | str | None = None
    board: Path | None = None
    images: bool = False
    distortion: str = "strong"
    fisheye: bool = False
    blur: bool = True
    noise: float = 2.0
    workers: int | None = None
    layout: str = "ring"

    def check(self) -> None:
        """Raise :class:`InputError` naming an option whose value cannot be used."""
        if self.cameras < 1:
            raise InputError(f"--cameras must be at least 1, got {self.cameras}")
        if self.frames < 1:
            raise InputError(f"--frames must be at least 1, got {self.frames}")
        if not self.fps > 0:
            raise InputError(f"--fps must be a positive frame rate, got {self.fps}")
        if not self.noise >= 0:
            raise InputError(f"--noise must be zero or more grey levels, got {self.noise}")
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--workers must be at least 1, got {self.workers}")
        if self.layout not in LAYOUTS:
            raise InputError(f"--layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if isinstance(self.offsets_s, list) and len(self.offsets_s) != self.cameras:
            raise InputError(f"--offsets-ms has {len(self.offsets_s)} values for {self.cameras} cameras")


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
    """Add ``synth rig``; its defaults are :class:`SynthRigOptions`'."""
    d = SynthRigOptions()
    parser = subparsers.add_parser("synth", help="generate synthetic data with ground truth",
                                   description=__doc__)
    sub = parser.add_subparsers(dest="synth_command", metavar="WHAT", required=True)
    rig = sub.add_parser("rig", help="a rendered multi-camera calibration-board take and its true rig",
                         description="Render a seeded studio rig filming a hand-held calibration board "
                                     "(lens distortion, motion blur, noise, sub-frame time offsets).",
                         epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    rig.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="output folder (created)")
    rig.add_argument("--cameras", type=int, default=d.cameras, help=f"number of cameras (default {d.cameras})")
    rig.add_argument("--frames", type=int, default=d.frames, help=f"frames per camera (default {d.frames})")
    rig.add_argument("--fps", type=float, default=d.fps, help=f"frame rate in Hz (default {d.fps:g})")
    rig.add_argument("--size", type=_size, default=d.size,
                     help=f"image WIDTHxHEIGHT (default {d.size[0]}x{d.size[1]})")
    rig.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    rig.add_argument("--offsets-ms", type=_offsets, default=d.offsets_s,
                     help="per-camera time offsets in ms, e.g. 0,3,-5,8, or 'random' (default all 0)")
    rig.add_argument("--board", type=Path, default=d.board, help="board TOML file (default ChArUco 7x5, 8 cm)")
    rig.add_argument("--images", action="store_true", default=d.images,
                     help="write PNG folders instead of mp4 videos")
    rig.add_argument("--distortion", choices=DISTORTIONS, default=d.distortion,
                     help=f"lens distortion (default {d.distortion})")
    rig.add_argument("--fisheye", action="store_true", default=d.fisheye, help="fisheye lenses")
    rig.add_argument("--no-blur", dest="blur", action="store_false", default=d.blur, help="no motion blur")
    rig.add_argument("--noise", type=float, default=d.noise,
                     help=f"sensor noise sigma, grey levels (default {d.noise:g})")
    rig.add_argument("--workers", type=int, default=d.workers, help="parallel processes (default: CPU count)")
    rig.add_argument("--layout", choices=LAYOUTS, default=d.layout,
                     help="ring: cameras around the volume; overhead: every other camera overhead, looking down "
                          f"(default {d.layout})")
    rig.set_defaults(func=run_rig)
    _register_performance(sub)


def options_from_args(args: argparse.Namespace) -> SynthRigOptions:
    """The :class:`SynthRigOptions` of parsed ``synth rig`` arguments."""
    return SynthRigOptions(cameras=args.cameras, frames=args.frames, fps=args.fps, size=args.size, seed=args.seed,
                           offsets_s=args.offsets_ms, board=args.board, images=args.images,
                           distortion=args.distortion, fisheye=args.fisheye, blur=args.blur, noise=args.noise,
                           workers=args.workers, layout=args.layout)


def run_rig(args: argparse.Namespace) -> int:
    """Render the take and print what each camera saw; returns the exit status."""
    # Imported here for start-up time: only this command renders.
    from posestudio.synthetic import write_synthetic_session

    o = options_from_args(args)
    o.check()
    board = load_board(o.board) if o.board else None
    session = write_synthetic_session(
        args.out_dir, n_cameras=o.cameras, n_frames=o.frames, fps=o.fps, image_size=o.size, seed=o.seed,
        time_offsets_s=o.offsets_s, blur=o.blur, noise_sigma=o.noise, video=not o.images, board=board,
        distortion=o.distortion, fisheye=o.fisheye, workers=o.workers, layout=o.layout)
    n = session.visible_corner_counts()
    for i, cam in enumerate(session.rig.cameras):
        print(f"{cam.name}: {session.paths[cam.name]}  offset {cam.time_offset * 1000:+.2f} ms  "
              f"board in view {int((n[i] > 0).sum())}/{n.shape[1]} frames ({int(session.partial_mask()[i].sum())} "
              f"partial), {session.takes[i].seconds:.1f} s")
    print(f"truth: {session.paths['truth_rig']}, {session.paths['truth']}  ({session.seconds:.1f} s)")
    return 0


# --------------------------------------------------------------------------- synth performance
PERFORMANCE_EXAMPLE = """example:
  posestudio synth performance --out /tmp/perf --cameras 4 --frames 90 --fps 30 --size 960x540 --people 2 --seed 0

writes DIR/videos/cam0.mp4 ... (one per camera), DIR/rig.toml (the true cameras),
DIR/truth_points3d.npz (the subject's H36M17 joints, metres), DIR/truth_keypoints2d.npz (its exact
2D joints per camera; confidence = visibility), DIR/truth_people.npz (everyone) and
DIR/performance.json (summary). The subject is a Bandai motion-capture clip when
../shared/data/bandai_mocap_1 exists (choose one with --clip), else a procedural walk."""


def _register_performance(sub: argparse._SubParsersAction) -> None:
    """Add ``synth performance``."""
    perf = sub.add_parser("performance", help="rendered videos of people moving (motion capture) and their truth",
                          description="Render a seeded studio rig filming one or two textured people animated "
                                      "by real motion capture (backgrounds, occluders, blur, noise), with the "
                                      "exact 3D joints and per-camera 2D joints and visibility.",
                          epilog=PERFORMANCE_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    perf.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (must be new or empty)")
    perf.add_argument("--cameras", type=int, default=4, help="number of cameras (default 4)")
    perf.add_argument("--frames", type=int, default=90, help="frames per camera (default 90)")
    perf.add_argument("--fps", type=float, default=30.0, help="frame rate in Hz (default 30)")
    perf.add_argument("--size", type=_size, default=(960, 540), help="image WIDTHxHEIGHT (default 960x540)")
    perf.add_argument("--people", type=int, choices=(1, 2), default=1, help="people in the scene (default 1)")
    perf.add_argument("--clip", default=None, metavar="NAME",
                      help="Bandai clip for the subject, e.g. dataset-1_walk_normal_001 (default: a seeded choice)")
    perf.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    perf.add_argument("--overwrite", action="store_true", help="replace DIR if it is not empty")
    perf.set_defaults(func=run_performance)


def run_performance(args: argparse.Namespace) -> int:
    """Render the performance, printing progress; returns the exit status."""
    import time

    from posestudio.synthetic.performance import performance_bodies, write_performance
    from posestudio.synthetic.render_augment import RenderOptions
    from posestudio.synthetic.studio_rig import make_studio_rig

    if args.cameras < 1:
        raise InputError(f"--cameras must be at least 1, got {args.cameras}")
    if args.frames < 1:
        raise InputError(f"--frames must be at least 1, got {args.frames}")
    if not args.fps > 0:
        raise InputError(f"--fps must be a positive frame rate, got {args.fps}")
    if args.out.exists() and not args.overwrite and (not args.out.is_dir() or any(args.out.iterdir())):
        raise InputError(f"--out {args.out}: already exists and is not empty (choose another folder or --overwrite)")
    bodies, sources = performance_bodies(args.frames, args.fps, args.people, args.clip, args.seed)
    rig = make_studio_rig(args.cameras, args.size, radius=(3.5, 4.5), seed=args.seed, distortion="mild")
    print(f"people: {', '.join(sources)}; {args.cameras} cameras, {args.frames} frames at "
          f"{args.size[0]}x{args.size[1]}", flush=True)
    step = max(1, args.frames // 10)
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            rate = done / max(time.perf_counter() - start, 1e-9)
            print(f"  frame {done}/{total}  ({rate:.1f} frames/s, all cameras)", flush=True)

    summary = write_performance(args.out, rig, bodies, args.fps, RenderOptions(seed=args.seed),
                                args.seed, overwrite=args.overwrite, progress=progress, sources=sources)
    for name, path in summary["videos"].items():
        print(f"{name}: {path}  subject joints visible {100 * summary['subject_visible_share'][name]:.0f} %")
    print(f"truth: {', '.join(summary['files'].values())}  ({summary['seconds']:.1f} s)")
    return 0
