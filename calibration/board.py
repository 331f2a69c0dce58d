"""Calibration boards (ChArUco, checkerboard): description files, geometry and rendering.

A board file is TOML::

    [board]
    type = "charuco"          # or "checkerboard"
    squares_x = 7             # squares along the board's x (columns)
    squares_y = 5             # squares along y (rows)
    square_length = 0.08      # metres
    marker_length = 0.06      # metres (charuco only)
    dictionary = "DICT_4X4_50"
    inverted = false          # printed white on black
    legacy = false            # OpenCV < 4.6 layout (matters when squares_y is even)

    # checkerboard: corners_x, corners_y (inner corners), square_length

Board frame: origin at the first square's outer corner, x along the columns, y along the rows,
z = x cross y (into the board, away from a camera that sees its printed face); metres.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from posestudio.core.arrays import FloatArray
from posestudio.core.files import read_toml

from .errors import BoardError

BOARD_TYPES = ("charuco", "checkerboard")


def aruco_dictionary_names() -> list[str]:
    """Names of OpenCV's predefined ArUco/AprilTag dictionaries (``DICT_...``)."""
    return sorted(n for n in dir(cv2.aruco) if n.startswith("DICT_"))


@dataclass(frozen=True)
class BoardSpec:
    """What is printed: a ChArUco board or a checkerboard.

    Attributes:
        type: ``"charuco"`` or ``"checkerboard"``.
        squares_x, squares_y: squares along x (columns) and y (rows).
        square_length: side of one square, metres.
        marker_length: side of one ArUco marker, metres (charuco only).
        dictionary: OpenCV dictionary name, e.g. ``"DICT_4X4_50"`` (charuco only).
        inverted: printed white on black.
        legacy: OpenCV < 4.6 ChArUco layout.
        source: the file it was read from, for messages.
    """

    type: str
    squares_x: int
    squares_y: int
    square_length: float
    marker_length: float = 0.0
    dictionary: str = "DICT_4X4_50"
    inverted: bool = False
    legacy: bool = False
    source: str = "<board>"

    def __post_init__(self) -> None:
        where = self.source
        if self.type not in BOARD_TYPES:
            raise BoardError(f"{where}: board type {self.type!r} is not known; expected one of {BOARD_TYPES}")
        if self.squares_x < 2 or self.squares_y < 2:
            raise BoardError(f"{where}: a board needs at least 2 x 2 squares, got {self.squares_x} x {self.squares_y}")
        if not self.square_length > 0:
            raise BoardError(f"{where}: square_length must be a positive length in metres, got {self.square_length}")
        if self.square_length > 1.0:
            raise BoardError(f"{where}: square_length {self.square_length} looks like millimetres or "
                             "centimetres; give it in metres (e.g. 0.08)")
        if self.type == "charuco":
            if not 0 < self.marker_length < self.square_length:
                raise BoardError(f"{where}: marker_length must be in (0, square_length={self.square_length}) "
                                 f"metres, got {self.marker_length}")
            if self.dictionary not in aruco_dictionary_names():
                close = difflib.get_close_matches(self.dictionary.upper(), aruco_dictionary_names(), n=4, cutoff=0.6)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise BoardError(f"{where}: unknown ArUco dictionary {self.dictionary!r}{hint} "
                                 f"(known: {', '.join(aruco_dictionary_names())})")
            needed = (self.squares_x * self.squares_y) // 2
            size = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary)).bytesList.shape[0]
            if needed > size:
                raise BoardError(f"{where}: a {self.squares_x} x {self.squares_y} ChArUco board needs {needed} "
                                 f"markers but {self.dictionary} has only {size}")

    # ----------------------------------------------------------------- geometry
    @property
    def corners_x(self) -> int:
        """Inner corners along x."""
        return self.squares_x - 1

    @property
    def corners_y(self) -> int:
        """Inner corners along y."""
        return self.squares_y - 1

    @property
    def n_corners(self) -> int:
        return self.corners_x * self.corners_y

    @property
    def size_m(self) -> tuple[float, float]:
        """Printed pattern size ``(width, height)`` in metres."""
        return self.squares_x * self.square_length, self.squares_y * self.square_length

    def corner_points(self) -> FloatArray:
        """Board-frame 3D positions of all inner corners, indexed by corner id.

        Returns:
            ``(n_corners, 3)`` metres, z = 0; id = row * corners_x + column.
        """
        ix, iy = np.meshgrid(np.arange(1, self.squares_x), np.arange(1, self.squares_y))
        pts = np.stack([ix.ravel(), iy.ravel(), np.zeros(ix.size)], axis=1) * self.square_length
        return pts.astype(np.float64)

    def corner_distances(self) -> FloatArray:
        """``(n_corners, n_corners)`` true pairwise distances between corners, metres."""
        p = self.corner_points()
        return np.linalg.norm(p[:, None] - p[None], axis=-1)

    # ----------------------------------------------------------------- OpenCV objects
    def aruco_dictionary(self) -> "cv2.aruco.Dictionary":
        return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))

    def charuco_board(self) -> "cv2.aruco.CharucoBoard":
        """The OpenCV ChArUco board object (charuco only)."""
        if self.type != "charuco":
            raise BoardError(f"{self.source}: not a charuco board")
        board = cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), self.square_length,
                                       self.marker_length, self.aruco_dictionary())
        board.setLegacyPattern(self.legacy)
        return board

    # ----------------------------------------------------------------- rendering
    def render(self, pixels_per_metre: float, margin_px: int = 0) -> NDArray[np.uint8]:
        """Draw the board as printed (polarity included).

        Args:
            pixels_per_metre: resolution of the drawing.
            margin_px: quiet border (paper colour) around the pattern, pixels.
        Returns:
            ``(H, W)`` uint8 image; board point ``(x, y)`` metres lies at pixel
            ``(x * ppm + margin - 0.5, y * ppm + margin - 0.5)`` (pixel centres at integers).
        """
        w_m, h_m = self.size_m
        w_px, h_px = int(round(w_m * pixels_per_metre)), int(round(h_m * pixels_per_metre))
        if self.type == "charuco":
            img = self.charuco_board().generateImage((w_px, h_px), marginSize=0, borderBits=1)
        else:
            yy, xx = np.mgrid[0:h_px, 0:w_px]
            sq = self.square_length * pixels_per_metre
            img = np.where(((xx + 0.5) // sq + (yy + 0.5) // sq) % 2 == 0, 0, 255).astype(np.uint8)
        if margin_px:
            img = cv2.copyMakeBorder(img, margin_px, margin_px, margin_px, margin_px, cv2.BORDER_CONSTANT, value=255)
        if self.inverted:
            img = 255 - img
        return img


def checkerboard(corners_x: int, corners_y: int, square_length: float, source: str = "<board>") -> BoardSpec:
    """A checkerboard with the given inner-corner counts."""
    return BoardSpec("checkerboard", corners_x + 1, corners_y + 1, square_length, source=source)


def load_board(path: str | Path) -> BoardSpec:
    """Read a board TOML file; raises :class:`BoardError` naming the file and field."""
    path = Path(path)
    doc = read_toml(path, BoardError, "board file")
    tab = doc.get("board")
    if not isinstance(tab, dict):
        raise BoardError(f"{path}: no [board] table")
    return board_from_dict(tab, str(path))


def board_from_dict(tab: dict, source: str = "<board>") -> BoardSpec:
    """Build a :class:`BoardSpec` from the ``[board]`` table of a board file."""
    kind = tab.get("type")
    if kind is None:
        raise BoardError(f"{source}: [board] has no 'type' (expected \"charuco\" or \"checkerboard\")")

    def need(key: str, cast: type):
        if key not in tab:
            raise BoardError(f"{source}: [board] type = {kind!r} needs '{key}'")
        try:
            return cast(tab[key])
        except (TypeError, ValueError):
            raise BoardError(f"{source}: [board] {key} = {tab[key]!r} is not a {cast.__name__}") from None

    known = {"type", "squares_x", "squares_y", "square_length", "marker_length", "dictionary",
             "inverted", "legacy", "corners_x", "corners_y"}
    unknown = sorted(set(tab) - known)
    if unknown:
        raise BoardError(f"{source}: [board] has unknown keys {unknown}; known keys: {sorted(known)}")
    if kind == "checkerboard":
        return BoardSpec("checkerboard", need("corners_x", int) + 1, need("corners_y", int) + 1,
                         need("square_length", float), inverted=bool(tab.get("inverted", False)), source=source)
    if kind == "charuco":
        return BoardSpec("charuco", need("squares_x", int), need("squares_y", int), need("square_length", float),
                         need("marker_length", float), str(tab.get("dictionary", "DICT_4X4_50")),
                         bool(tab.get("inverted", False)), bool(tab.get("legacy", False)), source)
    raise BoardError(f"{source}: board type {kind!r} is not known; expected \"charuco\" or \"checkerboard\"")


def board_to_dict(board: BoardSpec) -> dict:
    """The ``[board]`` table for a board file."""
    if board.type == "checkerboard":
        return {"type": "checkerboard", "corners_x": board.corners_x, "corners_y": board.corners_y,
                "square_length": board.square_length, "inverted": board.inverted}
    return {"type": "charuco", "squares_x": board.squares_x, "squares_y": board.squares_y,
            "square_length": board.square_length, "marker_length": board.marker_length,
            "dictionary": board.dictionary, "inverted": board.inverted, "legacy": board.legacy}
