"""Following the board from frame to frame (``calibration/board_tracking.py``, issue 18): where the
board was found in the previous frame, its corners are followed and its markers verified instead
of searched for. The corners must be those a search finds, and anything doubtful (a covered marker,
a jump) must fall back to the search.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from posestudio.calibration.board import BoardSpec
from posestudio.calibration.board_tracking import (
    CharucoGeometry,
    CharucoTracker,
    TrackedBoard,
    refine_corners,
    refinement_half_windows,
)
from posestudio.calibration.detect import BoardDetector, FrameDetection

from .test_board import warped_view

BOARD = BoardSpec("charuco", 7, 5, 0.04, 0.03, "DICT_4X4_50")


def pose(k: float, x: float = 330.0, y: float = 180.0, turn_deg: float = 1.5) -> np.ndarray:
    """Board-to-image homography (board pixels at 4x to image pixels at 4x, see ``warped_view``) of
    frame ``k`` of a board drifting right and down, turning ``turn_deg`` and tilting a little a frame."""
    a = np.deg2rad(turn_deg * k)
    c, s = np.cos(a), np.sin(a)
    return np.array([[0.95 * c, -0.95 * s + 0.10, x + 14.0 * k], [0.90 * s - 0.06, 0.90 * c, y + 6.0 * k],
                     [2.0e-4 + 1e-5 * k, 1.2e-4, 1.0]])


def take(homographies: list[np.ndarray], board: BoardSpec = BOARD, square_px: int = 50
         ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames (1280 x 720, blurred, noisy) and each frame's true corner pixels."""
    views = [warped_view(board, h=h, square_px=square_px, seed=i) for i, h in enumerate(homographies)]
    return [v[0] for v in views], [v[1] for v in views]


def detect_all(frames: list[np.ndarray], board: BoardSpec = BOARD, track: bool = True
               ) -> tuple[list[FrameDetection], list[str]]:
    """Detections of consecutive frames, and why tracking did not give each one ('' where it did,
    'search' where it was not tried)."""
    det = BoardDetector(board, track=track)
    out, how = [], []
    for i, img in enumerate(frames):
        if det._tracker is not None:
            det._tracker.failure = "not tried"
        out.append(det.detect(img, i))
        how.append("search" if det._tracker is None or det._tracker.failure == "not tried" else det._tracker.failure)
    return out, how


def assert_same_corners(a: FrameDetection, b: FrameDetection, tol_px: float = 0.1) -> None:
    assert a.observation is not None and b.observation is not None
    assert np.array_equal(a.observation.ids, b.observation.ids)
    assert np.abs(a.observation.pixels - b.observation.pixels).max() < tol_px


def test_followed_corners_are_the_searched_corners_and_the_true_ones() -> None:
    frames, truth = take([pose(k) for k in range(8)])
    tracked, how = detect_all(frames)
    searched, _ = detect_all(frames, track=False)
    assert how[0] == "search" and all(h == "" for h in how[1:]), how
    for t, s, true in zip(tracked, searched, truth):
        assert_same_corners(t, s)
        assert len(t.observation.ids) == BOARD.n_corners
        assert np.abs(t.observation.pixels - true[t.observation.ids]).max() < 0.25


def test_a_covered_marker_is_left_to_the_search() -> None:
    homographies = [pose(k) for k in range(6)]
    frames, _ = take(homographies)
    # Cover marker 7 in frame 4 with the paper's grey, as a hand holding the board would.
    geo = CharucoGeometry.of(BOARD)
    m = int(np.nonzero(geo.marker_ids == 7)[0][0])
    ss, ppm = 4, 50 * 4 / BOARD.square_length
    corners_hi = geo.marker_xy[m] * ppm + 40 - 0.5
    s = np.array([[ss, 0, (ss - 1) / 2], [0, ss, (ss - 1) / 2], [0, 0, 1.0]])
    quad = cv2.perspectiveTransform(corners_hi.reshape(-1, 1, 2), s @ homographies[4] @ np.linalg.inv(s))
    quad = ((quad.reshape(-1, 2) + 0.5) / ss - 0.5)
    centre = quad.mean(axis=0)
    cv2.fillConvexPoly(frames[4], np.round(centre + 1.3 * (quad - centre)).astype(np.int32), 200)
    tracked, how = detect_all(frames)
    searched, _ = detect_all(frames, track=False)
    assert how[4] == "a marker seen in the previous frame is not verified"
    assert how[5] == ""  # and followed again from the search's result
    for t, s in zip(tracked, searched):
        assert_same_corners(t, s)
    # The corners touching marker 7 were not found in frame 4, and were again in frame 5.
    touching = np.nonzero((geo.corner_markers == m).any(axis=1))[0]
    assert not np.isin(touching, tracked[4].observation.ids).any()
    assert np.isin(touching, tracked[5].observation.ids).all()


def test_a_board_coming_into_view_gains_corners_as_a_search_would() -> None:
    frames, _ = take([pose(k, x=-260.0 + 50.0 * k, turn_deg=0.5) for k in range(9)])
    tracked, how = detect_all(frames)
    searched, _ = detect_all(frames, track=False)
    counts = [0 if t.observation is None else len(t.observation.ids) for t in tracked]
    assert counts == sorted(counts) and counts[-1] == BOARD.n_corners and counts[1] < BOARD.n_corners, counts
    assert sum(h == "" for h in how) >= 5, how
    for t, s in zip(tracked, searched):
        if s.observation is None:
            assert t.observation is None
            continue
        # A marker just inside the image edge may be placed outside it by the board's homography
        # and wait a frame: never a corner the search does not find, at most a marker's two fewer.
        found, searched_ids = t.observation.ids, s.observation.ids
        assert np.isin(found, searched_ids).all() and len(found) >= len(searched_ids) - 2
        common = np.isin(searched_ids, found)
        assert np.abs(t.observation.pixels - s.observation.pixels[common]).max() < 0.1


@pytest.mark.parametrize("board", [BoardSpec("charuco", 7, 5, 0.04, 0.03, "DICT_4X4_50", inverted=True),
                                   BoardSpec("charuco", 6, 6, 0.04, 0.03, "DICT_5X5_100", legacy=True)],
                         ids=["inverted", "legacy"])
def test_inverted_and_legacy_boards_are_followed(board: BoardSpec) -> None:
    frames, _ = take([pose(k) for k in range(5)], board=board)
    tracked, how = detect_all(frames, board=board)
    searched, _ = detect_all(frames, board=board, track=False)
    assert all(h == "" for h in how[1:]), how
    for t, s in zip(tracked, searched):
        assert_same_corners(t, s)


def test_a_jump_is_not_followed_into_wrong_corners() -> None:
    homographies = [pose(k) for k in range(4)] + [pose(3, x=600.0, y=300.0, turn_deg=8.0)]
    frames, _ = take(homographies)
    tracked, how = detect_all(frames)
    searched, _ = detect_all(frames, track=False)
    assert how[4] != ""
    assert_same_corners(tracked[4], searched[4])


def test_tracker_alone_reports_why() -> None:
    frames, _ = take([pose(k) for k in range(2)])
    searched, _ = detect_all(frames, track=False)
    tracker = CharucoTracker(BOARD)
    first = searched[0]
    previous = TrackedBoard(first.observation.ids, first.observation.pixels, first.marker_ids, first.marker_px)
    blank = np.full_like(frames[1], 128)
    assert tracker.track(frames[0], blank, previous, inverted=False) is None
    assert tracker.failure
    out = tracker.track(frames[0], frames[1], previous, inverted=False)
    assert out is not None and tracker.failure == ""


def test_corners_near_the_markers_are_refined_in_wider_windows() -> None:
    """Squares of about 22 px put many corners 3-4 px from the markers' corners. OpenCV's rule gives
    those a 3 x 3 window, in which refinement barely moves a corner from where it started; the
    detector's 5 x 5 window brings it back to the same point from wherever it starts nearby."""
    h = pose(0, x=500.0, y=300.0)
    h[:2, :2] *= 0.6
    img, _ = warped_view(BOARD, h=h, square_px=50, seed=0)
    found = BoardDetector(BOARD, track=False).detect(img)
    obs = found.observation
    geo = CharucoGeometry.of(BOARD)
    distance = geo.marker_corner_distance(obs.ids, obs.pixels, found.marker_ids, found.marker_px)
    opencv = refinement_half_windows(distance, opencv=True)
    ours = refinement_half_windows(distance)
    widened = (opencv == 1) & (ours == 2)
    assert widened.sum() >= 4 and np.all((ours == opencv) | widened)
    start = obs.pixels[widened] + [0.6, -0.5]
    back = np.linalg.norm(refine_corners(img, start, ours[widened]) - obs.pixels[widened], axis=1)
    stuck = np.linalg.norm(refine_corners(img, start, opencv[widened]) - obs.pixels[widened], axis=1)
    assert np.median(back) < 0.05 and np.median(stuck) > 0.3, (np.median(back), np.median(stuck))
