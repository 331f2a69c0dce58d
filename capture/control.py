"""The control channel between the studio server and its capture nodes: register, heartbeat, start/stop
recording at an announced studio time, configure (ZeroMQ ROUTER/DEALER, ``posestudio.control`` messages).

::

    server: ControlServer (ROUTER, binds)                 node: ControlClient (DEALER, connects, own thread)
                                        ◀── register(camera, clock_endpoint, version, size, fps)
      registered(accepted | refused + reason) ──▶
                                        ◀── heartbeat(sequence, grabbed, sent, dropped)   every heartbeat_s
      ack(heartbeat) ──▶
      start_recording(session, studio_time_ns, clock_offset_ns) ──▶   on_start(session, studio_time_ns)
                                        ◀── ack(start_recording, ok | reason)
      stop_recording / configure ──▶                                  on_stop / on_configure, then ack

Why ROUTER/DEALER: the server addresses each node by its connection's identity and never waits on one,
and a node's DEALER is never stuck waiting for a reply (no REQ/REP lock-step; the pyzmq guide's "lazy
pirate" problem). Nodes come and go in any order:

- A node that stops heartbeating for ``heartbeat_timeout_s`` is forgotten (:class:`NodeGone`).
- A restarted node connects with a new identity and registers its camera again; the new registration
  replaces the old one at once (:class:`NodeRegistered` with ``replaced=True``), without waiting for the
  old one to time out.
- A message from an identity the server does not know (the server restarted, or forgot the node) is
  answered ``registered(accepted=false, reason="unknown node")``, and the node registers again. A node
  that hears nothing from the server for ``server_timeout_s`` registers again as well.
- Malformed messages are counted (:attr:`ControlServer.malformed`) and reported as :class:`Malformed`
  events, never raised.

Studio time and a node's clock: the server announces a recording's start and stop in **studio time**
(the server's clock, ``docs/clock_sync.md``) and puts in each node's message that node's
``clock_offset_ns`` (node clock minus studio clock at that time, from the server's clock model of the
node). The client hands the studio time to ``on_start`` / ``on_stop``; a node that needs the instant on
its own clock reads :meth:`ControlClient.to_node_ns` (the time plus that offset). Nobody ever steps a
node's clock.

Threads: :class:`ControlServer` is polled by one thread (:meth:`ControlServer.poll`), which alone touches
its socket; the ``send_*`` methods may be called from any thread: they queue the message and wake the
poll, which sends it (at once when a poll is waiting, else at the next poll). :class:`ControlClient` runs
its socket in its own thread and calls the callbacks from it (keep them short). Times: seconds for
intervals, integer nanoseconds for studio times.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import zmq

from posestudio import __version__
from posestudio.core.closing import wake_address
from posestudio.core.control_messages import (
    UNKNOWN_NODE,
    Ack,
    Configure,
    ControlMessage,
    ControlMessageError,
    Heartbeat,
    Register,
    Registered,
    StartRecording,
    StopRecording,
    decode_control,
    encode_control,
)
from posestudio.core.errors import PoseStudioError

log = logging.getLogger(__name__)

#: Seconds between a node's heartbeats.
DEFAULT_HEARTBEAT_S = 0.5
#: Seconds without a message after which the server forgets a node.
DEFAULT_HEARTBEAT_TIMEOUT_S = 2.0
#: Messages the server handles in one pass before it looks at the clock again (a flood cannot starve time-outs).
MAX_BATCH = 1000
#: Seconds a refused node waits before it asks again (the server may have been reconfigured).
REFUSED_RETRY_S = 2.0

#: A callable that may be called with the socket before it binds or connects (CURVE keys and the like).
SocketHook = Callable[[zmq.Socket], None]


def one_line(text: str, limit: int = 256) -> str:
    """``text`` as one printable line of at most ``limit`` characters (a reason field of a control message)."""
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())
    return line[:limit]


class ControlError(PoseStudioError):
    """The control channel cannot do what was asked (an endpoint that cannot be bound, an unknown camera)."""


# --------------------------------------------------------------------------- server events
@dataclass(frozen=True)
class NodeRegistered:
    """A node registered (or registered again).

    Attributes:
        camera: its camera's name. clock_endpoint: where its clock responder listens ("" for none).
        identity: its connection's ZeroMQ identity. replaced: True when it took the camera over from
            another identity (a restarted node). register: the whole register message.
    """

    camera: str
    clock_endpoint: str
    identity: bytes
    replaced: bool = False
    register: Register | None = None


@dataclass(frozen=True)
class NodeHeartbeat:
    """A registered node's heartbeat: its counter and frame counters (grabbed, sent, dropped since it started)."""

    camera: str
    sequence: int
    grabbed: int
    sent: int
    dropped: int


@dataclass(frozen=True)
class NodeAck:
    """A node answered a command: ``of`` the command's type, ``command_id``, ``ok`` and the ``reason`` when not."""

    camera: str
    of: str
    command_id: int
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class NodeGone:
    """A registered node sent nothing for ``silent_s`` seconds (>= the heartbeat timeout) and was forgotten."""

    camera: str
    silent_s: float


@dataclass(frozen=True)
class Malformed:
    """A message that was dropped: ``reason`` says why (one line); ``identity`` is the sender's when known."""

    reason: str
    identity: bytes = b""


#: What :meth:`ControlServer.poll` returns.
ControlEvent = NodeRegistered | NodeHeartbeat | NodeAck | NodeGone | Malformed


@dataclass
class NodeInfo:
    """What the server knows of one registered node (times: the server's monotonic clock, seconds)."""

    camera: str
    identity: bytes
    register: Register
    registered_s: float
    last_seen_s: float
    last_heartbeat: Heartbeat | None = None

    @property
    def clock_endpoint(self) -> str:
        """Where the node's clock responder listens ("" when it runs none)."""
        return self.register.clock_endpoint


@dataclass(frozen=True)
class SentCommand:
    """A command queued for nodes: its id (the nodes' acks carry it) and the cameras it goes to."""

    command_id: int
    cameras: tuple[str, ...]


# --------------------------------------------------------------------------- server
class ControlServer:
    """The server side of the control channel: a bound ROUTER socket, polled by one thread.

    Args:
        endpoint: where to bind (``tcp://*:5570``; ``tcp://127.0.0.1:*`` picks a free port, see :attr:`endpoint`).
        context: the ZeroMQ context (default: the process's shared one).
        configure_socket: called with the socket before it binds (e.g. ``lambda s: server_socket_security(s,
            keys)`` from ``capture/keys.py``).
        heartbeat_timeout_s: seconds without a message after which a node is forgotten (:class:`NodeGone`).
        accept: optional policy, called with each register message: None accepts, a string refuses with that
            reason (e.g. a camera the rig does not have).
        clock: seconds, monotonic (injectable for tests).

    Attributes:
        endpoint: the endpoint actually bound.
        malformed: messages dropped as malformed. unknown: messages from identities not registered (answered
            "unknown node"). send_failures: messages that could not be sent (node gone, its queue full).
        replacements: registrations that took a camera over from another identity.

    Raises:
        ControlError: the endpoint cannot be bound.
    """

    def __init__(self, endpoint: str, context: zmq.Context | None = None, configure_socket: SocketHook | None = None,
                 heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_TIMEOUT_S, *,
                 accept: Callable[[Register], str | None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not heartbeat_timeout_s > 0:
            raise ValueError(f"heartbeat_timeout_s must be positive seconds, got {heartbeat_timeout_s!r}")
        self.heartbeat_timeout_s = float(heartbeat_timeout_s)
        self.accept = accept
        self.clock = clock
        self.malformed = 0
        self.unknown = 0
        self.send_failures = 0
        self.replacements = 0
        self._context = context or zmq.Context.instance()
        self._lock = threading.Lock()
        self._nodes: dict[str, NodeInfo] = {}
        self._cameras: dict[bytes, str] = {}
        self._outbox: deque[tuple[bytes, bytes]] = deque()
        self._ids = itertools.count(1)
        sock = self._context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)   # a send to a gone node fails (counted) instead of vanishing
        sock.setsockopt(zmq.SNDHWM, 1000)
        sock.setsockopt(zmq.RCVHWM, 1000)
        try:
            if configure_socket is not None:
                configure_socket(sock)
        except BaseException:
            sock.close(linger=0)   # an open socket would hang the context's term()
            raise
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            raise ControlError(f"control server: cannot bind {endpoint!r}: {exc}; expected a free tcp://HOST:PORT") \
                from None
        self._socket: zmq.Socket | None = sock
        self.endpoint: str = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        # senders on other threads wake a waiting poll through this pair (each end used under one rule:
        # _wake_out only under _lock, _wake_in only by the polling thread)
        address = wake_address("control-server")
        self._wake_in: zmq.Socket | None = self._context.socket(zmq.PAIR)
        self._wake_in.bind(address)
        self._wake_out: zmq.Socket | None = self._context.socket(zmq.PAIR)
        self._wake_out.setsockopt(zmq.SNDHWM, 1)
        self._wake_out.connect(address)
        self._poller = zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(self._wake_in, zmq.POLLIN)

    # ------------------------------------------------------------------ polling
    def poll(self, timeout_s: float = 0.0) -> list[ControlEvent]:
        """Handle what has arrived, waiting up to ``timeout_s`` seconds for something to happen.

        Sends what the ``send_*`` methods queued, answers registrations and heartbeats, and forgets nodes
        silent for the heartbeat timeout. Returns as soon as there are events (or at the timeout, with
        none). Never raises on what nodes send.
        """
        if self._socket is None:
            raise RuntimeError("control server: closed")
        deadline = self.clock() + max(0.0, timeout_s)
        events: list[ControlEvent] = []
        while True:
            self._flush()
            self._receive(events)
            self._expire(events)
            self._flush()
            now = self.clock()
            if events or now >= deadline:
                return events
            wait = deadline - now
            expiry = self._next_expiry()
            if expiry is not None:
                wait = min(wait, max(0.0, expiry - now) + 0.001)
            ready = dict(self._poller.poll(max(1, int(wait * 1000 + 0.999))))
            if self._wake_in is not None and self._wake_in in ready:
                while True:
                    try:
                        self._wake_in.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break

    def _receive(self, events: list[ControlEvent]) -> None:
        sock = self._socket
        assert sock is not None
        for _ in range(MAX_BATCH):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            identity = frames[0]
            if len(frames) != 2:
                self._malformed(events, identity, f"a message of {len(frames) - 1} frames; expected 1 (one msgpack map)")
                continue
            try:
                message = decode_control(frames[1])
            except ControlMessageError as exc:
                self._malformed(events, identity, str(exc))
                continue
            self._handle(identity, message, events)

    def _malformed(self, events: list[ControlEvent], identity: bytes, reason: str) -> None:
        self.malformed += 1
        log.debug("control server: dropped a malformed message: %s", reason)
        events.append(Malformed(reason, identity))

    def _handle(self, identity: bytes, message: ControlMessage, events: list[ControlEvent]) -> None:
        now = self.clock()
        if isinstance(message, Register):
            self._register(identity, message, now, events)
            return
        if not isinstance(message, (Heartbeat, Ack)):
            self._malformed(events, identity, f"a node sent {message.TYPE}; expected register, heartbeat or ack")
            return
        with self._lock:
            camera = self._cameras.get(identity)
            info = self._nodes.get(camera) if camera is not None else None
        if info is None or camera != message.camera:
            # a node the server does not know (it restarted, or forgot the node): ask it to register again
            self.unknown += 1
            self._queue(identity, Registered(message.camera, False, UNKNOWN_NODE, self.heartbeat_timeout_s))
            return
        info.last_seen_s = now
        if isinstance(message, Heartbeat):
            info.last_heartbeat = message
            events.append(NodeHeartbeat(camera, message.sequence, message.grabbed, message.sent, message.dropped))
            self._queue(identity, Ack("heartbeat", message.sequence, camera))
        else:
            events.append(NodeAck(camera, message.of, message.command_id, message.ok, message.reason))

    def _register(self, identity: bytes, message: Register, now: float, events: list[ControlEvent]) -> None:
        camera = message.camera
        refusal = None
        if self.accept is not None:
            try:
                refusal = self.accept(message)
            except Exception as exc:   # noqa: BLE001 - a policy bug must not take the server down
                log.exception("control server: the accept policy failed on camera %r", camera)
                refusal = f"the server's accept policy failed ({type(exc).__name__})"
        if refusal is not None:
            log.warning("control server: refused camera %r: %s", camera, refusal)
            self._queue(identity, Registered(camera, False, one_line(refusal), self.heartbeat_timeout_s))
            return
        with self._lock:
            previous = self._nodes.get(camera)
            replaced = previous is not None and previous.identity != identity
            if replaced:
                del self._cameras[previous.identity]
            old_camera = self._cameras.get(identity)
            if old_camera is not None and old_camera != camera:   # the same connection, now another camera
                del self._nodes[old_camera]
                events.append(NodeGone(old_camera, 0.0))
            self._cameras[identity] = camera
            self._nodes[camera] = NodeInfo(camera, identity, message, now, now)
        if replaced:
            self.replacements += 1
            log.info("control server: camera %r registered again from a new connection (a restarted node)", camera)
        events.append(NodeRegistered(camera, message.clock_endpoint, identity, replaced, message))
        self._queue(identity, Registered(camera, True, "", self.heartbeat_timeout_s))

    def _next_expiry(self) -> float | None:
        with self._lock:
            if not self._nodes:
                return None
            return min(n.last_seen_s for n in self._nodes.values()) + self.heartbeat_timeout_s

    def _expire(self, events: list[ControlEvent]) -> None:
        now = self.clock()
        with self._lock:
            gone = [n for n in self._nodes.values() if now - n.last_seen_s >= self.heartbeat_timeout_s]
            for node in gone:
                del self._nodes[node.camera]
                self._cameras.pop(node.identity, None)
        for node in gone:
            log.info("control server: camera %r silent for %.1f s: gone", node.camera, now - node.last_seen_s)
            events.append(NodeGone(node.camera, now - node.last_seen_s))

    # ------------------------------------------------------------------ sending
    def _queue(self, identity: bytes, message: ControlMessage) -> None:
        data = encode_control(message)
        with self._lock:
            self._outbox.append((identity, data))
            if self._wake_out is not None:
                try:
                    self._wake_out.send(b"", zmq.NOBLOCK)
                except zmq.Again:   # a wake-up is already pending
                    pass

    def _flush(self) -> None:
        sock = self._socket
        while sock is not None:
            with self._lock:
                if not self._outbox:
                    return
                identity, data = self._outbox.popleft()
            try:
                sock.send_multipart([identity, data], zmq.NOBLOCK)
            except zmq.ZMQError as exc:   # EHOSTUNREACH: the node has gone; EAGAIN: its queue is full
                self.send_failures += 1
                log.debug("control server: could not send to %r: %s", identity, exc)

    def _command(self, make: Callable[[int, str], ControlMessage], cameras: list[str] | None = None) -> SentCommand:
        command_id = next(self._ids)
        with self._lock:
            targets = [(c, self._nodes[c].identity) for c in (cameras if cameras is not None else self._nodes)
                       if c in self._nodes]
        messages = [(identity, make(command_id, camera)) for camera, identity in targets]   # checked before queueing
        for identity, message in messages:
            self._queue(identity, message)
        return SentCommand(command_id, tuple(c for c, _ in targets))

    def send_start(self, studio_time_ns: int, session: str,
                   clock_offsets_ns: Mapping[str, int | None] | None = None) -> SentCommand:
        """Tell every registered node to start recording ``session`` at studio time ``studio_time_ns`` (ns).

        Args:
            clock_offsets_ns: per camera, that node's clock minus the studio clock at ``studio_time_ns``, ns
                (``ClockModel.to_node_ns(t) - t``); a camera without one gets nil.
        Returns:
            the command's id (the nodes' :class:`NodeAck` carry it) and the cameras it went to.
        Raises:
            ControlMessageError: a session name or time the schema refuses.
        """
        offsets = clock_offsets_ns or {}
        return self._command(lambda cid, cam: StartRecording(cid, session, studio_time_ns, offsets.get(cam)))

    def send_stop(self, studio_time_ns: int, clock_offsets_ns: Mapping[str, int | None] | None = None) -> SentCommand:
        """Tell every registered node to stop recording at studio time ``studio_time_ns`` (ns); offsets as in
        :meth:`send_start`."""
        offsets = clock_offsets_ns or {}
        return self._command(lambda cid, cam: StopRecording(cid, studio_time_ns, offsets.get(cam)))

    def send_configure(self, camera: str, **values: bool | int | float | str | None) -> SentCommand:
        """Send settings to one node, e.g. ``send_configure("cam03", jpeg_quality=80)``.

        Raises:
            ControlError: ``camera`` is not registered. ControlMessageError: values the schema refuses.
        """
        with self._lock:
            known = camera in self._nodes
        if not known:
            raise ControlError(f"control server: camera {camera!r} is not registered; expected one of "
                               f"{', '.join(self.cameras()) or 'the registered cameras (none yet)'}")
        return self._command(lambda cid, cam: Configure(cid, cam, values), [camera])

    # ------------------------------------------------------------------ state
    def cameras(self) -> list[str]:
        """The registered cameras, sorted."""
        with self._lock:
            return sorted(self._nodes)

    def nodes(self) -> dict[str, NodeInfo]:
        """A snapshot of the registered nodes by camera."""
        with self._lock:
            return {c: NodeInfo(n.camera, n.identity, n.register, n.registered_s, n.last_seen_s, n.last_heartbeat)
                    for c, n in self._nodes.items()}

    def stats(self) -> dict[str, Any]:
        """Counters for the server's stats: registered cameras, malformed, unknown, send failures, replacements."""
        return {"registered": self.cameras(), "malformed": self.malformed, "unknown": self.unknown,
                "send_failures": self.send_failures, "replacements": self.replacements}

    def close(self) -> None:
        """Close the sockets (linger 0); safe to call twice. Call it from the polling thread, or once it is done."""
        with self._lock:
            for attr in ("_wake_out", "_wake_in", "_socket"):
                s = getattr(self, attr)
                if s is not None:
                    s.close(linger=0)
                    setattr(self, attr, None)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# --------------------------------------------------------------------------- client
NodeStatsFn = Callable[[], tuple[int, int, int]]


class ControlClient:
    """The node side of the control channel: a DEALER connected to the server, run by its own thread.

    It registers, heartbeats every ``heartbeat_s``, registers again when the server answers "unknown node" or
    has been silent for ``server_timeout_s`` (a restarted server), and calls the callbacks for the server's
    commands, then acknowledges each (a callback that raises is acknowledged ``ok=false`` with the error).

    Args:
        endpoint: the server's control endpoint (``tcp://HOST:PORT``).
        camera: this node's camera name. clock_endpoint: where this node's clock responder listens ("" for none).
        context: the ZeroMQ context (default: the process's shared one).
        configure_socket: called with the socket before it connects (``client_socket_security`` for CURVE).
        heartbeat_s: seconds between heartbeats.
        on_start: ``on_start(session, studio_time_ns)``: start recording at that studio time (ns); the same
            instant on this node's clock is :meth:`to_node_ns` of it.
        on_stop: ``on_stop(studio_time_ns)``. on_configure: ``on_configure(values)``, a dict of settings.
        stats: returns ``(grabbed, sent, dropped)`` frame counters for the heartbeats (e.g. from
            ``CaptureNode.stats()``).
        width, height, fps: capture size (pixels) and rate (frames/s) announced in the registration.
        software_version: announced in the registration (default this PoseStudio's).
        server_timeout_s: seconds without a word from the server before registering again (default
            ``max(2, 4 * heartbeat_s)``).

    Attributes:
        registrations: registrations the server accepted. refused_reason: the last refusal (None once accepted).
        malformed: messages from the server that were dropped. send_failures: sends that found no connection.
    """

    def __init__(self, endpoint: str, camera: str, clock_endpoint: str = "", context: zmq.Context | None = None,
                 configure_socket: SocketHook | None = None, heartbeat_s: float = DEFAULT_HEARTBEAT_S, *,
                 on_start: Callable[[str, int], object] | None = None,
                 on_stop: Callable[[int], object] | None = None,
                 on_configure: Callable[[dict[str, Any]], object] | None = None,
                 stats: NodeStatsFn | None = None, width: int | None = None, height: int | None = None,
                 fps: float | None = None, software_version: str = __version__,
                 server_timeout_s: float | None = None) -> None:
        if not heartbeat_s > 0:
            raise ValueError(f"heartbeat_s must be positive seconds, got {heartbeat_s!r}")
        self.endpoint = endpoint
        self.camera = camera
        self.heartbeat_s = float(heartbeat_s)
        self.server_timeout_s = float(server_timeout_s) if server_timeout_s else max(2.0, 4 * self.heartbeat_s)
        self.on_start, self.on_stop, self.on_configure = on_start, on_stop, on_configure
        self.stats = stats
        # checked now, so a bad name or size fails in the caller rather than in the thread
        self._register = Register(camera, clock_endpoint, software_version, width, height, fps)
        self._context = context or zmq.Context.instance()
        self._configure_socket = configure_socket
        self.registrations = 0
        self.refused_reason: str | None = None
        self.malformed = 0
        self.send_failures = 0
        self.heartbeats_sent = 0
        self.clock_offset_ns: int | None = None
        self._registered = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_address = wake_address("control-client")
        self._wake_in: zmq.Socket | None = None
        self._wake_out: zmq.Socket | None = None
        self.error: BaseException | None = None

    # ------------------------------------------------------------------ public
    @property
    def registered(self) -> bool:
        """True while the server has accepted this node's registration."""
        return self._registered.is_set()

    def wait_registered(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` seconds until the server has accepted the registration."""
        return self._registered.wait(timeout_s)

    def to_node_ns(self, studio_time_ns: int) -> int | None:
        """``studio_time_ns`` on this node's clock: plus the offset the server sent with its last start or stop
        (None when it sent none: the server had no clock model of this node)."""
        return None if self.clock_offset_ns is None else int(studio_time_ns) + self.clock_offset_ns

    def start(self) -> Self:
        """Connect and run the channel in a background thread until :meth:`stop` (returns self)."""
        if self._thread is not None:
            return self
        self._wake_in = self._context.socket(zmq.PAIR)
        self._wake_in.bind(self._wake_address)
        self._wake_out = self._context.socket(zmq.PAIR)
        self._wake_out.connect(self._wake_address)
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)     # queue only on a live connection: no stale burst after a restart
        sock.setsockopt(zmq.SNDHWM, 16)
        sock.setsockopt(zmq.RCVHWM, 100)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        try:
            if self._configure_socket is not None:
                self._configure_socket(sock)
        except BaseException:
            sock.close(linger=0)   # an open socket would hang the context's term()
            self._close_wake()
            raise
        try:
            sock.connect(self.endpoint)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            self._close_wake()
            raise ControlError(f"control client: cannot connect to {self.endpoint!r}: {exc}; expected "
                               "tcp://HOST:PORT") from None
        self._thread = threading.Thread(target=self._run, args=(sock, self._wake_in),
                                        name=f"control-{self.camera}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close the sockets (linger 0: never waits on an absent server); safe twice."""
        if self._thread is not None and self._wake_out is not None:
            self._wake_out.send(b"stop")
            self._thread.join(timeout=5.0)
        self._thread = None
        self._registered.clear()
        self._close_wake()

    close = stop

    def _close_wake(self) -> None:
        for attr in ("_wake_out", "_wake_in"):
            s = getattr(self, attr)
            if s is not None:
                s.close(linger=0)
                setattr(self, attr, None)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ the thread
    def _send(self, sock: zmq.Socket, message: ControlMessage) -> bool:
        try:
            sock.send(encode_control(message), zmq.NOBLOCK)
            return True
        except zmq.Again:   # no live connection (IMMEDIATE) or the queue is full: tried again later
            self.send_failures += 1
            return False

    def _run(self, sock: zmq.Socket, wake: zmq.Socket) -> None:
        try:
            self._loop(sock, wake)
        except Exception as exc:   # noqa: BLE001 - kept for the owner to see; the thread must end cleanly
            self.error = exc
            log.exception("control client %s: the control thread failed", self.camera)
        finally:
            self._registered.clear()
            sock.close(linger=0)

    def _loop(self, sock: zmq.Socket, wake: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(wake, zmq.POLLIN)
        now = time.monotonic()
        next_register = now          # when to (re)send a registration while not registered
        next_heartbeat = now
        last_heard = now
        sequence = 0
        while True:
            now = time.monotonic()
            if self._registered.is_set() and now - last_heard > self.server_timeout_s:
                log.info("control client %s: nothing from the server for %.1f s; registering again",
                         self.camera, now - last_heard)
                self._registered.clear()
                next_register = now
            if not self._registered.is_set() and now >= next_register:
                self._send(sock, self._register)
                next_register = now + self.heartbeat_s
            if self._registered.is_set() and now >= next_heartbeat:
                grabbed, sent, dropped = self._counters()
                if self._send(sock, Heartbeat(self.camera, sequence, grabbed, sent, dropped)):
                    self.heartbeats_sent += 1
                sequence += 1
                next_heartbeat = now + self.heartbeat_s
            due = next_heartbeat if self._registered.is_set() else next_register
            if self._registered.is_set():
                due = min(due, last_heard + self.server_timeout_s)
            ready = dict(poller.poll(max(1, int((due - time.monotonic()) * 1000 + 0.999))))
            if wake in ready:
                return
            if sock not in ready:
                continue
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                try:
                    if len(frames) != 1:
                        raise ControlMessageError(f"control message: {len(frames)} frames; expected 1")
                    message = decode_control(frames[0])
                except ControlMessageError as exc:
                    self.malformed += 1
                    log.debug("control client %s: dropped a malformed message: %s", self.camera, exc)
                    continue
                last_heard = time.monotonic()
                if isinstance(message, Registered):
                    if message.accepted:
                        if not self._registered.is_set():
                            self.registrations += 1
                            self.refused_reason = None
                            self._registered.set()
                            next_heartbeat = last_heard + self.heartbeat_s
                    elif message.reason == UNKNOWN_NODE:
                        self._registered.clear()   # the server restarted or forgot us: register at once
                        next_register = min(next_register, last_heard)
                    else:
                        if self.refused_reason != message.reason:
                            log.warning("control client %s: the server refused the registration: %s",
                                        self.camera, message.reason)
                        self.refused_reason = message.reason
                        self._registered.clear()
                        next_register = last_heard + REFUSED_RETRY_S
                else:
                    self._command(sock, message)

    def _counters(self) -> tuple[int, int, int]:
        if self.stats is None:
            return 0, 0, 0
        try:
            grabbed, sent, dropped = self.stats()
            return max(0, int(grabbed)), max(0, int(sent)), max(0, int(dropped))
        except Exception:   # noqa: BLE001 - a failing stats source must not stop the heartbeats
            log.exception("control client %s: the stats callback failed", self.camera)
            return 0, 0, 0

    def _command(self, sock: zmq.Socket, message: ControlMessage) -> None:
        if isinstance(message, Ack):
            return   # the server received a heartbeat
        if isinstance(message, StartRecording):
            self.clock_offset_ns = message.clock_offset_ns
            call, args = self.on_start, (message.session, message.studio_time_ns)
        elif isinstance(message, StopRecording):
            self.clock_offset_ns = message.clock_offset_ns
            call, args = self.on_stop, (message.studio_time_ns,)
        elif isinstance(message, Configure):
            if message.camera != self.camera:
                self._send(sock, Ack("configure", message.command_id, self.camera, False,
                                     one_line(f"this node is camera {self.camera!r}, not {message.camera!r}")))
                return
            call, args = self.on_configure, (dict(message.values),)
        else:
            self.malformed += 1
            log.debug("control client %s: the server sent %s; ignored", self.camera, message.TYPE)
            return
        ok, reason = True, ""
        if call is None:
            ok, reason = False, f"this node does not handle {message.TYPE}"
        else:
            try:
                call(*args)
            except Exception as exc:   # noqa: BLE001 - reported to the server in the ack
                log.exception("control client %s: the %s callback failed", self.camera, message.TYPE)
                ok, reason = False, one_line(f"{type(exc).__name__}: {exc}")
        self._send(sock, Ack(message.TYPE, message.command_id, self.camera, ok, reason))
