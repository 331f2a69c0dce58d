"""Say what board the camera saw when the board file's board is not found.

The most common calibration failure is a board file that does not match the printed board
(wrong dictionary, polarity, size in squares, legacy layout or marker size). When a camera sees
markers but never the board, :func:`diagnose_board_mismatch` looks at a few frames and writes a
message naming the dictionary and marker ids seen and the board they suggest:

1. scan OpenCV's predefined dictionaries (one per family: the 4X4_50..4X4_1000 dictionaries
   share their first markers) in both polarities; keep the one that finds most markers;
2. for every ChArUco layout ``squares_x x squares_y`` (and legacy or not) whose marker count
   fits the ids seen, fit a homography from the layout's marker centres (in square units) to the
   image (the intersection of each marker's diagonals); the layout whose markers agree best wins;
3. map the markers' image corners through that homography to the board plane to measure the
   marker side in squares (``marker_length / square_length``);
4. confirm with OpenCV's ChArUco detector that the suggested board yields corners (and, for an
   even row count, with the legacy flag flipped: OpenCV < 4.6 and calib.io print the other layout);
5. list the board-file fields the markers contradict (:class:`FieldChange`: layout, dictionary,
   marker length, polarity, legacy), in the file's terms.

:func:`diagnose_board_mismatch` writes the long explanation for one camera (with a suggested
``[board]`` table); :func:`summarise_board_mismatch` writes it in three lines for a whole rig,
ending ``Change in FILE: field = value (now value); ...``.

Lengths in square units are board-plane lengths divided by ``square_length``. The absolute
square size cannot be measured from images without calibrated cameras, so the suggestion keeps
the board file's ``square_length``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from posestudio.core.arrays import FloatArray, IntArray

from .board import BoardSpec

#: Dictionaries sharing their first markers, smallest first; scanned with the largest.
DICT_FAMILIES: dict[str, tuple[str, ...]] = {
    **{f"DICT_{n}X{n}": tuple(f"DICT_{n}X{n}_{k}" for k in (50, 100, 250, 1000)) for n in (4, 5, 6, 7)},
    **{name: (name,) for name in ("DICT_ARUCO_ORIGINAL", "DICT_APRILTAG_16h5", "DICT_APRILTAG_25h9",
                                  "DICT_APRILTAG_36h10", "DICT_APRILTAG_36h11", "DICT_ARUCO_MIP_36h12")},
}
MAX_FRAMES = 10
MIN_INLIERS = 5  # markers that must agree with a layout in one frame (4 always fit a homography)
#: Marker/square ratios closer than this to the board file's are reported as agreeing: on real
#: prints the measured ratio comes out up to ~0.04 low (ink spread, blur, lens distortion).
RATIO_TOLERANCE = 0.05


@dataclass
class MarkerScan:
    """Markers of one dictionary family and polarity found in the sampled frames.

    Attributes:
        family: key of :data:`DICT_FAMILIES`.
        inverted: found in the inverted image (board printed white on black).
        frames: per sampled frame, ``(corners (N, 4, 2) pixels, ids (N,))``.
    """

    family: str
    inverted: bool
    frames: list[tuple[FloatArray, IntArray]]

    @property
    def count(self) -> int:
        return sum(len(ids) for _, ids in self.frames)

    @property
    def ids(self) -> list[int]:
        return sorted({int(i) for _, ids in self.frames for i in ids})


@dataclass
class LayoutGuess:
    """A ChArUco layout and how well the markers seen agree with it.

    Attributes:
        squares_x, squares_y: squares along x (columns) and y (rows).
        legacy: OpenCV < 4.6 layout.
        score: markers agreeing with the layout beyond the 4 any homography fits, summed over frames.
        ratio: measured ``marker_length / square_length`` (nan when not measured).
        corners: ChArUco corners OpenCV's detector found with this board (-1: not tried).
        frames: sampled frames whose markers agree with the layout.
    """

    squares_x: int
    squares_y: int
    legacy: bool
    score: int
    ratio: float = float("nan")
    corners: int = -1
    frames: int = 0


def sample_frames(images: list[NDArray[np.uint8]], n: int = MAX_FRAMES) -> list[NDArray[np.uint8]]:
    """At most ``n`` images spread evenly over ``images``, as ``(H, W)`` uint8 gray."""
    if len(images) > n:
        images = [images[int(i)] for i in np.linspace(0, len(images) - 1, n).round()]
    return [cv2.cvtColor(g, cv2.COLOR_BGR2GRAY) if g.ndim == 3 else g for g in images]


def scan_dictionaries(images: list[NDArray[np.uint8]]) -> list[MarkerScan]:
    """Markers of every dictionary family in both polarities, most markers first."""
    names = [fam[-1] for fam in DICT_FAMILIES.values()]
    families = list(DICT_FAMILIES)
    params = cv2.aruco.DetectorParameters()
    params.detectInvertedMarker = False
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    detector = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, names[0])), params)
    detector.setDictionaries([cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, n)) for n in names])
    scans = {(f, inv): MarkerScan(f, inv, []) for f in families for inv in (False, True)}
    for gray in images:
        for inv in (False, True):
            corners, ids, _, dict_idx = detector.detectMarkersMultiDict(255 - gray if inv else gray)
            ids = np.zeros(0, np.int64) if ids is None else np.asarray(ids, np.int64).ravel()
            which = np.asarray(dict_idx, np.int64).ravel() if len(ids) else np.zeros(0, np.int64)
            quads = np.asarray(corners, np.float64).reshape(-1, 4, 2) if len(ids) else np.zeros((0, 4, 2))
            for k, fam in enumerate(families):
                sel = which == k
                scans[(fam, inv)].frames.append((quads[sel], ids[sel]))
    return sorted(scans.values(), key=lambda s: -s.count)


def _quad_centres(quads: FloatArray) -> FloatArray:
    """``(N, 2)`` intersection of each ``(N, 4, 2)`` quad's diagonals (the projected square centre)."""
    p0, p1, p2, p3 = (quads[:, i] for i in range(4))
    d1, d2 = p2 - p0, p3 - p1
    denom = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    r = p1 - p0
    t = (r[:, 0] * d2[:, 1] - r[:, 1] * d2[:, 0]) / np.where(np.abs(denom) < 1e-12, 1e-12, denom)
    return p0 + t[:, None] * d1


def _layout_centres(sx: int, sy: int, legacy: bool) -> dict[int, FloatArray]:
    """Marker id -> centre ``(x, y)`` on the board, in square units."""
    dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_1000)
    board = cv2.aruco.CharucoBoard((sx, sy), 1.0, 0.5, dictionary)
    board.setLegacyPattern(legacy)
    centres = np.asarray(board.getObjPoints(), np.float64).mean(axis=1)[:, :2]
    return {int(i): c for i, c in zip(np.asarray(board.getIds()).ravel(), centres)}


def _fit_layout(scan: MarkerScan, centres: dict[int, FloatArray]) -> tuple[int, list[tuple[FloatArray, FloatArray]]]:
    """Score a layout: markers agreeing with a homography beyond 4, summed over frames.

    Returns:
        ``(score, fits)`` with ``fits`` a list of ``(H (3, 3) board-squares -> pixels, inlier quads
        (M, 4, 2))`` for the frames that agree.
    """
    score, fits = 0, []
    for quads, ids in scan.frames:
        keep = np.array([int(i) in centres for i in ids], bool)
        if keep.sum() < MIN_INLIERS:
            continue
        quads, ids = quads[keep], ids[keep]
        board_pts = np.array([centres[int(i)] for i in ids], np.float64)
        img_pts = _quad_centres(quads)
        side = np.median(np.linalg.norm(quads - np.roll(quads, 1, axis=1), axis=2))
        H, mask = cv2.findHomography(board_pts, img_pts, cv2.RANSAC, 0.2 * side)
        if H is None:
            continue
        inl = mask.ravel().astype(bool)
        if inl.sum() >= MIN_INLIERS:
            score += int(inl.sum()) - 4
            fits.append((H, quads[inl]))
    return score, fits


def _marker_ratio(fits: list[tuple[FloatArray, FloatArray]]) -> float:
    """Median marker side in square units from the markers' corners mapped to the board plane."""
    sides = []
    for H, quads in fits:
        pts = cv2.perspectiveTransform(quads.reshape(-1, 1, 2), np.linalg.inv(H)).reshape(-1, 4, 2)
        sides.append(np.linalg.norm(pts - np.roll(pts, 1, axis=1), axis=2).ravel())
    return float(np.median(np.concatenate(sides))) if sides else float("nan")


def guess_layouts(scan: MarkerScan, board: BoardSpec | None = None, max_extra: int | None = None) -> list[LayoutGuess]:
    """ChArUco layouts whose marker count fits the ids seen, best first.

    Args:
        scan: the markers seen.
        board: the board file's board, always tried when its layout holds the ids seen.
        max_extra: markers the board may have beyond the highest id seen (default: a fifth, >= 2).
    """
    ids = scan.ids
    if not ids:
        return []
    need = ids[-1] + 1
    extra = max(2, need // 5) if max_extra is None else max_extra
    shapes = {(sx, sy) for sx in range(2, 2 * need + 3) for sy in range(2, 2 * need + 3)
              if need <= (sx * sy) // 2 <= need + extra}
    if board is not None and board.type == "charuco" and (board.squares_x * board.squares_y) // 2 >= need:
        shapes.add((board.squares_x, board.squares_y))
    guesses = []
    for sx, sy in sorted(shapes):
        for legacy in ((False, True) if sy % 2 == 0 else (False,)):
            score, fits = _fit_layout(scan, _layout_centres(sx, sy, legacy))
            guess = LayoutGuess(sx, sy, legacy, score, frames=len(fits))
            if score > 0:
                guess.ratio = _marker_ratio(fits)
            guesses.append(guess)
    same = (board.squares_x, board.squares_y, board.legacy) if board is not None else None
    # Best score; ties: the board file's layout, then fewer markers, then not legacy.
    guesses.sort(key=lambda g: (-g.score, (g.squares_x, g.squares_y, g.legacy) != same,
                                g.squares_x * g.squares_y, g.legacy))
    return guesses


def count_charuco_corners(images: list[NDArray[np.uint8]], board: BoardSpec) -> int:
    """ChArUco corners OpenCV's detector finds for ``board`` in ``images`` (its stated polarity)."""
    detector = cv2.aruco.CharucoDetector(board.charuco_board())
    params = cv2.aruco.DetectorParameters()
    params.detectInvertedMarker = False
    detector.setDetectorParameters(params)
    total = 0
    for gray in images:
        corners, ids, _, _ = detector.detectBoard(255 - gray if board.inverted else gray)
        total += 0 if ids is None else len(ids)
    return total


def _family_dictionary(family: str, need: int) -> str:
    """The smallest dictionary of ``family`` holding ``need`` markers (else the largest)."""
    for name in DICT_FAMILIES[family]:
        if cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name)).bytesList.shape[0] >= need:
            return name
    return DICT_FAMILIES[family][-1]


def _family_of(dictionary: str) -> str | None:
    for fam, names in DICT_FAMILIES.items():
        if dictionary in names or dictionary.upper() in (n.upper() for n in names):
            return fam
    return None


def _id_summary(ids: list[int]) -> str:
    shown = ", ".join(map(str, ids[:20])) + (", ..." if len(ids) > 20 else "")
    return f"{len(ids)} distinct ids from {ids[0]} to {ids[-1]} ({shown})"


def _describe(board: BoardSpec) -> str:
    if board.type != "charuco":
        return f"checkerboard {board.corners_x} x {board.corners_y} inner corners, inverted = {str(board.inverted).lower()}"
    return (f"charuco {board.squares_x} x {board.squares_y}, {board.dictionary}, marker_length / square_length = "
            f"{board.marker_length / board.square_length:.3f}, inverted = {str(board.inverted).lower()}, "
            f"legacy = {str(board.legacy).lower()}")


@dataclass
class FieldChange:
    """One field of the board file that does not match the print.

    Attributes:
        field: the ``[board]`` key, e.g. ``"dictionary"`` (``"squares_x, squares_y"`` for a
            swapped or different layout, ``"marker_length"`` for the marker size).
        now: the board file's value, as TOML; suggested: the value the print fits, as TOML.
        why: what the frames showed, for the long message.
    """

    field: str
    now: str
    suggested: str
    why: str

    def assignment(self) -> str:
        """``field = value (now: value)`` for a one-line summary."""
        return f"{self.field} = {self.suggested} (now {self.now})"


@dataclass
class BoardMismatch:
    """What a few frames say about a board file that finds no board.

    Attributes:
        board: the board file's board; frames: frames examined.
        scans: markers per dictionary family and polarity, most first (empty when no frames).
        dictionary: the dictionary suggested (the file's when it holds the ids seen).
        guesses: ChArUco layouts tried, best first; top: the best one with agreeing markers, or None.
        suggestion: the board the markers fit (None: too few markers to tell the layout).
        other_legacy_corners: corners OpenCV finds with the suggestion's legacy flag flipped
            (-1: not tried, the layouts only differ for an even row count).
        changes: the fields of the board file to change.
    """

    board: BoardSpec
    frames: int
    scans: list[MarkerScan]
    dictionary: str = ""
    guesses: list[LayoutGuess] = field(default_factory=list)
    top: LayoutGuess | None = None
    suggestion: BoardSpec | None = None
    other_legacy_corners: int = -1
    changes: list[FieldChange] = field(default_factory=list)

    @property
    def best(self) -> MarkerScan | None:
        """The dictionary family and polarity with most markers, or None when none was seen."""
        return self.scans[0] if self.scans and self.scans[0].count else None


def analyse_board_mismatch(images: list[NDArray[np.uint8]], board: BoardSpec) -> BoardMismatch:
    """Scan dictionaries and layouts in a few of ``images`` (see the module docstring).

    Args:
        images: gray ``(H, W)`` uint8 (or BGR ``(H, W, 3)``) frames of one or more cameras; at
            most :data:`MAX_FRAMES` of them, spread evenly, are examined (about 0.1 s per frame).
        board: the board file's board.
    """
    frames = sample_frames(images)
    result = BoardMismatch(board, len(frames), scan_dictionaries(frames) if frames else [])
    best = result.best
    if best is None:
        return result
    guesses = guess_layouts(best, board)
    top = guesses[0] if guesses and guesses[0].score > 0 else None
    need = best.ids[-1] + 1
    family_ok = board.type == "charuco" and _family_of(board.dictionary) == best.family
    dictionary = board.dictionary if family_ok and board.aruco_dictionary().bytesList.shape[0] >= need \
        else _family_dictionary(best.family, need if top is None else (top.squares_x * top.squares_y) // 2)
    result.guesses, result.top, result.dictionary = guesses, top, dictionary
    if top is not None:
        file_ratio = board.marker_length / board.square_length if board.type == "charuco" else None
        if not np.isfinite(top.ratio):
            ratio = file_ratio or 0.75
        elif file_ratio is not None and abs(top.ratio - file_ratio) <= RATIO_TOLERANCE:
            ratio = file_ratio
        else:
            ratio = float(np.clip(round(top.ratio, 2), 0.05, 0.95))
        result.suggestion = BoardSpec("charuco", top.squares_x, top.squares_y, board.square_length,
                                      round(ratio * board.square_length, 6), dictionary, best.inverted, top.legacy,
                                      board.source)
        top.corners = count_charuco_corners(frames, result.suggestion)
        if top.squares_y % 2 == 0:
            alt = BoardSpec("charuco", top.squares_x, top.squares_y, result.suggestion.square_length,
                            result.suggestion.marker_length, dictionary, best.inverted, not top.legacy, board.source)
            result.other_legacy_corners = count_charuco_corners(frames, alt)
    result.changes = field_changes(board, best, dictionary, result.suggestion)
    return result


def diagnose_board_mismatch(images: list[NDArray[np.uint8]], board: BoardSpec) -> str:
    """Explain why ``board`` was not found in ``images`` and suggest the board the markers show.

    Args:
        images: gray ``(H, W)`` uint8 (or BGR ``(H, W, 3)``) frames of one camera; at most
            :data:`MAX_FRAMES` of them, spread evenly, are examined (about 0.1 s per frame).
        board: the board file's board (``board.source`` names the file).
    Returns:
        A message for the user, several sentences, naming the file, the dictionary and ids seen,
        what differs from the board file and a suggested ``[board]`` table. For a whole rig in
        a few lines see :func:`summarise_board_mismatch`.
    """
    m = analyse_board_mismatch(images, board)
    src = board.source
    if not m.frames:
        return f"{src}: no frames to examine"
    head = f"{src}: the board was not found in any frame (board file: {_describe(board)})."
    best = m.best
    if best is None:
        return head + _no_markers_tail(board, m.frames) + "."
    ids = best.ids
    polarity = "inverted (white on black)" if best.inverted else "normal (black on white)"
    seen_frames = sum(1 for _, i in best.frames if len(i))
    lines = [head,
             f"Markers seen in {seen_frames} of {m.frames} sampled frames: {best.count} detections of the "
             f"{best.family} dictionary family, printed {polarity}; {_id_summary(ids)}."]
    others = [s for s in m.scans[1:] if s.count and s.family != best.family]
    if others:
        lines.append("Fewer markers of other dictionaries (probably false detections): " + ", ".join(
            f"{s.family} {'inverted' if s.inverted else 'normal'}: {s.count}" for s in others[:3]) + ".")
    top, need = m.top, ids[-1] + 1
    if top is None:
        lines.append(f"Too few markers per frame (need {MIN_INLIERS} together) to tell the board's layout; a ChArUco "
                     f"board with ids 0 to {ids[-1]} has at least {need} markers "
                     f"(squares_x * squares_y / 2, e.g. {_shape_examples(need)}).")
    else:
        runner = next((g for g in m.guesses[1:] if g.score > 0), None)
        evidence = f"{top.score + 4 * top.frames} marker positions agree with it"
        if runner is not None and runner.score == top.score:
            evidence += (f"; {runner.squares_x} x {runner.squares_y}{' legacy' if runner.legacy else ''} fits as "
                         "well (a larger board whose extra markers were never seen): the smallest is suggested")
        elif runner is not None:
            evidence += (f" (next best {runner.squares_x} x {runner.squares_y}"
                         f"{' legacy' if runner.legacy else ''}: {runner.score + 4 * runner.frames})")
        lines.append(f"The markers suggest a ChArUco board of {top.squares_x} x {top.squares_y} squares "
                     f"(squares_x x squares_y), legacy = {str(top.legacy).lower()}: {evidence}; measured "
                     f"marker_length / square_length = {top.ratio:.3f} (about +-0.04); OpenCV finds {top.corners} ChArUco "
                     f"corners in the sampled frames with the suggested board.")
        if m.other_legacy_corners >= 0:
            lines.append(f"With legacy = {str(not top.legacy).lower()} it finds {m.other_legacy_corners} "
                         "corners (the legacy layout, OpenCV < 4.6 and calib.io, differs for an even row count).")
    differences = _differences(board, m.changes)
    lines.append(differences)
    if m.suggestion is not None and m.changes:
        lines.append("Suggested [board] table (square_length kept from the file: measure one printed square "
                     "with a ruler, in metres):\n" + _toml(m.suggestion))
    return "\n".join(lines)


def summarise_board_mismatch(images: list[NDArray[np.uint8]], board: BoardSpec, cameras: str = "") -> str:
    """The diagnosis for a whole rig in a few lines: what was seen, the board it fits, the fields to change.

    Args:
        images: gray or BGR frames, from one or several cameras that did not find the board (at
            most :data:`MAX_FRAMES`, spread evenly, are examined).
        board: the board file's board (``board.source`` names the file).
        cameras: which cameras the frames came from, for the message (e.g. ``"cam3, cam7"``).
    Returns:
        Two or three lines: the markers seen (dictionary family, polarity, ids), the board they
        fit (squares, legacy layout, marker/square ratio, corners OpenCV then finds), and
        ``Change in FILE: field = value (now value); ...`` or why nothing in the file is wrong.
    """
    m = analyse_board_mismatch(images, board)
    src = board.source
    where = f" ({m.frames} frames of {cameras})" if cameras else f" ({m.frames} frames)"
    best = m.best
    if best is None:
        return f"Seen instead{where}: nothing." + _no_markers_tail(board, m.frames) + "."
    polarity = "white on black" if best.inverted else "black on white"
    lines = [f"Seen instead{where}: markers of the {best.family} dictionary family printed {polarity}, "
             f"{_id_summary(best.ids)}."]
    if m.top is not None and m.suggestion is not None:
        top = m.top
        fit = (f"They fit a ChArUco board of {top.squares_x} x {top.squares_y} squares, legacy = "
               f"{str(top.legacy).lower()}, marker_length / square_length about {top.ratio:.2f}: OpenCV finds "
               f"{top.corners} corners with it")
        if m.other_legacy_corners >= 0:
            fit += f" ({m.other_legacy_corners} with legacy = {str(not top.legacy).lower()})"
        lines.append(fit + ".")
    else:
        need = best.ids[-1] + 1
        lines.append(f"Too few markers per frame to tell the layout: ids 0 to {best.ids[-1]} need at least {need} "
                     f"markers (squares_x * squares_y / 2, e.g. {_shape_examples(need)}).")
    if m.changes:
        lines.append(f"Change in {src}: " + "; ".join(c.assignment() for c in m.changes) + ".")
    else:
        lines.append(f"The markers agree with {src}: the board was probably too small, blurred, partly hidden or "
                     "seen too obliquely; film it closer and fill more of the image.")
    return "\n".join(lines)


def _no_markers_tail(board: BoardSpec, n_frames: int) -> str:
    tail = (" No ArUco/AprilTag markers of any OpenCV dictionary were seen either, in either polarity, in "
            f"{n_frames} sampled frames: check that the board is in view, in focus and well lit")
    if board.type == "checkerboard":
        tail += (f", and that corners_x = {board.corners_x} and corners_y = {board.corners_y} count the "
                 "inner corners (squares - 1) of the printed checkerboard")
    return tail


def _shape_examples(need: int) -> str:
    shapes = [f"{sx} x {sy}" for sx in range(3, 2 * need) for sy in range(sx, 2 * need)
              if (sx * sy) // 2 == need][:3]
    return ", ".join(shapes) if shapes else f"{need * 2} squares"


def _toml_bool(value: bool) -> str:
    return str(bool(value)).lower()


def field_changes(board: BoardSpec, scan: MarkerScan, dictionary: str,
                  suggestion: BoardSpec | None) -> list[FieldChange]:
    """The fields of ``board``'s file that the markers seen contradict, in file order.

    Args:
        board: the board file's board; scan: the markers seen (best dictionary and polarity);
        dictionary: the dictionary suggested; suggestion: the board the markers fit, or None.
    """
    out: list[FieldChange] = []
    if board.type != "charuco":
        out.append(FieldChange("type", '"checkerboard"', '"charuco"', "the printed board carries markers"))
        if suggestion is not None:  # a ChArUco table needs all its fields: every one is new
            s = suggestion
            out += [FieldChange("squares_x, squares_y", "unset", f"{s.squares_x}, {s.squares_y}", "the markers' layout"),
                    FieldChange("marker_length", "unset", f"{s.marker_length:g}", "measured marker/square ratio"),
                    FieldChange("dictionary", "unset", f'"{s.dictionary}"', f"the markers are {scan.family}")]
            if board.inverted != s.inverted:
                out.append(FieldChange("inverted", _toml_bool(board.inverted), _toml_bool(s.inverted), "the print"))
            out.append(FieldChange("legacy", "unset", _toml_bool(s.legacy), "the markers' layout"))
        return out
    if suggestion is not None and (board.squares_x, board.squares_y) != (suggestion.squares_x, suggestion.squares_y):
        swapped = (board.squares_x, board.squares_y) == (suggestion.squares_y, suggestion.squares_x)
        out.append(FieldChange("squares_x, squares_y", f"{board.squares_x}, {board.squares_y}",
                               f"{suggestion.squares_x}, {suggestion.squares_y}",
                               "rows and columns swapped" if swapped else "the markers fit another layout"))
    if _family_of(board.dictionary) != scan.family or board.dictionary != dictionary:
        out.append(FieldChange("dictionary", f'"{board.dictionary}"', f'"{dictionary}"',
                               f"the markers are {scan.family}"))
    if suggestion is not None:
        file_ratio = board.marker_length / board.square_length
        got = suggestion.marker_length / suggestion.square_length
        if abs(file_ratio - got) > 1e-9:
            out.append(FieldChange("marker_length", f"{board.marker_length:g}", f"{suggestion.marker_length:g}",
                                   f"marker_length / square_length = {file_ratio:.3f} but the markers measure about "
                                   f"{got:.2f} (square_length = {suggestion.square_length:g} m)"))
    if board.inverted != scan.inverted:
        out.append(FieldChange("inverted", _toml_bool(board.inverted), _toml_bool(scan.inverted),
                               f"the print is {'white on black' if scan.inverted else 'black on white'}; detection "
                               "tries both, so this alone is harmless"))
    if suggestion is not None and board.legacy != suggestion.legacy:
        out.append(FieldChange("legacy", _toml_bool(board.legacy), _toml_bool(suggestion.legacy),
                               "the markers sit where the " + ("legacy (OpenCV < 4.6, calib.io)" if suggestion.legacy
                                                               else "current (OpenCV >= 4.6)") + " layout puts them"))
    return out


def _differences(board: BoardSpec, changes: list[FieldChange]) -> str:
    """One sentence listing what the board file gets wrong."""
    if not changes:
        return (f"The markers agree with {board.source}; the board was probably too small, blurred, partly hidden "
                "or seen too obliquely: film it closer and fill more of the image.")
    text = []
    for c in changes:
        if c.field == "squares_x, squares_y":
            text.append(f"squares_x x squares_y = {c.now.replace(', ', ' x ')} but the markers fit "
                        f"{c.suggested.replace(', ', ' x ')}")
        elif c.field == "dictionary":
            text.append(f"dictionary = {c.now} but {c.why} (use {c.suggested})")
        elif c.field == "type":
            text.append(f"type = {c.now} but {c.why} (type = {c.suggested})")
        elif c.field == "marker_length":
            text.append(f"{c.why.split(' (')[0]} (marker_length = {c.suggested} m for square_length = "
                        f"{board.square_length:g} m)")
        elif c.field == "inverted":
            text.append(f"inverted = {c.now} but {c.why.split(';')[0]} (inverted = {c.suggested};{c.why.split(';')[1]})")
        else:
            text.append(f"{c.field} = {c.now} but the markers fit {c.field} = {c.suggested}")
    return f"Differences from {board.source}: " + "; ".join(text) + "."


def _toml(board: BoardSpec) -> str:
    return "\n".join([
        "[board]", 'type = "charuco"', f"squares_x = {board.squares_x}", f"squares_y = {board.squares_y}",
        f"square_length = {board.square_length:g}", f"marker_length = {board.marker_length:g}",
        f'dictionary = "{board.dictionary}"', f"inverted = {str(board.inverted).lower()}",
        f"legacy = {str(board.legacy).lower()}"])
