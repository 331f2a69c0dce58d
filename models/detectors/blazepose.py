"""BlazePose (MediaPipe Pose, full model) as a :class:`Detector2D`, several people per view.

MediaPipe 0.10.14 ships the full BlazePose model (``model_complexity=1``) inside its wheel, so it
runs offline; the lite and heavy models download at run time and cannot be used here. One
``Pose`` graph per view and person slot keeps MediaPipe's own tracking state (the region of
interest comes from the previous frame). BlazePose's person detector returns one person per
image, so further people are found by running the next slot's graph on the frame with the
people already found painted over (their boxes filled with the frame's mean colour); a slot
whose result overlaps an earlier person's box is dropped as a duplicate.

Output: the 33 BlazePose landmarks in pixels of the full frame, confidence = MediaPipe's
visibility score; landmarks outside the frame are NaN.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.errors import PoseStudioError
from posestudio.models.keypoints import BLAZEPOSE33

from .base import Detector2D, FrameWindow, Image

MEDIAPIPE_VERSION = "0.10.14"
"""The release whose wheel bundles the full pose model and installs beside numpy 2 and OpenCV 5."""


class DetectorUnavailable(PoseStudioError):
    """A detector backend whose library or weights are not installed (message says how to get them)."""


@dataclass(frozen=True)
class BlazePoseOptions:
    """BlazePose settings.

    Attributes:
        max_people: people looked for per view (each extra one costs one more pass per frame).
        min_detection_confidence: MediaPipe's person-detector threshold, ``[0, 1]``.
        min_tracking_confidence: below this MediaPipe re-runs its person detector, ``[0, 1]``.
        box_margin: people found are masked with their landmark box grown by this fraction.
        duplicate_overlap: a later slot whose box overlaps an earlier person's by more than this
            intersection-over-union is the same person and is dropped.
        smooth_landmarks: MediaPipe's own temporal filter (off: the 3D stages filter after
            triangulation, and a per-view filter's lag differs between views).
    """

    max_people: int = 2
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    box_margin: float = 0.15
    duplicate_overlap: float = 0.3
    smooth_landmarks: bool = False

    def check(self) -> None:
        """Raise ``ValueError`` naming the first field out of range."""
        if self.max_people < 1:
            raise ValueError(f"max_people must be at least 1, got {self.max_people}")
        for name in ("min_detection_confidence", "min_tracking_confidence", "duplicate_overlap"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.box_margin < 0:
            raise ValueError(f"box_margin must be >= 0, got {self.box_margin}")


def import_mediapipe() -> Any:
    """The ``mediapipe`` module, or :class:`DetectorUnavailable` saying how to install it."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging, before it loads
    # protobuf 4 deprecates a call MediaPipe 0.10.14 makes on every frame; nothing to act on here.
    warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated", category=UserWarning)
    try:
        import mediapipe  # optional dependency: only BlazePose needs it
    except ImportError as exc:
        raise DetectorUnavailable(
            f"the BlazePose detector needs mediapipe=={MEDIAPIPE_VERSION} ({exc}); `make demo` installs it, "
            f"or pip install 'posestudio[blazepose]'; or use --detector tce") from None
    return mediapipe


def landmark_box(keypoints: FloatArray, min_confidence: float = 0.3) -> FloatArray | None:
    """``(x0, y0, x1, y1)`` pixels around the confident, finite landmarks of ``(J, 3)``; None if none."""
    ok = np.isfinite(keypoints[:, :2]).all(axis=1) & (keypoints[:, 2] >= min_confidence)
    if ok.sum() < 2:
        return None
    xy = keypoints[ok, :2]
    return np.concatenate([xy.min(axis=0), xy.max(axis=0)])


def box_iou(a: FloatArray, b: FloatArray) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


class BlazePoseDetector(Detector2D):
    """MediaPipe BlazePose (full model), tracked per view, up to ``options.max_people`` people each."""

    name = "blazepose"
    layout = BLAZEPOSE33
    context = 0

    def __init__(self, options: BlazePoseOptions | None = None) -> None:
        self.options = options or BlazePoseOptions()
        self.options.check()
        self._mp = import_mediapipe()
        self._graphs: list[list[Any]] = []

    def _new_graph(self) -> Any:
        o = self.options
        return self._mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=o.smooth_landmarks,
                                            enable_segmentation=False,
                                            min_detection_confidence=o.min_detection_confidence,
                                            min_tracking_confidence=o.min_tracking_confidence)

    def reset(self, n_views: int) -> None:
        self.close()
        self._graphs = [[self._new_graph() for _ in range(self.options.max_people)] for _ in range(n_views)]

    def detect(self, window: FrameWindow) -> list[FloatArray]:
        if len(self._graphs) != window.n_views:
            raise ValueError(f"detector was reset for {len(self._graphs)} views, got a window of {window.n_views}")
        return [self._detect_view(v, window.centre(v)) for v in range(window.n_views)]

    def _detect_view(self, view: int, frame: Image) -> FloatArray:
        h, w = frame.shape[:2]
        rgb = np.ascontiguousarray(frame[:, :, ::-1])
        fill = rgb.reshape(-1, 3).mean(axis=0).astype(np.uint8)
        people: list[FloatArray] = []
        boxes: list[FloatArray] = []
        for slot, graph in enumerate(self._graphs[view]):
            if slot > 0:
                if not boxes:
                    break  # nobody found: a masked pass would find nobody either
                x0, y0, x1, y1 = self._grown(boxes[-1], w, h)
                rgb[y0:y1, x0:x1] = fill
            result = graph.process(rgb)
            if result.pose_landmarks is None:
                continue
            kp = _landmarks_to_pixels(result.pose_landmarks.landmark, w, h)
            box = landmark_box(kp)
            if box is None or any(box_iou(box, b) > self.options.duplicate_overlap for b in boxes):
                continue
            people.append(kp)
            boxes.append(box)
        if not people:
            return np.full((0, self.layout.n_joints, 3), np.nan)
        return np.stack(people)

    def _grown(self, box: FloatArray, w: int, h: int) -> tuple[int, int, int, int]:
        m = self.options.box_margin * max(box[2] - box[0], box[3] - box[1])
        return (int(max(0, box[0] - m)), int(max(0, box[1] - m)), int(min(w, box[2] + m + 1)),
                int(min(h, box[3] + m + 1)))

    def close(self) -> None:
        for graphs in self._graphs:
            for g in graphs:
                g.close()
        self._graphs = []


def _landmarks_to_pixels(landmarks: Any, w: int, h: int) -> FloatArray:
    """MediaPipe's normalised landmarks to ``(33, 3)`` x, y pixels and visibility; NaN outside the frame."""
    a = np.array([(lm.x, lm.y, lm.visibility) for lm in landmarks], dtype=np.float64)
    a[:, 0] = a[:, 0] * w - 0.5  # MediaPipe's 0..1 spans pixel edges; ours are pixel centres
    a[:, 1] = a[:, 1] * h - 0.5
    a[:, 2] = np.clip(a[:, 2], 0.0, 1.0)
    outside = (a[:, 0] < -0.5) | (a[:, 0] > w - 0.5) | (a[:, 1] < -0.5) | (a[:, 1] > h - 0.5)
    a[outside] = np.nan
    return a
