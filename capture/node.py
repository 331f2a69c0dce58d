"""A capture node: one camera's frames, stamped and published to the studio server over ZeroMQ.

:class:`CaptureNode` reads a source, stamps each frame's capture time, and publishes it as a frame
message (:mod:`posestudio.core.frame_messages`, ``docs/live_studio.md``) on a PUB socket that
*connects* to the server's endpoint (the server binds a SUB socket; nodes come and go)::

    node = CaptureNode("cam03", "takes/cam03.mp4", "tcp://studio-server:5560", loop=True)
    node.run(duration_s=60)            # or node.start() ... node.stop()
    print(node.stats())

Sources: an OpenCV camera index (``0``) or stream URL (``rtsp://...``, ``http://...``), read as the
device delivers; a video file or an image folder (:class:`~posestudio.capture.sources.FrameSource`),
paced at the video's frame rate (an image folder at ``fps``, by default :data:`DEFAULT_FOLDER_FPS`),
played again with ``loop``; or any iterable of BGR frames (``(H, W, 3)`` uint8), paced at ``fps``
when given (a renderer is given this way: ``posestudio node --source synthetic:RIG.toml``).

Two threads per node, and no lock-step with any other camera:

- the grab thread reads a frame, stamps it with ``clock()`` at the midpoint of the read call minus
  ``latency_ns`` (paced sources are read when their slot on a fixed monotonic schedule comes; a
  source that falls more than a frame behind starts a new schedule rather than burst), numbers it
  (``sequence``, from 0) and appends it to a short deque of ``queue_frames`` frames that drops the
  OLDEST frame when full (counted in ``dropped_queue``), so a slow encoder or network never makes
  the frames sent old, and never holds up the grab;
- the sender thread takes the oldest frame waiting, encodes it (JPEG at ``jpeg_quality``, or raw
  BGR) and sends it without blocking; when ZeroMQ's queue to the server is full (``send_hwm``
  messages: a slow or absent server) the frame is dropped and counted in ``dropped_send``.

A sequence gap seen by the server is therefore a dropped frame, wherever it was dropped. Frames sent
before the server's SUB socket has connected and subscribed are lost (ZeroMQ's slow joiner), as are
frames sent while no server listens. The socket belongs to the sender thread (made, used and closed
there, linger 0): closing never waits on an absent server.

With ``clock_endpoint`` the node also binds a :class:`~posestudio.capture.clock_sync.ClockProbeResponder`
that answers the server's clock probes with the node's own ``clock`` (``docs/clock_sync.md``), so the
server can map the node's stamps to studio time.

With ``control_endpoint`` the node also runs a :class:`~posestudio.capture.control.ControlClient`: it
registers its camera and its clock responder (the endpoint the server can reach, see
:func:`advertised_endpoint`), heartbeats with its counters, registers again when the server restarts,
and follows the server's commands: ``start_recording`` / ``stop_recording`` name the session in the
headers of the frames captured from the announced studio time on (converted to this node's clock with
the offset the server sends), ``configure`` sets ``jpeg_quality``.

``security`` (``lambda s: client_socket_security(s, node_keys, server_public)``, ``capture/keys.py``) is
applied to every socket of the node before it connects or binds: the frame PUB, the control DEALER and
the clock responder's ROUTER, all CURVE clients of the studio's server.
"""

from __future__ import annotations

import bisect
import collections
import re
import socket as socketlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self

import cv2
import numpy as np
import zmq
from numpy.typing import NDArray

from posestudio.core.errors import InputError
from posestudio.core.frame_messages import (
    ENCODINGS,
    JPEG,
    MAX_SESSION,
    encode_frame_message,
    encode_image,
    frame_topic,
)

from .clock_sync import ClockProbeResponder
from .control import ControlClient, SocketHook
from .sources import FrameSource, SourceError

#: The frame rate an image folder is paced at when none is given, frames per second.
DEFAULT_FOLDER_FPS = 30.0
#: How long opening or reading a stream URL may take before it fails, milliseconds.
STREAM_TIMEOUT_MS = 10_000
#: How long :meth:`CaptureNode.stop` waits for each thread, seconds.
JOIN_TIMEOUT_S = 5.0
_ENDPOINT = re.compile(r"^(tcp://[^\s/]+:(\d+|\*)|ipc://\S+|inproc://\S+)$")

Frame = NDArray[np.uint8]
#: Settings the server may change through ``configure``, and their checks.
CONFIGURABLE = ("jpeg_quality",)


def advertised_endpoint(bound: str, server_endpoint: str) -> str:
    """The endpoint a server can reach a socket bound at ``bound`` by: a wildcard host (``0.0.0.0``, ``*``,
    ``::``) becomes this machine's address on the route to ``server_endpoint``'s host (no packet is sent:
    a UDP socket is connected only to ask the kernel which interface it would use); any other is as is.
    ``127.0.0.1`` when the server is on this machine or the route cannot be found."""
    m = re.match(r"^tcp://(\[[^\]]*\]|[^:]+):(\d+)$", bound)
    if m is None or m.group(1) not in ("0.0.0.0", "*", "[::]", "::"):
        return bound
    host = re.match(r"^tcp://(\[[^\]]*\]|[^:/]+)", server_endpoint)
    local = "127.0.0.1"
    if host is not None and host.group(1) not in ("127.0.0.1", "localhost", "*", "0.0.0.0"):
        try:
            with socketlib.socket(socketlib.AF_INET, socketlib.SOCK_DGRAM) as udp:
                udp.connect((host.group(1).strip("[]"), 9))
                local = udp.getsockname()[0]
        except OSError:
            local = socketlib.gethostname()
    return f"tcp://{local}:{m.group(2)}"


class _Reader(Protocol):
    """What the grab thread reads: frames until None (the end)."""

    description: str
    fps: float | None      # the source's own frame rate (None: unknown)
    live: bool             # the device paces itself (a camera or stream)

    def read(self) -> Frame | None: ...
    def close(self) -> None: ...


class _CaptureReader:
    """An OpenCV camera index or stream URL, read as the device delivers."""

    live = True

    def __init__(self, spec: int | str, fps: float | None) -> None:
        self.description = f"camera {spec}" if isinstance(spec, int) else f"stream {spec}"
        log = cv2.utils.logging
        level = log.getLogLevel()
        log.setLogLevel(log.LOG_LEVEL_SILENT)   # each backend tried would print its own warning
        try:
            if isinstance(spec, int):
                self._cap = cv2.VideoCapture(spec)
            else:   # a stream: FFmpeg, with timeouts so an unreachable or stalled stream fails rather than hangs
                self._cap = cv2.VideoCapture(spec, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                                                                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
        finally:
            log.setLogLevel(level)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"{self.description}: OpenCV cannot open it; expected a connected camera index or a "
                              "reachable stream URL")
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)   # the newest frame, where the backend allows (latency)
        if fps is not None:
            self._cap.set(cv2.CAP_PROP_FPS, float(fps))
        got = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(got) if got and got > 0 else None

    def read(self) -> Frame | None:
        ok, frame = self._cap.read()
        return frame if ok else None

    def close(self) -> None:
        self._cap.release()


class _FileReader:
    """A video file or image folder through :class:`FrameSource`, decoded in order, again with ``loop``."""

    live = False

    def __init__(self, source: FrameSource, loop: bool) -> None:
        self.description = f"{'video' if source.is_video else 'image folder'} {source.path}"
        self.fps = source.fps()
        self._source, self._loop = source, loop
        self._frames: Iterator[tuple[int, Frame]] | None = None

    def read(self) -> Frame | None:
        for attempt in range(2):
            if self._frames is None:
                self._frames = iter(self._source.frames(gray=False))
            item = next(self._frames, None)
            if item is not None:
                return item[1]
            self._frames = None
            if not self._loop or attempt:   # the end, or a source that holds no frame at all
                return None
        return None

    def close(self) -> None:
        frames, self._frames = self._frames, None
        if frames is not None and hasattr(frames, "close"):
            frames.close()   # releases the video decoder


class _IterableReader:
    """Any iterable of BGR frames; ``loop`` iterates a re-iterable one again (an iterator ends)."""

    live = False
    fps = None

    def __init__(self, frames: Iterable[Frame], loop: bool) -> None:
        self.description = f"frames from {type(frames).__name__}"
        self._iterable, self._loop = frames, loop
        self._it: Iterator[Frame] | None = None

    def read(self) -> Frame | None:
        for attempt in range(2):
            if self._it is None:
                self._it = iter(self._iterable)
            frame = next(self._it, None)
            if frame is not None:
                return frame
            again = self._loop and iter(self._iterable) is not self._iterable
            self._it = None
            if not again or attempt:
                return None
        return None

    def close(self) -> None:
        it, self._it = self._it, None
        if it is not None and hasattr(it, "close"):
            it.close()   # a generator's finally blocks run


def open_reader(source: object, fps: float | None = None, loop: bool = False) -> _Reader:
    """A reader for ``source`` (see the module docstring), opened and checked.

    Args:
        source: an ``int`` camera index, a ``str`` stream URL (``scheme://...``), a video file or image
            folder (``str`` or ``Path``), a :class:`FrameSource`, or an iterable of BGR frames.
        fps: the frame rate asked of a camera (a hint to the driver).
        loop: play a file, folder or re-iterable again at its end.

    Raises:
        SourceError: a camera or stream OpenCV cannot open, a missing or unreadable file or folder,
            a source of no known kind.
    """
    if isinstance(source, bool):
        raise SourceError(f"source {source!r}: expected a camera index, stream URL, video file, image folder or "
                          "an iterable of frames")
    if isinstance(source, (int, np.integer)):
        if int(source) < 0:
            raise SourceError(f"camera index {int(source)}: expected 0 or more")
        return _CaptureReader(int(source), fps)
    if isinstance(source, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source):
        return _CaptureReader(source, fps)
    if isinstance(source, (str, Path)):
        return _FileReader(FrameSource.open(source), loop)
    if isinstance(source, FrameSource):
        return _FileReader(source, loop)
    if isinstance(source, Iterable) and not isinstance(source, (bytes, bytearray, np.ndarray)):
        return _IterableReader(source, loop)
    raise SourceError(f"source of type {type(source).__name__}: expected a camera index, stream URL, video file, "
                      "image folder or an iterable of BGR frames")


@dataclass(frozen=True)
class NodeStats:
    """A node's counters at one moment.

    Attributes:
        grabbed: frames read from the source (the next frame's sequence number).
        sent: frames handed to ZeroMQ.
        dropped_queue: frames pushed out of the grab queue by newer ones before the sender took them.
        dropped_send: encoded frames dropped because ZeroMQ's queue to the server was full.
        encode_s: seconds spent encoding, all frames together.
        elapsed_s: seconds from :meth:`CaptureNode.start` to now (or to :meth:`CaptureNode.stop`).
    """

    grabbed: int
    sent: int
    dropped_queue: int
    dropped_send: int
    encode_s: float
    elapsed_s: float

    @property
    def dropped(self) -> int:
        """Frames grabbed but not sent, wherever they were dropped."""
        return self.dropped_queue + self.dropped_send

    @property
    def encode_ms(self) -> float:
        """Mean encoding time per frame encoded, milliseconds (NaN before the first)."""
        n = self.sent + self.dropped_send
        return 1000.0 * self.encode_s / n if n else float("nan")


class CaptureNode:
    """One camera streaming frame messages to the studio server (see the module docstring).

    Args:
        camera: the camera's name, as in the rig (the topic is ``frame/<camera>/``).
        source: camera index, stream URL, video file, image folder, :class:`FrameSource` or iterable of
            BGR frames ``(H, W, 3)`` uint8.
        endpoint: the server's SUB endpoint to connect to (``tcp://HOST:PORT``, ``ipc://``, ``inproc://``).
        session: the recording session named in every header.
        fps: pacing, frames per second: for files, folders and iterables the rate frames are released
            at (default: a video's own rate; a folder :data:`DEFAULT_FOLDER_FPS`; an iterable as fast as
            it yields); for cameras and streams a request to the driver.
        loop: play a file, folder or re-iterable source again at its end.
        jpeg_quality: 1 to 100; encoding: ``"jpeg"`` or ``"raw-bgr8"``.
        queue_frames: frames the grab queue holds before it drops the oldest (>= 1).
        clock: the node's clock, integer nanoseconds (default :func:`time.monotonic_ns`: it never steps).
        latency_ns: the camera's latency, subtracted from each stamp, nanoseconds.
        send_hwm: ZeroMQ send high-water mark, messages queued to the server before frames are dropped
            (default 4: the grab queue's frames and the one in hand can go out in a burst after a hiccup,
            and the socket learns only every millisecond or so that ZeroMQ's I/O thread drained its queue).
        send_buffer_bytes: the kernel's TCP send buffer (SO_SNDBUF), bytes (default 1 MiB, two or three
            1080p JPEG frames); 0 keeps the OS default (autotuned, up to megabytes: more latency can pile up).
        source_name: how status lines name the source (default: its kind and path).
        context: the ZeroMQ context (default: the process's shared one).
        clock_endpoint: where to bind a :class:`~posestudio.capture.clock_sync.ClockProbeResponder`
            answering the server's clock probes with ``clock`` (``tcp://*:5581``; ``tcp://127.0.0.1:*``
            picks a free port, see :attr:`clock_endpoint`); None: no responder. Bound here, answered
            from :meth:`start` to :meth:`stop`.
        control_endpoint: the server's control ROUTER (``tcp://HOST:PORT``): run a control client from
            :meth:`start` to :meth:`stop` (see the module docstring); None: no control channel.
        security: called with each socket before it connects or binds (CURVE keys; see the module docstring).
        heartbeat_s: seconds between control heartbeats.

    Attributes:
        clock_endpoint: the responder's bound endpoint (None without one).
        advertised_clock_endpoint: the endpoint registered on the control channel (the bound one, a
            wildcard host replaced by this machine's address towards the server).
        control: the :class:`~posestudio.capture.control.ControlClient` (None without ``control_endpoint``).
        grabbed, sent, dropped_queue, dropped_send: the counters (see :class:`NodeStats`).
        error: the exception that stopped the node early (a source that failed mid-stream), else None.

    Raises:
        InputError: a malformed camera name, endpoint or option; SourceError: a source that cannot be opened;
            ClockSyncError: ``clock_endpoint`` cannot be bound.
    """

    def __init__(self, camera: str, source: object, endpoint: str, session: str = "", fps: float | None = None,
                 loop: bool = False, jpeg_quality: int = 90, queue_frames: int = 2,
                 clock: Callable[[], int] = time.monotonic_ns, latency_ns: int = 0, *, encoding: str = JPEG,
                 send_hwm: int = 4, send_buffer_bytes: int = 1 << 20, source_name: str | None = None,
                 context: zmq.Context | None = None, clock_endpoint: str | None = None,
                 control_endpoint: str | None = None, security: SocketHook | None = None,
                 heartbeat_s: float = 0.5) -> None:
        self.camera = camera
        self.topic = frame_topic(camera)   # checks the name
        if not isinstance(endpoint, str) or not _ENDPOINT.match(endpoint):
            raise InputError(f"node {camera}: server endpoint {endpoint!r}; expected tcp://HOST:PORT (or ipc://PATH)")
        if fps is not None and not (np.isfinite(fps) and fps > 0):
            raise InputError(f"node {camera}: fps {fps}; expected a positive number of frames per second")
        if not 1 <= int(jpeg_quality) <= 100:
            raise InputError(f"node {camera}: JPEG quality {jpeg_quality}; expected 1 to 100")
        if encoding not in ENCODINGS:
            raise InputError(f"node {camera}: encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")
        if queue_frames < 1 or send_hwm < 1 or send_buffer_bytes < 0:
            raise InputError(f"node {camera}: queue_frames {queue_frames} and send_hwm {send_hwm} must be at least 1, "
                             f"send_buffer_bytes {send_buffer_bytes} 0 or more")
        if len(session) > MAX_SESSION:
            raise InputError(f"node {camera}: session has {len(session)} characters; expected at most {MAX_SESSION}")
        self.endpoint = endpoint
        self.session = session
        self.loop = loop
        self.jpeg_quality = int(jpeg_quality)
        self.encoding = encoding
        self.queue_frames = int(queue_frames)
        self.clock = clock
        self.latency_ns = int(latency_ns)
        self.send_hwm = int(send_hwm)
        self.send_buffer_bytes = int(send_buffer_bytes)
        self._context = context
        self._security = security
        if control_endpoint is not None and (not isinstance(control_endpoint, str)
                                             or not _ENDPOINT.match(control_endpoint)):
            raise InputError(f"node {camera}: control endpoint {control_endpoint!r}; expected tcp://HOST:PORT")
        self._reader = open_reader(source, fps, loop)
        self._responder: ClockProbeResponder | None = None
        if clock_endpoint is not None:
            try:
                self._responder = ClockProbeResponder(clock_endpoint, clock, context=context, configure=security)
            except BaseException:
                self._reader.close()
                raise
        self.clock_endpoint: str | None = None if self._responder is None else self._responder.endpoint
        self.advertised_clock_endpoint = "" if self.clock_endpoint is None else \
            advertised_endpoint(self.clock_endpoint, control_endpoint or endpoint)
        self.control: ControlClient | None = None
        self._control_endpoint, self._heartbeat_s = control_endpoint, float(heartbeat_s)
        # session changes announced by the server: (node-clock ns from which it holds, session), sorted
        self._sessions: list[tuple[int, str]] = []
        self._sessions_lock = threading.Lock()
        self.source_description = source_name or self._reader.description
        if self._reader.live:
            self.period_s: float | None = None
        elif fps is not None:
            self.period_s = 1.0 / fps
        elif isinstance(self._reader, _FileReader):
            self.period_s = 1.0 / (self._reader.fps or DEFAULT_FOLDER_FPS)
        else:
            self.period_s = None
        self.grabbed = 0
        self.sent = 0
        self.dropped_queue = 0
        self.dropped_send = 0
        self.encode_s = 0.0
        self.error: BaseException | None = None
        # (sequence, capture_time_ns, frame); appending to a full deque drops the oldest
        self._queue: collections.deque[tuple[int, int, Frame]] = collections.deque(maxlen=self.queue_frames)
        self._ready = threading.Condition()
        self._stop = threading.Event()        # stop now, sending nothing more
        self._grab_done = threading.Event()   # the source ended (or failed): send what is queued, then finish
        self._finished = threading.Event()    # both threads are done
        self._connected = threading.Event()
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ life cycle
    @property
    def fps(self) -> float | None:
        """The pace frames are released at, frames per second (None: as the source delivers)."""
        return None if self.period_s is None else 1.0 / self.period_s

    def start(self) -> None:
        """Connect to the server and start the grab and sender threads; returns at once.

        Raises:
            InputError: the endpoint cannot be connected to (malformed address).
            RuntimeError: the node was started before.
        """
        if self._threads:
            raise RuntimeError(f"node {self.camera}: start() called twice")
        self._started_at = time.monotonic()
        sender = threading.Thread(target=self._send_loop, name=f"node-{self.camera}-send", daemon=True)
        grabber = threading.Thread(target=self._grab_loop, name=f"node-{self.camera}-grab", daemon=True)
        self._threads = [sender, grabber]
        sender.start()
        self._connected.wait()   # the sender sets it once its socket is connected (or failed to)
        if self.error is not None:
            self._finished.set()
            self._reader.close()
            self._close_responder()
            raise self.error
        if self._responder is not None:
            self._responder.start()
        if self._control_endpoint is not None:
            try:
                self.control = ControlClient(
                    self._control_endpoint, self.camera, self.advertised_clock_endpoint, self._context,
                    self._security, self._heartbeat_s, on_start=self._on_start, on_stop=self._on_stop,
                    on_configure=self._on_configure, fps=self.fps,
                    stats=lambda: (self.grabbed, self.sent, self.dropped_queue + self.dropped_send)).start()
            except BaseException:   # a security hook that failed: nothing keeps running
                self._stop.set()
                with self._ready:
                    self._ready.notify_all()
                sender.join(JOIN_TIMEOUT_S)
                self._finished.set()
                self._reader.close()
                self._close_responder()
                raise
        grabber.start()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until the source ended and every queued frame was sent (or the node stopped); True when done."""
        return self._finished.wait(timeout_s)

    def stop(self) -> NodeStats:
        """Stop both threads (frames still queued are not sent), close the socket; returns the final counters.

        Safe to call twice. A camera read that never returns cannot be interrupted: the grab thread is
        then left behind (a daemon) after :data:`JOIN_TIMEOUT_S`.
        """
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        if self.control is not None:
            self.control.stop()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT_S)
        self._close_responder()
        self._finished.set()
        if self._started_at is not None and self._stopped_at is None:
            self._stopped_at = time.monotonic()
        return self.stats()

    # ------------------------------------------------------------------ control commands (the control thread)
    def _node_ns(self, studio_time_ns: int) -> int:
        """A studio time on this node's clock: the offset the server sent, else as is (same clock)."""
        assert self.control is not None
        node_ns = self.control.to_node_ns(studio_time_ns)
        return int(studio_time_ns) if node_ns is None else node_ns

    def _on_start(self, session: str, studio_time_ns: int) -> None:
        self._set_session(self._node_ns(studio_time_ns), session)

    def _on_stop(self, studio_time_ns: int) -> None:
        self._set_session(self._node_ns(studio_time_ns), "")

    def _set_session(self, from_node_ns: int, session: str) -> None:
        with self._sessions_lock:
            bisect.insort(self._sessions, (from_node_ns, session))

    def _on_configure(self, values: dict[str, object]) -> None:
        unknown = sorted(set(values) - set(CONFIGURABLE))
        if unknown:
            raise ValueError(f"settings {unknown} are not configurable; expected some of {list(CONFIGURABLE)}")
        quality = values.get("jpeg_quality")
        if not isinstance(quality, int) or isinstance(quality, bool) or not 1 <= quality <= 100:
            raise ValueError(f"jpeg_quality {quality!r}; expected 1 to 100")
        self.jpeg_quality = quality

    def session_at(self, stamp_ns: int) -> str:
        """The session a frame stamped ``stamp_ns`` (this node's clock) belongs to: the last change the server
        announced at or before it, else the constructor's ``session``."""
        with self._sessions_lock:
            changes = self._sessions
            if not changes:
                return self.session
            i = bisect.bisect_right(changes, (stamp_ns, "\U0010ffff"))
            if i > 1:
                del changes[: i - 1]   # older changes never apply again (stamps only grow)
                i = 1
            return changes[i - 1][1] if i else self.session

    def _close_responder(self) -> None:
        """Stop answering clock probes and unbind the responder (safe to call twice)."""
        responder, self._responder = self._responder, None
        if responder is not None:
            responder.stop()

    def run(self, duration_s: float | None = None) -> NodeStats:
        """Start, stream until ``duration_s`` seconds passed (None: until the source ends), stop.

        Returns:
            The final counters.
        Raises:
            The error that stopped the node early (:attr:`error`), e.g. a frame the source could not decode.
        """
        self.start()
        try:
            self.wait(duration_s)
        finally:
            stats = self.stop()
        if self.error is not None:
            raise self.error
        return stats

    def stats(self) -> NodeStats:
        """The counters now."""
        end = self._stopped_at if self._stopped_at is not None else time.monotonic()
        elapsed = 0.0 if self._started_at is None else end - self._started_at
        # the downstream counters first: a frame counted there was grabbed before, so grabbed >= sent + dropped
        sent, dropped_send, dropped_queue, encode_s = self.sent, self.dropped_send, self.dropped_queue, self.encode_s
        return NodeStats(self.grabbed, sent, dropped_queue, dropped_send, encode_s, elapsed)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._threads:
            self.stop()
        else:
            self._reader.close()
            self._close_responder()

    # ------------------------------------------------------------------ threads
    def _grab_loop(self) -> None:
        """Read, stamp, number and queue frames until the source ends or :meth:`stop` (the grab thread)."""
        period = self.period_s
        due = None   # the next slot on the monotonic schedule (paced sources)
        try:
            while not self._stop.is_set():
                if period is not None:
                    now = time.monotonic()
                    due = now if due is None else due
                    if due - now < -period:   # more than a frame behind: a new schedule, not a burst
                        due = now
                    if self._stop.wait(max(0.0, due - now)):
                        break
                    due += period
                t0 = self.clock()
                frame = self._reader.read()
                t1 = self.clock()
                if frame is None:
                    break
                stamp = (t0 + t1) // 2 - self.latency_ns
                with self._ready:
                    if len(self._queue) == self.queue_frames:
                        self.dropped_queue += 1   # the deque pushes the oldest out
                    self._queue.append((self.grabbed, stamp, frame))
                    self.grabbed += 1
                    self._ready.notify()
        except BaseException as exc:   # noqa: BLE001 - reported by run(); the node stops
            self.error = exc
        finally:
            self._reader.close()
            self._grab_done.set()
            with self._ready:
                self._ready.notify_all()

    def _encode(self, image: Frame) -> bytes:
        """The payload of one frame (the sender thread; a test may replace it to stall the sender)."""
        return encode_image(image, self.encoding, self.jpeg_quality)

    def _next_frame(self) -> tuple[int, int, Frame] | None:
        """The oldest queued frame; waits for one; None when the node stops or the source ended with none left."""
        with self._ready:
            while not self._queue:
                if self._stop.is_set() or self._grab_done.is_set():
                    return None
                self._ready.wait(0.5)   # woken by every new frame; the timeout only guards against a lost wake-up
            if self._stop.is_set():
                return None
            return self._queue.popleft()

    def _send_loop(self) -> None:
        """Connect, then encode and send queued frames without blocking (the sender thread)."""
        socket = None
        try:
            socket = (self._context or zmq.Context.instance()).socket(zmq.PUB)
            # options before connect (the pyzmq guide): they apply to the connection made afterwards
            socket.setsockopt(zmq.SNDHWM, self.send_hwm)
            if self.send_buffer_bytes:
                socket.setsockopt(zmq.SNDBUF, self.send_buffer_bytes)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.XPUB_NODROP, 1)   # a full queue says so (EAGAIN) rather than drop silently
            if self._security is not None:
                self._security(socket)               # CURVE client, before connect
            try:
                socket.connect(self.endpoint)
            except zmq.ZMQError as exc:
                raise InputError(f"node {self.camera}: cannot connect to {self.endpoint!r}: {exc}; expected "
                                 "tcp://HOST:PORT") from None
            self._connected.set()
            while (item := self._next_frame()) is not None:
                sequence, stamp, image = item
                t0 = time.perf_counter()
                payload = self._encode(image)
                self.encode_s += time.perf_counter() - t0
                h, w = image.shape[:2]
                parts = encode_frame_message(self.camera, sequence, stamp, payload=payload, width=w, height=h,
                                             encoding=self.encoding, session=self.session_at(stamp))
                try:
                    socket.send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    self.dropped_send += 1
                else:
                    self.sent += 1
        except BaseException as exc:   # noqa: BLE001 - reported by start() / run(); the node stops
            self.error = self.error or exc
            self._stop.set()
        finally:
            if socket is not None:
                socket.close(linger=0)
            self._connected.set()
            self._finished.set()
