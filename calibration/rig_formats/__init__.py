"""Import and export camera rigs in other tools' formats.

``import_rig(path, fmt)`` reads any supported format into a :class:`CameraRig` (metres,
world-to-camera poses, OpenCV distortion order); ``export_rig(rig, path, fmt)`` writes one.

Formats: ``posestudio`` (rig.toml), ``anipose`` (aniposelib CameraGroup TOML), ``pose2sim``
(Calib.toml), ``caliscope`` (config.toml, import only), ``qualisys`` (QTM .qca.txt XML, import only).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from posestudio.core.rig import CameraRig
from posestudio.core.rig_file import RigFileError

from . import anipose, caliscope, pose2sim, qualisys

IMPORT_FORMATS = ("posestudio", "anipose", "pose2sim", "caliscope", "qualisys")
EXPORT_FORMATS = ("posestudio", "anipose", "pose2sim")


def detect_format(path: str | Path) -> str:
    """Guess a rig file's format from its content (and name when the content is ambiguous).

    Raises:
        RigFileError: the file is missing or matches no known format.
    """
    path = Path(path)
    if not path.is_file():
        raise RigFileError(f"{path}: rig file not found")
    text = path.read_bytes()[:1_000_000].decode("utf-8", errors="replace")
    if text.lstrip().startswith("<") or path.name.lower().endswith((".qca.txt", ".xml")):
        if qualisys.looks_like(text):
            return "qualisys"
        raise RigFileError(f"{path}: XML but not a Qualisys calibration (<calibration> with <camera> elements)")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RigFileError(f"{path}: neither TOML nor Qualisys XML; cannot tell its format ({exc})") from None
    if isinstance(doc.get("rig"), dict):
        return "posestudio"
    if caliscope.looks_like(doc):
        return "caliscope"
    if anipose.looks_like(doc):
        tabs = [v for k, v in doc.items() if k != "metadata" and isinstance(v, dict)]
        meta = doc.get("metadata", {})
        pose2sim_like = ((isinstance(meta, dict) and "adjusted" in meta)
                         or (bool(tabs) and all("fisheye" in t for t in tabs))
                         or re.match(r"calib([_.\-]|$)", path.name.lower()) is not None)
        return "pose2sim" if pose2sim_like else "anipose"
    raise RigFileError(f"{path}: TOML file of no known rig format (expected a PoseStudio [rig], "
                       "caliscope [cam_N] with cam_id, or anipose/Pose2Sim camera tables)")


def import_rig(path: str | Path, fmt: str | None = None) -> CameraRig:
    """Read a rig file.

    Args:
        path: the file.
        fmt: one of :data:`IMPORT_FORMATS`, or None to detect it from the content.
    Returns:
        the rig (metres; cameras in the file's order).
    Raises:
        RigFileError: unknown format, unreadable file or bad content (message names the file).
    """
    path = Path(path)
    fmt = detect_format(path) if fmt is None else fmt.lower()
    if fmt == "posestudio":
        return CameraRig.load(path)
    readers = {"anipose": anipose.read, "pose2sim": pose2sim.read, "caliscope": caliscope.read,
               "qualisys": qualisys.read}
    if fmt not in readers:
        raise RigFileError(f"{path}: unknown rig format {fmt!r}; expected one of {', '.join(IMPORT_FORMATS)}")
    return readers[fmt](path)


def export_rig(rig: CameraRig, path: str | Path, fmt: str) -> None:
    """Write ``rig`` to ``path`` in ``fmt`` (one of :data:`EXPORT_FORMATS`)."""
    fmt = fmt.lower()
    if fmt == "posestudio":
        rig.save(path)
    elif fmt == "anipose":
        anipose.write(rig, path)
    elif fmt == "pose2sim":
        pose2sim.write(rig, path)
    else:
        raise RigFileError(f"{path}: cannot export to {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")


__all__ = ["import_rig", "export_rig", "detect_format", "IMPORT_FORMATS", "EXPORT_FORMATS"]
