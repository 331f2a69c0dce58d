"""Following a ChArUco board from one video frame to the next without searching for markers.

ArUco's marker search costs about 3 ms in a window around the board, most of it spent on candidate
quadrilaterals: thresholding, contours and decoding every dark square. When the board was found in
the previous frame, the frame's motion of the board (a homography: the board is a plane) can instead
be measured with pyramidal Lucas-Kanade optical flow at a few of its corners, every corner and marker
carried by it, and each marker *verified* by sampling its cells where it now is: a check of a known
pattern at a known place, not a search. The corners are then refined exactly as OpenCV's ChArUco
detector refines them (``cv2.cornerSubPix`` with its window-size rule and stopping criteria) and kept
on OpenCV's rule that both markers touching a corner were seen. Markers not seen in the previous
frame are looked for where the board's homography puts them, so corners coming into view are found.

Anything doubtful makes :meth:`CharucoTracker.track` return None (``failure`` says why) and the caller
searches with ArUco: a marker seen in the previous frame that now lies inside the image but does not
verify (an occlusion, motion blur, a marker too small to sample), flow lost, a corner that refinement
moves away from where the motion carried it.

Coordinates: image pixels with pixel centres at integers (OpenCV's), board metres on the printed
board's plane (``BoardSpec.corner_points``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from posestudio.core.arrays import FloatArray, IntArray

from .board import BoardSpec

# Optical flow at up to 9 corners (the board's extremes and centre), 15 x 15 windows over 3 pyramid
# levels from a constant-velocity guess: follows a guess wrong by up to about 30 px. The image is
# cropped to the followed corners and FLOW_PAD_PX around them (flow's cost is its images' area).
FLOW_WINDOW = (15, 15)
FLOW_LEVELS = 2
FLOW_PAD_PX = 48
FLOW_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 0.03)
# A followed corner further than this from the homography fitted to all of them is dropped, pixels.
FLOW_OUTLIER_PX = 2.0
# A marker is checked only when its cells are at least MIN_CELL_PX pixels on their shortest side
# (fewer cannot tell a bit from its blurred neighbours). It is verified when its white and black
# cells differ by MIN_CONTRAST grey levels on average and, of its cells on the wrong side of the
# midway grey level, at most MAX_WRONG_BITS are inner (ArUco corrects about one bit error in a 4 x 4
# marker) and at most MAX_WRONG_BORDER_RATE of the border (ArUco's maxErroneousBitsInBorderRate).
MIN_CELL_PX = 1.5
MIN_CONTRAST = 20.0
MAX_WRONG_BITS = 1
MAX_WRONG_BORDER_RATE = 0.35
# Corner refinement, the same in a search (``detect.py``) and here. OpenCV's ChArUco rule: window
# half-size from the distance to the nearest corner of a marker touching the corner, minus 2, within
# [1, 10]; corners 2 px or more inside the image. That rule gives a corner nearer than
# MIN_MARKER_CORNER_PX to a marker's corner a 3 x 3 window, too small to refine anything: the corner
# stays about where refinement started, an interpolation from the markers' corners (rendered 16-camera
# ring: 16 % of the corners, median error 0.22 px against 0.06-0.09 px for the others). From 3 px to
# MIN_MARKER_CORNER_PX the window is widened to half-size 2 (those corners' median error 0.30 -> 0.13
# px). Nearer than 3 px nothing refines well: a search keeps OpenCV's result, and such a board is not
# followed but searched (following a corner that refinement cannot move would carry one frame's error
# into the next). cornerSubPix stops after SUBPIX_ITERATIONS or at a step under SUBPIX_EPS_PX, not ArUco's
# 30 and 0.1 px: at 0.1 px the result still depends on where refinement started by a good part of
# that. Together, on three rendered 16-camera takes, every error of the calibrated rig 25-35 % lower.
SUBPIX_MAX_HALF_WINDOW = 10
SUBPIX_BORDER_PX = 2
MIN_MARKER_CORNER_PX = 4.0
SUBPIX_ITERATIONS = 100
SUBPIX_EPS_PX = 0.01
SUBPIX_CRITERIA = (cv2.TERM_CRITERIA_MAX_ITER | cv2.TERM_CRITERIA_EPS, SUBPIX_ITERATIONS, SUBPIX_EPS_PX)
# How far refinement may move a corner from where the motion carried it, pixels, before the frame is
# left to ArUco (the motion is accurate to a few tenths of a pixel).
MAX_REFINE_SHIFT_PX = 1.5
# Marker corners must lie this far inside the image (ArUco's minDistanceToBorder).
MARKER_BORDER_PX = 3
UNCHECKED = "a marker not seen before is in view but too small to check"
TOO_SMALL = "the board is too small to follow (corners within 3 px of the markers' corners)"


@dataclass(frozen=True)
class CharucoGeometry:
    """What the tracker needs to know of a ChArUco board, in board metres.

    Attributes:
        corner_xy: ``(K, 2)`` inner corners, indexed by corner id.
        marker_xy: ``(M, 4, 2)`` marker corners (top-left, top-right, bottom-right, bottom-left of
            the marker image), in the order of ``marker_ids``.
        marker_ids: ``(M,)`` dictionary ids of the board's markers.
        corner_markers: ``(K, 2)`` indices into the markers of the two markers touching each corner.
        corner_marker_corner: ``(K, 2)`` which corner (0-3) of each of those markers touches it.
        cell_white: ``(M, C)`` whether each of a marker's C cells (border included, row by row) is
            white on a board of ordinary polarity (black markers on white).
        cells_per_side: sqrt(C).
        border: ``(C,)`` whether each cell is in the marker's black border.
        sample_weights: ``(C * S, 4)`` bilinear weights of a marker's four corners for S sample
            points in each of its cells, cell by cell (a marker's image is a quadrilateral).
        samples_per_cell: S.
        slot_of_id: ``(max id + 1,)`` index in ``marker_ids`` of each dictionary id, -1 if not on the board.
    """

    corner_xy: FloatArray
    marker_xy: FloatArray
    marker_ids: IntArray
    corner_markers: IntArray
    corner_marker_corner: IntArray
    cell_white: NDArray[np.bool_]
    cells_per_side: int
    border: NDArray[np.bool_]
    sample_weights: FloatArray
    samples_per_cell: int
    slot_of_id: IntArray

    @classmethod
    def of(cls, board: BoardSpec) -> "CharucoGeometry":
        cv_board = board.charuco_board()
        corner_xy = board.corner_points()[:, :2]
        marker_xy = np.asarray(cv_board.getObjPoints(), np.float64)[:, :, :2]
        marker_ids = np.asarray(cv_board.getIds(), np.int64).ravel()
        centres = marker_xy.mean(axis=1)
        # The two markers touching an inner corner are the two whose centres are nearest to it.
        dist = np.linalg.norm(corner_xy[:, None] - centres[None], axis=-1)
        corner_markers = np.argsort(dist, axis=1, kind="stable")[:, :2]
        to_corners = np.linalg.norm(marker_xy[corner_markers] - corner_xy[:, None, None], axis=-1)
        corner_marker_corner = np.argmin(to_corners, axis=-1)
        dictionary = cv_board.getDictionary()
        cells = dictionary.markerSize + 2
        images = np.stack([cv2.aruco.generateImageMarker(dictionary, int(i), cells, borderBits=1)
                           for i in marker_ids])
        white = images.reshape(len(marker_ids), -1) > 127
        # Each cell's centre and four points a quarter cell from it diagonally.
        offsets = np.array([[0.0, 0.0], [-0.25, -0.25], [0.25, -0.25], [0.25, 0.25], [-0.25, 0.25]])
        row, col = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centre_uv = (np.stack([col, row], axis=-1).reshape(-1, 1, 2) + 0.5) / cells
        uv = (centre_uv + offsets[None] / cells).reshape(-1, 2)
        u, v = uv[:, 0], uv[:, 1]
        weights = np.stack([(1 - u) * (1 - v), u * (1 - v), u * v, (1 - u) * v], axis=1)
        border = (row == 0) | (row == cells - 1) | (col == 0) | (col == cells - 1)
        slot_of_id = np.full(int(marker_ids.max()) + 1, -1)
        slot_of_id[marker_ids] = np.arange(len(marker_ids))
        return cls(corner_xy, marker_xy, marker_ids, corner_markers, corner_marker_corner, white,
                   cells, border.ravel(), weights, len(offsets), slot_of_id)

    def marker_corner_distance(self, ids: IntArray, pixels: FloatArray, marker_ids: IntArray,
                               marker_px: FloatArray) -> FloatArray:
        """Distance, pixels, from each corner ``ids (N,)`` at ``pixels (N, 2)`` to the nearest
        corner of the markers touching it that were seen (``marker_ids (V,)`` at
        ``marker_px (V, 4, 2)``): ``(N,)``, infinite for a corner none of whose markers was seen."""
        where = np.full(len(self.marker_ids), -1)
        slot = self.marker_slot(marker_ids)
        where[slot[slot >= 0]] = np.nonzero(slot >= 0)[0]
        touching = where[self.corner_markers[ids]]  # (N, 2) rows of marker_px, -1 when not seen
        near = marker_px[np.maximum(touching, 0), self.corner_marker_corner[ids]]  # (N, 2, 2)
        return np.where(touching >= 0, np.linalg.norm(near - pixels[:, None], axis=-1), np.inf).min(axis=1)

    def refinement_windows(self, ids: IntArray, pixels: FloatArray, marker_ids: IntArray,
                           marker_px: FloatArray) -> IntArray:
        """Half-size, pixels, of the ``cornerSubPix`` window of each corner ``ids (N,)`` at
        ``pixels (N, 2)`` given the markers seen (:func:`refinement_half_windows`)."""
        return refinement_half_windows(self.marker_corner_distance(ids, pixels, marker_ids, marker_px))

    def marker_slot(self, ids: IntArray) -> IntArray:
        """Index in ``marker_ids`` of each dictionary id in ``ids (V,)``; -1 for ids not on the board."""
        ids = np.asarray(ids, np.int64)
        out = np.full(len(ids), -1)
        on_board = (ids >= 0) & (ids < len(self.slot_of_id))
        out[on_board] = self.slot_of_id[ids[on_board]]
        return out


@dataclass
class TrackedBoard:
    """The board in one frame, as the tracker follows it.

    Attributes:
        ids: ``(N,)`` corner ids.
        pixels: ``(N, 2)`` corner positions, pixels.
        marker_ids: ``(V,)`` dictionary ids of the markers seen.
        marker_px: ``(V, 4, 2)`` their corners, pixels (in the order of ``CharucoGeometry.marker_xy``).
    """

    ids: IntArray
    pixels: FloatArray
    marker_ids: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    marker_px: FloatArray = field(default_factory=lambda: np.zeros((0, 4, 2)))


class CharucoTracker:
    """Follows one ChArUco board through consecutive frames of one camera (see the module)."""

    def __init__(self, board: BoardSpec) -> None:
        self.geometry = CharucoGeometry.of(board)
        #: Why the last :meth:`track` returned None ('' after a success).
        self.failure = ""
        #: The homography ``(3, 3)`` the optical flow measured from the previous frame to the last
        #: one :meth:`track` was given, or None when it could not (also set when tracking failed
        #: afterwards: where to look for the board).
        self.motion: FloatArray | None = None

    def track(self, previous_gray: NDArray[np.uint8], gray: NDArray[np.uint8], previous: TrackedBoard,
              inverted: bool, earlier: TrackedBoard | None = None) -> TrackedBoard | None:
        """The board in ``gray`` given where it was in ``previous_gray``, or None when unsure.

        Args:
            previous_gray, gray: ``(H, W)`` uint8 consecutive frames.
            previous: the corners and markers found in the previous frame (by ArUco or by tracking).
            inverted: whether the board appears white-on-black (markers inverted).
            earlier: the board's corners in the frame before ``previous``, if found there: the flow
                starts from a constant-velocity guess.
        """
        geo = self.geometry
        self.motion = coarse = self._frame_motion(previous_gray, gray, previous, earlier)
        if coarse is None:
            return self._fail("optical flow lost the board")
        if np.any(geo.refinement_windows(previous.ids, previous.pixels, previous.marker_ids, previous.marker_px) < 2):
            return self._fail(TOO_SMALL)  # (checked again below, where the board now is)
        h, w = gray.shape
        lo, hi = np.array([SUBPIX_BORDER_PX, SUBPIX_BORDER_PX]), np.array([w - SUBPIX_BORDER_PX, h - SUBPIX_BORDER_PX])
        slot = geo.marker_slot(previous.marker_ids)
        known = slot >= 0
        seen = np.zeros(len(geo.marker_ids), bool)
        seen[slot[known]] = True

        # 1. The previous frame's corners refined where the flow's motion carries them; the motion
        # refitted to the refined corners (the flow follows a few corners only roughly).
        start = apply_homography(coarse, previous.pixels)
        keep = np.all((start >= lo) & (start < hi), axis=1)
        if keep.sum() < 6:
            return self._fail("fewer than 6 corners")
        ids, start = previous.ids[keep], start[keep]
        # (Only the markers seen before: the corners seen before touch only those.)
        marker_px = self._markers(coarse, previous, slot, seen, None, None)
        half = geo.refinement_windows(ids, start, geo.marker_ids[seen], marker_px[seen])
        if np.any(half < 2):
            return self._fail(TOO_SMALL)
        refined = refine_corners(gray, start, half)
        source = previous.pixels[keep]
        motion = fit_homography(source, refined)
        if np.any(np.linalg.norm(apply_homography(motion, source) - refined, axis=1) > MAX_REFINE_SHIFT_PX):
            return self._fail("refinement moved a corner away from where the motion carried it")

        # 2. Markers carried by the refined motion (those not seen before: by the board's
        # homography), each verified where it now is.
        marker_px = self._markers(motion, previous, slot, seen, geo.corner_xy[ids], refined)
        inside = np.all((marker_px >= MARKER_BORDER_PX)
                        & (marker_px <= [w - 1 - MARKER_BORDER_PX, h - 1 - MARKER_BORDER_PX]), axis=(1, 2))
        sides = np.linalg.norm(marker_px - np.roll(marker_px, 1, axis=1), axis=-1)  # (M, 4)
        usable = inside & (sides.min(axis=1) / geo.cells_per_side >= MIN_CELL_PX)
        verified = np.zeros(len(geo.marker_ids), bool)
        if usable.any():
            verified[usable] = self._verify(gray, marker_px[usable], np.nonzero(usable)[0], inverted)
        if np.any(seen & usable & ~verified):
            return self._fail("a marker seen in the previous frame is not verified")
        # A marker seen before but now too small to check is taken to be where the motion (verified
        # by the other markers) carries it; its corners must still refine where the motion puts them.
        present = verified | (seen & inside & ~usable)
        if not verified.any():
            return self._fail("no marker could be verified")
        if np.any(inside & ~usable & ~seen):
            # A search may find it (ArUco samples a marker's cells after undoing its perspective).
            return self._fail(UNCHECKED)

        # 3. Corners kept on OpenCV's rule (both markers touching them seen): those of the previous
        # frame as refined above; new ones started where their two markers' homographies put them
        # (as OpenCV does) and refined. Every corner's refinement window is wide enough for its
        # result not to depend on where it started (``MIN_MARKER_CORNER_PX``), so no frame's error is
        # carried into the next.
        keep = present[geo.corner_markers[ids]].all(axis=1)
        ids, refined = ids[keep], refined[keep]
        had = np.zeros(len(geo.corner_xy), bool)
        had[previous.ids] = True
        fresh = np.nonzero(present[geo.corner_markers].all(axis=1) & ~had)[0]
        if fresh.size:
            pair = geo.corner_markers[fresh].ravel()  # (2F,): the two markers of each new corner
            hom = _quad_homographies(geo.marker_xy[pair], marker_px[pair])
            xy = np.repeat(geo.corner_xy[fresh], 2, axis=0)[:, None]
            fresh_start = apply_homography(hom, xy).reshape(-1, 2, 2).mean(axis=1)
            fresh_in = np.all((fresh_start >= lo) & (fresh_start < hi), axis=1)
            fresh, fresh_start = fresh[fresh_in], fresh_start[fresh_in]
            fresh_half = geo.refinement_windows(fresh, fresh_start, geo.marker_ids[present], marker_px[present])
            if np.any(fresh_half < 2):
                return self._fail(TOO_SMALL)
            fresh_refined = refine_corners(gray, fresh_start, fresh_half)
            # A new corner that refinement moves far from where its markers put it is left out.
            near = np.linalg.norm(fresh_refined - fresh_start, axis=1) <= MAX_REFINE_SHIFT_PX
            order = np.argsort(np.concatenate([ids, fresh[near]]))
            ids = np.concatenate([ids, fresh[near]])[order]
            refined = np.concatenate([refined, fresh_refined[near]])[order]
        if len(ids) < 6:
            return self._fail("fewer than 6 corners")
        self.failure = ""
        return TrackedBoard(ids.astype(np.int64), refined, geo.marker_ids[present], marker_px[present])

    def _markers(self, motion: FloatArray, previous: TrackedBoard, slot: IntArray, seen: NDArray[np.bool_],
                 corner_xy: FloatArray | None, corner_px: FloatArray | None) -> FloatArray:
        """Every marker's corners ``(M, 4, 2)``, pixels: those seen in the previous frame carried by
        ``motion (3, 3)``, the others where the board's homography from ``corner_xy (N, 2)`` (board
        metres) at ``corner_px (N, 2)`` and the carried markers puts them (left undefined without
        ``corner_xy``)."""
        geo = self.geometry
        marker_px = np.empty((len(geo.marker_ids), 4, 2))
        known = slot >= 0
        marker_px[slot[known]] = apply_homography(motion, previous.marker_px[known])
        if corner_xy is not None and not seen.all():
            board = fit_homography(np.concatenate([corner_xy, geo.marker_xy[seen].reshape(-1, 2)]),
                                    np.concatenate([corner_px, marker_px[seen].reshape(-1, 2)]))
            marker_px[~seen] = apply_homography(board, geo.marker_xy[~seen])
        return marker_px

    def _fail(self, why: str) -> None:
        self.failure = why

    def _frame_motion(self, previous_gray: NDArray[np.uint8], gray: NDArray[np.uint8], previous: TrackedBoard,
                      earlier: TrackedBoard | None) -> FloatArray | None:
        """The homography ``(3, 3)`` carrying the board's image in ``previous_gray`` to its image in
        ``gray``, from the optical flow of up to 9 of its corners; None when fewer than 4 agree.

        The flow runs on both images halved (``halve``): a pyramid level finer than the motion
        needs (the corners are refined at full resolution next), at a quarter of the cost."""
        pixels = previous.pixels
        x, y = pixels[:, 0], pixels[:, 1]
        # The board's extremes along x, y and both diagonals, and the corner nearest its centre.
        along = np.stack([x, y, x + y, x - y])  # (4, N)
        centre = np.argmin(np.abs(pixels - pixels.mean(axis=0)).sum(axis=1))
        pick = np.array(sorted({*along.argmin(axis=1).tolist(), *along.argmax(axis=1).tolist(), int(centre)}))
        p0 = pixels[pick]
        guess = p0 + _velocity(previous.ids[pick], p0, earlier)
        h, w = gray.shape
        lo = np.minimum(p0.min(axis=0), guess.min(axis=0)) - FLOW_PAD_PX
        hi = np.maximum(p0.max(axis=0), guess.max(axis=0)) + FLOW_PAD_PX
        x0, y0 = np.maximum(np.floor(lo).astype(int) // 2 * 2, 0)  # even: halving keeps the pixel grid
        x1, y1 = np.minimum(np.ceil(hi).astype(int), [w, h])
        if x1 - x0 < 32 or y1 - y0 < 32:
            return None
        offset = np.array([x0 + 0.5, y0 + 0.5])  # full-resolution x = 2 * halved x + offset
        p1, status, _ = cv2.calcOpticalFlowPyrLK(
            halve(previous_gray[y0:y1, x0:x1]), halve(gray[y0:y1, x0:x1]),
            ((p0 - offset) / 2).astype(np.float32).reshape(-1, 1, 2),
            ((guess - offset) / 2).astype(np.float32).reshape(-1, 1, 2), winSize=FLOW_WINDOW,
            maxLevel=FLOW_LEVELS - 1, criteria=FLOW_CRITERIA, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
        good = status.ravel() == 1
        p1 = 2 * p1.reshape(-1, 2).astype(np.float64) + offset
        for _ in range(2):
            if good.sum() < 4:
                return None
            hom = fit_homography(p0[good], p1[good])
            residual = np.linalg.norm(apply_homography(hom, p0) - p1, axis=1)
            if np.all(residual[good] <= FLOW_OUTLIER_PX):
                return hom
            good &= residual <= FLOW_OUTLIER_PX
        return None

    def _verify(self, gray: NDArray[np.uint8], marker_px: FloatArray, which: IntArray,
                inverted: bool) -> NDArray[np.bool_]:
        """Whether each marker ``which (V,)`` shows its cells where ``marker_px (V, 4, 2)`` puts it."""
        geo = self.geometry
        pts = (geo.sample_weights @ marker_px).astype(np.float32).reshape(1, -1, 2)  # (V, C * S, 2)
        values = cv2.remap(gray, pts[..., 0], pts[..., 1], cv2.INTER_LINEAR)
        cells = values.reshape(len(which), -1, geo.samples_per_cell).mean(axis=-1)
        white = geo.cell_white[which] ^ inverted
        n_white = white.sum(axis=1)
        sum_white = (cells * white).sum(axis=1)
        mean_white = sum_white / np.maximum(n_white, 1)
        mean_black = (cells.sum(axis=1) - sum_white) / np.maximum(white.shape[1] - n_white, 1)
        wrong = (cells > 0.5 * (mean_white + mean_black)[:, None]) != white
        wrong_border = wrong[:, geo.border].sum(axis=1)
        wrong_bits = wrong.sum(axis=1) - wrong_border
        return ((wrong_bits <= MAX_WRONG_BITS) & (wrong_border <= MAX_WRONG_BORDER_RATE * geo.border.sum())
                & (mean_white - mean_black >= MIN_CONTRAST) & (n_white > 0))


def _velocity(ids: IntArray, pixels: FloatArray, earlier: TrackedBoard | None) -> FloatArray:
    """Each corner's motion ``(N, 2)`` over the last frame, pixels: from ``earlier`` where it has the
    corner, the mean of the others' elsewhere, zero without ``earlier``."""
    out = np.zeros_like(pixels)
    if earlier is None:
        return out
    where = np.full(int(max(ids.max(), earlier.ids.max())) + 1, -1)
    where[earlier.ids] = np.arange(len(earlier.ids))
    at = where[ids]
    has = at >= 0
    if has.any():
        out[has] = pixels[has] - earlier.pixels[at[has]]
        out[~has] = out[has].mean(axis=0)
    return out


def halve(gray: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``gray (H, W)`` halved in each direction, each pixel the mean of 2 x 2: ``(H // 2, W // 2)``
    (halved pixel ``(i, j)`` is centred on full-resolution ``(2i + 0.5, 2j + 0.5)``)."""
    h, w = gray.shape
    return cv2.resize(gray[:h - h % 2, :w - w % 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def refinement_half_windows(distance: FloatArray, opencv: bool = False) -> IntArray:
    """Half-size, pixels, of each corner's ``cornerSubPix`` window from its ``distance (N,)`` to the
    nearest marker corner (:meth:`CharucoGeometry.marker_corner_distance`): OpenCV's ChArUco rule,
    widened near the markers (see ``MIN_MARKER_CORNER_PX``) unless ``opencv``. ``(N,)``; a corner
    none of whose markers was seen gets the largest."""
    half = np.clip(np.floor(np.minimum(distance, 1e6) - 2).astype(int), 1, SUBPIX_MAX_HALF_WINDOW)
    if opencv:
        return half
    return np.where((distance >= MIN_MARKER_CORNER_PX - 1) & (distance < MIN_MARKER_CORNER_PX), 2, half)


def refine_corners(gray: NDArray[np.uint8], start: FloatArray, half: IntArray) -> FloatArray:
    """Corners refined from ``start (N, 2)`` with windows of half-size ``half (N,)`` pixels
    (:func:`refinement_half_windows`): ``(N, 2)`` pixels."""
    refined = start.astype(np.float32)
    for size in np.unique(half):
        sel = half == size
        refined[sel] = cv2.cornerSubPix(gray, np.ascontiguousarray(refined[sel]).reshape(-1, 1, 2),
                                        (int(size), int(size)), (-1, -1), SUBPIX_CRITERIA).reshape(-1, 2)
    return refined.astype(np.float64)


def fit_homography(src: FloatArray, dst: FloatArray) -> FloatArray:
    """The least-squares homography ``(3, 3)`` carrying ``src (N, 2)`` onto ``dst (N, 2)``, N >= 4
    (the direct linear transform on normalised coordinates)."""
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_scale = np.sqrt(2) / max(float(np.sqrt(((src - src_mean) ** 2).sum(axis=1)).mean()), 1e-12)
    dst_scale = np.sqrt(2) / max(float(np.sqrt(((dst - dst_mean) ** 2).sum(axis=1)).mean()), 1e-12)
    x = (src - src_mean) * src_scale
    u = (dst - dst_mean) * dst_scale
    n = len(x)
    a = np.zeros((2 * n, 9))
    a[:n, 0:2], a[:n, 2] = x, 1
    a[n:, 3:5], a[n:, 5] = x, 1
    a[:n, 6:8], a[:n, 8] = -u[:, :1] * x, -u[:, 0]
    a[n:, 6:8], a[n:, 8] = -u[:, 1:] * x, -u[:, 1]
    # The null vector of A: the eigenvector of A^T A with the smallest eigenvalue.
    h = np.linalg.eigh(a.T @ a)[1][:, 0].reshape(3, 3)
    to_src = np.array([[src_scale, 0, -src_scale * src_mean[0]], [0, src_scale, -src_scale * src_mean[1]], [0, 0, 1]])
    from_dst = np.array([[1 / dst_scale, 0, dst_mean[0]], [0, 1 / dst_scale, dst_mean[1]], [0, 0, 1]])
    return from_dst @ h @ to_src


def _quad_homographies(src: FloatArray, dst: FloatArray) -> FloatArray:
    """The homographies ``(Q, 3, 3)`` carrying each quadrilateral ``src (Q, 4, 2)`` onto ``dst (Q, 4, 2)``
    (``cv2.getPerspectiveTransform``, for many quadrilaterals at once)."""
    q = src.shape[0]
    x, y = src[..., 0], src[..., 1]
    u, v = dst[..., 0], dst[..., 1]
    one, zero = np.ones_like(x), np.zeros_like(x)
    rows_u = np.stack([x, y, one, zero, zero, zero, -u * x, -u * y], axis=-1)
    rows_v = np.stack([zero, zero, zero, x, y, one, -v * x, -v * y], axis=-1)
    a = np.concatenate([rows_u, rows_v], axis=1)  # (Q, 8, 8)
    b = np.concatenate([u, v], axis=1)[..., None]
    h = np.linalg.solve(a, b)[..., 0]
    return np.concatenate([h, np.ones((q, 1))], axis=1).reshape(q, 3, 3)


def apply_homography(hom: FloatArray, xy: FloatArray) -> FloatArray:
    """Points through homographies: one ``hom (3, 3)`` and ``xy (..., 2)``, or one per row,
    ``hom (M, 3, 3)`` and ``xy (M, P, 2)``. Returns the points' images, shaped as ``xy``."""
    ph = xy @ np.swapaxes(hom[..., :, :2], -1, -2) + hom[..., None, :, 2]
    return ph[..., :2] / ph[..., 2:]
