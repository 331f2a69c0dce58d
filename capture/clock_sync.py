"""Clock sync as Lab Streaming Layer does it: nodes' clocks mapped to the studio clock, never stepped.

The reconstruction server's clock is the **studio clock**. Every capture node keeps its own clock
(by default ``time.monotonic_ns``) and stamps its frames with it; the server maps those stamps to
studio time with a per-node :class:`ClockModel`. Nothing ever sets a node's clock: a step in the
middle of a take would tear its timestamps apart, whereas a model only changes how stamps are read.

The exchange (``docs/clock_sync.md``), over ZeroMQ on the loopback or a LAN::

    server (ClockSyncClient, DEALER)                    node (ClockProbeResponder, ROUTER, binds)
      t0 = studio clock; send [MAGIC, probe id]  ───▶
                                                      ◀─── tn = node clock; send [MAGIC, probe id, tn]
      t1 = studio clock on receipt

    offset = tn - (t0 + t1) / 2      node minus studio, ns
    round trip = t1 - t0             ns; the node read its clock somewhere in [t0, t1], so the
                                     offset is within half the round trip of the truth

Every few seconds the server sends a burst of probes (:meth:`ClockSyncClient.burst`) and keeps the
one with the shortest round trip: the least queued, so the tightest. :class:`ClockModel` fits
offset and drift (linear in studio time) to the best probes of the last bursts by weighted least
squares with Huber weights, and maps node stamps to studio time with an uncertainty.
:class:`ClockTracker` runs the bursts for every node in a background thread.

Why DEALER/ROUTER and not REQ/REP: a REQ socket that loses a reply is stuck for good (the pyzmq
guide's "lazy pirate" problem). A DEALER never is: each probe carries an id, a reply to an older,
timed-out probe is recognised and dropped, and the socket stays usable. The node binds a ROUTER so
that any number of servers (a restarted one, a second one) can probe it, each answered by identity.
The DEALER sets ``ZMQ_IMMEDIATE``, so a probe is only sent on a live connection and an unreachable
node is told apart from a silent one.

Every clock is injectable (``Callable[[], int]`` returning ns) so tests can skew and drift them.
Units: integer nanoseconds for times, ppm (1e-6) for drift.
"""

from __future__ import annotations

import itertools
import logging
import math
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

import numpy as np
import zmq

from posestudio.core.closing import ClosesOnExit, SocketOwner, wake_address
from posestudio.core.errors import PoseStudioError
from posestudio.core.robust import huber_weights

log = logging.getLogger(__name__)

#: A clock: a callable returning integer nanoseconds.
Clock = Callable[[], int]
#: First frame of every probe and reply: the protocol's name and version.
MAGIC = b"posestudio.clock/1"
_ID = struct.Struct(">Q")      # probe id, unsigned 64-bit big-endian
_TIME = struct.Struct(">q")    # node time, signed 64-bit big-endian ns

#: Probes per burst (LSL sends a handful every few seconds).
DEFAULT_PROBES = 8
#: Seconds between bursts in :class:`ClockTracker`.
DEFAULT_INTERVAL_S = 2.0
#: Seconds to wait for a connection, and then for each reply.
DEFAULT_TIMEOUT_S = 0.5


class ClockSyncError(PoseStudioError):
    """A node's clock could not be probed (no connection, or no reply in time); the message names the endpoint."""


@dataclass(frozen=True)
class ClockProbe:
    """One probe: studio send time, node reply time, studio receive time.

    Attributes:
        t0_ns: studio clock just before the probe was sent, ns.
        tn_ns: node clock when the node answered, ns.
        t1_ns: studio clock just after the reply arrived, ns.
        probe_id: the probe's number (unique per client).
    """

    t0_ns: int
    tn_ns: int
    t1_ns: int
    probe_id: int = 0

    @property
    def round_trip_ns(self) -> int:
        """``t1 - t0``, ns."""
        return self.t1_ns - self.t0_ns

    @property
    def uncertainty_ns(self) -> float:
        """Half the round trip, ns: the offset is within this of the truth, whatever the path asymmetry."""
        return self.round_trip_ns / 2

    @property
    def midpoint_ns(self) -> int:
        """``(t0 + t1) / 2`` on the studio clock (rounded down), ns: when the offset holds."""
        return (self.t0_ns + self.t1_ns) // 2

    @property
    def offset_ns(self) -> float:
        """``tn - (t0 + t1) / 2``: node clock minus studio clock, ns (exact in integer arithmetic)."""
        return (2 * self.tn_ns - self.t0_ns - self.t1_ns) / 2


def _check_clock(clock: Clock) -> Clock:
    if not callable(clock):
        raise TypeError(f"clock must be a callable returning integer nanoseconds, got {clock!r}")
    return clock


class ClockProbeResponder(ClosesOnExit):
    """The node side: a bound ROUTER socket that answers each probe with the node's clock.

    Use it in one of two ways: call :meth:`start` once and a background thread answers (it sleeps in
    ``zmq.Poller`` until a probe or :meth:`stop` arrives, no polling loop), or leave it unstarted
    and call :meth:`serve` from the node's own event loop (:attr:`socket` can be registered with
    that loop's poller).

    Args:
        endpoint: where to bind (``tcp://*:5581``; ``tcp://127.0.0.1:*`` picks a free port, see
            :attr:`endpoint`).
        clock: the node's clock, ns (default ``time.monotonic_ns``).
        context: the ZeroMQ context (default: the process's shared one).
        configure: called with the socket before it binds (CURVE keys and the like).

    Attributes:
        endpoint: the endpoint actually bound.
        answered: probes answered.
        malformed: messages that were not probes (ignored).

    Raises:
        ClockSyncError: the endpoint cannot be bound.
    """

    def __init__(self, endpoint: str, clock: Clock = time.monotonic_ns, *, context: zmq.Context | None = None,
                 configure: Callable[[zmq.Socket], None] | None = None) -> None:
        self.clock = _check_clock(clock)
        self.answered = 0
        self.malformed = 0
        self._context = context or zmq.Context.instance()
        self._thread: threading.Thread | None = None
        self._socket: zmq.Socket | None = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, 100)
        self._socket.setsockopt(zmq.RCVHWM, 100)
        if configure is not None:
            configure(self._socket)
        try:
            self._socket.bind(endpoint)
        except zmq.ZMQError as exc:
            self._socket.close(linger=0)
            self._socket = None
            raise ClockSyncError(f"clock responder: cannot bind {endpoint!r}: {exc}; expected a free "
                                 "tcp://HOST:PORT") from None
        self.endpoint: str = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        # the stop signal for the thread: an inproc PAIR, so the thread sleeps in one poll on both
        self._wake_address = wake_address("clock-responder")
        self._wake_in: zmq.Socket | None = None
        self._wake_out: zmq.Socket | None = None

    @property
    def socket(self) -> zmq.Socket:
        """The ROUTER socket (to register with an outside poller; do not use after :meth:`start`)."""
        if self._socket is None:
            raise RuntimeError("clock responder: closed")
        return self._socket

    def serve(self, timeout_s: float = 0.0) -> int:
        """Wait up to ``timeout_s`` seconds for probes and answer every one that is waiting.

        Returns the number answered. Not to be called once :meth:`start` has handed the socket to
        the thread.
        """
        if self._thread is not None:
            raise RuntimeError("clock responder: serve() while the responder's thread runs")
        sock = self.socket
        if not sock.poll(max(0, int(timeout_s * 1000)), zmq.POLLIN):
            return 0
        return self._answer_waiting(sock)

    def _answer_waiting(self, sock: zmq.Socket) -> int:
        n = 0
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return n
            tn = self.clock()   # read as soon as the probe is in: the midpoint assumption wants it early
            if len(frames) != 3 or frames[1] != MAGIC or len(frames[2]) != _ID.size:
                self.malformed += 1
                continue
            try:
                sock.send_multipart([frames[0], MAGIC, frames[2], _TIME.pack(int(tn))], zmq.NOBLOCK)
            except zmq.ZMQError:     # the peer's queue is full or it has gone: it will probe again
                continue
            self.answered += 1
            n += 1

    def start(self) -> Self:
        """Answer probes in a background thread until :meth:`stop` (returns self)."""
        if self._thread is not None:
            return self
        sock = self.socket
        self._wake_in = self._context.socket(zmq.PAIR)
        self._wake_in.bind(self._wake_address)
        self._wake_out = self._context.socket(zmq.PAIR)
        self._wake_out.connect(self._wake_address)
        wake = self._wake_in
        self._thread = threading.Thread(target=self._run, args=(sock, wake), name="clock-responder", daemon=True)
        self._thread.start()
        return self

    def _run(self, sock: zmq.Socket, wake: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(wake, zmq.POLLIN)
        while True:
            events = dict(poller.poll())           # sleeps until a probe or the stop signal
            if wake in events:
                return
            if sock in events:
                self._answer_waiting(sock)

    def stop(self) -> None:
        """Stop the thread (if started) and close the sockets; safe to call twice."""
        if self._thread is not None and self._wake_out is not None:
            self._wake_out.send(b"stop")
            self._thread.join(timeout=5.0)
        self._thread = None
        for attr in ("_wake_out", "_wake_in", "_socket"):
            s = getattr(self, attr)
            if s is not None:
                s.close(linger=0)
                setattr(self, attr, None)

    def close(self) -> None:
        """Same as :meth:`stop` (what ``with`` calls)."""
        self.stop()


class ClockSyncClient(SocketOwner):
    """The server side: probes one node's :class:`ClockProbeResponder` over a DEALER socket.

    A socket belongs to one thread: use a client from the thread that made it.

    Args:
        endpoint: the node's responder (``tcp://HOST:PORT``).
        clock: the studio clock, ns (default ``time.monotonic_ns``).
        timeout_s: seconds to wait for a connection, and then for each reply (real time, whatever
            ``clock`` says).
        context: the ZeroMQ context (default: the process's shared one).
        configure: called with the socket before it connects (CURVE keys and the like).

    Attributes:
        last_burst: every probe answered in the last :meth:`burst`, in order.
        stale: replies dropped because their probe had already timed out.
    """

    def __init__(self, endpoint: str, clock: Clock = time.monotonic_ns, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 context: zmq.Context | None = None, configure: Callable[[zmq.Socket], None] | None = None) -> None:
        if not timeout_s > 0:
            raise ValueError(f"clock sync client: timeout_s must be positive, got {timeout_s}")
        self.endpoint = endpoint
        self.clock = _check_clock(clock)
        self.timeout_s = float(timeout_s)
        self.last_burst: list[ClockProbe] = []
        self.stale = 0
        self._ids = itertools.count(1)
        self._socket: zmq.Socket | None = (context or zmq.Context.instance()).socket(zmq.DEALER)
        # options before connect (the pyzmq guide): IMMEDIATE queues only on a live connection, so an
        # unreachable node shows as "cannot send" rather than probes piling up for later
        self._socket.setsockopt(zmq.IMMEDIATE, 1)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, 16)
        self._socket.setsockopt(zmq.RCVHWM, 64)
        if configure is not None:
            configure(self._socket)
        try:
            self._socket.connect(endpoint)
        except zmq.ZMQError as exc:
            self.close()
            raise ClockSyncError(f"clock sync: cannot connect to {endpoint!r}: {exc}; "
                                 "expected tcp://HOST:PORT") from None

    def probe(self) -> ClockProbe:
        """One probe: send, wait for its reply, return ``(t0, tn, t1)``.

        Raises:
            ClockSyncError: no connection to the node within ``timeout_s``, or no reply within
                ``timeout_s`` of sending.
        """
        if self._socket is None:
            raise RuntimeError("clock sync client: probe() after close()")
        sock = self._socket
        timeout_ms = max(1, int(self.timeout_s * 1000))
        if not sock.poll(timeout_ms, zmq.POLLOUT):
            raise ClockSyncError(f"clock sync: no connection to {self.endpoint} within {self.timeout_s:g} s; "
                                 "is the node running and its clock responder bound there?")
        probe_id = next(self._ids)
        pid = _ID.pack(probe_id)
        deadline = time.monotonic() + self.timeout_s
        t0 = self.clock()
        try:
            sock.send_multipart([MAGIC, pid], zmq.NOBLOCK)
        except zmq.Again:
            raise ClockSyncError(f"clock sync: lost the connection to {self.endpoint} while probing") from None
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0 or not sock.poll(remaining_ms, zmq.POLLIN):
                raise ClockSyncError(f"clock sync: {self.endpoint} did not answer a probe within "
                                     f"{self.timeout_s:g} s")
            frames = sock.recv_multipart(zmq.NOBLOCK)
            t1 = self.clock()
            if len(frames) == 3 and frames[0] == MAGIC and frames[1] == pid and len(frames[2]) == _TIME.size:
                return ClockProbe(int(t0), _TIME.unpack(frames[2])[0], int(t1), probe_id)
            self.stale += 1      # a reply to an older probe that had timed out, or garbage

    def burst(self, n: int = DEFAULT_PROBES, spacing_s: float = 0.002) -> ClockProbe:
        """``n`` probes one after another; returns the one with the shortest round trip.

        All answered probes are kept in :attr:`last_burst`. When a reply times out after some
        probes were answered, the burst ends early with the best of those.

        Args:
            n: probes, at least 1.
            spacing_s: pause between probes, seconds (spreads them over scheduler hiccups).
        Raises:
            ClockSyncError: not one probe was answered (the message says why).
        """
        if n < 1:
            raise ValueError(f"clock sync: a burst needs at least 1 probe, got {n}")
        self.last_burst = []
        for k in range(n):
            if k and spacing_s > 0:
                time.sleep(spacing_s)
            try:
                self.last_burst.append(self.probe())
            except ClockSyncError:
                if not self.last_burst:
                    raise
                break
        return min(self.last_burst, key=lambda p: p.round_trip_ns)


class ClockModel:
    """One node's clock against the studio clock: ``node = studio + offset + drift * (studio - t_ref)``.

    Fed the best probe of each burst (:meth:`update`); fits offset (ns) and drift (dimensionless,
    reported in ppm) to the last ``window`` bursts by weighted least squares with Huber weights,
    iteratively reweighted. A probe's weight is ``1 / sigma^2`` with ``sigma = u / sqrt(3)`` (the
    true offset lies uniformly anywhere within the half round trip ``u``, floored at
    ``min_uncertainty_ns``), times its Huber weight on ``residual / sigma``.

    The drift has a prior: zero, with a standard deviation of half ``assumed_max_drift_ppm``. Two
    bursts a fraction of a second apart (a node's first burst, then the tracker's next round) would
    otherwise fix the drift from two offsets a few tens of microseconds noisy: hundreds of ppm wrong,
    a millisecond off two seconds later. Over a baseline of seconds the bursts outweigh the prior.

    Uncertainty (:meth:`uncertainty_ns`): the fit's weighted mean half round trip (a bound on how
    far path asymmetry can bias it: the fitted offset is a weighted average of measurements each
    within its half round trip of the truth) plus two standard errors of the fitted line at that
    time (which grow when extrapolating past the last burst). With a single burst the drift is
    taken as 0 and the uncertainty grows by ``assumed_max_drift_ppm`` per second from it.

    A burst whose offset is more than ``reset_ns`` from the model's prediction means the node's
    clock is another clock now (the node restarted): the history is dropped and the fit starts
    again (counted in :attr:`resets`).

    Not thread-safe: :class:`ClockTracker` holds a lock around it.

    Args:
        window: bursts the fit uses (the latest ones), at least 2.
        huber_delta: Huber threshold in units of a probe's ``sigma``.
        min_uncertainty_ns: floor on a probe's half round trip, ns.
        assumed_max_drift_ppm: drift assumed possible before bursts fix it, ppm (also twice the
            standard deviation of the drift's prior).
        reset_ns: a jump of the offset beyond this restarts the fit, ns.
    """

    def __init__(self, window: int = 32, *, huber_delta: float = 2.0, min_uncertainty_ns: float = 2_000.0,
                 assumed_max_drift_ppm: float = 200.0, reset_ns: float = 50e6) -> None:
        if window < 2:
            raise ValueError(f"clock model: window must be at least 2 bursts, got {window}")
        if not assumed_max_drift_ppm > 0:
            raise ValueError(f"clock model: assumed_max_drift_ppm must be positive, got {assumed_max_drift_ppm}")
        self.window = int(window)
        self.huber_delta = float(huber_delta)
        self.min_uncertainty_ns = float(min_uncertainty_ns)
        self.assumed_max_drift_ppm = float(assumed_max_drift_ppm)
        self.reset_ns = float(reset_ns)
        self.resets = 0
        self._probes: deque[ClockProbe] = deque(maxlen=self.window)
        self._t_ref = 0                              # studio ns, the fit's origin (an integer: no float loss)
        self._coef = np.zeros(2)                     # offset at t_ref (ns), drift (ns/ns)
        self._cov = np.zeros((2, 2))                 # covariance of _coef
        self._bias_ns = 0.0                          # weighted mean half round trip

    # ------------------------------------------------------------------ fitting
    @property
    def bursts(self) -> int:
        """Bursts in the current fit."""
        return len(self._probes)

    @property
    def ready(self) -> bool:
        """At least one burst seen: stamps can be mapped."""
        return bool(self._probes)

    @property
    def probes(self) -> tuple[ClockProbe, ...]:
        """The probes the fit uses, oldest first."""
        return tuple(self._probes)

    def update(self, probe: ClockProbe) -> None:
        """Add the best probe of a burst and refit."""
        if self._probes:
            predicted = self.offset_ns(probe.midpoint_ns)
            if abs(probe.offset_ns - predicted) > self.reset_ns:
                log.warning("clock model: offset jumped by %.1f ms; the node's clock changed, fit restarted",
                            (probe.offset_ns - predicted) / 1e6)
                self._probes.clear()
                self.resets += 1
        self._probes.append(probe)
        self._fit()

    def _fit(self) -> None:
        probes = self._probes
        self._t_ref = probes[-1].midpoint_ns
        x = np.array([p.midpoint_ns - self._t_ref for p in probes], dtype=np.float64)     # (n,) ns
        y = np.array([p.offset_ns for p in probes], dtype=np.float64)                     # (n,) ns
        u = np.maximum(np.array([p.uncertainty_ns for p in probes], dtype=np.float64), self.min_uncertainty_ns)
        sigma = u / math.sqrt(3.0)
        if len(probes) == 1:
            self._coef = np.array([y[0], 0.0])
            self._cov = np.array([[sigma[0] ** 2, 0.0], [0.0, 0.0]])
            self._bias_ns = float(u[0])
            return
        design = np.stack([np.ones_like(x), x / 1e9], axis=1)     # (n, 2); slope in ns per second
        drift_sigma = 0.5 * self.assumed_max_drift_ppm * 1e3        # ns per second (1 ppm = 1000 ns/s)
        prior = np.diag([0.0, 1.0 / drift_sigma**2])                # drift ~ N(0, drift_sigma^2)
        base_w = 1.0 / sigma**2
        w = base_w
        coef = np.zeros(2)
        for _ in range(10):
            normal = design.T @ (w[:, None] * design) + prior
            new = np.linalg.solve(normal, design.T @ (w * y))
            r = (y - design @ new) / sigma
            w = base_w * huber_weights(np.abs(r), self.huber_delta)
            done = np.allclose(new, coef, rtol=0.0, atol=1e-3)
            coef = new
            if done:
                break
        normal = design.T @ (w[:, None] * design) + prior
        cov = np.linalg.inv(normal)
        dof = len(probes) - 2
        if dof > 0:    # residuals larger than the round trips promise widen the errors; never narrower
            r = (y - design @ coef) / sigma
            chi2 = float(np.sum(huber_weights(np.abs(r), self.huber_delta) * r**2)) / dof
            cov *= max(1.0, chi2)
        scale = np.array([1.0, 1e-9])                       # back to (ns, ns/ns)
        self._coef = coef * scale
        self._cov = cov * np.outer(scale, scale)
        self._bias_ns = float(np.sum(w * u) / np.sum(w))

    # ------------------------------------------------------------------ reading
    def _need(self) -> None:
        if not self._probes:
            raise RuntimeError("clock model: no burst yet; call update() with a probe first")

    @property
    def drift_ppm(self) -> float:
        """The node clock's rate minus the studio clock's, ppm (positive: the node's clock runs fast)."""
        self._need()
        return float(self._coef[1] * 1e6)

    def offset_ns(self, at_studio_ns: int | None = None) -> float:
        """Node clock minus studio clock at studio time ``at_studio_ns`` (default: the last burst), ns."""
        self._need()
        dt = 0 if at_studio_ns is None else int(at_studio_ns) - self._t_ref
        return float(self._coef[0] + self._coef[1] * dt)

    def uncertainty_ns(self, at_studio_ns: int | None = None) -> float:
        """How far the mapped time can be off at studio time ``at_studio_ns`` (default: the last burst), ns."""
        self._need()
        dt = 0.0 if at_studio_ns is None else float(int(at_studio_ns) - self._t_ref)
        if len(self._probes) == 1:
            return self._bias_ns + abs(dt) * self.assumed_max_drift_ppm * 1e-6
        g = np.array([1.0, dt])
        return self._bias_ns + 2.0 * math.sqrt(max(0.0, float(g @ self._cov @ g)))

    def to_studio_ns(self, node_time_ns: int) -> tuple[int, int]:
        """A node stamp on the studio clock: ``(studio_ns, uncertainty_ns)``.

        Solves ``node = studio + offset + drift * (studio - t_ref)`` for ``studio``; integer
        arithmetic for the large parts, so epoch-sized stamps lose nothing.
        """
        self._need()
        a, b = self._coef
        a_int = int(round(a))
        d = int(node_time_ns) - self._t_ref - a_int                  # node time relative to the fit, ns
        studio = self._t_ref + int(round((d - (a - a_int)) / (1.0 + b)))
        return studio, int(math.ceil(self.uncertainty_ns(studio)))

    def to_node_ns(self, studio_ns: int) -> int:
        """The inverse: a studio time on the node's clock, ns (to announce a start time to a node)."""
        return int(studio_ns) + int(round(self.offset_ns(studio_ns)))


@dataclass(frozen=True)
class NodeClockStatus:
    """One node's clock as :meth:`ClockTracker.status` reports it (for stats and the session log).

    Attributes:
        endpoint: the node's responder.
        bursts: bursts in the fit; 0 before the first success.
        offset_ms, drift_ppm, uncertainty_us: the model now (NaN before the first burst).
        round_trip_us: the last best probe's round trip (NaN before the first burst).
        failures: bursts that failed in a row (0 after a success).
        last_error: the last failure's message, or "".
    """

    endpoint: str
    bursts: int
    offset_ms: float
    drift_ppm: float
    uncertainty_us: float
    round_trip_us: float
    failures: int
    last_error: str


class ClockTracker(ClosesOnExit):
    """The server's clock sync loop: a burst to every node every ``interval_s`` seconds, one model each.

    The bursts run in a background thread that owns the clients' sockets and sleeps on an event
    between rounds. A failed burst is logged and counted, never raised: the node's model keeps its
    last fit and its uncertainty grows with the time since. :meth:`to_studio_ns` may be called
    from any thread.

    Args:
        interval_s: seconds between rounds.
        probes: probes per burst.
        timeout_s: connection and reply timeout of each probe, seconds.
        clock: the studio clock, ns.
        context: the ZeroMQ context.
        configure: called with each client socket before it connects (CURVE keys).
        model_factory: makes a node's :class:`ClockModel`.
    """

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S, probes: int = DEFAULT_PROBES, *,
                 timeout_s: float = DEFAULT_TIMEOUT_S, clock: Clock = time.monotonic_ns,
                 context: zmq.Context | None = None, configure: Callable[[zmq.Socket], None] | None = None,
                 model_factory: Callable[[], ClockModel] = ClockModel) -> None:
        self.interval_s = float(interval_s)
        self.probes = int(probes)
        self.timeout_s = float(timeout_s)
        self.clock = _check_clock(clock)
        self._context = context or zmq.Context.instance()
        self._configure = configure
        self._model_factory = model_factory
        self._lock = threading.Lock()
        self._endpoints: dict[str, str] = {}
        self._models: dict[str, ClockModel] = {}
        self._failures: dict[str, int] = {}
        self._errors: dict[str, str] = {}
        self._last: dict[str, ClockProbe] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()               # set by stop() and wake(): the sleep between rounds ends
        self._round_done = threading.Condition(self._lock)
        self.rounds = 0
        self._thread: threading.Thread | None = None

    def add_node(self, name: str, endpoint: str) -> None:
        """Probe ``name`` at ``endpoint`` from the next round; a known node at a new endpoint starts afresh."""
        with self._lock:
            if self._endpoints.get(name) != endpoint:
                self._endpoints[name] = endpoint
                self._models[name] = self._model_factory()
                self._failures[name] = 0
                self._errors[name] = ""
                self._last.pop(name, None)

    def remove_node(self, name: str) -> None:
        """Stop probing ``name`` and forget its model."""
        with self._lock:
            for table in (self._endpoints, self._models, self._failures, self._errors, self._last):
                table.pop(name, None)

    def wake(self) -> None:
        """Probe the nodes that have no model yet (just added, or added again) now rather than at the next
        round; the others keep their schedule. A round in progress finishes first. Safe from any thread."""
        self._wake.set()

    def node_offset_ns(self, name: str, at_studio_ns: int) -> int | None:
        """Node ``name``'s clock minus the studio clock at studio time ``at_studio_ns``, ns
        (``ClockModel.to_node_ns(t) - t``); None for an unknown node or one without a burst yet."""
        with self._lock:
            model = self._models.get(name)
            if model is None or not model.ready:
                return None
            return model.to_node_ns(at_studio_ns) - int(at_studio_ns)

    def to_studio_ns(self, name: str, node_time_ns: int) -> tuple[int, int]:
        """Node ``name``'s stamp on the studio clock, ``(studio_ns, uncertainty_ns)``.

        Raises:
            KeyError: unknown node. RuntimeError: no burst has succeeded yet.
        """
        with self._lock:
            return self._models[name].to_studio_ns(node_time_ns)

    def studio_ns_if_ready(self, name: str, node_time_ns: int) -> tuple[int, int] | None:
        """Node ``name``'s stamp on the studio clock, ``(studio_ns, uncertainty_ns)``, or None while it has
        no model to map with (unknown, removed, or before its first burst). One locked step, so a node
        removed by another thread between a check and the mapping cannot raise."""
        with self._lock:
            model = self._models.get(name)
            return model.to_studio_ns(node_time_ns) if model is not None and model.ready else None

    def ready(self, name: str) -> bool:
        """Whether node ``name`` has a model to map stamps with."""
        with self._lock:
            model = self._models.get(name)
            return model is not None and model.ready

    def status(self) -> dict[str, NodeClockStatus]:
        """Every node's clock now (offsets and uncertainties evaluated at the studio clock's now)."""
        now = self.clock()
        out = {}
        with self._lock:
            for name, endpoint in self._endpoints.items():
                model, last = self._models[name], self._last.get(name)
                nan = float("nan")
                out[name] = NodeClockStatus(
                    endpoint, model.bursts,
                    model.offset_ns(now) / 1e6 if model.ready else nan,
                    model.drift_ppm if model.ready else nan,
                    model.uncertainty_ns(now) / 1e3 if model.ready else nan,
                    last.round_trip_ns / 1e3 if last else nan,
                    self._failures[name], self._errors[name])
        return out

    def start(self) -> Self:
        """Run rounds in a background thread until :meth:`stop` (returns self)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="clock-tracker", daemon=True)
            self._thread.start()
        return self

    def wait_rounds(self, rounds: int, timeout_s: float) -> bool:
        """Block until at least ``rounds`` rounds have finished in all (True) or ``timeout_s`` passed (False)."""
        with self._round_done:
            return self._round_done.wait_for(lambda: self.rounds >= rounds, timeout=timeout_s)

    def _run(self) -> None:
        clients: dict[str, ClockSyncClient] = {}
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                self._round(clients, only_new=False)
                with self._round_done:
                    self.rounds += 1
                    self._round_done.notify_all()
                # sleep to the next round; a wake() in between probes only the nodes without a model (a
                # node just added or restarted), so the others' bursts stay evenly spaced for the drift fit
                while not self._stop.is_set():
                    remaining = self.interval_s - (time.monotonic() - started)
                    if remaining <= 0 or not self._wake.wait(remaining):
                        break
                    self._wake.clear()
                    self._round(clients, only_new=True)
        finally:
            for client in clients.values():
                client.close()

    def _round(self, clients: dict[str, ClockSyncClient], only_new: bool) -> None:
        """One burst to every node (``only_new``: to those without a model yet); ``clients`` by node, kept."""
        with self._lock:
            wanted = {n: e for n, e in self._endpoints.items() if not only_new or not self._models[n].ready}
            known = dict(self._endpoints)
        for name in [n for n, c in clients.items() if known.get(n) != c.endpoint]:
            clients.pop(name).close()
        for name, endpoint in wanted.items():
            if self._stop.is_set():
                break
            if name not in clients:
                try:
                    clients[name] = ClockSyncClient(endpoint, self.clock, timeout_s=self.timeout_s,
                                                    context=self._context, configure=self._configure)
                except ClockSyncError as exc:
                    self._failed(name, endpoint, exc)
                    continue
            try:
                best = clients[name].burst(self.probes)
            except ClockSyncError as exc:
                self._failed(name, endpoint, exc)
                continue
            with self._lock:
                if self._endpoints.get(name) == endpoint:
                    self._models[name].update(best)
                    self._last[name] = best
                    self._failures[name] = 0
                    self._errors[name] = ""

    def _failed(self, name: str, endpoint: str, exc: ClockSyncError) -> None:
        log.warning("%s", exc)
        with self._lock:
            if self._endpoints.get(name) == endpoint:
                self._failures[name] += 1
                self._errors[name] = str(exc)

    def stop(self) -> None:
        """Stop the thread (after the burst in progress); safe to call twice."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 2 * self.probes * self.timeout_s))
            self._thread = None

    def close(self) -> None:
        """Same as :meth:`stop` (what ``with`` calls)."""
        self.stop()
