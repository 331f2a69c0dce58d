"""``posestudio publish``: a reconstruction replayed as a live skeleton stream, to test a viewer without cameras."""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import read_points3d
from posestudio.core.skeleton_stream import UNSEQUENCED, SkeletonFrame

if TYPE_CHECKING:
    from posestudio.reconstruction.stream_publisher import SkeletonPublisher

EXAMPLE = """example:
  posestudio publish results/take1                      # on tcp://*:5570 at the take's frame rate
  posestudio publish results/take1 --loop --fps 30 --endpoint tcp://127.0.0.1:6000
  posestudio publish results/take1 --all-people --loop  # the subject and OUT/people/person_<k>/

DIR is a 'posestudio reconstruct' output folder (DIR/points3d.npz; a points3d.npz itself works
too). Each frame is published as one skeleton message (docs/skeleton_stream.md: msgpack over
ZeroMQ PUB/SUB, topic 'skeleton') stamped with this machine's clock, paced at the take's frame
rate (--fps overrides it). The subject is person id 0, or the id report.json gives it; with
--all-people everyone under DIR/people/person_<k>/ joins as person id k. A person with no known
joint in a frame is left out of that frame. The endpoint actually bound is printed first (a '*'
port is filled in). Ctrl-C stops it cleanly."""


@dataclass
class Take:
    """A take to replay: ``points (F, P, J, 3)`` metres (NaN where unknown), ``confidence (F, P, J)``
    in [0, 1], ``person_ids (P,)``, ``joint_names`` (J), ``fps`` (frames per second)."""

    points: np.ndarray
    confidence: np.ndarray
    person_ids: np.ndarray
    joint_names: list[str]
    fps: float


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``publish`` subcommand."""
    p = sub.add_parser("publish", help="replay a reconstruction as a live skeleton stream (ZeroMQ)",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", type=Path, metavar="DIR", help="a reconstruct output folder (or its points3d.npz)")
    p.add_argument("--endpoint", default="tcp://*:5570", help="where to bind the PUB socket (default tcp://*:5570)")
    p.add_argument("--fps", type=float, default=None, help="frames per second (default: the take's)")
    p.add_argument("--loop", action="store_true", help="start again at the end, until Ctrl-C")
    p.add_argument("--all-people", action="store_true", help="everyone under DIR/people/ too")
    p.set_defaults(func=run)


def load_take(path: Path, all_people: bool = False) -> Take:
    """The take in a reconstruct output folder (or a points3d.npz), every person in one array.

    Raises:
        InputError / KeypointFileError: a missing or malformed file, people whose frame counts or
            joints differ, a take with no frame.
    """
    path = Path(path)
    main = path if path.is_file() else path / "points3d.npz"
    files = {_subject_id(path): main}
    if all_people and path.is_dir():
        for folder in sorted((path / "people").glob("person_*")):
            if folder.name[len("person_"):].isdigit() and (folder / "points3d.npz").is_file():
                files.setdefault(int(folder.name[len("person_"):]), folder / "points3d.npz")
    takes = {k: read_points3d(f) for k, f in files.items()}
    first = takes[next(iter(takes))]
    for k, t in takes.items():
        if t.joint_names != first.joint_names or t.points3d.shape != first.points3d.shape:
            raise InputError(f"{files[k]}: {t.points3d.shape[0]} frames of {t.joint_names[:3]}...; expected the "
                             f"{first.points3d.shape[0]} frames and joints of {main}")
    if first.points3d.shape[0] == 0:
        raise InputError(f"{main}: holds no frame; expected a reconstructed take")
    ids = np.array(sorted(takes), dtype=np.int64)
    points = np.stack([takes[k].points3d for k in ids], axis=1).astype(np.float32)
    conf = np.stack([takes[k].confidence for k in ids], axis=1).astype(np.float32)
    conf = np.clip(np.nan_to_num(conf, nan=0.0), 0.0, 1.0)
    return Take(points, conf, ids, list(first.joint_names), float(first.fps))


def _subject_id(path: Path) -> int:
    """The subject's track id as ``report.json`` records it (``detection.subject``), else 0."""
    try:
        report = json.loads((path / "report.json").read_text())
        return int(report["detection"]["subject"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def replay(publisher: SkeletonPublisher, take: Take, fps: float, loop: bool = False,
           stop: threading.Event | None = None, source: str = "") -> int:
    """Publish ``take`` frame by frame at ``fps``; returns the number of frames published.

    Pacing follows a fixed schedule on the monotonic clock (no drift); after a stall of more than a
    frame it starts a new schedule rather than send a burst. Each frame carries ``time.time()`` as
    its timestamp and its index in the take. ``stop`` ends it between frames.
    """
    stop = stop or threading.Event()
    period = 1.0 / fps
    present = np.isfinite(take.points).all(axis=-1).any(axis=-1)   # (F, P): someone to show
    start = time.monotonic()
    n = 0
    while True:
        for f in range(take.points.shape[0]):
            delay = start + n * period - time.monotonic()
            if delay < -period:
                start, delay = time.monotonic() - n * period, 0.0
            if stop.wait(max(0.0, delay)):
                return n
            keep = present[f]
            publisher.publish(SkeletonFrame(UNSEQUENCED, time.time(), tuple(take.joint_names), take.points[f, keep],
                                            take.confidence[f, keep], take.person_ids[keep], frame_index=f,
                                            source=source))
            n += 1
        if not loop:
            return n


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: the other commands' start-up does not need ZeroMQ
    from posestudio.reconstruction.stream_publisher import SkeletonPublisher

    take = load_take(args.dir, args.all_people)
    fps = take.fps if args.fps is None else args.fps
    if not (np.isfinite(fps) and fps > 0):
        raise InputError(f"frame rate {fps:g}: expected a positive number of frames per second (use --fps)")
    with SkeletonPublisher(args.endpoint) as publisher:
        print(f"publishing {publisher.endpoint}: {take.points.shape[0]} frames of {len(take.person_ids)} "
              f"{'person' if len(take.person_ids) == 1 else 'people'} at {fps:g} fps"
              f"{', looping' if args.loop else ''} (Ctrl-C stops)", flush=True)
        try:
            n = replay(publisher, take, fps, args.loop, source=f"posestudio publish {args.dir}")
        except KeyboardInterrupt:
            n = publisher.sent + publisher.dropped
            print("stopped", flush=True)
        print(f"published {publisher.sent} of {n} frames ({publisher.dropped} dropped)", flush=True)
    return 0
