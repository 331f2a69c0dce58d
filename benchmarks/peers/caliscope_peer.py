"""caliscope's stored calibration (``config.toml``) and board (``charuco.toml``), for comparison.

The rig is read with PoseStudio's caliscope importer (``posestudio.calibration.rig_formats``):
one ``[cam_N]`` table per camera with size, K, distortion, world-to-camera R and t (metres).
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

from posestudio.calibration.board import BoardSpec
from posestudio.calibration.rig_formats import import_rig

from . import PeerResult


def board(session: Path) -> BoardSpec:
    """The session's board from caliscope's ``charuco.toml`` (columns map to squares_x; the square
    size is ``square_size_override_cm``; markers are ``aruco_scale`` of a square)."""
    path = Path(session) / "charuco.toml"
    doc = tomllib.loads(path.read_text())
    square = float(doc["square_size_override_cm"]) / 100.0
    return BoardSpec("charuco", int(doc["columns"]), int(doc["rows"]), square, square * float(doc["aruco_scale"]),
                     str(doc["dictionary"]), bool(doc.get("inverted", False)), source=str(path))


def load(config_path: str | Path) -> PeerResult:
    """caliscope's stored calibration as a :class:`PeerResult` (``seconds`` is only the load time:
    caliscope's own calibration ran elsewhere)."""
    t0 = time.perf_counter()
    notes = ["stored result computed by caliscope elsewhere (its intrinsics came from other videos); "
             "wall time is only the time to load the file"]
    try:
        rig = import_rig(Path(config_path), "caliscope")
    except ValueError as exc:
        return PeerResult("caliscope", "stored", None, time.perf_counter() - t0, failure=str(exc), notes=notes)
    return PeerResult("caliscope", "stored", rig, time.perf_counter() - t0, notes=notes)
