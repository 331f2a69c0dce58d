"""The live reconstruction server: frame messages from the capture nodes in, skeletons out.

:class:`LiveServer` runs four threads (``docs/live_studio.md``, "The reconstruction server")::

    nodes ══ [frame/<cam>/, header, JPEG] ══▶ SUB bind ─ receive thread ─ decode header, clock map,
        FrameSetAssembler (polled every TICK_S) ─▶ bounded queue (queue_sets; full: the OLDEST set dropped)
        ─▶ processing thread ─ JPEG decode ▸ detector (all views) ▸ Reconstructor.push ▸ SkeletonPublisher
    ClockTracker thread: clock bursts to every registered node;  stats thread: every second, log + JSON

- **Receive** (one thread, one SUB socket bound on the data port, subscribed to ``b"frame/"``): it
  sleeps in ``zmq.Poller`` at most :data:`TICK_S`, decodes every waiting message's header
  (:func:`~posestudio.core.frame_messages.decode_frame_message`; a bad message is counted by kind,
  :func:`classify_frame_error`, and dropped), maps the capture time to studio time and pushes the
  frame into the :class:`~posestudio.reconstruction.frame_sets.FrameSetAssembler`, which it also
  polls on each tick so sets leave when a camera is late. It never waits on the processing thread.
- **Studio time**: a camera whose node's clock is registered (:meth:`LiveServer.add_node`, or
  ``clock =`` in the config) is mapped by the :class:`~posestudio.capture.clock_sync.ClockTracker`;
  until its first burst its frames are dropped (``waiting_for_clock``), since an unmapped stamp
  could be anything. A camera with no clock registered: the header's ``clock_offset_ns`` when the
  node sends one, else its stamps are taken as studio time as they are (``node_time``; right when
  the node runs on the server's machine with the same monotonic clock) with the uncertainty
  :data:`UNSYNCED_UNCERTAINTY_NS` (options ``unsynced="drop"`` drops them instead). With the control
  channel, such a camera's frames first wait up to ``registration_wait_s`` for its node to register (a
  node registering its clock responder is then synced; one registering none is taken on node time).
- **Overload**: the queue between the threads holds ``queue_sets`` sets; when it is full the oldest
  set waiting is dropped (``queue_dropped``) and the new one queued, so what is processed is always
  recent and the receive thread never blocks.
- **Processing** (one thread, :class:`~.processing.SetProcessor`): decodes the set's images, runs the detector once on all views (a
  detector with ``context`` k sees each set k sets later, with its neighbours), takes each view's
  first person, and pushes ``(C, J, 3)`` (NaN for missing views) into the one
  :class:`~posestudio.reconstruction.reconstructor.Reconstructor` (the offline live mode's stages),
  then publishes a :class:`~posestudio.core.skeleton_stream.SkeletonFrame` whose ``timestamp_s`` is
  the slot's studio time and ``frame_index`` the slot.
- **Latency** of a set: studio clock at publish minus the slot's studio time (the capture instant).
- **Control** (:class:`~.control_loop.ControlLoop`, its own thread, a ROUTER bound on the control port):
  a node that registers names its clock responder, which :meth:`LiveServer.add_node` starts probing at
  once (the clock tracker is woken; a restarted or rejoining node's model starts afresh, as its clock
  may be another one), so no clock endpoint need be in the config; a node silent for the heartbeat
  time-out is marked gone in the stats and its clock model forgotten (its camera's frames wait for the
  next registration: a restarted node's frames are never read through the dead process's clock). A
  node restarted faster than the time-out is seen by its frame numbers stepping back: when no
  registration came since the old process's last frame, its frames wait for one. :meth:`LiveServer.start_recording` / :meth:`stop_recording`
  announce a studio time to every registered node with its clock offset.
- **CURVE** (``options.keys``): the server runs its sockets in its own ZeroMQ context with the
  studio's authenticator (``capture/keys.py``), started before anything binds; the frame SUB, the
  control ROUTER and the clock-probe DEALERs are CURVE servers, so only nodes holding a key in
  ``authorized/`` are heard (an unkeyed node's frames never arrive). The skeleton stream stays open
  (viewers hold no keys).

Units: ns for times inside, s for options ending in ``_s``, ms in the stats.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from posestudio.capture.clock_sync import ClockTracker
from posestudio.capture.control import DEFAULT_HEARTBEAT_TIMEOUT_S, ControlEvent, SentCommand
from posestudio.capture.keys import (
    HandshakeWatch,
    StudioAuthenticator,
    StudioKeys,
    server_socket_security,
    start_authenticator,
)
from posestudio.core.errors import InputError
from posestudio.core.files import json_text, write_text_atomic
from posestudio.core.frame_messages import TOPIC_PREFIX, FrameMessage, FrameMessageError, decode_frame_message
from posestudio.core.rig import CameraRig
from posestudio.models.detectors.base import Detector2D

from ..frame_sets import FrameSet, FrameSetAssembler
from ..options import ReconstructionOptions
from ..reconstructor import Reconstructor
from ..stream_publisher import SkeletonPublisher
from .config import StudioConfig
from .control_loop import ControlLoop
from .processing import SetProcessor
from .stats import CameraCounters, ReceiveCounters, SetTimings, stats_document, stats_line

log = logging.getLogger(__name__)

#: The receive thread's longest sleep, seconds: how often the assembler is polled without frames.
TICK_S = 0.005
#: Messages the receive thread reads in one go before it polls the assembler again.
DRAIN_MAX = 256
#: The uncertainty given to a stamp taken as studio time without a clock model, ns (1 s: unknown).
UNSYNCED_UNCERTAINTY_NS = 1_000_000_000
#: How long :meth:`LiveServer.stop` waits for each thread, seconds.
JOIN_TIMEOUT_S = 10.0
_PARTS = re.compile(r"has (\d+) parts; expected 3")


def classify_frame_error(error: FrameMessageError) -> str:
    """The kind of a bad frame message (:data:`~.stats.MALFORMED_KINDS`) from its decoder error.

    ``wrong_version``: a version other than the reader's; ``truncated``: a payload shorter or longer
    than its header says, or a message with fewer parts than three; ``malformed``: anything else.
    """
    text = str(error)
    if "this reader's version" in text:
        return "wrong_version"
    parts = _PARTS.search(text)
    if "truncated" in text or (parts is not None and 0 < int(parts.group(1)) < 3):
        return "truncated"
    return "malformed"


@dataclass
class LiveServerOptions:
    """How a :class:`LiveServer` runs.

    Attributes:
        reconstruction: the reconstruction's options (``push`` is always causal).
        queue_sets: frame sets the queue to the processing thread holds before the oldest is dropped.
        clock_interval_s: seconds between clock bursts to each node.
        clock: the studio clock, ns (tests may inject one).
        unsynced: ``"node-time"`` or ``"drop"``: frames of a camera with no clock registered.
        stats_json: file the stats document replaces every ``stats_every_s`` seconds (None: none).
        stats_every_s: seconds between stats lines and files.
        source: the skeleton messages' ``source`` field.
        set_observer: called by the processing thread with each frame set it takes (before detection;
            its frames are :class:`~posestudio.core.frame_messages.FrameMessage`); for recording and tests.
            It must return quickly.
        assembled_observer: called by the receive thread with EVERY frame set the assembler emits, before
            the overload queue (so it also sees the sets processing drops): what a recorder needs. It must
            not block (hand the set to another thread).
        control: run the control channel (a ROUTER on the config's control port; see the module docstring).
        heartbeat_timeout_s: seconds of silence after which a registered node is marked gone.
        control_observer: called on the control thread with every control event (acks of start/stop, for
            a recorder); it must return quickly.
        keys: the studio's keys folder (with the server's secret key and ``authorized/``): CURVE on the frame
            SUB, the control ROUTER and the clock probes; None: no security (``check_security`` decides
            whether that is allowed, in the command).
        registration_wait_s: with the control channel, how long after its first frame a camera with no clock
            (none in the config, none registered, no offset in its headers) waits for its node to register
            before its stamps are taken as node time; its frames are dropped meanwhile (``waiting_for_clock``),
            since a node on another machine stamps with another clock. 0: no wait.
    """

    reconstruction: ReconstructionOptions = field(default_factory=lambda: ReconstructionOptions(live=True))
    queue_sets: int = 2
    clock_interval_s: float = 2.0
    clock: Callable[[], int] = time.monotonic_ns
    unsynced: str = "node-time"
    stats_json: Path | None = None
    stats_every_s: float = 1.0
    source: str = "posestudio serve"
    set_observer: Callable[[FrameSet], None] | None = None
    assembled_observer: Callable[[FrameSet], None] | None = None
    control: bool = True
    heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_TIMEOUT_S
    control_observer: Callable[[ControlEvent], None] | None = None
    keys: StudioKeys | None = None
    registration_wait_s: float = 2.0


class LiveServer:
    """The streaming reconstruction server (see the module docstring).

    Args:
        config: the studio (ports, fps, join fraction, wait, cameras and their clock endpoints).
        rig: the calibrated rig holding every configured camera (its ``time_offset`` s are applied).
        detector: any :class:`~posestudio.models.detectors.base.Detector2D` (the caller closes it).
        options: :class:`LiveServerOptions`.

    Attributes:
        data_endpoint, skeleton_endpoint, control_endpoint: the bound endpoints (after :meth:`start`;
            ``control_endpoint`` is "" without the control channel).

    Raises:
        InputError: a camera the rig lacks, bad options.
    """

    def __init__(self, config: StudioConfig, rig: CameraRig, detector: Detector2D,
                 options: LiveServerOptions | None = None) -> None:
        self.config, self.detector = config, detector
        self.options = opts = options or LiveServerOptions()
        if opts.unsynced not in ("node-time", "drop") or opts.queue_sets < 1 or not opts.stats_every_s > 0:
            raise InputError(f"live server: unsynced {opts.unsynced!r} (expected node-time or drop), queue_sets "
                             f"{opts.queue_sets} (expected >= 1), stats_every_s {opts.stats_every_s} (expected > 0)")
        self.cameras = config.camera_names
        missing = [c for c in self.cameras if c not in rig.names]
        if missing:
            raise InputError(f"{config.path or 'studio config'}: cameras {missing} are not in the rig "
                             f"({', '.join(rig.names)}); expected [[cameras]] names the rig has")
        self.clock = opts.clock
        server = config.server
        offsets = {c.name: float(c.time_offset) for c in rig.cameras if c.name in self.cameras}
        self._assembler = FrameSetAssembler(self.cameras, server.fps, server.join_fraction, server.max_wait_s,
                                            time_offsets_s=offsets)
        self._assembler_lock = threading.Lock()
        self._reconstructor = Reconstructor(rig, server.fps, self.cameras, list(detector.layout.joints),
                                            opts.reconstruction, source=f"studio {config.name}")
        self._context: zmq.Context = zmq.Context() if opts.keys is not None else zmq.Context.instance()
        self._secure: Callable[[zmq.Socket], None] | None = None
        if opts.keys is not None:
            keys = opts.keys
            keys.require_server()   # fails now, naming the folder, rather than in a thread
            self._secure = lambda sock: server_socket_security(sock, keys)
        self._auth: StudioAuthenticator | None = None
        self._watches: list[HandshakeWatch] = []
        self._control: ControlLoop | None = None
        self.control_endpoint = ""
        self._tracker = ClockTracker(opts.clock_interval_s, clock=self.clock, context=self._context,
                                     configure=self._secure)
        self._clocked: set[str] = set()
        self._registered_unclocked: set[str] = set()   # registered without a clock responder: node time is meant
        self._first_unclocked_ns: dict[str, int] = {}
        # A node restarted faster than the heartbeat time-out: its frames may arrive before its registration.
        self._registered_ns: dict[str, int] = {}     # studio time of each camera's latest registration
        self._last_frame_ns: dict[str, int] = {}     # studio time each camera's latest frame arrived
        self._restart_held_ns: dict[str, int] = {}   # cameras whose node restarted unregistered: held since
        self.counters = ReceiveCounters({c: CameraCounters() for c in self.cameras})
        self.timings = SetTimings()
        self._queue: collections.deque[FrameSet] = collections.deque()
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._bound = threading.Barrier(3, timeout=JOIN_TIMEOUT_S)
        self._errors: list[BaseException] = []
        self._publisher: SkeletonPublisher | None = None
        self.data_endpoint = self.skeleton_endpoint = ""
        self._started_ns = 0
        self._last_stats_ns = 0
        self._running = False             # both sockets bound, threads running
        self.last_stats: dict[str, Any] = {}

    # ------------------------------------------------------------------ life cycle
    def add_node(self, camera: str, clock_endpoint: str) -> None:
        """Sync ``camera``'s node clock through its responder at ``clock_endpoint`` (from the tracker's
        next round: up to ``clock_interval_s`` later; a new endpoint for a known camera starts its model
        afresh, and its frames wait for that round). Safe from any thread (the control channel's).

        Raises:
            InputError: a camera the studio does not have.
        """
        if camera not in self.cameras:
            raise InputError(f"live server: camera {camera!r} is not in the studio ({', '.join(self.cameras)})")
        self._clocked.add(camera)     # first: until the tracker's first burst its frames wait, never unmapped
        self._registered_unclocked.discard(camera)
        self._tracker.add_node(camera, clock_endpoint)
        self._tracker.wake()

    def _node_registered(self, camera: str, clock_endpoint: str, rejoined: bool) -> None:
        """The control channel's registration: sync the node's clock there (a rejoining node afresh: it
        may be another process with another clock); a node without a responder falls back to the
        config's clock endpoint, else to the header's offset or node time."""
        self._registered_ns[camera] = self.clock()
        if clock_endpoint:
            if rejoined:
                self._tracker.remove_node(camera)   # its frames wait for the fresh burst (woken: milliseconds)
            self.add_node(camera, clock_endpoint)
            return
        configured = next((c.clock for c in self.config.cameras if c.name == camera), None)
        if configured is not None:
            self.add_node(camera, configured)
        else:
            self._registered_unclocked.add(camera)
            self._clocked.discard(camera)
            self._tracker.remove_node(camera)

    def _node_gone(self, camera: str) -> None:
        """The control channel's time-out: the node is presumed dead, and its clock model with it. A
        clocked camera's frames wait (``waiting_for_clock``) until a node registers for it again; else
        frames from a node restarted before its registration reached us would be mapped through the old
        process's clock (hundreds of ms off when it runs on another clock). A node that was only silent
        is answered "unknown node" at its next heartbeat and registers again within one."""
        if camera in self._clocked:
            self._tracker.remove_node(camera)

    def clock_offsets_ns(self, at_studio_ns: int) -> dict[str, int | None]:
        """Each camera's node clock minus the studio clock at ``at_studio_ns``, ns, from its clock model
        (None without one: no responder, or no burst yet)."""
        return {c: self._tracker.node_offset_ns(c, at_studio_ns) for c in self.cameras}

    def start_recording(self, studio_time_ns: int, session: str) -> SentCommand:
        """Announce to every registered node that recording ``session`` starts at studio time
        ``studio_time_ns`` (ns; announce it a few hundred ms ahead), with each node's clock offset.

        Returns:
            the command's id (the nodes' acks, seen by ``options.control_observer``, carry it) and the cameras.
        Raises:
            RuntimeError: the control channel is not running.
        """
        return self._need_control().send_start(studio_time_ns, session, self.clock_offsets_ns(studio_time_ns))

    def stop_recording(self, studio_time_ns: int) -> SentCommand:
        """Announce to every registered node that recording stops at studio time ``studio_time_ns`` (ns)."""
        return self._need_control().send_stop(studio_time_ns, self.clock_offsets_ns(studio_time_ns))

    def registered(self) -> list[str]:
        """The cameras whose nodes are registered on the control channel now (sorted; empty without it)."""
        return [] if self._control is None else self._control.registered()

    def _need_control(self) -> ControlLoop:
        if self._control is None:
            raise RuntimeError("live server: no control channel (not started, or options.control is False)")
        return self._control

    def start(self) -> LiveServer:
        """Bind the sockets, start the threads and the clock tracker; returns once both sockets are bound.

        Raises:
            InputError: a port that cannot be bound.
        """
        if self._threads:
            raise RuntimeError("live server: start() called twice")
        self._started_ns = self._last_stats_ns = self.clock()
        if self.options.keys is not None:   # before any socket of this context binds (capture/keys.py)
            self._auth = start_authenticator(self._context, self.options.keys)
        if self.options.control:
            try:
                self._control = ControlLoop(self.config.server.control_endpoint, self.cameras, self._node_registered,
                                            self._node_gone, observer=self.options.control_observer,
                                            context=self._context, configure_socket=self._secure_watched("control"),
                                            heartbeat_timeout_s=self.options.heartbeat_timeout_s)
            except BaseException:
                self._close_security()
                raise
            self.control_endpoint = self._control.endpoint
        for cam in self.config.cameras:
            if cam.clock is not None:
                self.add_node(cam.name, cam.clock)
        self._threads = [threading.Thread(target=self._guard, args=(f,), name=f"serve-{f.__name__[1:]}", daemon=True)
                         for f in (self._receive_loop, self._process_loop)]
        for t in self._threads:
            t.start()
        try:
            self._bound.wait()
        except threading.BrokenBarrierError:
            self.stop()
            raise self._errors[0] if self._errors else RuntimeError("live server: a thread did not start") from None
        self._running = True
        self._tracker.start()
        if self._control is not None:
            self._control.start()
        stats = threading.Thread(target=self._guard, args=(self._stats_loop,), name="serve-stats", daemon=True)
        stats.start()
        self._threads.append(stats)
        return self

    def _guard(self, loop: Callable[[], None]) -> None:
        try:
            loop()
        except BaseException as exc:   # noqa: BLE001 - kept for start()/stop() and logged; the server stops
            self._errors.append(exc)
            if not isinstance(exc, InputError):
                log.exception("live server: %s failed", loop.__name__)
            self._bound.abort()
            self._stop.set()
            with self._ready:
                self._ready.notify_all()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the server stops (a thread failed, or :meth:`stop`); True when it has."""
        return self._stop.wait(timeout_s)

    def request_stop(self) -> None:
        """Ask the threads to stop (safe from a signal handler); :meth:`stop` then joins them."""
        self._stop.set()

    @property
    def error(self) -> BaseException | None:
        """The first error that stopped a thread, else None."""
        return self._errors[0] if self._errors else None

    def stop(self) -> dict[str, Any]:
        """Stop every thread and the clock tracker, close the sockets; returns the final stats (safe twice)."""
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        for t in self._threads:
            t.join(JOIN_TIMEOUT_S)
        self._tracker.stop()
        if self._control is not None:
            self._control.stop()
        final = self.stats()
        self._close_security()
        final["summary"] = self.timings.summary()
        self.last_stats = final
        if self.options.stats_json is not None and self._running:
            write_text_atomic(self.options.stats_json, json_text(final))
        return final

    def _secure_watched(self, name: str) -> Callable[[zmq.Socket], None] | None:
        """The CURVE hook for a server socket, which also logs its failed handshakes (None without keys)."""
        secure = self._secure
        if secure is None:
            return None

        def hook(sock: zmq.Socket) -> None:
            secure(sock)
            self._watches.append(HandshakeWatch(sock, name))

        return hook

    def _close_security(self) -> None:
        """Stop the handshake watches and the authenticator, and end the server's own context (keys only)."""
        for watch in self._watches:
            watch.stop()
        auth, self._auth = self._auth, None
        if auth is not None:
            auth.stop()
        if self.options.keys is not None and not self._context.closed:
            if all(not t.is_alive() for t in self._threads):
                self._context.term()
            else:
                log.warning("live server: a thread did not stop; its ZeroMQ context is left open")

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ receive thread
    def _receive_loop(self) -> None:
        sock = self._context.socket(zmq.SUB)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 64)                   # a burst from every node; more is latency
            sock.setsockopt(zmq.SUBSCRIBE, TOPIC_PREFIX)
            hook = self._secure_watched("frames")
            if hook is not None:
                hook(sock)                                    # before bind: CURVE server, failed handshakes logged
            try:
                sock.bind(self.config.server.data_endpoint)
            except zmq.ZMQError as exc:
                raise InputError(f"live server: cannot bind the data port {self.config.server.data_endpoint}: "
                                 f"{exc}; expected a free [server] data_port") from None
            self.data_endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            self._bound.wait()
            tick_ms = max(1, int(TICK_S * 1000))
            while not self._stop.is_set():
                if sock.poll(tick_ms, zmq.POLLIN):          # sleeps; a bound SUB attaches nodes while polled
                    for _ in range(DRAIN_MAX):
                        try:
                            parts = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._on_message(parts)
                with self._assembler_lock:
                    sets = self._assembler.poll(self.clock())
                self._enqueue(sets)
        finally:
            sock.close(linger=0)

    def _on_message(self, parts: list[bytes]) -> None:
        """Decode, count, map to studio time and assemble one message (never raises for bad input)."""
        counters = self.counters
        counters.messages += 1
        try:
            message = decode_frame_message(parts)
        except FrameMessageError as exc:
            counters.malformed[classify_frame_error(exc)] += 1
            return
        cam = counters.cameras.get(message.camera)
        if cam is None:
            counters.malformed["unknown_camera"] += 1
            return
        if cam.saw(message.sequence):
            self._on_sequence_restart(message.camera)
        self._last_frame_ns[message.camera] = self.clock()
        mapped = self._studio_time(message, cam)
        if mapped is None:
            return
        with self._assembler_lock:
            sets = self._assembler.push((message.camera, mapped[0], message, mapped[1]))
        self._enqueue(sets)

    def _on_sequence_restart(self, camera: str) -> None:
        """A camera's frame numbers stepped back: another node process. When its camera registered through
        the control channel and no registration came since the previous process's last frame, the new
        process has not registered yet and its clock is unknown: its frames wait for its registration
        (which starts a fresh clock model) rather than be read through the old process's clock."""
        registered = self._registered_ns.get(camera)
        if registered is not None and registered <= self._last_frame_ns.get(camera, registered):
            self._restart_held_ns[camera] = self.clock()

    def _studio_time(self, message: FrameMessage, cam: CameraCounters) -> tuple[int, int] | None:
        """``(studio_ns, uncertainty_ns)`` of a frame's capture time, or None to drop it (counted)."""
        held = self._restart_held_ns.get(message.camera)
        if held is not None:
            if self._registered_ns.get(message.camera, held) <= held:
                cam.waiting_for_clock += 1
                return None
            del self._restart_held_ns[message.camera]
        if message.camera in self._clocked:
            mapped = self._tracker.studio_ns_if_ready(message.camera, message.capture_time_ns)
            if mapped is None:
                cam.waiting_for_clock += 1
            return mapped
        if message.clock_offset_ns is not None:
            return message.capture_time_ns + message.clock_offset_ns, int(message.uncertainty_ns or 0)
        if self.options.unsynced == "drop" or self._awaiting_registration(message.camera):
            cam.waiting_for_clock += 1
            return None
        cam.node_time += 1
        return message.capture_time_ns, UNSYNCED_UNCERTAINTY_NS

    def _awaiting_registration(self, camera: str) -> bool:
        """Whether ``camera``'s unclocked frames still wait for its node to register (``registration_wait_s``)."""
        wait_ns = int(self.options.registration_wait_s * 1e9)
        if self._control is None or wait_ns <= 0 or camera in self._registered_unclocked:
            return False
        now = self.clock()
        return now - self._first_unclocked_ns.setdefault(camera, now) < wait_ns

    def _enqueue(self, sets: list[FrameSet]) -> None:
        """Queue sets for processing; a full queue drops its OLDEST set (counted), never waits."""
        if not sets:
            return
        if self.options.assembled_observer is not None:
            for s in sets:
                try:
                    self.options.assembled_observer(s)
                except Exception:   # noqa: BLE001 - a recorder's failure must not stop the receive thread
                    self.counters.processing_errors += 1
                    log.exception("live server: the assembled-set observer failed on set %d", s.slot)
        with self._ready:
            for s in sets:
                if len(self._queue) >= self.options.queue_sets:
                    self._queue.popleft()
                    self.counters.queue_dropped += 1
                self._queue.append(s)
            self._ready.notify()

    # ------------------------------------------------------------------ processing thread
    def _process_loop(self) -> None:
        publisher = self._publisher = SkeletonPublisher(self.config.server.skeleton_endpoint)
        try:
            self.skeleton_endpoint = publisher.endpoint
            self._bound.wait()
            cams = self.counters.cameras
            processor = SetProcessor(self.cameras, self.detector, self._reconstructor, publisher, self.clock,
                                     self.timings.record, lambda cam: setattr(cams[cam], "decode_errors",
                                                                              cams[cam].decode_errors + 1),
                                     self.options.source)
            while True:
                with self._ready:
                    while not self._queue and not self._stop.is_set():
                        self._ready.wait()
                    if self._stop.is_set():
                        return
                    frame_set = self._queue.popleft()
                try:
                    if self.options.set_observer is not None:
                        self.options.set_observer(frame_set)
                    processor.push(frame_set)
                except Exception:   # noqa: BLE001 - one set's failure (a detector error) must not stop the studio
                    self.counters.processing_errors += 1
                    n = self.counters.processing_errors
                    if n == 1 or n % 100 == 0:
                        log.exception("live server: frame set %d failed (%d failures so far); skipped",
                                      frame_set.slot, n)
        finally:
            publisher.close()

    # ------------------------------------------------------------------ stats
    def _stats_loop(self) -> None:
        every = self.options.stats_every_s
        while not self._stop.wait(every):
            doc = self.stats(window=True)
            self.last_stats = doc
            log.info("%s", stats_line(doc))
            if self.options.stats_json is not None:
                write_text_atomic(self.options.stats_json, json_text(doc))

    def stats(self, window: bool = False) -> dict[str, Any]:
        """The stats document now (``docs/live_studio.md`` lists its fields); ``window``: take the
        processing samples since the last call into ``window`` (the stats thread does, each second)."""
        now = self.clock()
        with self._assembler_lock:
            assembled = self._assembler.stats()
        with self._ready:
            depth = len(self._queue)
        publisher = self._publisher
        doc = stats_document(self.config.name, (now - self._started_ns) / 1e9, self.counters, assembled,
                             self._tracker.status(), depth, self.options.queue_sets,
                             {"endpoint": self.skeleton_endpoint, "sent": publisher.sent if publisher else 0,
                              "dropped": publisher.dropped if publisher else 0})
        doc["frame_sets"]["processed"] = self.timings.processed
        control = None if self._control is None else self._control.stats()
        doc["control"] = control
        for name, cam in doc["cameras"].items():
            cam["control"] = None if control is None else control["cameras"][name]
        auth = self._auth
        doc["security"] = {"curve": self.options.keys is not None,
                           "refused_keys": auth.refused if auth is not None else 0,
                           "refused_handshakes": sum(w.refused for w in self._watches)}
        if window:
            doc["window"] = self.timings.take((now - self._last_stats_ns) / 1e9)
            self._last_stats_ns = now
        return doc
