"""The detector's shortcut on video (issue 18): after a frame in which no board was found, only the
part of the image that changed is searched, with the part around any markers seen then; the whole
image again where that finds a board that may extend beyond the part searched, and every
``FULL_SEARCH_EVERY`` frames. It must find what the whole-image search finds: the same frames, the
same corners and markers, the corners where the whole-image search puts them (to within the
refinement's stopping steps of 0.01 px: a search in part of the image starts refinement from marker
corners found in that part).
"""

from __future__ import annotations

import numpy as np
import pytest

from posestudio.calibration import detect
from posestudio.calibration.board import BoardSpec
from posestudio.calibration.detect import BoardDetector, FrameDetection

from .test_board import warped_view

BOARD = BoardSpec("charuco", 7, 5, 0.04, 0.03, "DICT_4X4_50")


def view(dx: float, dy: float, square_px: int, seed: int) -> np.ndarray:
    """A 1280 x 720 frame: the board (``square_px`` pixels per square) shifted by ``(dx, dy)`` pixels
    from the top-left, on a still grey background with fresh sensor noise (``seed``)."""
    h = np.array([[0.95, 0.12, dx], [-0.08, 0.85, dy], [2.5e-4, 1.5e-4, 1.0]])
    return warped_view(BOARD, h=h, square_px=square_px, seed=seed)[0]


def empty(seed: int) -> np.ndarray:
    """A frame without the board: the board is warped far outside the image."""
    return view(20000.0, 20000.0, 20, seed)


def run(frames: list[np.ndarray], monkeypatch: pytest.MonkeyPatch) -> tuple[list[FrameDetection], list[int]]:
    """Detections of consecutive frames, and the frames in which the whole image was searched."""
    whole: list[int] = []
    searched = BoardDetector._detect_charuco_full

    def spy(self: BoardDetector, gray: np.ndarray, frame: int) -> FrameDetection:
        if gray.shape == frames[0].shape:
            whole.append(frame)
        return searched(self, gray, frame)

    monkeypatch.setattr(BoardDetector, "_detect_charuco_full", spy)
    det = BoardDetector(BOARD)
    out = [det.detect(img, i) for i, img in enumerate(frames)]
    monkeypatch.undo()
    return out, whole


def assert_same(a: list[FrameDetection], b: list[FrameDetection]) -> None:
    """The same frames accepted, with the same corner ids at the same pixels (to 0.05 px), and the
    same markers seen in frames without a board."""
    for i, (x, y) in enumerate(zip(a, b)):
        assert (x.observation is None) == (y.observation is None), i
        if x.observation is not None:
            assert np.array_equal(x.observation.ids, y.observation.ids), i
            assert np.abs(x.observation.pixels - y.observation.pixels).max() < 0.05, i
        else:
            assert sorted(x.marker_ids.tolist()) == sorted(y.marker_ids.tolist()), i


def test_still_frames_skipped_and_small_board_found_when_it_appears(monkeypatch: pytest.MonkeyPatch) -> None:
    """A small board (15 px markers) enters a still scene after four empty frames and leaves."""
    frames = [empty(s) for s in range(4)]
    frames += [view(300.0 + 40 * k, 200.0 + 10 * k, 20, 10 + k) for k in range(4)]
    frames += [empty(20 + s) for s in range(3)]
    fast, whole = run(frames, monkeypatch)
    monkeypatch.setattr(detect, "FULL_SEARCH_EVERY", 1)  # every frame without a board: whole image
    reference, whole_ref = run(frames, monkeypatch)
    assert [r.observation is not None for r in fast] == [False] * 4 + [True] * 4 + [False] * 3
    assert len(fast[4].observation.ids) >= BOARD.n_corners // 2
    assert_same(fast, reference)
    # The still empty frames after the first (1-3, and 9-10 after the board left) were not searched
    # at all; frame 4, where the board came in, was found where the image changed, wholly inside it.
    still = {1, 2, 3, 9, 10}
    assert still <= set(whole_ref) and not still & set(whole) and {0, 8} <= set(whole) and 4 not in whole
    assert [r.reason for r in fast[1:4]] == ["no markers found"] * 3


def test_markers_without_board_searched_where_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """A board held still at the image's edge shows a few markers but no board; the frames after the
    first are searched only around those markers, until the board comes into view and is found."""
    frames = [view(-95.0, 200.0, 20, s) for s in range(4)]  # one column of markers in view
    frames += [view(200.0 + 30 * k, 220.0, 20, 10 + k) for k in range(2)]
    fast, whole = run(frames, monkeypatch)
    monkeypatch.setattr(detect, "FULL_SEARCH_EVERY", 1)
    reference, _ = run(frames, monkeypatch)
    assert all(r.observation is None and r.marker_ids.size > 0 for r in fast[:4])
    assert all(r.observation is not None for r in fast[4:])
    assert_same(fast, reference)
    assert 0 in whole and not {1, 2, 3} & set(whole)


def test_whole_image_searched_again_every_full_search_every_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    frames = [empty(s) for s in range(2 * detect.FULL_SEARCH_EVERY + 1)]
    _, whole = run(frames, monkeypatch)
    assert whole == [0, detect.FULL_SEARCH_EVERY, 2 * detect.FULL_SEARCH_EVERY]


def test_changed_box() -> None:
    rng = np.random.default_rng(0)
    before = rng.integers(100, 140, (360, 640)).astype(np.uint8)
    assert detect._changed_box(before, before.copy()) is None
    after = before.copy()
    after[50, 60] = 255  # one changed pixel: noise, not a change
    assert detect._changed_box(before, after) is None
    after[100:120, 200:230] = 0  # 40 x 60 px at full resolution
    x0, y0, x1, y1 = detect._changed_box(before, after)
    assert x0 <= 400 and y0 <= 200 and x1 >= 460 and y1 >= 240  # covers it
    assert x1 - x0 <= 60 + 2 * (16 + detect.CHANGE_PAD_PX) and y1 - y0 <= 40 + 2 * (16 + detect.CHANGE_PAD_PX)
    after[:, :] = 0
    assert detect._changed_box(before, after) == (0, 0, 1280, 720)
