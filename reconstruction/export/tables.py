"""Plain tables of a take: CSV (one row per frame) and a documented JSON skeleton.

CSV: a header row ``frame,time_s,<joint>_x,<joint>_y,<joint>_z,<joint>_confidence,...`` (joints in
the take's order), then one row per frame: ``frame`` from 0, ``time_s = frame / fps``, each joint's
x, y, z in metres in the chosen axes and its confidence in [0, 1]. A missing joint has empty x, y, z
fields and confidence 0.

JSON (``format`` ``"posestudio-skeleton-json"``, ``format_version`` 1)::

    {"format": "posestudio-skeleton-json", "format_version": 1, "fps": 60.0, "units": "m", "up": "z",
     "joint_names": ["pelvis", ...], "bones": [["pelvis", "r_hip"], ...],
     "frames": [{"frame": 0, "time_s": 0.0, "joints": [[x, y, z], null, ...], "confidence": [0.9, 0.0, ...]}, ...]}

``bones`` are the parent-child pairs of the take's keypoint layout (``posestudio.models.keypoints``;
empty when the joint names are no known layout); a missing joint is ``null``. Both are built with
numpy's whole-array formatting, one formatted line per frame.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from posestudio.core.keypoints_file import Points3D
from posestudio.models.keypoints import layout_from_joint_names

from .atomic import write_one
from .take import ExportTake, check_take, frame_times, prepare, to_up_axis

JSON_FORMAT = "posestudio-skeleton-json"
JSON_FORMAT_VERSION = 1
#: Decimals written: coordinates in metres (0.1 micrometre), confidences, times in seconds.
_XYZ = "%.7f"
_CONF = "%.6f"
_TIME = "%.6f"


def skeleton_bones(joint_names: list[str]) -> list[tuple[str, str]]:
    """The ``(parent, child)`` joint-name pairs of the layout these joints form, in the take's
    spelling; ``[]`` when they are no known layout (``posestudio.models.keypoints.LAYOUTS``)."""
    try:
        layout = layout_from_joint_names(joint_names)
    except ValueError:
        return []
    spelled = {str(n).strip().lower(): str(n) for n in joint_names}
    return [(spelled[a], spelled[b]) for a, b in layout.bones]


def _columns(take: ExportTake, up: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``frames (F,)``, ``xyz (F, J, 3)`` metres in the file's axes, ``confidence (F, J)``."""
    pts = take.points
    n_frames = pts.points3d.shape[0]
    return np.arange(n_frames, dtype=np.float64), to_up_axis(pts.points3d, up), np.asarray(pts.confidence)


def csv_text(take: ExportTake, *, up: str = "z") -> str:
    """The CSV table of ``take.points`` (see the module docstring).

    Args:
        take: the take at the output rate.
        up: ``"z"`` (the world frame, default) or ``"y"`` (``(x, y, z) -> (x, z, -y)``).
    """
    frames, xyz, conf = _columns(take, up)
    n_frames, n_joints = conf.shape
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow(
        ["frame", "time_s"] + [f"{name}_{c}" for name in take.points.joint_names
                               for c in ("x", "y", "z", "confidence")])
    table = np.concatenate([frames[:, None], frame_times(n_frames, take.fps)[:, None],
                            np.concatenate([xyz, conf[..., None]], axis=-1).reshape(n_frames, 4 * n_joints)], axis=1)
    body = io.StringIO()
    np.savetxt(body, table, fmt=["%d", _TIME] + [_XYZ, _XYZ, _XYZ, _CONF] * n_joints, delimiter=",", newline="\n")
    # savetxt writes NaN as "nan": a missing coordinate is an empty field (numbers never contain "nan")
    return head.getvalue() + body.getvalue().replace("nan", "")


def json_text(take: ExportTake, *, up: str = "z") -> str:
    """The JSON skeleton of ``take.points`` (see the module docstring).

    Args:
        take: the take at the output rate.
        up: ``"z"`` (the world frame, default) or ``"y"`` (``(x, y, z) -> (x, z, -y)``).
    """
    frames, xyz, conf = _columns(take, up)
    n_frames, n_joints = conf.shape
    names = list(take.points.joint_names)
    meta = {"format": JSON_FORMAT, "format_version": JSON_FORMAT_VERSION, "fps": take.fps, "units": "m",
            "up": up, "joint_names": names, "bones": [list(b) for b in skeleton_bones(names)]}
    joint = f"[{_XYZ}, {_XYZ}, {_XYZ}]"
    row = ('  {"frame": %d, "time_s": ' + _TIME + ', "joints": [' + ", ".join([joint] * n_joints)
           + '], "confidence": [' + ", ".join([_CONF] * n_joints) + "]}")
    table = np.concatenate([frames[:, None], frame_times(n_frames, take.fps)[:, None],
                            xyz.reshape(n_frames, 3 * n_joints), conf], axis=1)
    body = io.StringIO()
    np.savetxt(body, table, fmt=row, newline=",\n")
    nan = joint.replace(_XYZ, "nan")          # how savetxt writes a missing joint: all three are NaN
    rows = body.getvalue()[:-2].replace(nan, "null")
    head = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in meta.items())
    return "{\n" + head + ',\n "frames": [\n' + rows + "\n ]\n}\n"


def write_csv(path: str | os.PathLike[str], points: Points3D, *, up: str = "z", fps: float | None = None) -> None:
    """Write a take as CSV, atomically (checked first; see :func:`csv_text`; ``fps`` resamples)."""
    text = csv_text(prepare(check_take(points, "points"), fps), up=up)
    write_one(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike[str], points: Points3D, *, up: str = "z", fps: float | None = None) -> None:
    """Write a take as the JSON skeleton, atomically (checked first; see :func:`json_text`; ``fps`` resamples)."""
    text = json_text(prepare(check_take(points, "points"), fps), up=up)
    write_one(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))
