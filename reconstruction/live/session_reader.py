"""A recorded session read back: :func:`open_session` (the layout is ``docs/recording.md``).

Tolerant of a crash: a session whose ``session.json`` still says ``recording`` opens, a last index
line cut short by the crash is ignored, a frame file the index names but the disk lost counts as
missing, and a video without its ``moov`` atom is never needed (the frames are read from
``frames/``). Nothing here writes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from posestudio.core.errors import InputError
from posestudio.core.rig import CameraRig

log = logging.getLogger(__name__)

#: ``session.json``'s ``format``.
SESSION_FORMAT = "posestudio.session"
#: Its version (readers refuse others).
SESSION_VERSION = 1
#: File names inside a session folder.
SESSION_FILE, INDEX_FILE, CLOCK_FILE, RIG_FILE = "session.json", "index.jsonl", "clock_sync.jsonl", "rig.toml"
KEYPOINTS_FILE, POINTS_FILE = "keypoints2d.npz", "points3d.npz"
#: The 3D results' joints (the live reconstructor's output).
H36M17_NAMES = ("pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax", "neck",
                "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist")



class SessionError(InputError):
    """A folder that is not a readable session; the message names the file."""


@dataclass
class IndexRow:
    """One recorded frame set.

    Attributes:
        slot: the slot number; studio_time_ns: its studio time, ns.
        cameras: camera -> its entry (``file``, ``video_frame``, ``studio_time_ns``, and for frames from
            the network ``sequence``, ``capture_time_ns`` on the node's clock, ``width``, ``height``), or None
            where the camera's frame was missing.
    """

    slot: int
    studio_time_ns: int
    cameras: dict[str, dict[str, Any] | None]


@dataclass
class Session:
    """What a session folder holds.

    Attributes:
        folder: the session folder.
        metadata: ``session.json`` (``status`` ``recording`` after a crash).
        cameras: recorded cameras, in the server's order.
        fps: frame sets per second.
        rig: the rig it was recorded with.
        index: one :class:`IndexRow` per recorded set, in slot order.
        truncated_lines: index lines that could not be read (0, or 1 after a crash mid-line).
    """

    folder: Path
    metadata: dict[str, Any]
    cameras: list[str]
    fps: float
    rig: CameraRig
    index: list[IndexRow] = field(default_factory=list)
    truncated_lines: int = 0

    @property
    def complete(self) -> bool:
        """The recording stopped cleanly (False after a crash)."""
        return self.metadata.get("status") == "complete"

    @property
    def slots(self) -> np.ndarray:
        """``(F,)`` int64 slot numbers of the recorded sets."""
        return np.asarray([r.slot for r in self.index], np.int64)

    @property
    def times_ns(self) -> np.ndarray:
        """``(F,)`` int64 studio times of the recorded sets, ns."""
        return np.asarray([r.studio_time_ns for r in self.index], np.int64)

    @property
    def duration_s(self) -> float:
        """Seconds from the first recorded set to one period after the last (0 when none)."""
        if not self.index:
            return 0.0
        return (self.index[-1].studio_time_ns - self.index[0].studio_time_ns) / 1e9 + 1.0 / self.fps

    def frame_path(self, row: IndexRow, camera: str) -> Path | None:
        """The frame file of ``camera`` in ``row`` (None when missing or lost)."""
        entry = row.cameras.get(camera)
        if entry is None:
            return None
        path = self.folder / entry["file"]
        return path if path.is_file() else None

    def frames(self, camera: str, gray: bool = False) -> Iterator[tuple[IndexRow, np.ndarray | None]]:
        """``(row, image)`` for every recorded set in order; image BGR ``(H, W, 3)`` (``(H, W)`` if gray)
        uint8, None where the camera's frame is missing, lost or undecodable."""
        if camera not in self.cameras:
            raise SessionError(f"{self.folder}: no camera {camera!r} (cameras: {', '.join(self.cameras)})")
        flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
        for row in self.index:
            path = self.frame_path(row, camera)
            image = None if path is None else cv2.imread(str(path), flag)
            yield row, image

    def missing(self) -> dict[str, int]:
        """camera -> recorded sets without its frame (missing in the set or lost on disk)."""
        return {c: sum(self.frame_path(r, c) is None for r in self.index) for c in self.cameras}

    def results(self, name: str = POINTS_FILE) -> dict[str, np.ndarray] | None:
        """The live results file ``keypoints2d.npz`` or ``points3d.npz`` as arrays (None when absent)."""
        path = self.folder / name
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}


def is_session(folder: str | Path) -> bool:
    """``folder`` holds a recorded session (its ``session.json``)."""
    return (Path(folder) / SESSION_FILE).is_file()


def open_session(folder: str | Path) -> Session:
    """Read a session folder written by :class:`~.recording.SessionRecorder`, whole or crashed.

    Raises:
        SessionError: no ``session.json``, another format or version, no readable rig (naming the file).
    """
    folder = Path(folder)
    meta_path = folder / SESSION_FILE
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SessionError(f"{folder}: not a recorded session (no {SESSION_FILE})") from None
    except (OSError, ValueError) as exc:
        raise SessionError(f"{meta_path}: cannot be read as JSON ({exc})") from None
    if metadata.get("format") != SESSION_FORMAT:
        raise SessionError(f"{meta_path}: format {metadata.get('format')!r}; expected {SESSION_FORMAT!r}")
    if metadata.get("format_version") != SESSION_VERSION:
        raise SessionError(f"{meta_path}: format_version {metadata.get('format_version')!r}; this reader reads "
                           f"version {SESSION_VERSION}")
    try:
        rig = CameraRig.load(folder / RIG_FILE)
    except OSError as exc:
        raise SessionError(f"{folder / RIG_FILE}: cannot be read ({exc})") from None
    cameras = [str(c) for c in metadata["cameras"]]
    session = Session(folder, metadata, cameras, float(metadata["fps"]), rig)
    index_path = folder / INDEX_FILE
    if index_path.is_file():
        with open(index_path, "rb") as f:
            lines = f.read().split(b"\n")
        seen: set[int] = set()
        for n, raw in enumerate(lines):
            if not raw.strip():
                continue
            try:
                doc = json.loads(raw)
                row = IndexRow(int(doc["slot"]), int(doc["studio_time_ns"]),
                               {c: doc["cameras"].get(c) for c in cameras})
            except (ValueError, KeyError, TypeError, AttributeError):
                session.truncated_lines += 1
                if n < len(lines) - 1 and any(x.strip() for x in lines[n + 1:]):
                    log.warning("%s: line %d cannot be read; skipped", index_path, n + 1)
                continue
            if row.slot not in seen:
                seen.add(row.slot)
                session.index.append(row)
    session.index.sort(key=lambda r: r.slot)
    return session


def offline_inputs(session: Session, folder: str | Path) -> list[Path]:
    """One image folder per camera, ``folder/<camera>/``, frame ``i`` of every folder from the ``i``-th
    recorded set: what ``reconstruct --videos`` reads (``capture/sources.py`` takes image folders).

    Frames are hard links to the session's files (copies where links fail); a camera's missing frame
    becomes a black frame of its size there (a detector finds nobody in it), so the folders stay in
    lockstep. Nothing in the session itself changes. Returns the folders, in camera order.

    Raises:
        SessionError: no recorded set, or a camera with no frame at all.
    """
    if not session.index:
        raise SessionError(f"{session.folder}: no frame set was recorded")
    out = Path(folder)
    made: list[Path] = []
    for cam in session.cameras:
        paths = [session.frame_path(row, cam) for row in session.index]
        first = next((p for p in paths if p is not None), None)
        if first is None:
            log.warning("%s: camera %s has no frame; left out", session.folder, cam)
            continue
        image = cv2.imread(str(first), cv2.IMREAD_COLOR)
        if image is None:
            raise SessionError(f"{first}: cannot decode the image")
        target = out / cam
        target.mkdir(parents=True, exist_ok=True)
        for old in target.iterdir():
            old.unlink()
        black = out / f".black_{cam}.png"
        cv2.imwrite(str(black), np.zeros_like(image))
        for i, path in enumerate(paths):
            src = path if path is not None else black
            dst = target / f"{i:08d}{src.suffix}"
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
        made.append(target)
    if len(made) < 2:
        raise SessionError(f"{session.folder}: frames of {len(made)} camera(s); expected at least 2")
    return made


def write_videos(folder: str | Path, fps: float) -> list[Path]:
    """``videos/<camera>.mp4`` (mp4v) from a session's frames, each camera's recorded frames in slot order.

    Missing frames are not invented: video frame ``n`` of a camera is the index's ``video_frame`` ``n``.
    A frame whose size differs from the camera's first is resized (and logged). Returns the files.
    """
    session = open_session(folder)
    written: list[Path] = []
    (session.folder / "videos").mkdir(exist_ok=True)
    for cam in session.cameras:
        path = session.folder / "videos" / f"{cam}.mp4"
        tmp = path.with_name(f"{cam}.tmp.mp4")
        writer: cv2.VideoWriter | None = None
        size: tuple[int, int] | None = None
        try:
            for _, image in session.frames(cam):
                if image is None:
                    continue
                if writer is None:
                    size = (image.shape[1], image.shape[0])
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
                    if not writer.isOpened():
                        raise OSError(f"cannot open a video writer for {tmp}")
                if (image.shape[1], image.shape[0]) != size:
                    log.warning("recording: %s: a frame of %dx%d resized to %dx%d", cam, image.shape[1],
                                image.shape[0], *size)
                    image = cv2.resize(image, size)
                writer.write(image)
        finally:
            if writer is not None:
                writer.release()
        if writer is not None:
            os.replace(tmp, path)
            written.append(path)
    return written


__all__ = ["IndexRow", "Session", "SessionError", "is_session", "offline_inputs", "open_session", "write_videos"]
