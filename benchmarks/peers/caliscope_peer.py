"""caliscope's stored calibration (``config.toml``) as a PoseStudio rig, for comparison.

caliscope writes one ``[cam_N]`` table per camera with ``size = [width, height]`` (pixels),
``matrix`` (3 x 3 K, pixels), ``distortions`` (OpenCV order, k1 k2 p1 p2 k3), ``rotation``
(3 x 3 world-to-camera R) and ``translation`` (world-to-camera t, metres). Camera ``cam_N`` is
named ``cam_N`` here, which is also the stem of the session's videos (``videos/cam_N.mp4``).

When the lead's ``posestudio.calibration.rig_formats`` module offers a caliscope importer, that
is used; otherwise a minimal private reader in this file.
"""

from __future__ import annotations

import importlib
import re
import time
import tomllib
from pathlib import Path

import numpy as np

from posestudio.calibration.camera import Camera
from posestudio.calibration.rig import CameraRig

from . import PeerResult

IMPORTER_NAMES = ("read_caliscope", "load_caliscope", "import_caliscope", "caliscope_to_rig", "from_caliscope")


def _project_importer():
    """The project's caliscope importer function, or None when it does not exist yet."""
    try:
        mod = importlib.import_module("posestudio.calibration.rig_formats")
    except ImportError:
        return None
    for name in IMPORTER_NAMES:
        fn = getattr(mod, name, None)
        if callable(fn):
            return fn
    return None


def read_caliscope_config(path: str | Path) -> CameraRig:
    """Minimal reader of caliscope's ``config.toml`` (cameras only).

    Args:
        path: the ``config.toml`` file.
    Returns:
        A rig with one pinhole camera per ``[cam_N]`` table, in N order; cameras marked
        ``ignore = true`` or lacking a pose are left out (listed in ``metadata["skipped"]``).
    Raises:
        ValueError: naming the file and table when a field is missing or malformed.
    """
    path = Path(path)
    doc = tomllib.loads(path.read_text())
    tables = sorted((k for k in doc if re.fullmatch(r"cam_\d+", k)), key=lambda k: int(k[4:]))
    cams: list[Camera] = []
    skipped: list[str] = []
    for key in tables:
        tab = doc[key]
        if tab.get("ignore", False) or "rotation" not in tab or "translation" not in tab:
            skipped.append(key)
            continue
        try:
            cams.append(Camera(key, tuple(tab["size"]), np.asarray(tab["matrix"], float),
                               np.asarray(tab["distortions"], float), np.asarray(tab["rotation"], float),
                               np.asarray(tab["translation"], float)))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"{path}: [{key}] is not a usable caliscope camera ({exc})") from None
    if not cams:
        raise ValueError(f"{path}: no calibrated [cam_N] tables")
    return CameraRig(cams, {"source": str(path), "tool": "caliscope", "skipped": skipped})


def load(config_path: str | Path) -> PeerResult:
    """caliscope's stored calibration as a :class:`PeerResult` (``seconds`` is the load time:
    caliscope's own calibration time is unknown, it ran elsewhere)."""
    t0 = time.perf_counter()
    importer = _project_importer()
    notes = ["stored result computed by caliscope elsewhere; its intrinsics came from other videos",
             "wall time is only the time to load the file"]
    try:
        if importer is not None:
            rig = importer(Path(config_path))
            notes.append(f"read with posestudio.calibration.rig_formats.{importer.__name__}")
        else:
            rig = read_caliscope_config(config_path)
            notes.append("read with benchmarks.peers.caliscope_peer's private reader")
    except Exception as exc:  # noqa: BLE001 - report any reader failure as the peer's failure
        return PeerResult("caliscope", "stored", None, time.perf_counter() - t0,
                          failure=f"{type(exc).__name__}: {exc}", notes=notes)
    return PeerResult("caliscope", "stored", rig, time.perf_counter() - t0, notes=notes)
