"""Board detection in images: ChArUco (either polarity, legacy layout) and checkerboards.

Corner positions are sub-pixel, in distorted image pixels with pixel centres at integer
coordinates (OpenCV's convention).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from posestudio.core.arrays import FloatArray, IntArray

from .board import BoardSpec
from .board_tracking import (
    SUBPIX_EPS_PX,
    SUBPIX_ITERATIONS,
    CharucoGeometry,
    CharucoTracker,
    TrackedBoard,
    apply_homography,
    fit_homography,
    halve,
    refine_corners,
    refinement_half_windows,
)

MIN_CHARUCO_CORNERS = 6

# After a frame in which no board was found, only the part of the next frame that changed is
# searched, with the part around any markers seen then: the cameras stand still, the board (and
# whoever holds it) moves; what did not change shows no markers, as it did not before. Changes are found on
# the image halved in each direction: a pixel has changed when it differs by more than
# CHANGE_GREY_LEVELS (measured at that scale between consecutive frames of the rendered and real
# test videos: 90 % of pixels differ by 1-6 grey levels at most, moving people included), a
# 16 x 16 px block when at least CHANGE_BLOCK_PIXELS of its 64 halved pixels have. The window
# searched is padded by CHANGE_PAD_PX. Every FULL_SEARCH_EVERY frames the whole image is searched
# again, so that changes too slow to cross the threshold from one frame to the next cannot hide a
# board for long.
CHANGE_GREY_LEVELS = 24
CHANGE_BLOCK_PIXELS = 2
CHANGE_PAD_PX = 32
FULL_SEARCH_EVERY = 15
# Where the optical flow carried the previous board but it could not be followed, the window searched
# is the carried board's outline padded by a tenth of its size and PREDICTED_PAD_PX.
PREDICTED_PAD_PX = 24


@dataclass
class BoardObservation:
    """The board corners one camera found in one frame.

    Attributes:
        frame: frame index in the camera's source.
        ids: ``(N,)`` corner ids (see :meth:`BoardSpec.corner_points`).
        pixels: ``(N, 2)`` sub-pixel corner positions, pixels.
    """

    frame: int
    ids: IntArray
    pixels: FloatArray


@dataclass
class FrameDetection:
    """Outcome of detecting the board in one image.

    Attributes:
        observation: the accepted corners, or None.
        reason: why the frame was rejected ('' when accepted).
        marker_ids: ArUco marker ids seen (charuco), for diagnostics.
        inverted: whether the markers were found with inverted polarity.
        marker_px: ``(len(marker_ids), 4, 2)`` those markers' corners, pixels (charuco).
    """

    observation: BoardObservation | None
    reason: str = ""
    marker_ids: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    inverted: bool = False
    marker_px: FloatArray = field(default_factory=lambda: np.zeros((0, 4, 2)))


class BoardDetector:
    """Finds one board in grayscale images.

    For ChArUco boards it looks for markers of the board's stated polarity; until the board has
    been found once it also tries the other polarity and records that (``FrameDetection.inverted``),
    so a board printed white-on-black is found even when its file does not say so.

    Used on consecutive frames of one camera, it first follows the board from the previous frame
    (``track``; :class:`~.board_tracking.CharucoTracker`: no marker search, the same corners), else
    searches a tight window where the optical flow carried the previous board, then a wider one
    around the previous board, and falls back to the whole image when the board may extend past
    the window. After a frame in which no board was found, it searches only where the image changed
    since and around the markers seen then (see ``CHANGE_GREY_LEVELS``). ChArUco corners are refined by
    :func:`~.board_tracking.refinement_half_windows`' rule on either path.
    """

    def __init__(self, board: BoardSpec, try_other_polarity: bool = True, track: bool = True) -> None:
        self.board = board
        self.try_other_polarity = try_other_polarity
        self._polarity = board.inverted
        self._polarity_confirmed = False
        self._previous: BoardObservation | None = None
        self._earlier: BoardObservation | None = None
        # The previous frame (image and outcome), for following the board into the next one.
        self._previous_gray: NDArray[np.uint8] | None = None
        self._previous_result: FrameDetection | None = None
        # The last frame in which no board was found, or None (see CHANGE_GREY_LEVELS).
        self._unfound: _Unfound | None = None
        if board.type == "charuco":
            self._cv_board = board.charuco_board()
            # Adaptive-threshold windows 3 and 13 px find markers of any size; OpenCV's default adds a
            # 23 px window, which costs 60 % more time but recovers a few more markers on poor
            # footage. The thorough pass runs only where the fast one saw markers but no board
            # (measured: 40 % less time, 0.2-1 % fewer corners).
            self._fast = self._make_charuco_detector(max_window=13)
            self._thorough = self._make_charuco_detector(max_window=23)
            self._geometry = CharucoGeometry.of(board)
        self._tracker = CharucoTracker(board) if board.type == "charuco" and track else None
        self._corner_xy = board.corner_points()[:, :2]

    def _make_charuco_detector(self, max_window: int) -> "cv2.aruco.CharucoDetector":
        det = cv2.aruco.CharucoDetector(self._cv_board)
        params = cv2.aruco.DetectorParameters()
        params.adaptiveThreshWinSizeMin = 3
        params.adaptiveThreshWinSizeStep = 10
        params.adaptiveThreshWinSizeMax = max_window
        params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        params.cornerRefinementMaxIterations = SUBPIX_ITERATIONS
        params.cornerRefinementMinAccuracy = SUBPIX_EPS_PX
        # One polarity per pass: inverted boards are handled by inverting the image.
        params.detectInvertedMarker = False
        det.setDetectorParameters(params)
        cparams = cv2.aruco.CharucoParameters()
        cparams.tryRefineMarkers = True
        det.setCharucoParameters(cparams)
        return det

    def detect(self, gray: NDArray[np.uint8], frame: int = 0) -> FrameDetection:
        """Detect the board in one ``(H, W)`` uint8 image."""
        if gray.ndim == 3:
            gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
        if self.board.type == "checkerboard":
            return self._detect_checkerboard(gray, frame)
        result = self._track(gray, frame)
        if result is None and self._tracker is not None and self._tracker.motion is not None:
            result = self._detect_where_predicted(gray, frame, self._tracker.motion)
        if result is None:
            result = self._detect_near_previous(gray, frame)
        if result is None:
            result = self._detect_where_changed(gray, frame)
        else:
            self._unfound = None
        self._earlier, self._previous = self._previous, result.observation
        self._previous_gray, self._previous_result = gray, result
        if result.observation is not None:
            self._polarity, self._polarity_confirmed = result.inverted, True
        return result

    def _detect_charuco_full(self, gray: NDArray[np.uint8], frame: int) -> FrameDetection:
        # The polarity that last worked is tried first; the other one only until the board has been
        # found once (then it is known), so a wrong board file costs little.
        first = self._detect_charuco(gray, frame, self._polarity)
        # Not only when no markers: a few false markers in the room must not hide the board.
        if first.observation is None and self.try_other_polarity and not self._polarity_confirmed:
            other = self._detect_charuco(gray, frame, not self._polarity)
            if other.observation is not None or other.marker_ids.size > first.marker_ids.size:
                return other
        return first

    def _detect_where_changed(self, gray: NDArray[np.uint8], frame: int) -> FrameDetection:
        """Whole-image detection or, right after a frame in which no board was found, detection
        where the image changed since and around the markers seen then (see ``CHANGE_GREY_LEVELS``);
        the whole image when that finds a board that may extend beyond where it searched."""
        small = halve(gray)
        h, w = gray.shape
        unfound, self._unfound = self._unfound, None
        if (unfound is not None and unfound.frame == frame - 1 and unfound.small.shape == small.shape
                and unfound.frames_since_full + 1 < FULL_SEARCH_EVERY):
            box = _union(_changed_box(unfound.small, small), unfound.marker_box)
            if box is None:
                self._unfound = _Unfound(frame, small, unfound.frames_since_full + 1, None)
                return FrameDetection(None, "no markers found")
            x0, y0, x1, y1 = box
            if (x1 - x0) * (y1 - y0) <= 0.6 * w * h:
                res = _shifted(self._detect_charuco_full(np.ascontiguousarray(gray[y0:y1, x0:x1]), frame), x0, y0)
                if res.observation is None:
                    self._unfound = _Unfound(frame, small, unfound.frames_since_full + 1, self._marker_box(res, gray.shape))
                    return res
                if self._within(res.observation, box, gray.shape):
                    return res
        res = self._detect_charuco_full(gray, frame)
        if res.observation is None:
            self._unfound = _Unfound(frame, small, 0, self._marker_box(res, gray.shape))
        return res

    @staticmethod
    def _marker_box(res: FrameDetection, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
        """``(x0, y0, x1, y1)`` pixels around the markers ``res`` saw, padded by ``CHANGE_PAD_PX`` and
        clipped to an image of ``shape (H, W)``; None without markers. (Markers of the board found
        in the next frame are either there or where the image changed.)"""
        if res.marker_ids.size == 0:
            return None
        lo = np.floor(res.marker_px.reshape(-1, 2).min(axis=0)).astype(int) - CHANGE_PAD_PX
        hi = np.ceil(res.marker_px.reshape(-1, 2).max(axis=0)).astype(int) + CHANGE_PAD_PX
        h, w = shape
        return max(int(lo[0]), 0), max(int(lo[1]), 0), min(int(hi[0]), w), min(int(hi[1]), h)

    def _track(self, gray: NDArray[np.uint8], frame: int) -> FrameDetection | None:
        """The board followed from the previous frame (:mod:`.board_tracking`), or None to search."""
        prev, before = self._previous, self._previous_gray
        if self._tracker is not None:
            self._tracker.motion = None
        if (self._tracker is None or prev is None or prev.frame != frame - 1 or before is None
                or before.shape != gray.shape or self._previous_result is None):
            return None
        previous = TrackedBoard(prev.ids, prev.pixels, self._previous_result.marker_ids,
                                self._previous_result.marker_px)
        earlier = self._earlier
        earlier = earlier if earlier is not None and earlier.frame == frame - 2 else None
        tracked = self._tracker.track(before, gray, previous, self._polarity,
                                      None if earlier is None else TrackedBoard(earlier.ids, earlier.pixels))
        if tracked is None or self._cv_board.checkCharucoCornersCollinear(tracked.ids.astype(np.int32).reshape(-1, 1)):
            return None
        return FrameDetection(BoardObservation(frame, tracked.ids, tracked.pixels), "", tracked.marker_ids,
                              self._polarity, tracked.marker_px)

    def _detect_where_predicted(self, gray: NDArray[np.uint8], frame: int, motion: FloatArray) -> FrameDetection | None:
        """Detection in a tight window around the previous frame's board carried by ``motion (3, 3)``
        (the optical flow's homography from the previous frame), or None to search more widely.

        Where the board could not be followed (mostly boards too small to follow), this searches
        about a quarter of the area :meth:`_detect_near_previous` searches without a prediction."""
        prev = self._previous
        outline = self._outline(prev.ids, prev.pixels)
        if outline is None:
            return None
        predicted = apply_homography(motion, outline)
        lo, hi = predicted.min(axis=0), predicted.max(axis=0)
        pad = 0.1 * (hi - lo) + PREDICTED_PAD_PX
        return self._detect_in_window(gray, frame, lo - pad, hi + pad)

    def _detect_near_previous(self, gray: NDArray[np.uint8], frame: int) -> FrameDetection | None:
        """Detection in a window around the previous frame's board, or None to search everywhere."""
        prev = self._previous
        if prev is None or prev.frame != frame - 1:
            return None
        h, w = gray.shape
        # Around the previous board's inner corners, and at least around its whole outline: the
        # outline reaches a square beyond the corners, half their span on a board of few squares (a
        # 4 x 5 board failed the acceptance below in 70 of 188 frames of the real session with the
        # corners' window alone; the board had moved 4-15 % of its size).
        lo, hi = prev.pixels.min(axis=0), prev.pixels.max(axis=0)
        pad = np.maximum(0.6 * (hi - lo), 60.0)
        lo, hi = lo - pad, hi + pad
        outline = self._outline(prev.ids, prev.pixels)
        if outline is not None:
            o_lo, o_hi = outline.min(axis=0), outline.max(axis=0)
            o_pad = np.maximum(0.35 * (o_hi - o_lo), 40.0)
            lo, hi = np.minimum(lo, o_lo - o_pad), np.maximum(hi, o_hi + o_pad)
        return self._detect_in_window(gray, frame, lo, hi)

    def _detect_in_window(self, gray: NDArray[np.uint8], frame: int, lo: FloatArray,
                          hi: FloatArray) -> FrameDetection | None:
        """Detection in the window from ``lo (2,)`` to ``hi (2,)`` (pixels, clipped to the image), or
        None when the window is most of the image or the board found may extend beyond it."""
        h, w = gray.shape
        x0, y0 = np.maximum(np.floor(lo).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(hi).astype(int), [w, h])
        if (x1 - x0) * (y1 - y0) > 0.6 * w * h:
            return None
        res = _shifted(self._detect_charuco(np.ascontiguousarray(gray[y0:y1, x0:x1]), frame, self._polarity), x0, y0)
        if res.observation is None or not self._within(res.observation, (x0, y0, x1, y1), gray.shape):
            return None
        return res

    def _within(self, obs: BoardObservation, box: tuple[int, int, int, int], shape: tuple[int, int]) -> bool:
        """Whether the whole board (as the homography of the corners ``obs`` found predicts it) lies
        inside the window ``box = (x0, y0, x1, y1)`` searched or outside the image of ``shape (H, W)``:
        otherwise corners beyond the window could have been missed."""
        outline = self._outline(obs.ids, obs.pixels)
        if outline is None:
            return False
        x0, y0, x1, y1 = box
        h, w = shape
        margin = 8.0
        inside = ((outline[:, 0] > x0 + margin) & (outline[:, 0] < x1 - margin)
                  & (outline[:, 1] > y0 + margin) & (outline[:, 1] < y1 - margin))
        beyond_image = ((outline[:, 0] < 0) | (outline[:, 0] > w) | (outline[:, 1] < 0) | (outline[:, 1] > h))
        return bool(np.all(inside | beyond_image))

    def _outline(self, ids: IntArray, pixels: FloatArray) -> FloatArray | None:
        """The board's four outer corners ``(4, 2)`` in the image, pixels, as the homography of its
        detected corners ``ids`` at ``pixels`` ``(N, 2)`` predicts them; None without a homography."""
        if len(ids) < 4:
            return None
        hom = fit_homography(self._corner_xy[ids], pixels)
        bw, bh = self.board.size_m
        return apply_homography(hom, np.array([[0, 0], [bw, 0], [bw, bh], [0, bh]], float))

    def _detect_charuco(self, gray: NDArray[np.uint8], frame: int, inverted: bool) -> FrameDetection:
        image = 255 - gray if inverted else gray
        res = self._detect_charuco_with(self._fast, image, frame, inverted)
        if res.observation is None and res.marker_ids.size:
            # The thorough pass looks for more of the board only where the board can be: around the
            # markers the fast pass saw (on the rendered 16-camera ring, a third of its time).
            x0, y0, x1, y1 = self._around_markers(res.marker_px, image.shape)
            slow = _shifted(self._detect_charuco_with(self._thorough, np.ascontiguousarray(image[y0:y1, x0:x1]),
                                                      frame, inverted), x0, y0)
            if slow.observation is not None or slow.marker_ids.size > res.marker_ids.size:
                return slow
        return res

    def _around_markers(self, marker_px: FloatArray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """The part of an image of ``shape (H, W)`` where a board of which markers were seen at
        ``marker_px (V, 4, 2)`` pixels can lie: ``(x0, y0, x1, y1)``, every seen marker padded by the
        board's diagonal at 1.5 times the largest scale (pixels per metre) any of them shows."""
        sides = np.linalg.norm(marker_px - np.roll(marker_px, 1, axis=1), axis=-1)  # (V, 4)
        px_per_m = float(sides.max()) / self.board.marker_length
        pad = 1.5 * px_per_m * float(np.hypot(*self.board.size_m)) + CHANGE_PAD_PX
        lo, hi = marker_px.reshape(-1, 2).min(axis=0) - pad, marker_px.reshape(-1, 2).max(axis=0) + pad
        h, w = shape
        x0, y0 = np.maximum(np.floor(lo).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(hi).astype(int), [w, h])
        return int(x0), int(y0), int(x1), int(y1)

    def _detect_charuco_with(self, detector: "cv2.aruco.CharucoDetector", image: NDArray[np.uint8], frame: int,
                             inverted: bool) -> FrameDetection:
        corners, ids, marker_corners, marker_ids = detector.detectBoard(image)
        mids = np.zeros(0, np.int64) if marker_ids is None else np.asarray(marker_ids, np.int64).ravel()
        mpx = np.asarray(marker_corners, np.float64).reshape(-1, 4, 2) if mids.size else np.zeros((0, 4, 2))
        if ids is None or len(ids) == 0:
            reason = "no markers found" if mids.size == 0 else f"{mids.size} markers but no ChArUco corners"
            return FrameDetection(None, reason, mids, inverted, mpx)
        ids = np.asarray(ids, np.int64).ravel()
        pix = np.asarray(corners, np.float64).reshape(-1, 2)
        # OpenCV refines corners near the markers' corners in 3 x 3 windows; from 3 px to
        # MIN_MARKER_CORNER_PX they are refined again in 5 x 5 ones (board_tracking.py).
        distance = self._geometry.marker_corner_distance(ids, pix, mids, mpx)
        half = refinement_half_windows(distance)
        again = half != refinement_half_windows(distance, opencv=True)
        if again.any():
            pix[again] = refine_corners(image, pix[again], half[again])
        if len(ids) < MIN_CHARUCO_CORNERS:
            return FrameDetection(None, f"only {len(ids)} corners (< {MIN_CHARUCO_CORNERS})", mids, inverted, mpx)
        if self._cv_board.checkCharucoCornersCollinear(ids.astype(np.int32).reshape(-1, 1)):
            return FrameDetection(None, "corners collinear", mids, inverted, mpx)
        return FrameDetection(BoardObservation(frame, ids, pix), "", mids, inverted, mpx)

    def _detect_checkerboard(self, gray: NDArray[np.uint8], frame: int) -> FrameDetection:
        pattern = (self.board.corners_x, self.board.corners_y)
        image = 255 - gray if self.board.inverted else gray
        flags = cv2.CALIB_CB_EXHAUSTIVE | cv2.CALIB_CB_ACCURACY | cv2.CALIB_CB_NORMALIZE_IMAGE
        ok, corners = cv2.findChessboardCornersSB(image, pattern, flags=flags)
        pix = np.asarray(corners, np.float64).reshape(-1, 2) if ok else None
        if pix is None or not self._is_planar_grid(pix):
            # The exhaustive search can miss the board, or return a grid that runs off it onto a
            # patterned background; the classic detector is deterministic and more conservative.
            classic = _classic_checkerboard(image, pattern)
            if classic is None:
                return FrameDetection(None, "checkerboard not found" if pix is None
                                      else "checkerboard corners do not form the board's grid")
            pix = classic
            if not self._is_planar_grid(pix):
                return FrameDetection(None, "checkerboard corners do not form the board's grid")
        ids = np.arange(len(pix), dtype=np.int64)
        return FrameDetection(BoardObservation(frame, ids, pix))

    def _is_planar_grid(self, pix: FloatArray, tolerance: float = 0.25) -> bool:
        """Whether corners ``(N, 2)`` fit the board's grid by a homography within ``tolerance``
        of a square's size in the image (lens distortion bends the grid far less than that)."""
        obj = self.board.corner_points()[:, :2]
        hom, _ = cv2.findHomography(obj, pix, 0)
        if hom is None:
            return False
        proj = cv2.perspectiveTransform(obj.reshape(-1, 1, 2), hom).reshape(-1, 2)
        spacing = np.median(np.linalg.norm(np.diff(pix.reshape(self.board.corners_y, self.board.corners_x, 2),
                                                   axis=1), axis=-1))
        return bool(np.max(np.linalg.norm(proj - pix, axis=1)) < tolerance * spacing)


@dataclass
class _Unfound:
    """A frame in which no board was found, for searching the next one only where it may be.

    Attributes:
        frame: its index.
        small: ``(H // 2, W // 2)`` the image halved (``halve``).
        frames_since_full: frames since the whole image was last searched (0: it was, this frame).
        marker_box: ``(x0, y0, x1, y1)`` pixels where the board of the markers seen can be, or None.
    """

    frame: int
    small: NDArray[np.uint8]
    frames_since_full: int
    marker_box: tuple[int, int, int, int] | None


def _union(a: tuple[int, int, int, int] | None, b: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
    """The smallest box ``(x0, y0, x1, y1)`` holding boxes ``a`` and ``b`` (either may be None)."""
    if a is None or b is None:
        return a if b is None else b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _shifted(res: FrameDetection, x0: int, y0: int) -> FrameDetection:
    """``res``, detected in a window whose top-left pixel is ``(x0, y0)``, in image pixels."""
    if x0 or y0:
        res.marker_px = res.marker_px + [x0, y0]
        if res.observation is not None:
            res.observation.pixels = res.observation.pixels + [x0, y0]
    return res


def _changed_box(before: NDArray[np.uint8], after: NDArray[np.uint8]) -> tuple[int, int, int, int] | None:
    """Where two halved images ``(h, w)`` differ (see ``CHANGE_GREY_LEVELS``): ``(x0, y0, x1, y1)``
    in full-resolution pixels around every changed block, padded by ``CHANGE_PAD_PX`` and clipped
    to ``[0, 2w] x [0, 2h]``; None when no block changed."""
    _, mask = cv2.threshold(cv2.absdiff(before, after), CHANGE_GREY_LEVELS, 64, cv2.THRESH_BINARY)
    h, w = mask.shape
    mask = cv2.copyMakeBorder(mask, 0, -h % 8, 0, -w % 8, cv2.BORDER_CONSTANT, value=0)
    # Block means of a 0/64 mask are the counts of changed pixels per 8 x 8 block: halved three
    # times, exactly (each 2 x 2 sum is divisible by 4 at every step), at a third of the cost of one
    # resize by 8.
    counts = halve(halve(halve(mask)))
    rows, cols = np.nonzero(counts >= CHANGE_BLOCK_PIXELS)
    if rows.size == 0:
        return None
    x0, y0 = 16 * int(cols.min()) - CHANGE_PAD_PX, 16 * int(rows.min()) - CHANGE_PAD_PX
    x1, y1 = 16 * (int(cols.max()) + 1) + CHANGE_PAD_PX, 16 * (int(rows.max()) + 1) + CHANGE_PAD_PX
    return max(x0, 0), max(y0, 0), min(x1, 2 * w), min(y1, 2 * h)


def _classic_checkerboard(image: NDArray[np.uint8], pattern: tuple[int, int]) -> FloatArray | None:
    """OpenCV's classic checkerboard detector with sub-pixel refinement: ``(N, 2)`` or None."""
    ok, corners = cv2.findChessboardCorners(image, pattern,
                                            flags=cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE)
    if not ok:
        return None
    corners = cv2.cornerSubPix(image, corners, (5, 5), (-1, -1),
                               (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-3))
    return np.asarray(corners, np.float64).reshape(-1, 2)


@dataclass
class CameraDetections:
    """All board detections of one camera's recording.

    Attributes:
        name: camera name.
        image_size: ``(width, height)`` pixels.
        n_frames: frames read.
        observations: accepted detections, in frame order.
        rejected: ``(frame, reason)`` for frames where the board was not accepted.
        inverted_frames: frames where markers were found only with the other polarity than the
            board file states.
        marker_ids_seen: every ArUco id seen in any frame (diagnostics for a wrong board file).
        marker_frames: frames where markers of the board's dictionary were seen but no board
            (where a diagnosis of a wrong board file looks first).
    """

    name: str
    image_size: tuple[int, int]
    n_frames: int
    observations: list[BoardObservation]
    rejected: list[tuple[int, str]] = field(default_factory=list)
    inverted_frames: list[int] = field(default_factory=list)
    marker_ids_seen: set[int] = field(default_factory=set)
    marker_frames: list[int] = field(default_factory=list)

    def by_frame(self) -> dict[int, BoardObservation]:
        return {o.frame: o for o in self.observations}


def detect_in_frames(name: str, frames, board: BoardSpec) -> CameraDetections:
    """Detect the board in an iterable of ``(index, gray image)``."""
    detector = BoardDetector(board)
    obs: list[BoardObservation] = []
    rejected: list[tuple[int, str]] = []
    inverted: list[int] = []
    seen: set[int] = set()
    marker_frames: list[int] = []
    size = (0, 0)
    n = 0
    for idx, img in frames:
        n += 1
        size = (img.shape[1], img.shape[0])
        res = detector.detect(img, idx)
        seen.update(int(i) for i in res.marker_ids)
        if res.inverted != board.inverted and res.marker_ids.size:
            inverted.append(idx)
        if res.observation is None:
            rejected.append((idx, res.reason))
            if res.marker_ids.size:
                marker_frames.append(idx)
        else:
            obs.append(res.observation)
    return CameraDetections(name, size, n, obs, rejected, inverted, seen, marker_frames)
