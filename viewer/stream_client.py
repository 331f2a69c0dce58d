"""Reading the skeleton stream: :class:`SkeletonSubscriber`, a ZeroMQ SUB socket that survives bad messages.

The message schema is :mod:`posestudio.core.skeleton_stream` (``docs/skeleton_stream.md``). A viewer
wants the newest skeleton, not a backlog::

    with SkeletonSubscriber("tcp://studio-server:5570") as sub:
        while running:
            frame = sub.latest(timeout_s=0.05)   # None when nothing came
            if frame is not None:
                draw(frame.points, frame.confidence, frame.person_ids)

A malformed message (not msgpack, wrong schema or version, bad arrays) is counted in
:attr:`SkeletonSubscriber.malformed`, its error kept in :attr:`SkeletonSubscriber.last_error`, and
skipped; gaps in the publisher's sequence numbers (frames the publisher or the network dropped for
this subscriber) are counted in :attr:`SkeletonSubscriber.lost`. A publisher that restarts (its
sequence starts again lower) is counted in :attr:`SkeletonSubscriber.restarts`, not as loss.

ZeroMQ's slow joiner: a SUB socket receives only what is published after its connection and
subscription are made (a few milliseconds after :class:`SkeletonSubscriber` returns, longer while
the publisher is not up yet; it reconnects by itself), so the first frames of a stream may be missed.

``conflate=True`` keeps only the newest frame: :meth:`SkeletonSubscriber.receive` then behaves like
:meth:`SkeletonSubscriber.latest` and the receive queue is kept short. ZeroMQ's own ``ZMQ_CONFLATE``
is not used: it does not support multipart messages (libzmq drops them), and every skeleton message
is two parts.

A socket belongs to one thread: receive in the thread that made the subscriber.
"""

from __future__ import annotations

import math
import time

import zmq

from posestudio.core.closing import SocketOwner
from posestudio.core.errors import InputError
from posestudio.core.sequence_numbers import SequenceCounter
from posestudio.core.skeleton_stream import TOPIC, SkeletonFrame, StreamMessageError, decode_frame

#: Malformed messages read past the deadline of one call while more are waiting, at most (a flood of
#: garbage cannot hold a call up for ever).
_MAX_LATE_MALFORMED = 1000
#: Frames :meth:`SkeletonSubscriber.latest` drains in one call, at most.
_MAX_DRAIN = 100_000


class SkeletonSubscriber(SocketOwner):
    """A connected ZeroMQ SUB socket reading :class:`SkeletonFrame` messages; a context manager.

    Args:
        endpoint: the publisher's endpoint (``tcp://HOST:5570``).
        topic: the subscription (a prefix of the messages' topic part).
        conflate: keep only the newest frame (see the module docstring).
        hwm: receive high-water mark, messages queued before further ones are dropped (default 100;
            2 with ``conflate``).
        context: the ZeroMQ context (default: the process's shared one).

    Attributes:
        received: good frames decoded.
        malformed: messages that broke the schema, skipped.
        last_error: the last malformed message's error text (None before the first).
        lost: frames missing between consecutive sequence numbers.
        restarts: times the sequence went backwards (a restarted publisher).
        skipped: good frames passed over by :meth:`latest` (or ``conflate``) for a newer one.
        last_sequence: the sequence number of the last good frame (None before the first).

    Raises:
        InputError: the endpoint is malformed.
    """

    def __init__(self, endpoint: str, topic: bytes = TOPIC, conflate: bool = False, *, hwm: int | None = None,
                 context: zmq.Context | None = None) -> None:
        self.endpoint = endpoint
        self.topic = bytes(topic)
        self.conflate = conflate
        self.received = 0
        self.malformed = 0
        self.last_error: str | None = None
        self.skipped = 0
        self._sequence = SequenceCounter()
        hwm = (2 if conflate else 100) if hwm is None else hwm
        if hwm < 1:
            raise InputError(f"skeleton subscriber: hwm must be at least 1 message, got {hwm}")
        self._socket: zmq.Socket | None = (context or zmq.Context.instance()).socket(zmq.SUB)
        # options before connect (the pyzmq guide): they apply to the connection made afterwards
        self._socket.setsockopt(zmq.RCVHWM, int(hwm))
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SUBSCRIBE, self.topic)
        try:
            self._socket.connect(endpoint)
        except zmq.ZMQError as exc:
            self.close()
            raise InputError(f"skeleton subscriber: cannot connect to {endpoint!r}: {exc}; expected "
                             "tcp://HOST:PORT") from None
        self._poller = zmq.Poller()
        self._poller.register(self._socket, zmq.POLLIN)

    def receive(self, timeout_s: float | None = None) -> SkeletonFrame | None:
        """The next good frame, waiting at most ``timeout_s`` seconds (None: for ever); None on timeout.

        Malformed messages on the way are counted and skipped. With ``conflate`` the newest frame
        waiting is returned and the older ones are passed over (as :meth:`latest`).
        """
        frame = self._next(timeout_s)
        if frame is not None and self.conflate:
            frame = self._drain(frame)
        return frame

    def latest(self, timeout_s: float | None = 0.0) -> SkeletonFrame | None:
        """The newest good frame: waits at most ``timeout_s`` for one, then drains the queue.

        Frames passed over are counted in :attr:`skipped`. None when nothing came in time.
        """
        frame = self._next(timeout_s)
        return None if frame is None else self._drain(frame)

    def _drain(self, frame: SkeletonFrame) -> SkeletonFrame:
        """``frame``, or the newest good frame already waiting behind it."""
        for _ in range(_MAX_DRAIN):
            newer = self._next(0.0)
            if newer is None:
                break
            self.skipped += 1
            frame = newer
        return frame

    def _next(self, timeout_s: float | None) -> SkeletonFrame | None:
        """The next good frame within ``timeout_s``; past the deadline, only messages already waiting."""
        if self._socket is None:
            raise RuntimeError("skeleton subscriber: receive() after close()")
        deadline = None if timeout_s is None else time.monotonic() + max(0.0, float(timeout_s))
        late = 0
        while True:
            wait_ms = None if deadline is None else max(0, math.ceil((deadline - time.monotonic()) * 1000))
            if not self._poller.poll(wait_ms):
                return None
            frame = self._read_one()
            if frame is not None:
                return frame
            if deadline is not None and time.monotonic() >= deadline:
                late += 1
                if late >= _MAX_LATE_MALFORMED:
                    return None

    def _read_one(self) -> SkeletonFrame | None:
        """Read one waiting message: its frame, or None (malformed, counted; or nothing there)."""
        assert self._socket is not None
        try:
            parts = self._socket.recv_multipart(flags=zmq.NOBLOCK)
        except zmq.Again:
            return None
        try:
            frame = decode_frame(parts, topic=None)   # the SUB socket has matched the topic by prefix
        except StreamMessageError as exc:
            self.malformed += 1
            self.last_error = str(exc)
            return None
        self._sequence.count(frame.sequence)
        self.received += 1
        return frame

    @property
    def lost(self) -> int:
        return self._sequence.lost

    @property
    def restarts(self) -> int:
        return self._sequence.restarts

    @property
    def last_sequence(self) -> int | None:
        return self._sequence.last
