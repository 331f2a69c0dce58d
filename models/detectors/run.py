"""Run a :class:`Detector2D` over synchronised recordings: each frame decoded once, in lockstep.

The views' frames are read together (frame ``i`` of every recording is one instant, as for
hardware-synchronised cameras), kept in a window ``2 * context + 1`` frames wide for video models,
and handed to the detector once per instant. Memory stays bounded by that window whatever the
take's length.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from posestudio.capture.sources import FrameSource, SourceError
from posestudio.core.arrays import FloatArray

from .base import Detector2D, FrameWindow, Image

Progress = Callable[[int, int | None], None]
"""Called as ``progress(frames_done, frames_total_or_None)``."""


@dataclass
class VideoDetections:
    """What a detector found in a take.

    Attributes:
        people: ``people[f][v]`` is ``(P, J, 3)``: the people found in view ``v`` at frame ``f``
            (x, y pixels, confidence; NaN where absent), in the detector's layout.
        camera_names: the views, in order (the recordings' names).
        image_sizes: ``(width, height)`` of each view's frames.
        layout_name: the detector's keypoint layout.
        detector: the detector's name.
        fps: the recordings' nominal frame rate (None when unknown).
        seconds: wall time of decoding and detection.
    """

    people: list[list[FloatArray]]
    camera_names: list[str]
    image_sizes: list[tuple[int, int]]
    layout_name: str
    detector: str
    fps: float | None = None
    seconds: float = 0.0

    @property
    def n_frames(self) -> int:
        return len(self.people)

    def first_person(self) -> FloatArray:
        """``(C, F, J, 3)``: each view's first (tracked) person per frame; NaN where nobody was found."""
        j = next((p.shape[1] for row in self.people for p in row if p.ndim == 3), 0)
        out = np.full((len(self.camera_names), self.n_frames, j, 3), np.nan)
        for f, row in enumerate(self.people):
            for v, p in enumerate(row):
                if len(p):
                    out[v, f] = p[0]
        return out

    def most_people(self) -> int:
        """The largest number of people any view saw in one frame."""
        return max((len(p) for row in self.people for p in row), default=0)


def lockstep_frames(sources: Sequence[FrameSource]) -> Iterator[list[Image]]:
    """Yield one BGR frame per source per instant; :class:`SourceError` if the recordings' lengths differ."""
    iters = [s.frames(gray=False) for s in sources]
    count = 0
    while True:
        frames: list[Image | None] = []
        for it in iters:
            item = next(it, None)
            frames.append(None if item is None else item[1])
        ended = [s for s, fr in zip(sources, frames) if fr is None]
        if len(ended) == len(sources):
            return
        if ended:
            longer = [s for s, fr in zip(sources, frames) if fr is not None]
            raise SourceError(f"{ended[0].path}: ends after {count} frames but {longer[0].path} goes on; "
                              "the recordings of one take must have the same number of frames")
        yield frames  # type: ignore[misc]
        count += 1


def windows(frame_sets: Iterable[list[Image]], context: int) -> Iterator[FrameWindow]:
    """The :class:`FrameWindow` of every instant of a take given frame set by frame set.

    Args:
        frame_sets: one list of frames (one per view) per instant, in order.
        context: frames each side of the centre; the window holds ``2 * context + 1`` frame sets,
            so memory stays bounded whatever the take's length.
    Yields:
        each instant's window once, in order (``None`` for neighbours outside the take).
    """
    k = context
    window: collections.deque[list[Image]] = collections.deque(maxlen=2 * k + 1)

    def at(centre: int, index: int) -> FrameWindow:
        n_views = len(window[centre])
        frames = [[window[centre + d][v] if 0 <= centre + d < len(window) else None for d in range(-k, k + 1)]
                  for v in range(n_views)]
        return FrameWindow(frames, k, index)

    done = 0
    for frames in frame_sets:
        window.append(frames)
        done += 1
        # The centre frame is the one k frames back (once the window has its future context).
        if done > k:
            yield at(len(window) - 1 - k, done - 1 - k)
    for tail in range(min(k, done), 0, -1):  # the last k frames have no future neighbours
        yield at(len(window) - tail, done - tail)


def detect_sources(sources: Sequence[FrameSource], detector: Detector2D,
                   progress: Progress | None = None) -> VideoDetections:
    """Decode every source once, in lockstep, and detect people in every view of every frame.

    Args:
        sources: the views of one take, frame ``i`` of each exposed at the same instant.
        detector: the backend; it is reset for ``len(sources)`` views.
        progress: called after each frame.
    Returns:
        a :class:`VideoDetections`.
    Raises:
        SourceError: a recording that cannot be decoded, or recordings of different lengths.
    """
    t0 = time.perf_counter()
    detector.reset(len(sources))
    totals = [s.expected_frame_count() for s in sources]
    total = min(t for t in totals if t) if any(totals) else None
    sizes: list[tuple[int, int]] = []

    def checked() -> Iterator[list[Image]]:
        for i, frames in enumerate(lockstep_frames(sources)):
            if not sizes:
                sizes.extend((f.shape[1], f.shape[0]) for f in frames)
            for s, f, size in zip(sources, frames, sizes):
                if (f.shape[1], f.shape[0]) != size:
                    raise SourceError(f"{s.path}: frame {i} is {f.shape[1]}x{f.shape[0]}, earlier frames were "
                                      f"{size[0]}x{size[1]}")
            yield frames

    people: list[list[FloatArray]] = []
    for window in windows(checked(), detector.context):
        people.append(detector.detect(window))
        if progress:
            progress(len(people), total)
    if not sizes:
        raise SourceError(f"{sources[0].path}: no frames")
    fps = next((f for f in (s.fps() for s in sources) if f), None)
    return VideoDetections(people, [s.name for s in sources], sizes, detector.layout.name, detector.name, fps,
                           time.perf_counter() - t0)
