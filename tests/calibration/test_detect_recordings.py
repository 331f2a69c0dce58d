"""Detection over a session's recordings in parallel (``calibration/detect_recordings.py``).

On a rendered 6-camera take (real MPEG-4 files decoded by FFmpeg): the calling thread and a worker
process, or a helper thread, find exactly what one thread finds alone, in input order; a frame
that cannot be decoded is named in the error whichever worker meets it; progress names every
recording once; the helpers are processes only for long takes.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from posestudio.calibration import detect_recordings
from posestudio.calibration.detect_recordings import DetectionUsage, detect_sources, detection_workers
from posestudio.calibration.errors import CalibrationInputError
from posestudio.capture.sources import FrameSource
from posestudio.synthetic import write_synthetic_session
from posestudio.synthetic.board_session import default_board

BOARD = default_board()
CAMERAS = 6
FRAMES = 40


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("take")
    session = write_synthetic_session(out, n_cameras=CAMERAS, n_frames=FRAMES, image_size=(960, 540), seed=5,
                                      workers=2)
    return [session.paths[name] for name in session.rig.names]


@pytest.fixture
def with_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes however short the take."""
    monkeypatch.setattr(detect_recordings, "PROCESSES_FROM_PIXELS_PER_WORKER", 0)


def observations(dets) -> list[list[tuple[int, list[int], np.ndarray]]]:
    return [[(o.frame, o.ids.tolist(), o.pixels) for o in d.observations] for d in dets]


def assert_same(alone: list, together: list) -> None:
    assert [d.name for d in together] == [d.name for d in alone]  # input order
    assert [d.n_frames for d in together] == [FRAMES] * CAMERAS
    a, b = observations(alone), observations(together)
    assert [[(f, ids) for f, ids, _ in cam] for cam in a] == [[(f, ids) for f, ids, _ in cam] for cam in b]
    for cam_a, cam_b in zip(a, b):
        for (_, _, px_a), (_, _, px_b) in zip(cam_a, cam_b):
            np.testing.assert_array_equal(px_a, px_b)  # the same detector on the same frames


def test_worker_processes_find_what_one_thread_finds(videos: list[Path], with_processes: None) -> None:
    alone, fps_alone = detect_sources(videos, BOARD, workers=1, progress=None)
    assert sum(len(d.observations) for d in alone) >= 30  # the take shows the board
    threads_before = cv2.getNumThreads()
    # A worker process takes whichever recordings are left when it has started: run until it took
    # some (the first run starts the fork server; after it a worker starts in milliseconds).
    shares = []
    for _ in range(3):
        usage = DetectionUsage()
        together, fps = detect_sources(videos, BOARD, workers=2, progress=None, usage=usage)
        assert cv2.getNumThreads() == threads_before  # OpenCV's own threads are given back
        assert [d.name for d in together] == [p.stem for p in videos] and fps == fps_alone == 30.0
        assert_same(alone, together)
        # The worker process started and said what it used.
        assert len(usage.worker_peak_rss_mb) == 1 and usage.worker_peak_rss_mb[0] > 20
        shares.append(usage.worker_recordings)
        if usage.worker_recordings:
            assert usage.worker_cpu_s > 0
            break
    assert max(shares) > 0, f"the worker process detected no recording in {len(shares)} runs"


def test_a_short_take_is_detected_by_threads(videos: list[Path]) -> None:
    # 6 x 40 frames of 960 x 540: less than a fork server's start-up would win back.
    usage = DetectionUsage()
    together, _ = detect_sources(videos, BOARD, workers=3, progress=None, usage=usage)
    assert usage.worker_peak_rss_mb == [] and usage.worker_recordings == 0  # no process started
    assert_same(detect_sources(videos, BOARD, workers=1, progress=None)[0], together)


@pytest.mark.parametrize("processes", [False, True])
def test_progress_names_every_recording_once(videos: list[Path], monkeypatch: pytest.MonkeyPatch,
                                             processes: bool) -> None:
    if processes:
        monkeypatch.setattr(detect_recordings, "PROCESSES_FROM_PIXELS_PER_WORKER", 0)
    lines: list[str] = []
    detect_sources(videos, BOARD, workers=2, progress=lines.append)
    assert lines[0] == f"detecting the board in {CAMERAS} recordings (2 at a time)"
    finished = [ln for ln in lines if ": board in " in ln]
    assert sorted(ln.split(":")[0].strip() for ln in finished) == sorted(p.stem for p in videos)
    assert [ln.split("(")[1].split(" ")[0] for ln in finished] == [f"{k}/{CAMERAS}" for k in range(1, CAMERAS + 1)]


@pytest.mark.parametrize(("broken", "processes"), [(0, False), (CAMERAS - 1, False), (0, True), (CAMERAS - 1, True)])
def test_a_frame_that_cannot_be_decoded_is_named(videos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 broken: int, processes: bool) -> None:
    if processes:
        monkeypatch.setattr(detect_recordings, "PROCESSES_FROM_PIXELS_PER_WORKER", 0)
    # The take as image folders, one frame of one camera's replaced by bytes that are no image.
    folders = []
    for video in videos:
        folder = tmp_path / video.stem
        folder.mkdir()
        for i, image in FrameSource.open(video).frames(gray=True):
            cv2.imwrite(str(folder / f"{i:06d}.png"), image)
        folders.append(folder)
    bad = folders[broken] / f"{FRAMES // 2:06d}.png"
    bad.write_bytes(b"not a PNG image")
    with pytest.raises(CalibrationInputError, match=str(bad)):
        detect_sources(folders, BOARD, workers=2, progress=None)


def test_workers_are_bounded_by_recordings_and_checked() -> None:
    assert detection_workers(3, 8) == 3 and detection_workers(5, 2) == 2 and detection_workers(1) == 1
    with pytest.raises(CalibrationInputError, match="workers must be 0"):
        detection_workers(4, -1)
