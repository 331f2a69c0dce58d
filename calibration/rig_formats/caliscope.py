"""caliscope's ``config.toml``.

Per camera ``[cam_N]``: ``cam_id``, ``size = [width, height]`` (pixels), ``matrix`` (3x3),
``distortions`` (OpenCV order, 5 values), ``rotation`` (3x3 world-to-camera matrix) and
``translation`` (world-to-camera, metres), ``ignore`` (bool). Other tables (``[charuco]``,
``[capture_volume]``) are not cameras. Cameras with ``ignore = true`` or without extrinsics
(not yet calibrated) are skipped; the reason is kept in ``rig.metadata["skipped"]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posestudio.core.camera import Camera
from posestudio.core.rig import CameraRig
from posestudio.core.rig_file import RigFileError

from ._common import array, field, image_size, natural_key, read_toml


def looks_like(doc: dict) -> bool:
    """Whether a parsed TOML document looks like a caliscope config (``cam_N`` with ``cam_id``)."""
    return any(k.startswith("cam_") and isinstance(v, dict) and "cam_id" in v for k, v in doc.items())


def read(path: str | Path) -> CameraRig:
    """Read the calibrated cameras of a caliscope ``config.toml`` (metres)."""
    path = Path(path)
    doc = read_toml(path)
    keys = sorted((k for k, v in doc.items() if k.startswith("cam_") and isinstance(v, dict)), key=natural_key)
    if not keys:
        raise RigFileError(f"{path}: no [cam_N] tables: not a caliscope config.toml")
    cameras, skipped = [], {}
    for key in keys:
        tab, where = doc[key], f"[{key}]"
        if tab.get("ignore", False):
            skipped[key] = "ignore = true"
            continue
        if "rotation" not in tab or "translation" not in tab:
            skipped[key] = "no extrinsics (rotation/translation): camera not calibrated in this session"
            continue
        rot = array(tab["rotation"], (3, 3), "rotation", where, path)
        if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-6) or np.linalg.det(rot) < 0:
            raise RigFileError(f"{path}: {where} 'rotation' is not a rotation matrix (orthonormal, det +1)")
        try:
            cameras.append(Camera(
                name=str(key),
                image_size=image_size(field(tab, "size", where, path), where, path),
                matrix=array(field(tab, "matrix", where, path), (3, 3), "matrix", where, path),
                dist=array(field(tab, "distortions", where, path), None, "distortions", where, path,
                           sizes=(4, 5, 8)),
                rotation=rot,
                translation=array(tab["translation"], (3,), "translation", where, path)))
        except ValueError as exc:
            raise RigFileError(f"{path}: {where}: {exc}") from None
    if not cameras:
        detail = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise RigFileError(f"{path}: no usable camera ({detail})")
    return CameraRig(cameras, {"imported_from": f"caliscope:{path.name}", "skipped": skipped})
