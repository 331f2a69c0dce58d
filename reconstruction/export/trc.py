"""OpenSim marker files (``.trc``, PathFileType 4): one marker per joint, tab separated.

The layout, as OpenSim's ``TRCFileAdapter`` reads and writes it (fields separated by tabs, shown here
as ``|``; ``docs/export_formats.md``)::

    PathFileType|4|(X/Y/Z)|take.trc
    DataRate|CameraRate|NumFrames|NumMarkers|Units|OrigDataRate|OrigDataStartFrame|OrigNumFrames
    60|60|120|17|mm|60|1|120
    Frame#|Time|pelvis|||r_hip|||...
    ||X1|Y1|Z1|X2|Y2|Z2|...
    (blank line)
    1|0.000000|x|y|z|...|

Frame# counts from 1, Time from 0 s. Every data field, the last one included, is followed by a tab
(as OpenSim writes it): OpenSim splits a row at each tab, keeps empty fields, and needs exactly
``2 + 3 * NumMarkers`` of them, so a missing marker is three empty fields and a row whose last
marker is missing still has the right count. OpenSim is Y up, so the world's Z-up points are
turned by default (``(x, y, z) -> (x, z, -y)``); lengths are millimetres by default.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import Points3D

from .atomic import write_one
from .take import LENGTH_UNITS, ExportTake, check_take, frame_times, prepare, to_up_axis

#: TRC length units (OpenSim reads mm, cm and m) and the decimals written for each (0.1 micrometre).
TRC_UNITS = ("mm", "cm", "m")
_DECIMALS = {"mm": 4, "cm": 5, "m": 7}
#: The metadata keys of the second header line, in the order OpenSim requires.
TRC_KEYS = ("DataRate", "CameraRate", "NumFrames", "NumMarkers", "Units", "OrigDataRate", "OrigDataStartFrame",
            "OrigNumFrames")


def _rate(fps: float) -> str:
    return f"{fps:.10g}"


def _marker_name(name: str) -> str:
    """A joint name as a TRC marker name: tabs and line breaks would break the columns."""
    return "_".join(str(name).replace("\r", " ").replace("\n", " ").replace("\t", " ").split()) or "marker"


def trc_text(take: ExportTake, *, up: str = "y", units: str = "mm", file_name: str = "take.trc") -> str:
    """The whole TRC file as text (header, then one row per output frame).

    Args:
        take: the take; ``take.points`` (at the output rate) is written, ``take.source`` gives
            OrigDataRate and OrigNumFrames.
        up: ``"y"`` (OpenSim's convention, default) or ``"z"`` (the world frame unchanged).
        units: ``"mm"``, ``"cm"`` or ``"m"``.
        file_name: the name on the first header line.
    Returns:
        The text, lines ending in ``\\n``.
    """
    if units not in TRC_UNITS:
        raise InputError(f"TRC units must be one of {', '.join(TRC_UNITS)}, got {units!r}")
    pts = take.points
    n_frames, n_markers = pts.points3d.shape[:2]
    xyz = to_up_axis(pts.points3d, up) * LENGTH_UNITS[units]            # (F, M, 3) file units
    header = [
        f"PathFileType\t4\t(X/Y/Z)\t{_marker_name(file_name)}",
        "\t".join(TRC_KEYS),
        "\t".join([_rate(pts.fps), _rate(pts.fps), str(n_frames), str(n_markers), units,
                   _rate(take.source.fps), "1", str(take.source.points3d.shape[0])]),
        "Frame#\tTime\t" + "".join(f"{_marker_name(n)}\t\t\t" for n in pts.joint_names),
        "\t\t" + "".join(f"X{i}\tY{i}\tZ{i}\t" for i in range(1, n_markers + 1)),
        "",
    ]
    table = np.concatenate([np.arange(1, n_frames + 1, dtype=np.float64)[:, None],
                            frame_times(n_frames, pts.fps)[:, None], xyz.reshape(n_frames, 3 * n_markers)], axis=1)
    body = io.StringIO()
    coordinate = f"%.{_DECIMALS[units]}f"
    np.savetxt(body, table, fmt=["%d", "%.6f"] + [coordinate] * (3 * n_markers), delimiter="\t", newline="\t\n")
    # savetxt writes NaN as "nan": a missing coordinate is an empty field (numbers never contain "nan")
    return "\n".join(header) + "\n" + body.getvalue().replace("nan", "")


def write_trc(path: str | os.PathLike[str], points: Points3D, *, up: str = "y", units: str = "mm",
              fps: float | None = None) -> None:
    """Write a take as an OpenSim TRC file, atomically (checked first; see :func:`trc_text`).

    Args:
        path: the ``.trc`` file.
        points: ``points3d (F, J, 3)`` metres, world frame (Z up), NaN where unknown.
        up, units: see :func:`trc_text`.
        fps: resample to this rate (linear interpolation), or keep the take's.
    Raises:
        InputError: a take that cannot be exported, or a bad option.
    """
    take = prepare(check_take(points, "points"), fps)
    text = trc_text(take, up=up, units=units, file_name=Path(path).name)
    write_one(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
