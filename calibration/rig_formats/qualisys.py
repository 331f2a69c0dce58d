"""Qualisys QTM calibration export (``*.qca.txt``, XML).

One ``<camera serial=...>`` per view. Conventions, each verified on the Pose2Sim demo rig
(see ``docs/rig_formats.md``):

- image size from ``<fov_video left top right bottom>``: ``(right-left+1, bottom-top+1)`` pixels;
- ``<intrinsic>`` ``focalLengthU/V`` and ``centerPointU/V`` are in 1/64 pixel (QTM sub-pixel
  units): divide by 64; the centre point is then shifted by the ``fov_video`` left/top offsets;
- ``<transform>`` ``r11..r33`` hold the camera-to-world rotation *by column* (the matrix built
  row-wise from them must be transposed), ``x, y, z`` the camera centre in millimetres;
  the camera frame is x right, y up, z backwards, so a rotation of pi about the camera's x axis
  brings it to OpenCV's (x right, y down, z forward);
- ``radialDistortion1..3`` / ``tangentalDistortion1..2`` are Brown coefficients (k1, k2, k3,
  p1, p2) in OpenCV's normalised form, used as stored. The Pose2Sim importer divides them by
  64, which makes them vanish; checkerboard rows undistorted with the stored values are
  slightly straighter (0.384 px vs 0.389 px RMS over 24 boards), weak but consistent evidence,
  and magnitudes like k1=-0.046, k2=0.14 are typical normalised values (see the docs).
  :data:`DISTORTION_SCALE` stays a parameter.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from posestudio.core.camera import Camera
from posestudio.core.rig import CameraRig
from posestudio.core.rig_file import RigFileError

#: QTM sub-pixel unit: intrinsic focal lengths / centre points are stored times 64.
SUBPIXEL = 64.0
#: Default factor applied to the stored distortion coefficients (upstream Pose2Sim uses 1/64).
DISTORTION_SCALE = 1.0
#: Camera (QTM: y up, z backwards) to OpenCV (y down, z forward): rotation pi about x.
_FLIP = np.diag([1.0, -1.0, -1.0])


def looks_like(text: str) -> bool:
    """Whether ``text`` is a QTM calibration XML."""
    head = text[:2000]
    return "<calibration" in head and "<camera" in text and "<intrinsic" in text


def _num(elem: ET.Element, key: str, where: str, path: Path) -> float:
    if key not in elem.attrib:
        raise RigFileError(f"{path}: {where} <{elem.tag}> has no '{key}' attribute")
    try:
        value = float(elem.attrib[key])
    except ValueError:
        raise RigFileError(f"{path}: {where} <{elem.tag}> '{key}' is not a number: {elem.attrib[key]!r}") from None
    if not np.isfinite(value):
        raise RigFileError(f"{path}: {where} <{elem.tag}> '{key}' is not finite")
    return value


def _child(elem: ET.Element, tag: str, where: str, path: Path) -> ET.Element:
    found = elem.find(tag)
    if found is None:
        raise RigFileError(f"{path}: {where} has no <{tag}> element")
    return found


def read(path: str | Path, distortion_scale: float = DISTORTION_SCALE,
         include_inactive: bool = False) -> CameraRig:
    """Read a QTM ``.qca.txt`` calibration.

    Args:
        path: the XML file.
        distortion_scale: factor applied to the stored distortion coefficients.
        include_inactive: also import cameras with ``active="0"``.
    Returns:
        a rig in metres, world frame = QTM's lab frame (Z up), cameras named by ``serial``.
    """
    path = Path(path)
    if not path.is_file():
        raise RigFileError(f"{path}: rig file not found")
    try:
        root = ET.fromstring(path.read_bytes())
    except ET.ParseError as exc:
        raise RigFileError(f"{path}: not a valid XML file ({exc})") from None
    if root.tag != "calibration":
        raise RigFileError(f"{path}: root element is <{root.tag}>, expected a QTM <calibration>")
    cams_xml = root.findall("./cameras/camera")
    if not cams_xml:
        raise RigFileError(f"{path}: no <cameras><camera> elements")
    cameras = []
    for i, c in enumerate(cams_xml):
        name = c.attrib.get("serial") or f"cam{i + 1:02d}"
        where = f"camera {name!r}"
        if not include_inactive and c.attrib.get("active", "1") == "0":
            continue
        fov = _child(c, "fov_video", where, path)
        left, top, right, bottom = (_num(fov, k, where, path) for k in ("left", "top", "right", "bottom"))
        size = (int(right - left + 1), int(bottom - top + 1))
        if size[0] <= 0 or size[1] <= 0:
            raise RigFileError(f"{path}: {where} <fov_video> gives a non-positive image size {size}")
        it = _child(c, "intrinsic", where, path)
        fx, fy = (_num(it, k, where, path) / SUBPIXEL for k in ("focalLengthU", "focalLengthV"))
        cx = _num(it, "centerPointU", where, path) / SUBPIXEL - left
        cy = _num(it, "centerPointV", where, path) / SUBPIXEL - top
        skew = float(it.attrib.get("skew", 0.0)) / SUBPIXEL
        k1, k2, k3 = (float(it.attrib.get(f"radialDistortion{j}", 0.0)) for j in (1, 2, 3))
        p1, p2 = (float(it.attrib.get(f"tangentalDistortion{j}", 0.0)) for j in (1, 2))
        dist = np.array([k1, k2, p1, p2, k3]) * distortion_scale
        tr = _child(c, "transform", where, path)
        by_column = np.array([[_num(tr, f"r{a}{b}", where, path) for b in "123"] for a in "123"])
        cam_to_world = by_column.T
        if not np.allclose(cam_to_world @ cam_to_world.T, np.eye(3), atol=1e-5):
            raise RigFileError(f"{path}: {where} <transform> r11..r33 is not a rotation matrix")
        centre = np.array([_num(tr, k, where, path) for k in "xyz"]) / 1000.0  # mm -> m
        rot = _FLIP @ cam_to_world.T
        trans = -rot @ centre
        matrix = np.array([[fx, skew, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        cameras.append(Camera(name, size, matrix, dist, rot, trans))
    if not cameras:
        raise RigFileError(f"{path}: every <camera> is inactive (active=\"0\")")
    try:
        return CameraRig(cameras, {"imported_from": f"qualisys:{path.name}",
                                   "world_frame": "Qualisys lab frame (Z up), metres",
                                   "qualisys_distortion_scale": distortion_scale})
    except ValueError as exc:
        raise RigFileError(f"{path}: {exc}") from None
