"""``posestudio node``: one camera streaming frames to the studio server (a capture node)."""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from posestudio.core.errors import InputError

if TYPE_CHECKING:
    from posestudio.capture.node import NodeStats

EXAMPLE = """example:
  posestudio node --camera cam01 --source 0 --server tcp://studio-server:5560
  posestudio node --camera cam02 --source rtsp://10.0.0.12/stream1 --server tcp://studio-server:5560
  posestudio node --camera cam03 --source takes/cam03.mp4 --loop --server tcp://127.0.0.1:5560
  posestudio node --camera cam04 --source takes/cam04/ --fps 30 --server tcp://127.0.0.1:5560 --duration 10
  posestudio node --camera cam0 --source synthetic:perf/rig.toml --loop --server tcp://127.0.0.1:5560
  posestudio node --camera cam01 --source 0 --server tcp://studio-server:5560 --clock-bind tcp://*:5581
  posestudio node --camera cam01 --source 0 --server tcp://studio-server:5560 --control tcp://studio-server:5561 \
                  --keys studio_keys

SRC is a camera index (0, 1, ...), a stream URL (rtsp://, http://), a video file (paced at its
frame rate), a folder of images (paced at --fps, default 30) or synthetic:RIG.toml (a rendered
performer seen by that rig's camera NAME, paced at --fps, default 30; the same --seed renders the
same performance in every camera). Each frame is stamped with this machine's monotonic clock at
the middle of its grab (--clock-bind lets the server probe that clock and map the stamps to studio
time) and published as a frame message (docs/live_studio.md: msgpack header and
JPEG over ZeroMQ, topic frame/NAME/) to the server's SUB socket. A short queue drops the oldest
frame rather than let latency build up; a status line every few seconds says the frames sent per
second and the drops. Ctrl-C (or --duration) stops it cleanly.

--control connects to the server's control channel: the node registers its camera and its clock
responder (bound on a free port towards the server unless --clock-bind says where), so the server
syncs its clock with nothing in the studio config, heartbeats, and follows the server's start/stop
recording at an announced studio time. Off this machine CURVE keys are required (--keys DIR, the
folder 'posestudio keys' wrote, holding server.key and nodes/NAME.key_secret; NAME is --key-name,
default the camera); --insecure sends unauthenticated traffic instead."""

#: Seconds between status lines.
STATUS_EVERY_S = 5.0
#: Frames of motion a synthetic source renders before it plays them again (at --fps).
SYNTHETIC_SECONDS = 20.0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``node`` subcommand."""
    p = sub.add_parser("node", help="stream one camera's frames to the studio server (ZeroMQ)",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--camera", required=True, metavar="NAME", help="the camera's name, as in the rig")
    p.add_argument("--source", required=True, metavar="SRC",
                   help="camera index, stream URL, video file, image folder or synthetic:RIG.toml")
    p.add_argument("--server", required=True, metavar="ENDPOINT", help="the server's frame endpoint, tcp://HOST:PORT")
    p.add_argument("--fps", type=float, default=None,
                   help="frames per second (default: a video's own rate; 30 for folders and synthetic; a camera's "
                        "as it delivers)")
    p.add_argument("--loop", action="store_true", help="play a video, folder or synthetic take again at its end")
    p.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality, 1-100 (default 90)")
    p.add_argument("--session", default="", help="the session named in every frame (default empty)")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: never)")
    p.add_argument("--latency-ms", type=float, default=0.0,
                   help="the camera's latency, subtracted from each capture time, ms (default 0)")
    p.add_argument("--seed", type=int, default=0, help="synthetic: the performance's seed (default 0)")
    p.add_argument("--clock-bind", default=None, metavar="ENDPOINT",
                   help="answer the server's clock probes there, tcp://*:PORT (docs/clock_sync.md; the studio "
                        "config's camera clock = \"tcp://THIS-HOST:PORT\"); default: no clock responder")
    p.add_argument("--control", default=None, metavar="ENDPOINT",
                   help="the server's control endpoint, tcp://HOST:PORT: register, heartbeat, start/stop recording "
                        "(default: none)")
    p.add_argument("--keys", type=Path, default=None, metavar="DIR",
                   help="CURVE keys folder (server.key and nodes/NAME.key_secret): every socket authenticated and "
                        "encrypted; required off this machine unless --insecure")
    p.add_argument("--key-name", default=None, metavar="NAME", help="this node's key name (default: --camera)")
    p.add_argument("--insecure", action="store_true",
                   help="allow a server off this machine without keys (unauthenticated, unencrypted)")
    p.set_defaults(func=run)


def synthetic_frames(rig_path: Path, camera: str, fps: float, loop: bool, seed: int = 0) -> Iterator[np.ndarray]:
    """A rendered performer seen by ``camera`` of the rig at ``rig_path``: BGR frames ``(H, W, 3)`` uint8.

    The motion is :func:`~posestudio.synthetic.performance.performance_bodies` (a Bandai clip when the
    data is there, else a walk) for :data:`SYNTHETIC_SECONDS` at ``fps``, rendered frame by frame by
    :func:`~posestudio.synthetic.body_render.render_take` into that one camera; again from the start with
    ``loop``. The same seed gives the same performance in every camera.

    Raises:
        InputError / RigFileError: a rig that cannot be read, a camera it does not have.
    """
    # imported when a synthetic source is asked for: rendering needs the synthetic package (layer 5)
    from posestudio.core.rig import CameraRig
    from posestudio.synthetic.body_render import render_take
    from posestudio.synthetic.performance import performance_bodies
    from posestudio.synthetic.render_augment import RenderOptions

    if not rig_path.is_file():
        raise InputError(f"--source synthetic:{rig_path}: no such rig file; expected synthetic:RIG.toml")
    rig = CameraRig.load(rig_path)
    if camera not in rig.names:
        raise InputError(f"--source synthetic:{rig_path}: the rig has no camera {camera!r} "
                         f"(it has {', '.join(rig.names)}); expected --camera to name one")
    bodies, _ = performance_bodies(max(1, round(SYNTHETIC_SECONDS * fps)), fps, 1, None, seed)
    one = rig.subset([camera])

    def frames() -> Iterator[np.ndarray]:
        while True:
            for _, images, _ in render_take(one, bodies, RenderOptions(seed=seed), seed):
                yield images[0]
            if not loop:
                return

    return frames()


def parse_source(text: str, camera: str, fps: float | None, loop: bool, seed: int = 0) -> tuple[object, float | None]:
    """The :class:`~posestudio.capture.node.CaptureNode` source and pace for ``--source`` text.

    Returns:
        ``(source, fps)``: an ``int`` camera index, a URL, a path, or an iterator of rendered frames;
        the pace (a synthetic source's default 30 filled in).
    Raises:
        InputError: a source of no known kind, a missing path, a synthetic rig without the camera.
    """
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        return int(text), fps
    if text.startswith("synthetic:"):
        fps = 30.0 if fps is None else fps
        return synthetic_frames(Path(text[len("synthetic:"):]), camera, fps, loop, seed), fps
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        return text, fps
    if not text:
        raise InputError("--source is empty; expected a camera index, stream URL, video file, image folder or "
                         "synthetic:RIG.toml")
    path = Path(text)
    if not path.exists():
        raise InputError(f"--source {text}: no such file or folder; expected a camera index (0, 1, ...), a stream "
                         "URL (rtsp://...), a video file, an image folder or synthetic:RIG.toml")
    return path, fps


def status_line(camera: str, before: NodeStats, now: NodeStats) -> str:
    """One line of what happened between two :class:`~posestudio.capture.node.NodeStats`."""
    dt = max(now.elapsed_s - before.elapsed_s, 1e-9)
    rate = (now.sent - before.sent) / dt
    return (f"node {camera}: {rate:5.1f} frames/s sent, {now.sent} sent of {now.grabbed} grabbed, dropped "
            f"{now.dropped_queue} in the queue and {now.dropped_send} at the socket, JPEG "
            f"{now.encode_ms:.1f} ms/frame")


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: other commands' start-up does not need ZeroMQ or OpenCV
    import zmq

    from posestudio.capture.keys import StudioKeys, check_security, client_socket_security, security_required
    from posestudio.capture.node import CaptureNode

    if args.fps is not None and not (np.isfinite(args.fps) and args.fps > 0):
        raise InputError(f"--fps {args.fps:g}: expected a positive number of frames per second")
    if args.duration is not None and not args.duration > 0:
        raise InputError(f"--duration {args.duration:g}: expected a positive number of seconds")
    if not 1 <= args.jpeg_quality <= 100:
        raise InputError(f"--jpeg-quality {args.jpeg_quality}: expected 1 to 100")
    security: Callable[[zmq.Socket], None] | None = None
    if args.keys is not None:
        keys = StudioKeys.load(args.keys)
        node_keys, server_public = keys.node(args.key_name or args.camera), keys.require_server_public()

        def curve(sock: zmq.Socket) -> None:   # CURVE client on every socket of the node
            client_socket_security(sock, node_keys, server_public)

        security = curve
    for option, endpoint in (("--server", args.server), ("--control", args.control), ("--clock-bind", args.clock_bind)):
        if endpoint is not None:
            check_security(endpoint, security is not None, args.insecure, who=f"the node ({option})")
    clock_bind = args.clock_bind
    if clock_bind is None and args.control is not None:   # the server learns it by registration
        clock_bind = "tcp://*:*" if security_required(args.control) else "tcp://127.0.0.1:*"
    source, fps = parse_source(args.source, args.camera, args.fps, args.loop, args.seed)
    node = CaptureNode(args.camera, source, args.server, session=args.session, fps=fps, loop=args.loop,
                       jpeg_quality=args.jpeg_quality, latency_ns=round(args.latency_ms * 1e6),
                       source_name=args.source if args.source.startswith("synthetic:") else None,
                       clock_endpoint=clock_bind, control_endpoint=args.control, security=security)
    pace = f"{node.fps:g} fps" if node.fps else "as the device delivers"
    print(f"node {args.camera}: {node.source_description} -> {args.server} ({pace}, JPEG quality {args.jpeg_quality}"
          f"{', looping' if args.loop else ''}{f', session {args.session}' if args.session else ''}"
          f"{f', clock probes at {node.clock_endpoint}' if node.clock_endpoint else ''}"
          f"{f', control {args.control}' if args.control else ''}{', CURVE keys' if security else ''}; Ctrl-C stops)",
          flush=True)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    node.start()
    ended = False
    try:
        last = node.stats()
        while True:
            wait = STATUS_EVERY_S if deadline is None else min(STATUS_EVERY_S, deadline - time.monotonic())
            ended = node.wait(max(0.0, wait))
            if ended or (deadline is not None and time.monotonic() >= deadline):
                break
            now = node.stats()
            print(status_line(args.camera, last, now), flush=True)
            last = now
    except KeyboardInterrupt:
        print(f"node {args.camera}: stopping", flush=True)
    finally:
        final = node.stop()
    if node.error is not None:
        raise node.error
    print(f"node {args.camera}: {'source ended' if ended else 'stopped'}; sent {final.sent} of {final.grabbed} frames in {final.elapsed_s:.1f} s "
          f"({final.sent / max(final.elapsed_s, 1e-9):.1f} frames/s), dropped {final.dropped_queue} in the queue and "
          f"{final.dropped_send} at the socket", flush=True)
    return 0

