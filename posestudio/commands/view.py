"""``posestudio view``: a reconstructed take (or a live skeleton stream) in a 3D window, or rendered
offscreen to a PNG or an MP4."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from posestudio.core.errors import InputError

if TYPE_CHECKING:
    from posestudio.core.camera import Camera
    from posestudio.core.rig import CameraRig
    from posestudio.viewer.scene import Take

EXAMPLE = """examples:
  posestudio view results/take1                                  # play it in a window
  posestudio view results/take1 --offscreen take1.mp4            # every frame, no display needed
  posestudio view results/take1 --offscreen f120.png --frame 120 --view-camera cam02
  posestudio view results/take1 --person all --offscreen everyone.png --size 1920x1080
  posestudio view --connect tcp://studio-server:5570             # a live skeleton stream
  posestudio view --connect tcp://localhost:5570 --offscreen live.png --timeout 5

DIR is a 'posestudio reconstruct' output folder: DIR/points3d.npz, and DIR/rig.toml (the cameras,
drawn as frusta; --calibration gives another rig file, in any format 'posestudio rig convert'
reads; without either the cameras are left out). --person K shows DIR/people/person_K (from
'reconstruct --all-people'); --person all shows the subject and everyone there.

Bones have one colour per person (azure, magenta, violet, ...); joints are coloured by their
confidence: red 0 -> yellow 0.5 -> green 1 (grey: unknown); unknown joints are hidden. The floor
grid lies on the world's z = 0 plane (0.5 m squares); the axes at the origin are X red, Y green,
Z blue, 0.5 m long.

Window keys: space play/pause; right arrow or '.' one frame forward, left arrow or ',' one back;
Home first frame; Q or Esc quits; the mouse turns, pans and zooms. Without a display, use
--offscreen. Offscreen renders use Open3D's legacy visualizer on EGL (Mesa on the CPU), else its
Filament OffscreenRenderer (Mesa's Vulkan driver); POSESTUDIO_RENDERER=legacy|filament picks
one. Frames count from 0; --frame defaults to the middle of the take. --view-camera renders
through one of the rig's calibrated cameras (pinhole, lens distortion ignored), so the image lines
up with that camera's projection; its size is the camera's unless --size scales it. See
docs/viewer.md."""

DEFAULT_SIZE = (1280, 720)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``view`` subcommand."""
    p = sub.add_parser("view", help="play a take in a 3D window, or render it to PNG/MP4; live skeleton streams",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", nargs="?", type=Path, help="a 'posestudio reconstruct' output folder")
    p.add_argument("--calibration", type=Path, help="rig file (default DIR/rig.toml when it exists)")
    p.add_argument("--person", help="K: DIR/people/person_K; 'all': the subject and everyone under DIR/people/")
    p.add_argument("--offscreen", type=Path, metavar="OUT.png|OUT.mp4",
                   help="render without a window: one frame to a PNG, or every frame to an MP4")
    p.add_argument("--frame", type=int, help="frame to render or start from, 0-based (PNG default: the middle)")
    p.add_argument("--view-camera", metavar="NAME", help="look through this rig camera")
    p.add_argument("--size", metavar="WxH", help=f"image or window size (default {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}; "
                                                 "offscreen --view-camera: the camera's size)")
    p.add_argument("--connect", metavar="tcp://HOST:PORT", help="show a live skeleton stream instead of DIR")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="--connect --offscreen: seconds to wait for the first frame (default 10)")
    p.add_argument("--renderer", choices=("auto", "legacy", "filament"), default="auto",
                   help="offscreen renderer (default auto: Open3D's legacy visualizer on EGL, else Filament)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: Open3D and the viewer take a second to load
    size = parse_size(args.size) if args.size else None
    kind = output_kind(args.offscreen) if args.offscreen else None
    if args.connect:
        if args.dir is not None and args.calibration is None and (args.dir / "rig.toml").is_file():
            args.calibration = args.dir / "rig.toml"
        return run_live(args, size, kind)
    if args.dir is None:
        raise InputError("give a take folder (DIR) or --connect tcp://HOST:PORT")
    from posestudio.viewer.take import load_rig, load_take

    take = load_take(args.dir, args.person)
    rig = load_rig(args.dir, args.calibration)
    if args.frame is not None and not 0 <= args.frame < take.n_frames:
        raise InputError(f"--frame {args.frame} is outside the take: frames 0..{take.n_frames - 1}")
    if kind is None and size is None and args.view_camera and rig is not None and args.view_camera in rig.names:
        size = fit_size(rig[args.view_camera].image_size)       # a window no bigger than the default
    camera = view_camera(take, rig, args.view_camera, size)
    if kind is None:
        from posestudio.viewer.player import play_take

        play_take(take, rig, camera, start_frame=args.frame, title=f"PoseStudio: {args.dir}")
        return 0
    from posestudio.viewer.offscreen import render_mp4, render_png

    if kind == "png":
        done = render_png(args.offscreen, take, args.frame, camera, rig, renderer=args.renderer)
        what = f"frame {take.n_frames // 2 if args.frame is None else args.frame} of {take.n_frames}"
    else:
        if args.frame is not None:
            raise InputError("--frame picks the instant of a PNG; an MP4 has every frame")
        done = render_mp4(args.offscreen, take, camera, rig, renderer=args.renderer, progress=_progress())
        what = f"{take.n_frames} frames at {take.fps:g} fps"
    print(f"wrote {done.path} ({done.size[0]}x{done.size[1]}, {what}, {done.renderer} renderer)")
    return 0


def run_live(args: argparse.Namespace, size: tuple[int, int] | None, kind: str | None) -> int:
    """``--connect``: a window following the stream, or its first frame rendered to a PNG."""
    from posestudio.viewer.player import play_live, take_from_frame, wait_for_frame
    from posestudio.viewer.scene import default_view_camera
    from posestudio.viewer.take import load_rig

    if not args.connect.startswith(("tcp://", "ipc://", "inproc://")):
        raise InputError(f"--connect: expected an endpoint such as tcp://HOST:PORT, got {args.connect!r}")
    rig = load_rig(None, args.calibration)
    if kind is None:
        if size is None and args.view_camera and rig is not None and args.view_camera in rig.names:
            size = fit_size(rig[args.view_camera].image_size)
        camera = view_camera(None, rig, args.view_camera, size)
        play_live(args.connect, rig, camera)
        return 0
    if kind != "png":
        raise InputError("--connect renders one frame: give --offscreen OUT.png")
    if args.timeout <= 0:
        raise InputError(f"--timeout must be positive, got {args.timeout}")
    from posestudio.viewer.offscreen import render_png

    frame = wait_for_frame(args.connect, args.timeout)
    take = take_from_frame(frame)
    camera = (view_camera(take, rig, args.view_camera, size) if args.view_camera
              else default_view_camera(take.points, rig, size or DEFAULT_SIZE))
    done = render_png(args.offscreen, take, 0, camera, rig, renderer=args.renderer)
    print(f"wrote {done.path} ({done.size[0]}x{done.size[1]}, stream frame {frame.sequence}, {take.n_people} people, "
          f"{done.renderer} renderer)")
    return 0


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` -> ``(1280, 720)``; InputError otherwise."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size: expected WIDTHxHEIGHT such as 1280x720, got {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise InputError(f"--size: width and height must lie in 16..8192 pixels, got {text!r}")
    return w, h


def fit_size(image_size: tuple[int, int], box: tuple[int, int] = DEFAULT_SIZE) -> tuple[int, int]:
    """``image_size`` scaled (aspect kept) to fit in ``box`` pixels, never enlarged."""
    scale = min(1.0, box[0] / image_size[0], box[1] / image_size[1])
    return max(16, round(image_size[0] * scale)), max(16, round(image_size[1] * scale))


def output_kind(path: Path) -> str:
    """``"png"`` or ``"mp4"`` from the file name; InputError for anything else."""
    kind = path.suffix.lower().lstrip(".")
    if kind not in ("png", "mp4"):
        raise InputError(f"--offscreen {path}: expected a .png (one frame) or .mp4 (every frame) file name")
    return kind


def view_camera(take: Take | None, rig: CameraRig | None, name: str | None, size: tuple[int, int] | None) -> Camera:
    """The view: the rig camera ``name`` (pinhole, scaled to ``size``), or the default 3/4 view of the
    take (or, without one, of the rig and a 2 m volume at the origin) at ``size``."""
    import numpy as np

    from posestudio.viewer.scene import default_view_camera, rig_view_camera

    if name is not None:
        if rig is None:
            raise InputError(f"--view-camera {name}: no rig (DIR/rig.toml is missing; give --calibration)")
        if name not in rig.names:
            raise InputError(f"--view-camera {name}: no such camera in the rig (cameras: {', '.join(rig.names)})")
        return rig_view_camera(rig, name, size)
    points = take.points if take is not None else np.array([[-1.0, -1.0, 0.0], [1.0, 1.0, 2.0]])
    return default_view_camera(points, rig, size or DEFAULT_SIZE)


def _progress() -> Callable[[int, int | None], None]:
    """A progress callback printing ``render: frame done/total`` on one line of stderr."""
    start = time.perf_counter()

    def show(done: int, total: int | None) -> None:
        if done == 1 or done % 10 == 0 or done == total:
            rate = done / max(1e-9, time.perf_counter() - start)
            print(f"\rrender: frame {done}/{total} ({rate:.1f} frames/s)", end="\n" if done == total else "",
                  file=sys.stderr, flush=True)

    return show
