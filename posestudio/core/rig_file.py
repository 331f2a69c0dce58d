"""PoseStudio's own rig file, ``rig.toml`` (format version 1).

Layout::

    [rig]
    format = "posestudio-rig"
    format_version = 1
    units = "metres; pixels; seconds"
    world_frame = "..."           # how the world frame was set (free text)

    [cameras.cam01]               # one table per camera, in rig order
    model = "pinhole"             # or "fisheye"
    image_size = [1920, 1080]     # width, height in pixels
    matrix = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
    distortion = [k1, k2, p1, p2, k3]   # OpenCV order
    rotation = [[...], [...], [...]]    # world-to-camera R
    translation = [tx, ty, tz]          # world-to-camera t, metres
    time_offset = 0.0                   # seconds the camera lags the reference clock

    [metadata]                    # optional provenance (tool, date, residuals)

Readers refuse a missing or newer ``format_version`` with a message naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from .camera import Camera
from .errors import InputError
from .files import plain, read_toml, write_text_atomic


class RigFileError(InputError):
    """A rig file that cannot be read or has wrong content; the message names the file and field."""


FORMAT_NAME = "posestudio-rig"
FORMAT_VERSION = 1


def rig_document(cameras: list[Camera], metadata: dict[str, Any]) -> dict[str, Any]:
    """The TOML document of a rig's cameras and metadata, as nested dicts."""
    cams = {}
    for cam in cameras:
        cams[cam.name] = {
            "model": cam.model,
            "image_size": list(cam.image_size),
            "matrix": cam.matrix.tolist(),
            "distortion": cam.dist.tolist(),
            "rotation": cam.rotation.tolist(),
            "translation": cam.translation.tolist(),
            "time_offset": float(cam.time_offset),
        }
    doc: dict[str, Any] = {
        "rig": {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "units": "metres; pixels; seconds",
            "world_frame": str(metadata.get("world_frame", "unspecified")),
        },
        "cameras": cams,
    }
    extra = {k: v for k, v in metadata.items() if k != "world_frame"}
    if extra:
        doc["metadata"] = plain(extra)
    return doc


def write_rig_file(path: str | Path, cameras: list[Camera], metadata: dict[str, Any]) -> None:
    """Write ``rig.toml`` atomically (a temporary file renamed into place); :meth:`CameraRig.save` calls it."""
    write_text_atomic(Path(path), tomli_w.dumps(rig_document(cameras, metadata)))


def _field(table: dict, key: str, where: str, path: Path) -> Any:
    if key not in table:
        raise RigFileError(f"{path}: {where} has no '{key}'")
    return table[key]


def read_rig_file(path: str | Path) -> tuple[list[Camera], dict[str, Any]]:
    """Read ``rig.toml``: its cameras and metadata (:meth:`CameraRig.load` makes the rig).

    Raises:
        RigFileError: naming the file and field on bad input.
    """
    path = Path(path)
    doc = read_toml(path, RigFileError, "rig file")
    head = doc.get("rig")
    if not isinstance(head, dict) or head.get("format") != FORMAT_NAME:
        raise RigFileError(f"{path}: not a PoseStudio rig file (no [rig] table with format = "
                           f"\"{FORMAT_NAME}\"); to import another tool's file use "
                           "'posestudio rig convert --from anipose|pose2sim|caliscope|qualisys'")
    version = head.get("format_version")
    if version != FORMAT_VERSION:
        raise RigFileError(f"{path}: rig format_version {version!r} is not supported "
                           f"(this PoseStudio reads version {FORMAT_VERSION})")
    cams_doc = doc.get("cameras")
    if not isinstance(cams_doc, dict) or not cams_doc:
        raise RigFileError(f"{path}: no [cameras.NAME] tables")
    cameras = []
    for name, tab in cams_doc.items():
        where = f"[cameras.{name}]"
        try:
            cam = Camera(
                name=name,
                image_size=tuple(_field(tab, "image_size", where, path)),
                matrix=np.array(_field(tab, "matrix", where, path), dtype=float),
                dist=np.array(_field(tab, "distortion", where, path), dtype=float),
                rotation=np.array(_field(tab, "rotation", where, path), dtype=float),
                translation=np.array(_field(tab, "translation", where, path), dtype=float),
                model=tab.get("model", "pinhole"),
                time_offset=float(tab.get("time_offset", 0.0)),
            )
        except (ValueError, TypeError) as exc:
            raise RigFileError(f"{path}: {where}: {exc}") from None
        cameras.append(cam)
    meta = doc.get("metadata", {})
    if not isinstance(meta, dict):
        raise RigFileError(f"{path}: 'metadata' must be a table, got {type(meta).__name__}")
    meta = dict(meta)
    meta["world_frame"] = head.get("world_frame", "unspecified")
    return cameras, meta
