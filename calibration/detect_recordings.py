"""Board detection in every frame of a session's recordings, recordings in parallel.

One worker detects one recording from start to end (following the board needs its frames in
order), then takes the next recording no worker has started. The workers are the calling thread
and, with more than one core, one helper per further core: worker processes for long takes,
threads for short ones. Processes because between its OpenCV calls detection runs numpy on small
arrays (homographies, the follower's checks) that holds the GIL, and threads waiting for it leave
cores idle (rendered 16-camera ring, 2 cores: two threads used 1.6-1.7 cores, 3.5-3.8 ms wall per
camera-frame; the calling thread and one process, 3.0-3.3 ms). Worker processes come from
:func:`~posestudio.core.worker_processes.worker_context` (forked from a fork server that has
imported the detector) and are started from a background thread while the calling thread already
detects; still, the fork server's imports (about half a second of a core) outweigh the GIL's cost
on a short take (``PROCESSES_FROM_PIXELS_PER_WORKER``), which threads detect.

Memory: each worker holds one recording's decoder, ``READ_AHEAD_FRAMES`` decoded frames and its
detections (a few kB per board view), whatever the number or length of the recordings; each worker
process adds its own copy of the libraries (about 80 MB resident).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from posestudio.capture.read_ahead import read_ahead
from posestudio.capture.sources import FrameSource, SourceError
from posestudio.core.worker_processes import worker_context

from .board import BoardSpec
from .detect import CameraDetections, detect_in_frames
from .errors import CalibrationInputError

Progress = Callable[[str], None]

#: Frames each recording is decoded ahead of its detection, by a thread of its worker.
READ_AHEAD_FRAMES = 3
#: Seconds between progress lines on frames read.
PROGRESS_EVERY_S = 10.0
#: Worker processes start once the fork server has imported the detector (about half a second of
#: one core, measured on a 2-core machine); with less video than this per worker (pixels, frames x
#: width x height) they cost more than the GIL they avoid and threads detect instead. Rendered takes,
#: 2 cores, against detection before issue 18: 960 camera-frames of 1280 x 720, 1.81x faster with
#: threads and 1.60x with a process; 3840, 1.59x with threads and 1.96x with a process.
PROCESSES_FROM_PIXELS_PER_WORKER = 1000 * 1280 * 720
#: What the fork server imports once, so that each worker process starts with the detector loaded.
_PRELOAD = ["posestudio.calibration.detect_recordings"]


def stderr_progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class DetectionUsage:
    """What the worker processes of one :func:`detect_sources` call used (the calling process's own
    use is its process time and peak RSS).

    Attributes:
        worker_recordings: recordings the worker processes detected (the rest: the calling thread).
        worker_cpu_s: CPU seconds the worker processes spent detecting (decoding included, all threads).
        worker_peak_rss_mb: peak resident memory of each worker process, MiB.
    """

    worker_recordings: int = 0
    worker_cpu_s: float = 0.0
    worker_peak_rss_mb: list[float] = field(default_factory=list)


def detection_workers(n_recordings: int, workers: int = 0) -> int:
    """Workers for detecting in ``n_recordings`` recordings: ``workers`` (0: one per core this
    process may use), never more than there are recordings."""
    if workers < 0:
        raise CalibrationInputError(f"workers must be 0 (one per core) or more, got {workers}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(n_recordings, workers or cores))


def detect_sources(paths: list[Path], board: BoardSpec, workers: int = 0,
                   progress: Progress | None = stderr_progress,
                   usage: DetectionUsage | None = None) -> tuple[list[CameraDetections], float | None]:
    """Detect the board in every frame of every recording (see the module).

    Args:
        paths: video files or image folders, one per camera (the camera's name is the stem).
        board: the board to find.
        workers: recordings detected at once (0: one per usable core).
        progress: called with progress lines (None: silent).
        usage: filled in with what the worker processes used, when given.
    Returns:
        ``(detections per camera in input order, fps of the first video or None)``.
    Raises:
        CalibrationInputError: unreadable inputs, duplicate camera names, unequal frame counts.
    """
    try:
        sources = [FrameSource.open(p) for p in paths]
    except SourceError as exc:
        raise CalibrationInputError(str(exc)) from None
    names = [s.name for s in sources]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CalibrationInputError(f"two inputs give the same camera name {dup}: camera names come from the "
                                    "file or folder stem and must be unique")
    n_workers = detection_workers(len(sources), workers)
    if progress:
        progress(f"detecting the board in {len(sources)} recordings ({n_workers} at a time)")
    try:
        dets = _Session(sources, board, n_workers, progress, usage).run()
    except SourceError as exc:
        raise CalibrationInputError(str(exc)) from None
    counts = {d.name: d.n_frames for d in dets}
    if len(set(counts.values())) > 1:
        listing = ", ".join(f"{k}: {v}" for k, v in counts.items())
        raise CalibrationInputError(
            f"the recordings have different frame counts ({listing}); frames are paired by index, so every "
            "camera must have the same number of frames (trim the longer recordings to the common span)")
    return dets, next((s.fps() for s in sources if s.is_video), None)


class _Shared:
    """What the workers share: the index of the next recording to start, frames read so far, a stop
    flag, and (``processes``) a queue of the recordings worker processes finished, for progress."""

    def __init__(self, context: BaseContext, processes: bool) -> None:
        self.next_recording = context.Value("i", 0)
        self.frames_read = context.Value("q", 0)
        self.stop = context.Value("b", 0, lock=False)
        self.finished = context.Queue() if processes else None

    def take(self, n_recordings: int) -> int | None:
        """The index of a recording no worker has started, or None when all have been or work stopped."""
        with self.next_recording.get_lock():
            i = self.next_recording.value
            if i >= n_recordings or self.stop.value:
                return None
            self.next_recording.value = i + 1
            return i

    def count_frame(self) -> int:
        """One more frame read; the total so far."""
        with self.frames_read.get_lock():
            self.frames_read.value += 1
            return self.frames_read.value


class _Stopped(Exception):
    """Another worker failed: this one leaves its recording unfinished."""


#: In a worker process: what it shares with the calling process (set when the process starts).
_worker_shared: _Shared | None = None


def _start_worker(shared: _Shared) -> None:
    """Worker process initialiser: OpenCV's own threads off (one worker per core already)."""
    global _worker_shared
    _worker_shared = shared
    cv2.setNumThreads(1)


def _frames(source: FrameSource, shared: _Shared | None,
            each: Callable[[int], None] | None = None) -> Iterator[tuple[int, NDArray[np.uint8]]]:
    """The recording's grey frames, decoded ahead, each counted (in ``shared`` when given, which
    also stops them when another worker failed); ``each`` is called with the count before each."""
    n_read = 0
    for item in read_ahead(source.frames(gray=True), READ_AHEAD_FRAMES):
        if shared is None:
            n_read += 1
        else:
            if shared.stop.value:
                raise _Stopped
            n_read = shared.count_frame()
        if each is not None:
            each(n_read)
        yield item


def _detect_recordings(sources: list[FrameSource],
                       board: BoardSpec) -> tuple[list[tuple[int, CameraDetections]], float, float]:
    """In a worker process: detect recordings until none is left.

    Returns:
        ``(index, detections)`` per recording it detected, its CPU seconds for them, its peak RSS (MiB).
    """
    shared = _worker_shared
    assert shared is not None, "worker process started without _start_worker"
    start = time.process_time()
    done: list[tuple[int, CameraDetections]] = []
    try:
        while (i := shared.take(len(sources))) is not None:
            det = detect_in_frames(sources[i].name, _frames(sources[i], shared), board)
            if shared.finished is not None:
                shared.finished.put((det.name, len(det.observations), det.n_frames))
            done.append((i, det))
    except BaseException:
        shared.stop.value = 1
        raise
    return done, time.process_time() - start, _peak_rss_mb()


def _peak_rss_mb() -> float:
    """This process's peak resident memory, MiB (0 where the platform does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2.0**20 if sys.platform == "darwin" else peak / 1024.0  # bytes on macOS, KiB elsewhere


class _Session:
    """One :func:`detect_sources` call: the recordings, who detects them, and progress (see the module)."""

    def __init__(self, sources: list[FrameSource], board: BoardSpec, n_workers: int, progress: Progress | None,
                 usage: DetectionUsage | None) -> None:
        self.sources, self.board, self.n_workers = sources, board, n_workers
        self.progress, self.usage = progress, usage
        self.results: list[CameraDetections | None] = [None] * len(sources)
        self.t0 = time.perf_counter()
        self.last_said = self.t0
        self.n_finished = 0
        self.lock = threading.Lock()  # progress, for the calling thread and helper threads
        self.shared: _Shared | None = None

    def run(self) -> list[CameraDetections]:
        if self.n_workers == 1:
            for i, source in enumerate(self.sources):
                self._detect_here(i, source)
            return self._all_results()
        processes = _processes_pay_off(self.sources, self.n_workers)
        context = worker_context(_PRELOAD) if processes else multiprocessing.get_context()
        self.shared = _Shared(context, processes)
        with _opencv_threads(1):
            if processes:
                self._with_processes(self.shared, context)
            else:
                self._with_threads(self.shared)
        return self._all_results()

    def _with_threads(self, shared: _Shared) -> None:
        """The calling thread and ``n_workers - 1`` helper threads, until no recording is left."""
        errors: list[BaseException] = []

        def helper() -> None:
            try:
                self._detect_while_left(shared)
            except _Stopped:
                pass  # another worker failed; its exception is the one raised
            except BaseException as exc:  # raised in the calling thread below
                errors.append(exc)
                shared.stop.value = 1

        threads = [threading.Thread(target=helper, name=f"board-detection-{k}", daemon=True)
                   for k in range(self.n_workers - 1)]
        for thread in threads:
            thread.start()
        try:
            try:
                self._detect_while_left(shared)
            except _Stopped:
                pass  # a helper thread failed: its exception is raised below
        except BaseException:
            shared.stop.value = 1
            raise
        finally:
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]

    def _with_processes(self, shared: _Shared, context: BaseContext) -> None:
        """The calling thread and ``n_workers - 1`` worker processes, until no recording is left."""
        futures: list[Future] = []
        pool = ProcessPoolExecutor(self.n_workers - 1, mp_context=context,
                                   initializer=_start_worker, initargs=(shared,))
        # Starting a worker waits for the fork server's imports: from another thread, so that this
        # one detects meanwhile.
        starter = threading.Thread(target=lambda: futures.extend(
            pool.submit(_detect_recordings, self.sources, self.board) for _ in range(self.n_workers - 1)),
            name="board-detection-start", daemon=True)
        try:
            starter.start()
            try:
                self._detect_while_left(shared)
            except _Stopped:
                pass  # a worker process failed: its exception is raised below
            starter.join()
            self._collect(futures, shared)
        except BaseException:
            shared.stop.value = 1
            raise
        finally:
            starter.join()
            pool.shutdown(wait=True, cancel_futures=True)

    def _all_results(self) -> list[CameraDetections]:
        missing = [s.name for s, r in zip(self.sources, self.results) if r is None]
        if missing:  # a worker process could not be started
            raise RuntimeError(f"board detection ended without detecting {', '.join(missing)}")
        return self.results  # type: ignore[return-value]

    def _detect_while_left(self, shared: _Shared) -> None:
        while (i := shared.take(len(self.sources))) is not None:
            self._detect_here(i, self.sources[i])

    def _detect_here(self, i: int, source: FrameSource) -> None:
        """Detect recording ``i`` in this process, with progress lines."""
        det = detect_in_frames(source.name, _frames(source, self.shared, self._frame_read), self.board)
        self.results[i] = det
        self._finished(det.name, len(det.observations), det.n_frames)

    def _frame_read(self, n_read: int) -> None:
        if self.shared is not None:
            self._say_finished(self.shared)
        self._say_frames(n_read)

    def _collect(self, futures: list[Future], shared: _Shared) -> None:
        """Wait for the worker processes' recordings, with progress lines meanwhile."""
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for fut in done:
                recordings, cpu, rss = fut.result()  # a worker's exception is raised here
                for i, det in recordings:
                    self.results[i] = det
                if self.usage is not None:
                    self.usage.worker_recordings += len(recordings)
                    self.usage.worker_cpu_s += cpu
                    self.usage.worker_peak_rss_mb.append(rss)
            self._say_finished(shared)
            with shared.frames_read.get_lock():
                self._say_frames(shared.frames_read.value)

    def _say_finished(self, shared: _Shared) -> None:
        """Progress lines for recordings the worker processes finished since the last call."""
        while shared.finished is not None:
            try:
                self._finished(*shared.finished.get_nowait())
            except queue.Empty:
                return

    def _finished(self, name: str, n_boards: int, n_frames: int) -> None:
        with self.lock:
            self.n_finished += 1
            if self.progress:
                self.progress(f"  {name}: board in {n_boards}/{n_frames} frames ({self.n_finished}/"
                              f"{len(self.sources)} recordings, {time.perf_counter() - self.t0:.0f} s)")

    def _say_frames(self, n_read: int) -> None:
        now = time.perf_counter()
        if self.progress and now - self.last_said >= PROGRESS_EVERY_S:
            with self.lock:
                if now - self.last_said >= PROGRESS_EVERY_S:
                    self.last_said = now
                    self.progress(f"  detecting: {n_read} frames read ({now - self.t0:.0f} s)")


def _processes_pay_off(sources: list[FrameSource], n_workers: int) -> bool:
    """Whether worker processes detect ``sources`` sooner than threads: at least
    ``PROCESSES_FROM_PIXELS_PER_WORKER`` of video per worker, estimated from the first recording's
    frame count (the container's) and frame size; also when its length is unknown."""
    frames = sources[0].expected_frame_count()
    if frames is None:
        return True
    width, height = sources[0].image_size()
    return frames * width * height * len(sources) >= PROCESSES_FROM_PIXELS_PER_WORKER * n_workers


@contextmanager
def _opencv_threads(n: int) -> Iterator[None]:
    """OpenCV's own thread count set to ``n`` inside the block (process-wide), restored after."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(before)
