"""The detector interface: the runner's windows and lockstep decoding, and BlazePose on real footage."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from posestudio.capture.sources import FrameSource, SourceError
from posestudio.models.detectors.base import Detector2D, FrameWindow
from posestudio.models.detectors.run import detect_sources
from posestudio.models.keypoints import BLAZEPOSE33, H36M17

DEMO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pose2sim_demo_single"
HAS_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None
needs_mediapipe = pytest.mark.skipif(not HAS_MEDIAPIPE, reason="mediapipe is not installed (make test installs it)")


def write_video(path: Path, n: int, size: tuple[int, int] = (64, 48), start: int = 0) -> Path:
    """A lossless video whose frame k is a flat image of grey level 10 * (start + k)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, size)
    for k in range(n):
        writer.write(np.full((size[1], size[0], 3), 10 * (start + k), np.uint8))
    writer.release()
    return path


class FrameLevels(Detector2D):
    """Reports, for every view, the grey levels of the frames in its window (-1 for a missing one)."""

    name = "levels"
    layout = H36M17

    def __init__(self, context: int) -> None:
        self.context = context
        self.seen: list[tuple[int, list[list[int]]]] = []

    def reset(self, n_views: int) -> None:
        self.seen = []

    def detect(self, window: FrameWindow) -> list[np.ndarray]:
        levels = [[-1 if f is None else int(f[0, 0, 0]) for f in view] for view in window.frames]
        self.seen.append((window.index, levels))
        return [np.zeros((0, 17, 3)) for _ in window.frames]


@pytest.mark.parametrize("context", [0, 1, 2])
def test_each_instant_is_detected_once_with_its_neighbours(tmp_path: Path, context: int) -> None:
    sources = [FrameSource.open(write_video(tmp_path / "a.avi", 6)),
               FrameSource.open(write_video(tmp_path / "b.avi", 6, start=10))]
    det = FrameLevels(context)
    result = detect_sources(sources, det)
    assert result.n_frames == 6 and result.camera_names == ["a", "b"] and result.image_sizes == [(64, 48)] * 2
    assert [i for i, _ in det.seen] == list(range(6))
    for t, levels in det.seen:
        for view, start in enumerate((0, 10)):
            expected = [10 * (start + t + d) if 0 <= t + d < 6 else -1 for d in range(-context, context + 1)]
            assert levels[view] == expected
    assert result.most_people() == 0


def test_recordings_of_different_lengths_are_refused_naming_the_short_one(tmp_path: Path) -> None:
    sources = [FrameSource.open(write_video(tmp_path / "cam1.avi", 5)),
               FrameSource.open(write_video(tmp_path / "cam2.avi", 3))]
    with pytest.raises(SourceError, match=r"cam2\.avi: ends after 3 frames but .*cam1\.avi goes on"):
        detect_sources(sources, FrameLevels(0))


@needs_mediapipe
def test_blazepose_finds_nobody_in_an_empty_frame() -> None:
    from posestudio.models.detectors.blazepose import BlazePoseDetector

    det = BlazePoseDetector()
    det.reset(1)
    out = det.detect(FrameWindow([[np.full((480, 640, 3), 128, np.uint8)]], 0, 0))
    det.close()
    assert len(out) == 1 and out[0].shape == (0, 33, 3)


@needs_mediapipe
@pytest.mark.realdata
@pytest.mark.skipif(not DEMO.is_dir(), reason=f"real data folder {DEMO} is absent")
def test_blazepose_finds_the_performer_on_real_footage() -> None:
    from posestudio.models.detectors.blazepose import BlazePoseDetector

    sources = [FrameSource.open(DEMO / "videos" / f"cam0{i}.mp4") for i in (1, 3)]
    det = BlazePoseDetector()
    found = []
    det.reset(2)
    for t, (frames) in enumerate(zip(*(s.frames(gray=False) for s in sources))):
        window = FrameWindow([[img] for _, img in frames], 0, t)
        found.append(det.detect(window))
        if t == 4:
            break
    det.close()
    assert det.layout is BLAZEPOSE33
    for per_view in found:
        for (w, h), people in zip([(1080, 1920), (1088, 1920)], per_view):
            assert people.ndim == 3 and people.shape[1:] == (33, 3) and len(people) >= 1
            person = people[0]
            xy, conf = person[:, :2], person[:, 2]
            ok = np.isfinite(xy).all(axis=1)
            assert ok.sum() >= 30
            assert (xy[ok] >= -0.5).all() and (xy[ok, 0] <= w - 0.5).all() and (xy[ok, 1] <= h - 0.5).all()
            assert ((conf[ok] >= 0) & (conf[ok] <= 1)).all()
            # An upright person: the nose above the hips, the hips above the ankles, about 1/3 of the frame tall.
            nose, hips, ankles = xy[0, 1], xy[[23, 24], 1].mean(), xy[[27, 28], 1].mean()
            assert nose < hips < ankles and 0.2 * h < ankles - nose < 0.8 * h
