"""One frame set's work in the live server: decode, detect on all views, reconstruct, publish.

:class:`SetProcessor` is the processing thread's state (the detector's window of recent sets, the
streaming :class:`~posestudio.reconstruction.reconstructor.Reconstructor`, the publisher). It is
used from that one thread only. A detector whose ``context`` is k sees set ``s`` once set ``s + k``
has arrived, with the sets around it as neighbours (None where a neighbouring slot was dropped or
empty), so its skeletons come k sets later.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence

import numpy as np

from posestudio.core.frame_messages import FrameMessageError
from posestudio.core.skeleton_stream import UNSEQUENCED, SkeletonFrame
from posestudio.models.detectors.base import Detector2D, FrameWindow, Image
from posestudio.models.keypoints import H36M17

from ..frame_sets import FrameSet
from ..reconstructor import Reconstructor
from ..stream_publisher import SkeletonPublisher

#: The size of the black frame a missing view's centre gets when the view was never seen, pixels (H, W).
BLANK_SIZE = (64, 64)


class SetProcessor:
    """Decode, detect, reconstruct and publish frame sets in slot order.

    Args:
        cameras: the views, in the reconstructor's camera order.
        detector: reset here for ``len(cameras)`` views.
        reconstructor: made for ``cameras`` and the detector's layout.
        publisher: the skeleton stream.
        clock: the studio clock, ns (for the latency).
        record: called per published set with ``(latency_ns, (decode_s, detect_s, reconstruct_s, publish_s),
            spread_ns, uncertainty_ns)``.
        decode_error: called with a camera's name when its frame cannot be decoded.
        source: the skeleton messages' ``source``.
    """

    def __init__(self, cameras: Sequence[str], detector: Detector2D, reconstructor: Reconstructor,
                 publisher: SkeletonPublisher, clock: Callable[[], int],
                 record: Callable[[int, tuple[float, ...], int, int], None],
                 decode_error: Callable[[str], None], source: str = "") -> None:
        self.cameras = list(cameras)
        self.detector, self.reconstructor, self.publisher = detector, reconstructor, publisher
        self.clock, self.record, self.decode_error, self.source = clock, record, decode_error, source
        detector.reset(len(self.cameras))
        self.k = int(detector.context)
        self._window: collections.deque[tuple[FrameSet, list[Image | None], float]] = \
            collections.deque(maxlen=2 * self.k + 1)
        self._sizes: dict[int, tuple[int, int]] = {}
        self._n_joints = len(detector.layout.joints)

    def push(self, frame_set: FrameSet) -> None:
        """Take the next set; publishes the skeleton of the set ``k`` sets back (now, for k = 0)."""
        t0 = time.perf_counter()
        images = self._decode(frame_set)
        self._window.append((frame_set, images, time.perf_counter() - t0))
        if len(self._window) > self.k:
            self._process(len(self._window) - 1 - self.k)

    def _decode(self, frame_set: FrameSet) -> list[Image | None]:
        """Each view's BGR image ``(H, W, 3)``, None where missing or undecodable (reported)."""
        images: list[Image | None] = []
        for v, cam in enumerate(self.cameras):
            message = frame_set.frames[cam]
            image = None
            if message is not None:
                try:
                    image = message.image()
                    self._sizes[v] = image.shape[:2]
                except FrameMessageError:
                    self.decode_error(cam)
            images.append(image)
        return images

    def _frames(self, centre: int) -> list[list[Image | None]]:
        """``frames[v][d]`` for the detector's window around entry ``centre`` of the set window."""
        k, window = self.k, self._window
        frame_set, images, _ = window[centre]
        frames: list[list[Image | None]] = []
        for v, image in enumerate(images):
            row: list[Image | None] = []
            for d in range(-k, k + 1):
                i = centre + d
                near = window[i] if 0 <= i < len(window) else None
                row.append(near[1][v] if near is not None and near[0].slot == frame_set.slot + d else None)
            if image is None:   # the detector needs a centre frame: a black one, its output ignored
                row[k] = np.zeros((*self._sizes.get(v, BLANK_SIZE), 3), np.uint8)
            frames.append(row)
        return frames

    def _process(self, centre: int) -> None:
        frame_set, images, decode_s = self._window[centre]
        t1 = time.perf_counter()
        people = self.detector.detect(FrameWindow(self._frames(centre), self.k, frame_set.slot))
        t2 = time.perf_counter()
        keypoints = np.full((len(self.cameras), self._n_joints, 3), np.nan)     # (C, J, 3); NaN: missing view
        for v, found in enumerate(people):
            if images[v] is not None and len(found):
                keypoints[v] = found[0]                                          # the view's tracked person
        skeleton = self.reconstructor.push(keypoints)
        t3 = time.perf_counter()
        points = np.asarray(skeleton.points, np.float32)                          # (17, 3) metres
        seen = bool(np.isfinite(points).all(axis=-1).any())
        confidence = np.nan_to_num(np.clip(skeleton.confidence, 0.0, 1.0)).astype(np.float32)
        frame = SkeletonFrame(UNSEQUENCED, frame_set.time_ns / 1e9, tuple(H36M17.joints),
                              points[None] if seen else np.empty((0, 17, 3), np.float32),
                              confidence[None] if seen else np.empty((0, 17), np.float32),
                              np.zeros(1 if seen else 0, np.int64),
                              frame_index=frame_set.slot if frame_set.slot >= 0 else None, source=self.source)
        self.publisher.publish(frame)
        t4 = time.perf_counter()
        self.record(self.clock() - frame_set.time_ns, (decode_s, t2 - t1, t3 - t2, t4 - t3),
                    frame_set.spread_ns, frame_set.uncertainty_ns)
