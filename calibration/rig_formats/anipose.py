"""aniposelib's calibration TOML (``CameraGroup.dump`` / ``CameraGroup.load``).

Layout (one table per camera, keys ``cam_0``, ``cam_1``, ...; aniposelib orders them by sorting
the keys as strings, so this exporter zero-pads the index when there are 10 or more cameras)::

    [cam_0]
    name = "A"
    size = [1920, 1080]                  # width, height, pixels
    matrix = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
    distortions = [k1, k2, p1, p2, k3]   # OpenCV order; 4 values (cv2.fisheye) when fisheye
    rotation = [rx, ry, rz]              # world-to-camera, Rodrigues vector, radians
    translation = [tx, ty, tz]           # world-to-camera, in the calibration board's unit
    fisheye = true                       # only for fisheye cameras

    [metadata]                           # free-form; aniposelib keeps it untouched

aniposelib stores no length unit: translations are in whatever unit the board was given in
(anipose users often give millimetres). This module writes metres and records
``units = "m"`` in ``[metadata]``; on import it honours ``metadata.units`` ("m", "mm", "cm")
and otherwise takes an explicit ``units`` argument (default metres).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tomli_w

from posestudio.core.camera import camera_from_rvec
from posestudio.core.files import plain, write_text_atomic
from posestudio.core.rig import CameraRig
from posestudio.core.rig_file import RigFileError

from ._common import array, field, image_size, natural_key, read_toml

#: metres per unit name.
UNIT_SCALE = {"m": 1.0, "metre": 1.0, "metres": 1.0, "meter": 1.0, "meters": 1.0,
              "cm": 0.01, "mm": 0.001}


def _camera_tables(doc: dict) -> list[tuple[str, dict]]:
    return sorted(((k, v) for k, v in doc.items() if k != "metadata" and isinstance(v, dict)),
                  key=lambda kv: natural_key(kv[0]))


def looks_like(doc: dict) -> bool:
    """Whether a parsed TOML document has aniposelib's shape (Rodrigues rotations, no [rig])."""
    tabs = _camera_tables(doc)
    return bool(tabs) and "rig" not in doc and all(
        {"matrix", "distortions", "rotation", "translation"} <= set(t) and np.ndim(t["rotation"]) == 1
        for _, t in tabs)


def read(path: str | Path, units: str | None = None) -> CameraRig:
    """Read an aniposelib calibration TOML.

    Args:
        path: the file.
        units: length unit of the translations ("m", "cm", "mm") when the file's
            ``[metadata] units`` does not say; None means metres.
    Returns:
        a rig in metres.
    """
    path = Path(path)
    doc = read_toml(path)
    return rig_from_doc(doc, path, units, style="anipose")


def rig_from_doc(doc: dict, path: Path, units: str | None, style: str) -> CameraRig:
    """Cameras from an aniposelib / Pose2Sim style document (shared by :mod:`.pose2sim`)."""
    meta = doc.get("metadata", {}) if isinstance(doc.get("metadata"), dict) else {}
    unit = str(meta.get("units", units or "m")).lower()
    if unit not in UNIT_SCALE:
        raise RigFileError(f"{path}: unknown length unit {unit!r} (expected one of m, cm, mm)")
    scale = UNIT_SCALE[unit]
    tabs = _camera_tables(doc)
    if not tabs:
        raise RigFileError(f"{path}: no camera tables ([cam_0], [cam_1], ...) in this {style} file")
    cameras = []
    for key, tab in tabs:
        where = f"[{key}]"
        fisheye = bool(tab.get("fisheye", False))
        dist = array(field(tab, "distortions", where, path), None, "distortions", where, path,
                     sizes=(4,) if fisheye else (4, 5, 8))
        try:
            cam = camera_from_rvec(
                name=str(tab.get("name", key)),
                image_size=image_size(field(tab, "size", where, path), where, path),
                matrix=array(field(tab, "matrix", where, path), (3, 3), "matrix", where, path),
                dist=dist,
                rvec=array(field(tab, "rotation", where, path), (3,), "rotation", where, path),
                tvec=array(field(tab, "translation", where, path), (3,), "translation", where, path) * scale,
                model="fisheye" if fisheye else "pinhole")
        except ValueError as exc:
            raise RigFileError(f"{path}: {where}: {exc}") from None
        cameras.append(cam)
    try:
        rig = CameraRig(cameras, {"imported_from": f"{style}:{path.name}", "source_metadata": meta})
    except ValueError as exc:
        raise RigFileError(f"{path}: {exc}") from None
    return rig


def to_doc(rig: CameraRig) -> dict:
    """The aniposelib TOML document of a rig (translations in metres)."""
    width = 2 if len(rig) >= 10 else 1
    doc: dict = {}
    for i, cam in enumerate(rig.cameras):
        tab = {
            "name": cam.name,
            "size": [int(cam.image_size[0]), int(cam.image_size[1])],
            "matrix": cam.matrix.tolist(),
            "distortions": cam.dist.tolist(),
            "rotation": cam.rvec.tolist(),
            "translation": cam.translation.tolist(),
        }
        if cam.model == "fisheye":
            tab["fisheye"] = True
        doc[f"cam_{i:0{width}d}"] = tab
    doc["metadata"] = {"units": "m", "exported_by": "posestudio"}
    return doc


def write(rig: CameraRig, path: str | Path) -> None:
    """Write an aniposelib calibration TOML (metres)."""
    write_text_atomic(Path(path), tomli_w.dumps(plain(to_doc(rig))))
