"""Pose2Sim's ``Calib.toml``.

Layout: one table per camera (``[cam_01]`` ...; any key other than ``metadata``), each with
``name``, ``size = [width, height]`` (pixels, often written as floats), ``matrix`` (3x3),
``distortions = [k1, k2, p1, p2]`` (OpenCV order), ``rotation`` (world-to-camera Rodrigues
vector, radians), ``translation`` (world-to-camera, metres) and ``fisheye`` (bool); then
``[metadata]`` with ``adjusted`` and ``error``. It is aniposelib's layout with metres fixed.
"""

from __future__ import annotations

from pathlib import Path

import tomli_w

from posestudio.core.files import plain, write_text_atomic
from posestudio.core.rig import CameraRig

from ._common import read_toml
from .anipose import rig_from_doc


def read(path: str | Path) -> CameraRig:
    """Read a Pose2Sim ``Calib.toml`` (translations in metres)."""
    path = Path(path)
    return rig_from_doc(read_toml(path), path, "m", style="pose2sim")


def write(rig: CameraRig, path: str | Path) -> None:
    """Write a Pose2Sim ``Calib.toml`` (metres; ``fisheye`` written for every camera)."""
    doc: dict = {}
    for i, cam in enumerate(rig.cameras, start=1):
        doc[f"cam_{i:02d}"] = {
            "name": cam.name,
            "size": [float(cam.image_size[0]), float(cam.image_size[1])],
            "matrix": cam.matrix.tolist(),
            "distortions": cam.dist.tolist(),
            "rotation": cam.rvec.tolist(),
            "translation": cam.translation.tolist(),
            "fisheye": cam.model == "fisheye",
        }
    doc["metadata"] = {"adjusted": False, "error": 0.0}
    write_text_atomic(Path(path), tomli_w.dumps(plain(doc)))
