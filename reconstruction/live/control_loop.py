"""The live server's side of the control channel: nodes register, heartbeat, go, and are told to record.

:class:`ControlLoop` binds a :class:`~posestudio.capture.control.ControlServer` (ROUTER) on the studio's
control port and polls it from its own thread (the only thread that touches the socket)::

    node ControlClient ══ register(camera, clock_endpoint) ══▶ ROUTER ─ control thread ─▶ on_register(camera, endpoint, replaced)
                       ══ heartbeat(grabbed, sent, dropped) ══▶          (per camera state, for the stats)
                       (silent for heartbeat_timeout_s)                  ─▶ on_gone(camera)
    start_recording / stop_recording (any thread) ─▶ ControlServer.send_start / send_stop ─▶ every registered node

Registrations of cameras the studio does not have are refused with a reason (the node logs it and asks
again every 2 s). Every event is also handed to an optional observer (a recorder that waits for the
nodes' acks). Times: seconds for intervals, integer nanoseconds for studio times.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import zmq

from posestudio.capture.control import (
    DEFAULT_HEARTBEAT_TIMEOUT_S,
    ControlEvent,
    ControlServer,
    NodeAck,
    NodeGone,
    NodeHeartbeat,
    NodeRegistered,
    SentCommand,
    SocketHook,
)
from posestudio.core.control_messages import Register

log = logging.getLogger(__name__)

#: The control thread's longest sleep in one poll, seconds (how soon :meth:`ControlLoop.stop` is noticed).
POLL_S = 0.1
#: How long :meth:`ControlLoop.stop` waits for the thread, seconds.
JOIN_TIMEOUT_S = 5.0


@dataclass
class CameraControl:
    """One camera's control-channel state, as the stats report it.

    Attributes:
        state: ``"never"`` (no node registered yet), ``"registered"`` or ``"gone"`` (silent for the time-out).
        registrations: registrations accepted (a restarted node adds one). gone: times it went silent.
        clock_endpoint: the clock responder its node registered ("" for none).
        heartbeats: heartbeats received. grabbed, sent, dropped: the node's frame counters in its last heartbeat.
        last_seen_s: the server's monotonic clock at its last message, seconds (None before any).
    """

    state: str = "never"
    registrations: int = 0
    gone: int = 0
    clock_endpoint: str = ""
    heartbeats: int = 0
    grabbed: int = 0
    sent: int = 0
    dropped: int = 0
    last_seen_s: float | None = None

    def document(self, now_s: float) -> dict[str, Any]:
        """This state as a stats section (``silent_s``: seconds since the node's last message)."""
        return {"state": self.state, "registrations": self.registrations, "gone": self.gone,
                "clock_endpoint": self.clock_endpoint, "heartbeats": self.heartbeats,
                "node_frames": {"grabbed": self.grabbed, "sent": self.sent, "dropped": self.dropped},
                "silent_s": None if self.last_seen_s is None else round(now_s - self.last_seen_s, 3)}


class ControlLoop:
    """A bound control ROUTER polled by its own thread; registrations and departures reported by callback.

    Args:
        endpoint: where to bind (``tcp://HOST:PORT``; port ``*`` picks a free one, see :attr:`endpoint`).
        cameras: the studio's cameras; any other camera's registration is refused.
        on_register: ``on_register(camera, clock_endpoint, replaced)`` on the control thread for every accepted
            registration (``replaced``: a new connection took the camera over, a restarted node). Keep it short.
        on_gone: ``on_gone(camera)`` when a registered node fell silent for ``heartbeat_timeout_s``.
        observer: called with every :class:`~posestudio.capture.control.ControlEvent` (e.g. acks), on the thread.
        context: the ZeroMQ context (the server's; with CURVE, the one its authenticator runs in).
        configure_socket: called with the ROUTER before it binds (``server_socket_security``).
        heartbeat_timeout_s: seconds of silence after which a node is gone.

    Attributes:
        endpoint: the bound endpoint (after construction).

    Raises:
        ControlError: the endpoint cannot be bound.
    """

    def __init__(self, endpoint: str, cameras: Sequence[str],
                 on_register: Callable[[str, str, bool], None], on_gone: Callable[[str], None], *,
                 observer: Callable[[ControlEvent], None] | None = None, context: zmq.Context | None = None,
                 configure_socket: SocketHook | None = None,
                 heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_TIMEOUT_S) -> None:
        self.cameras = list(cameras)
        self.on_register, self.on_gone, self.observer = on_register, on_gone, observer
        self.state: dict[str, CameraControl] = {c: CameraControl() for c in self.cameras}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.server = ControlServer(endpoint, context, configure_socket, heartbeat_timeout_s, accept=self._accept)
        self.endpoint = self.server.endpoint

    def _accept(self, register: Register) -> str | None:
        if register.camera in self.state:
            return None
        return f"camera {register.camera!r} is not in this studio ({', '.join(self.cameras)})"

    # ------------------------------------------------------------------ life cycle
    def start(self) -> ControlLoop:
        """Start the control thread (returns self)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="serve-control", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (within :data:`POLL_S`) and close the socket; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("control loop: the control thread did not stop within %.0f s", JOIN_TIMEOUT_S)
                return   # its socket stays open rather than be closed under it
            self._thread = None
        self.server.close()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for event in self.server.poll(POLL_S):
                    self._handle(event)
        except Exception as exc:   # noqa: BLE001 - kept for the stats; frames keep flowing without control
            self.error = exc
            log.exception("control loop: the control thread failed; nodes can no longer register")

    def _handle(self, event: ControlEvent) -> None:
        now = time.monotonic()
        if isinstance(event, NodeRegistered):
            with self._lock:
                st = self.state[event.camera]
                rejoined = st.state == "gone"
                st.state, st.clock_endpoint, st.last_seen_s = "registered", event.clock_endpoint, now
                st.registrations += 1
            log.info("control: camera %s registered%s (clock responder %s)", event.camera,
                     " again from a new connection" if event.replaced else " again" if rejoined else "",
                     event.clock_endpoint or "none")
            self._call(self.on_register, event.camera, event.clock_endpoint, event.replaced or rejoined)
        elif isinstance(event, NodeHeartbeat):
            with self._lock:
                st = self.state[event.camera]
                st.heartbeats += 1
                st.grabbed, st.sent, st.dropped, st.last_seen_s = event.grabbed, event.sent, event.dropped, now
        elif isinstance(event, NodeGone):
            with self._lock:
                st = self.state[event.camera]
                st.state = "gone"
                st.gone += 1
            log.warning("control: camera %s silent for %.1f s: gone", event.camera, event.silent_s)
            self._call(self.on_gone, event.camera)
        elif isinstance(event, NodeAck) and not event.ok:
            log.warning("control: camera %s refused %s (command %d): %s", event.camera, event.of, event.command_id,
                        event.reason)
        if self.observer is not None:
            self._call(self.observer, event)

    @staticmethod
    def _call(fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception:   # noqa: BLE001 - a callback's bug must not stop the control channel
            log.exception("control loop: a callback failed")

    # ------------------------------------------------------------------ commands
    def send_start(self, studio_time_ns: int, session: str, clock_offsets_ns: Mapping[str, int | None]) -> SentCommand:
        """Tell every registered node to start recording ``session`` at studio time ``studio_time_ns`` (ns)."""
        return self.server.send_start(studio_time_ns, session, clock_offsets_ns)

    def send_stop(self, studio_time_ns: int, clock_offsets_ns: Mapping[str, int | None]) -> SentCommand:
        """Tell every registered node to stop recording at studio time ``studio_time_ns`` (ns)."""
        return self.server.send_stop(studio_time_ns, clock_offsets_ns)

    def registered(self) -> list[str]:
        """The cameras registered now, sorted."""
        return self.server.cameras()

    def stats(self) -> dict[str, Any]:
        """The control section of the server's stats: endpoint, the ControlServer's counters, per camera state."""
        now = time.monotonic()
        with self._lock:
            cameras = {c: st.document(now) for c, st in self.state.items()}
        return {"endpoint": self.endpoint, **self.server.stats(), "cameras": cameras,
                "error": None if self.error is None else str(self.error)}
