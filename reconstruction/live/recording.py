"""Crash-safe recording of a live take: :class:`SessionRecorder` (the layout is ``docs/recording.md``).

The live server hands every frame set it assembles to an observer (``LiveServerOptions.assembled_observer``,
called before the overload queue, so sets that processing drops are recorded too);
the recorder's :meth:`SessionRecorder.observe` takes it, keeps it when its slot time lies in the
announced window ``[start_ns, stop_ns)`` of studio time and queues it for a writer thread, so the
server's processing thread never waits on the disk. The writer thread appends::

    SESSION/
      session.json          metadata, replaced atomically (status "waiting" | "recording" | "complete" | "failed")
      rig.toml              the rig used
      index.jsonl           one JSON line per recorded set (slot, studio time, per camera sequence,
                            capture times, frame file and video frame, or null when missing); flushed per
                            set, fsync'ed every ``flush_every_s``
      frames/<camera>/<slot:08d>.jpg   the JPEG exactly as it came over the wire (``.png`` for raw frames),
                            each written to a temporary name and renamed: a frame file is whole or absent
      clock_sync.jsonl      the server's clock model of every node, one line per ``flush_every_s``
      keypoints2d.npz, points3d.npz   the live 2D and 3D results, rewritten atomically every ``results_every_s``
      videos/<camera>.mp4   made from the frames when the recording stops (mp4v)

Why frames and not a video written as it goes: OpenCV's mp4 has its index (the ``moov`` atom) written
only when the writer is released, so a crashed process leaves an unreadable video; one file per frame,
renamed into place, loses at most the frames not yet written, each frame is stored as the node
encoded it (no decode, no second lossy encoding, no CPU spent on the server's critical machine), and
the index line is written only after its frames, so every line refers to files that exist (a power
cut may lose frame files the kernel had not yet written: the reader treats an absent file as missing).
The videos are a convenience made once at stop (:func:`write_videos`, also callable on a crashed
session).

A full disk or an unwritable folder stops the writer with a :class:`RecordingError` naming the path
(:attr:`SessionRecorder.error`); what was written before stays readable.

Units: integer ns of studio time, seconds where a name ends in ``_s``, pixels for keypoints.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import zmq

from posestudio.core.errors import InputError
from posestudio.core.files import json_text, write_npz_atomic, write_text_atomic
from posestudio.core.frame_messages import JPEG, FrameMessage
from posestudio.core.keypoints_file import FORMAT_VERSION as KEYPOINTS_FORMAT_VERSION
from posestudio.core.keypoints_file import KEYPOINTS2D_FORMAT, POINTS3D_FORMAT
from posestudio.core.rig import CameraRig
from posestudio.core.skeleton_stream import StreamMessageError, decode_frame
from posestudio.models.detectors.base import Detector2D, FrameWindow

from ..frame_sets import FrameSet
from .session_reader import (
    CLOCK_FILE,
    H36M17_NAMES,
    INDEX_FILE,
    KEYPOINTS_FILE,
    POINTS_FILE,
    RIG_FILE,
    SESSION_FILE,
    SESSION_FORMAT,
    SESSION_VERSION,
    write_videos,
)

log = logging.getLogger(__name__)

class RecordingError(InputError):
    """The session cannot be written (a full disk, an unwritable folder); the message names the path."""


def _io_error(path: Path, exc: OSError) -> RecordingError:
    reason = exc.strerror or str(exc)
    return RecordingError(f"recording: cannot write {exc.filename or path}: {reason}; what was recorded "
                          f"before stays in {path}")


def _encoded(camera: str, payload: Any, quality: int) -> tuple[bytes, str]:
    """A frame as file bytes and suffix: a JPEG message as it came, raw pixels as PNG (lossless)."""
    if isinstance(payload, FrameMessage):
        if payload.encoding == JPEG:
            return payload.payload, ".jpg"
        image = np.frombuffer(payload.payload, np.uint8).reshape(payload.height, payload.width, 3)
    else:
        image = np.asarray(payload)
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise InputError(f"recording: camera {camera!r}: a frame must be a FrameMessage or a uint8 image "
                             f"(H, W[, 3]), got {image.dtype} {image.shape}")
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise InputError(f"recording: camera {camera!r}: the frame cannot be encoded as JPEG")
        return data.tobytes(), ".jpg"
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise InputError(f"recording: camera {camera!r}: the frame cannot be encoded as PNG")
    return data.tobytes(), ".png"


class SessionRecorder:
    """Record frame sets, their 2D and 3D results and the clock log into a session folder.

    Args:
        folder: the session folder (created; refused when it already holds a session).
        rig: the rig the studio runs with (saved as ``rig.toml``).
        cameras: the recorded cameras, in the server's order.
        fps: the frame-set rate, sets/s.
        session_name: free text, saved in ``session.json``.
        clock_status: called about every ``flush_every_s`` on the writer thread: camera -> the server's
            clock model of its node (``offset_ms``, ``drift_ppm``, ``uncertainty_us``, ...; None without a
            clock), as ``LiveServer.stats()["cameras"][NAME]["clock"]`` gives it.
        clock: the studio clock, ns (for the log's time stamps).
        queue_sets: sets waiting for the writer before new ones are dropped (counted ``dropped_sets``).
        flush_every_s: seconds between fsyncs of the index, clock lines and metadata updates.
        results_every_s: seconds between rewrites of ``keypoints2d.npz`` / ``points3d.npz``.
        videos: make ``videos/<camera>.mp4`` when the recording stops.
        jpeg_quality: quality for frames handed over as pixels (messages' JPEGs are stored as they are).

    Raises:
        RecordingError: the folder cannot be created or written (naming it).
    """

    def __init__(self, folder: str | Path, rig: CameraRig, cameras: Sequence[str], fps: float, session_name: str = "",
                 *, clock_status: Callable[[], Mapping[str, Any]] | None = None,
                 clock: Callable[[], int] = time.monotonic_ns, queue_sets: int = 64, flush_every_s: float = 1.0,
                 results_every_s: float = 5.0, videos: bool = True, jpeg_quality: int = 90) -> None:
        self.folder = Path(folder)
        self.cameras = list(cameras)
        missing = [c for c in self.cameras if c not in rig.names]
        if missing or not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise InputError(f"recording: cameras {self.cameras} must be distinct cameras of the rig "
                             f"({', '.join(rig.names)}); not in it: {missing}")
        if not fps > 0:
            raise InputError(f"recording: fps {fps}: expected a positive number of sets per second")
        self.rig, self.fps, self.session_name = rig, float(fps), session_name
        self.clock_status, self.clock = clock_status, clock
        self.flush_every_s, self.results_every_s = flush_every_s, results_every_s
        self.make_videos, self.jpeg_quality = videos, jpeg_quality
        self.start_ns: int | None = None
        self.stop_ns: int | None = None
        self._start_on_complete = False
        self.first_slot_ns: int | None = None
        self.last_slot_ns: int | None = None
        self.counts: dict[str, Any] = {"sets": 0, "dropped_sets": 0, "before_start": 0, "after_stop": 0,
                                       "frames": dict.fromkeys(self.cameras, 0),
                                       "missing": dict.fromkeys(self.cameras, 0)}
        self._slots: list[int] = []
        self._slot_times: list[int] = []
        self._kp2d: dict[int, np.ndarray] = {}
        self._kp_joints: tuple[str, ...] | None = None
        self._pts3d: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._results_lock = threading.Lock()
        self._results_changed = False
        self._queue: queue.Queue[FrameSet | None] = queue.Queue(maxsize=queue_sets)
        self._status = "waiting"
        self._error: RecordingError | None = None
        self._closed = False
        self._video_frames = dict.fromkeys(self.cameras, 0)
        try:
            if (self.folder / SESSION_FILE).exists():
                raise RecordingError(f"recording: {self.folder} already holds a session; expected a new folder")
            for cam in self.cameras:
                (self.folder / "frames" / cam).mkdir(parents=True, exist_ok=True)
            rig.subset(self.cameras).save(self.folder / RIG_FILE)
            self._index = open(self.folder / INDEX_FILE, "a", encoding="utf-8")     # noqa: SIM115 - closed in close()
            self._clock_log = open(self.folder / CLOCK_FILE, "a", encoding="utf-8")  # noqa: SIM115
            self._write_metadata()
        except OSError as exc:
            raise _io_error(self.folder, exc) from None
        self._thread = threading.Thread(target=self._writer, name="session-recorder", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ control (any thread)
    def start_at(self, studio_ns: int) -> None:
        """Record sets whose slot time is at or after ``studio_ns`` (studio clock, ns)."""
        self.start_ns = int(studio_ns)

    def start_at_first_complete(self) -> None:
        """Record from the first set that has every camera (its slot time becomes the start time)."""
        self._start_on_complete = True

    def stop_at(self, studio_ns: int) -> None:
        """Record no set whose slot time is at or after ``studio_ns`` (studio clock, ns)."""
        self.stop_ns = int(studio_ns)

    @property
    def error(self) -> RecordingError | None:
        """The error that stopped the writer (a full disk, an unwritable folder), else None."""
        return self._error

    @property
    def status(self) -> str:
        """``waiting``, ``recording``, ``complete`` or ``failed``."""
        return self._status

    # ------------------------------------------------------------------ input (the server's threads)
    def observe(self, frame_set: FrameSet) -> None:
        """The server's ``assembled_observer``: keep the set when it lies in the announced window; never blocks.

        Frames are :class:`~posestudio.core.frame_messages.FrameMessage` (the server's) or BGR/gray
        uint8 images (a caller building sets); None for a missing camera.
        """
        if self._closed or self._error is not None:
            return
        t = frame_set.time_ns
        if self.start_ns is None and self._start_on_complete and frame_set.complete:
            self.start_ns = t
        if self.start_ns is None or t < self.start_ns:
            self.counts["before_start"] += 1
            return
        if self.stop_ns is not None and t >= self.stop_ns:
            self.counts["after_stop"] += 1
            return
        try:
            self._queue.put_nowait(frame_set)
        except queue.Full:
            self.counts["dropped_sets"] += 1

    def add_keypoints2d(self, slot: int, keypoints: np.ndarray, joint_names: Sequence[str]) -> None:
        """The 2D found for a set: ``(C, J, 3)`` x, y pixels, confidence; NaN where not found."""
        kp = np.asarray(keypoints, np.float32)
        if kp.shape != (len(self.cameras), len(joint_names), 3):
            raise InputError(f"recording: 2D keypoints of shape {kp.shape}; expected ({len(self.cameras)}, "
                             f"{len(joint_names)}, 3)")
        with self._results_lock:
            self._kp_joints = tuple(joint_names)
            self._kp2d[int(slot)] = kp
            self._results_changed = True

    def add_points3d(self, slot: int, points: np.ndarray, confidence: np.ndarray) -> None:
        """The 3D skeleton of a set: ``points (17, 3)`` metres (H36M17), ``confidence (17,)`` in [0, 1]."""
        with self._results_lock:
            self._pts3d[int(slot)] = (np.asarray(points, np.float64).reshape(17, 3),
                                      np.asarray(confidence, np.float32).reshape(17))
            self._results_changed = True

    # ------------------------------------------------------------------ writer thread
    def _writer(self) -> None:
        next_flush = time.monotonic() + self.flush_every_s
        next_results = time.monotonic() + self.results_every_s
        try:
            while True:
                timeout = max(0.0, next_flush - time.monotonic())
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    item = ...
                if item is None:
                    break
                if isinstance(item, FrameSet):
                    self._write_set(item)
                now = time.monotonic()
                if now >= next_flush:
                    self._flush()
                    next_flush = now + self.flush_every_s
                if now >= next_results:
                    self._write_results()
                    next_results = now + self.results_every_s
        except OSError as exc:
            self._fail(_io_error(self.folder, exc))
        except Exception as exc:   # noqa: BLE001 - reported through .error; the studio goes on
            log.exception("recording: the writer failed")
            self._fail(RecordingError(f"recording: {self.folder}: {exc}"))

    def _fail(self, error: RecordingError) -> None:
        self._error = error
        self._status = "failed"
        log.error("%s", error)
        try:
            self._write_metadata()
        except OSError:
            pass

    def _write_set(self, fs: FrameSet) -> None:
        cams: dict[str, Any] = {}
        for cam in self.cameras:
            payload = fs.frames.get(cam)
            if payload is None:
                cams[cam] = None
                self.counts["missing"][cam] += 1
                continue
            data, suffix = _encoded(cam, payload, self.jpeg_quality)
            name = f"frames/{cam}/{fs.slot:08d}{suffix}"
            path = self.folder / name
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
            entry: dict[str, Any] = {"file": name, "video_frame": self._video_frames[cam],
                                     "studio_time_ns": fs.times_ns.get(cam)}
            if isinstance(payload, FrameMessage):
                entry.update(sequence=payload.sequence, capture_time_ns=payload.capture_time_ns,
                             width=payload.width, height=payload.height)
            self._video_frames[cam] += 1
            self.counts["frames"][cam] += 1
            cams[cam] = entry
        line = {"slot": fs.slot, "studio_time_ns": fs.time_ns, "uncertainty_ns": fs.uncertainty_ns,
                "spread_ns": fs.spread_ns, "cameras": cams}
        self._index.write(json.dumps(line, separators=(",", ":")) + "\n")
        self._index.flush()                           # in the kernel at once: a killed process loses nothing here
        self._slots.append(fs.slot)
        self._slot_times.append(fs.time_ns)
        self.counts["sets"] += 1
        if self.first_slot_ns is None:
            self.first_slot_ns = fs.time_ns
            self._status = "recording"
            self._write_metadata()
        self.last_slot_ns = fs.time_ns

    def _flush(self) -> None:
        """fsync the index, log the clocks, replace the metadata (every ``flush_every_s``)."""
        if self.clock_status is not None:
            try:
                status = dict(self.clock_status())
            except Exception as exc:   # noqa: BLE001 - a stats hiccup must not stop the recording
                status = {"error": str(exc)}
            doc = json.loads(json_text({"studio_time_ns": self.clock(), "cameras": status}))   # NaN as null
            self._clock_log.write(json.dumps(doc, separators=(",", ":")) + "\n")
            self._clock_log.flush()
            os.fsync(self._clock_log.fileno())
        os.fsync(self._index.fileno())
        self._write_metadata()

    def _write_results(self) -> None:
        with self._results_lock:
            if not self._results_changed:
                return
            self._results_changed = False
            kp2d, joints, pts3d = dict(self._kp2d), self._kp_joints, dict(self._pts3d)
        slots = np.asarray(self._slots, np.int64)
        times = np.asarray(self._slot_times, np.int64)
        if not len(slots):
            return
        common = {"slots": slots, "studio_time_ns": times, "fps": np.float64(self.fps),
                  "format_version": np.int64(KEYPOINTS_FORMAT_VERSION)}
        if kp2d and joints is not None:
            kp = np.full((len(self.cameras), len(slots), len(joints), 3), np.nan, np.float32)
            for f, s in enumerate(slots):
                if int(s) in kp2d:
                    kp[:, f] = kp2d[int(s)]
            write_npz_atomic(self.folder / KEYPOINTS_FILE, keypoints=kp, camera_names=np.array(self.cameras),
                             joint_names=np.array(joints), format=np.array(KEYPOINTS2D_FORMAT), **common)
        if pts3d:
            pts = np.full((len(slots), 17, 3), np.nan)
            conf = np.zeros((len(slots), 17), np.float32)
            for f, s in enumerate(slots):
                if int(s) in pts3d:
                    pts[f], conf[f] = pts3d[int(s)]
            write_npz_atomic(self.folder / POINTS_FILE, points3d=pts, confidence=conf,
                             joint_names=np.array(H36M17_NAMES), format=np.array(POINTS3D_FORMAT), **common)

    def metadata(self) -> dict[str, Any]:
        """``session.json``'s document now (``docs/recording.md``)."""
        return {"format": SESSION_FORMAT, "format_version": SESSION_VERSION, "session": self.session_name,
                "status": self._status, "cameras": self.cameras, "fps": self.fps,
                "start_studio_ns": self.start_ns, "stop_studio_ns": self.stop_ns,
                "first_slot_studio_ns": self.first_slot_ns, "last_slot_studio_ns": self.last_slot_ns,
                "time_unix_s": time.time(), "counts": self.counts,
                "error": None if self._error is None else str(self._error)}

    def _write_metadata(self) -> None:
        write_text_atomic(self.folder / SESSION_FILE, json_text(self.metadata()))

    # ------------------------------------------------------------------ stop
    def close(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """Write what is queued, the results and the videos, mark the session complete; returns the metadata.

        Safe twice. Raises:
            RecordingError: the writer failed (a full disk...): the session keeps what was written.
        """
        if not self._closed:
            self._closed = True
            while self._error is None and self._thread.is_alive():
                try:
                    self._queue.put(None, timeout=0.1)
                    break
                except queue.Full:
                    continue
            self._thread.join(timeout_s)
            try:
                if self._error is None:
                    self._flush()
                    self._write_results()
                    if self.make_videos and self._slots:
                        write_videos(self.folder, self.fps)
                    self._status = "complete"
                    self._write_metadata()
            except OSError as exc:
                self._fail(_io_error(self.folder, exc))
            finally:
                for f in (self._index, self._clock_log):
                    try:
                        f.close()
                    except OSError:
                        pass
        if self._error is not None:
            raise self._error
        return self.metadata()

    def __enter__(self) -> SessionRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RecordingDetector(Detector2D):
    """A detector that hands each set's 2D (each view's first person) to a :class:`SessionRecorder` too.

    Wrap the live server's detector with it: the server's processing thread calls :meth:`detect` once
    per set, with the set's slot as the window's index.
    """

    def __init__(self, inner: Detector2D, recorder: SessionRecorder) -> None:
        self.inner, self.recorder = inner, recorder
        self.name, self.layout, self.context = inner.name, inner.layout, inner.context

    def reset(self, n_views: int) -> None:
        self.inner.reset(n_views)

    def detect(self, window: FrameWindow) -> list[np.ndarray]:
        people = self.inner.detect(window)
        kp = np.full((len(people), self.layout.n_joints, 3), np.nan, np.float32)
        for v, found in enumerate(people):
            if len(found):
                kp[v] = found[0]
        if len(people) == len(self.recorder.cameras):
            self.recorder.add_keypoints2d(window.index, kp, self.layout.joints)
        return people

    def close(self) -> None:
        self.inner.close()


class SkeletonTap:
    """The live server's skeleton stream followed into a :class:`SessionRecorder`'s 3D results.

    A SUB socket on ``endpoint`` (the server's ``skeleton_endpoint``) in its own thread; each message's
    first person goes to :meth:`SessionRecorder.add_points3d` under its ``frame_index`` (the slot).
    Messages lost to ZeroMQ (a slow joiner's first milliseconds) leave those slots NaN.
    """

    def __init__(self, endpoint: str, recorder: SessionRecorder) -> None:
        self.recorder, self.received = recorder, 0
        self._socket = zmq.Context.instance().socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._socket.connect(endpoint)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="session-skeletons", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        sock = self._socket
        try:
            while not self._stop.is_set():
                if not sock.poll(100, zmq.POLLIN):
                    continue
                try:
                    frame = decode_frame(sock.recv_multipart(zmq.NOBLOCK))
                except (zmq.Again, StreamMessageError):
                    continue
                if frame.frame_index is None or frame.n_people == 0:
                    continue
                self.recorder.add_points3d(frame.frame_index, frame.points[0], frame.confidence[0])
                self.received += 1
        finally:
            sock.close(linger=0)

    def close(self) -> None:
        """Stop following the stream (waits at most a poll, 0.1 s, for the thread)."""
        self._stop.set()
        self._thread.join(5.0)


class ServerRecording:
    """A :class:`SessionRecorder` wired into a live server (what ``posestudio serve --record`` does).

    Build it before the server (its :attr:`detector` wraps the server's detector to record the 2D; its
    :meth:`observe` is the server's ``assembled_observer``), call :meth:`attach` once the server has started
    (the skeleton stream gives the 3D, the server's stats the clock log, and the start time is set),
    and :meth:`close` after the server stopped.

    Args:
        folder: the session folder; rig, cameras, fps: as the server runs.
        detector: the server's detector (wrapped by :attr:`detector`).
        session_name: free text (default: the folder's name).
    """

    def __init__(self, folder: str | Path, rig: CameraRig, cameras: Sequence[str], fps: float,
                 detector: Detector2D, session_name: str | None = None) -> None:
        self._server: Any = None
        self.recorder = SessionRecorder(folder, rig, cameras, fps, session_name or Path(folder).name,
                                        clock_status=self._clock_status)
        self.detector = RecordingDetector(detector, self.recorder)
        self.observe = self.recorder.observe
        self._tap: SkeletonTap | None = None

    def _clock_status(self) -> dict[str, Any]:
        server = self._server
        if server is None:
            return {}
        return {name: cam.get("clock") for name, cam in server.stats()["cameras"].items()}

    def attach(self, server: Any, start_in_s: float | None = None) -> None:
        """Follow ``server`` (a started :class:`~.server.LiveServer`); record from its first complete
        set, or from ``start_in_s`` seconds of studio time from now."""
        self._server = server
        self.recorder.clock = server.clock
        self._tap = SkeletonTap(server.skeleton_endpoint.replace("0.0.0.0", "127.0.0.1"), self.recorder)
        if start_in_s is None:
            self.recorder.start_at_first_complete()
        else:
            self.recorder.start_at(server.clock() + int(round(start_in_s * 1e9)))

    def close(self) -> dict[str, Any]:
        """Stop following the stream and close the recorder (marks the session complete); its metadata.

        Raises:
            RecordingError: the writer failed (the session keeps what was written).
        """
        if self._tap is not None:
            self._tap.close()
        return self.recorder.close()
