"""Board detection speed and accuracy: today's detector against the one before issue 18's work.

Run from the repository root: ``OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.detection_speed``.

"Before" is ``calibration/detect.py`` at ``--old-commit`` (default ``3a9f1cd^``, the parent of
the commit that put detection in one thread per core), loaded by path from a ``git worktree`` of
that commit (``--old-tree``, created when missing) and run the way that commit's
``detect_sources`` ran it: one thread per recording up to the core count, OpenCV's own threads
left at their default. "Now" is :func:`posestudio.calibration.detect_recordings.detect_sources`
itself (the calling thread and a worker process per further core), each run starting and ending
its own fork server, so that every run pays the worker processes' start-up as a command does.
Each decodes as its commit did (before: OpenCV to BGR, then grey; now: the luma plane,
:mod:`posestudio.capture.luma`), on the same videos, in the same process, in turn,
``--repeats`` times each, in pairs whose order alternates. The table shows each detector's fastest
run (a machine shared with other work only ever slows a run down); the speed-up is given both as
the ratio of the fastest runs and as the median and range of the ratios within pairs (the two runs
of a pair are seconds apart, so a slow spell of the machine slows both: on the 2-core machine this
was measured on, the same code's wall time varies by 10-20 % between runs minutes apart).

Takes: two rendered ones (``posestudio.synthetic``, rendered once into ``--out`` and reused): a
ring of 4 cameras, 240 frames (mid-sized boards, partial views), and 8 cameras in the overhead
layout, 120 frames (small boards, oblique views); and the real caliscope session
(``../shared/data/caliscope_session``: four webcams, a hand-held inverted ChArUco board) when
present. All 1280 x 720.

Per take and detector: wall and CPU milliseconds per camera-frame (all threads of this process
and of the worker processes and fork server, decoding included), the corners found, and, on
rendered takes, the distance of each corner found from the renderer's true corner pixel
(``truth.json``; median and 99th percentile, pixels); then per take the speed-up and how the
corners found now differ from those found before.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Iterator

import cv2
import numpy as np
from numpy.typing import NDArray

from benchmarks.tables import print_table

REPO = Path(__file__).resolve().parents[1]
CALISCOPE = REPO.parent / "shared" / "data" / "caliscope_session"


@dataclass
class Take:
    """Videos of one take and what to score them against."""

    name: str
    videos: list[Path]
    board: object  # BoardSpec
    truth: dict | None  # truth.json "frames" (per camera, per frame: corner_ids, corners_px) or None


@dataclass
class Run:
    """One run of a detector on one take."""

    wall_s: float
    cpu_s: float
    detections: list  # CameraDetections per camera


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its descendants that have ended, seconds."""
    own, ended = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime


def _stop_fork_server() -> None:
    """End this process's multiprocessing fork server (it, and the worker processes it forked and
    reaped, then count in ``RUSAGE_CHILDREN``): the next run starts its own, as a command does.
    (``_stop`` is private to ``multiprocessing``; without it runs after the first reuse the server.)"""
    from multiprocessing import forkserver

    stop = getattr(forkserver._forkserver, "_stop", None)
    if stop is not None:
        stop()


def old_detect_module(tree: Path, commit: str) -> ModuleType:
    """``calibration/detect.py`` of ``commit``, loaded from a worktree at ``tree`` (created if missing).

    It is loaded as a module of the ``posestudio.calibration`` package, so its relative imports
    (the board) resolve to today's modules; the board code did not change since.
    """
    path = tree / "calibration" / "detect.py"
    if not path.is_file():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit], check=True)
    spec = importlib.util.spec_from_file_location("posestudio.calibration._detect_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def opencv_gray_frames(path: Path) -> Iterator[tuple[int, NDArray[np.uint8]]]:
    """``(index, grey frame)`` as the old commit's ``FrameSource`` decoded them: OpenCV to BGR, then grey."""
    from posestudio.capture.sources import FrameSource

    for i, frame in FrameSource.open(path).frames(gray=False):
        yield i, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def detect_before(old: ModuleType, videos: list[Path], board) -> list:
    """Detection as ``detect_sources`` ran it at the old commit: one thread per recording up to the
    core count, OpenCV's own thread pool untouched, frames decoded by OpenCV to BGR and then grey."""
    workers = min(len(videos), len(os.sched_getaffinity(0)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: old.detect_in_frames(Path(p).stem, opencv_gray_frames(p), board), videos))


def detect_now(videos: list[Path], board) -> list:
    """Today's :func:`detect_sources` (this thread and a worker process per further core), its fork
    server started and ended within the run: each run pays the server's start-up, as a command does."""
    from posestudio.calibration.detect_recordings import detect_sources

    try:
        return detect_sources(videos, board, progress=None)[0]
    finally:
        _stop_fork_server()


def timed(fn) -> Run:
    """One call of ``fn()``, timed."""
    t0, c0 = time.perf_counter(), _cpu_seconds()
    dets = fn()
    return Run(time.perf_counter() - t0, _cpu_seconds() - c0, dets)


def differences(before: list, now: list) -> str:
    """How the corners found now differ from those found before: ids only one of them found, and
    the largest distance between the two positions of a corner both found (pixels)."""
    only_before = only_now = 0
    largest = 0.0
    for b, n in zip(before, now):
        nb, nn = b.by_frame(), n.by_frame()
        for f in set(nb) | set(nn):
            pb = dict(zip(nb[f].ids.tolist(), nb[f].pixels)) if f in nb else {}
            pn = dict(zip(nn[f].ids.tolist(), nn[f].pixels)) if f in nn else {}
            only_before += len(pb.keys() - pn.keys())
            only_now += len(pn.keys() - pb.keys())
            largest = max([largest, *(float(np.hypot(*(pb[i] - pn[i]))) for i in pb.keys() & pn.keys())])
    return f"{only_before} corners found only before, {only_now} only now, largest shift {largest:.3f} px"


def corner_errors(dets: list, truth: dict) -> np.ndarray:
    """Distances, pixels, of every corner found from its true pixel (corners the truth has)."""
    out: list[float] = []
    for det in dets:
        frames = truth[det.name]
        for obs in det.observations:
            row = frames[obs.frame]
            true = dict(zip(row["corner_ids"], row["corners_px"]))
            out += [float(np.hypot(*(px - true[int(i)]))) for i, px in zip(obs.ids, obs.pixels) if int(i) in true]
    return np.asarray(out)


def render_takes(out: Path) -> list[Path]:
    """The two rendered takes (rendered unless already in ``out``)."""
    from posestudio.synthetic import write_synthetic_session

    specs = [("ring4_f240", {"n_cameras": 4, "n_frames": 240, "seed": 0,
                             "time_offsets_s": [0.0, 0.003, -0.005, 0.008]}),
             ("overhead8_f120", {"n_cameras": 8, "n_frames": 120, "seed": 1, "layout": "overhead"})]
    folders = []
    for name, kw in specs:
        folder = out / name
        if not (folder / "truth.json").is_file():
            print(f"rendering {folder} ...", file=sys.stderr)
            write_synthetic_session(folder, image_size=(1280, 720), workers=1, **kw)
        folders.append(folder)
    return folders


def rendered_take(folder: Path) -> Take:
    from posestudio.calibration.board import load_board

    truth = json.loads((folder / "truth.json").read_text())
    videos = [folder / f"{name}.mp4" for name in truth["cameras"]]
    return Take(folder.name, videos, load_board(folder / "board.toml"), truth["frames"])


def caliscope_take(folder: Path) -> Take:
    """The real session; its board from caliscope's ``charuco.toml`` (columns are squares_x)."""
    from posestudio.calibration.board import BoardSpec

    doc = tomllib.loads((folder / "charuco.toml").read_text())
    square = float(doc["square_size_override_cm"]) / 100.0
    board = BoardSpec("charuco", int(doc["columns"]), int(doc["rows"]), square, square * float(doc["aruco_scale"]),
                      str(doc["dictionary"]), inverted=bool(doc["inverted"]), legacy=False)
    return Take("caliscope (real)", sorted((folder / "videos").glob("cam_*.mp4")), board, None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "out" / "detection_speed", help="where to render the takes")
    ap.add_argument("--take", type=Path, action="append",
                    help="a rendered take folder instead of the default ones (repeatable)")
    ap.add_argument("--caliscope", type=Path, default=CALISCOPE, help="caliscope_session folder")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--old-commit", default="3a9f1cd^")
    ap.add_argument("--old-tree", type=Path, default=Path("/tmp/old_posestudio"))
    ap.add_argument("--repeats", type=int, default=5, help="pairs of runs per take")
    args = ap.parse_args(argv)

    old = old_detect_module(args.old_tree, args.old_commit)
    takes = [rendered_take(f) for f in (args.take or render_takes(args.out))]
    if not args.skip_real and (args.caliscope / "charuco.toml").is_file():
        takes.append(caliscope_take(args.caliscope))

    header = ["take", "detector", "ms/cam-frame wall", "ms/cam-frame CPU", "corners", "corner error px median",
              "corner error px p99"]
    rows: list[list[str]] = []
    ratios: list[str] = []
    for take in takes:
        runs = {}
        pair_ratios: list[tuple[float, float]] = []  # (wall, CPU) before / now, per pair
        detectors = [("before", lambda t=take: detect_before(old, t.videos, t.board)),
                     ("now", lambda t=take: detect_now(t.videos, t.board))]
        for repeat in range(args.repeats):
            # Alternate the order within pairs so that neither detector always runs on a warmer machine.
            pair = {}
            for label, fn in detectors[::-1] if repeat % 2 else detectors:
                pair[label] = run = timed(fn)
                if label not in runs or run.wall_s < runs[label].wall_s:
                    runs[label] = run
            pair_ratios.append((pair["before"].wall_s / pair["now"].wall_s, pair["before"].cpu_s / pair["now"].cpu_s))
        wall_r, cpu_r = np.array(pair_ratios).T
        n = sum(d.n_frames for d in runs["now"].detections)
        for label, run in runs.items():
            corners = sum(len(o.ids) for d in run.detections for o in d.observations)
            err = corner_errors(run.detections, take.truth) if take.truth else np.zeros(0)
            rows.append([take.name, f"{label} ({args.old_commit})" if label == "before" else label,
                         f"{1e3 * run.wall_s / n:.2f}", f"{1e3 * run.cpu_s / n:.2f}", str(corners),
                         f"{np.median(err):.3f}" if err.size else "-",
                         f"{np.percentile(err, 99):.3f}" if err.size else "-"])
        ratios.append(f"{take.name} ({n} camera-frames): fastest runs {runs['before'].wall_s / runs['now'].wall_s:.2f}x "
                      f"wall, {runs['before'].cpu_s / runs['now'].cpu_s:.2f}x CPU; within pairs, median "
                      f"{np.median(wall_r):.2f}x wall ({wall_r.min():.2f}-{wall_r.max():.2f}), {np.median(cpu_r):.2f}x CPU "
                      f"({cpu_r.min():.2f}-{cpu_r.max():.2f}); "
                      + differences(runs["before"].detections, runs["now"].detections))
    print(f"\nBoard detection, {len(os.sched_getaffinity(0))} cores, fastest of {args.repeats} runs each "
          "(decoding included)\n")
    print_table(header, rows)
    print("\nnow against before (CPU time is the steadier measure on a machine shared with other work):")
    for line in ratios:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
