"""Publishing the skeleton stream: :class:`SkeletonPublisher`, a ZeroMQ PUB socket that never blocks.

The message schema is :mod:`posestudio.core.skeleton_stream` (``docs/skeleton_stream.md``); this
module only moves frames. It is what the live reconstruction server and ``posestudio publish`` use::

    with SkeletonPublisher("tcp://*:5570") as pub:
        pub.publish(SkeletonFrame(UNSEQUENCED, time.time(), names, points, confidence, ids))

Slow subscribers never hold the publisher up. By default (ZeroMQ's PUB behaviour) each subscriber
has its own queue of at most ``hwm`` messages and, while its queue is full, that subscriber alone
misses frames: the publisher cannot see this, the subscriber sees it as gaps in the sequence numbers
(``SkeletonSubscriber.lost``). With ``nodrop=True`` a full queue makes :meth:`SkeletonPublisher.publish`
drop the frame for everyone instead, and count it in :attr:`SkeletonPublisher.dropped`; one stalled
viewer then starves every other subscriber, so it suits a single, lossless consumer. With no
subscriber connected, frames go nowhere (PUB/SUB semantics).

A socket belongs to one thread: publish from the thread that made the publisher.
"""

from __future__ import annotations

import dataclasses

import zmq

from posestudio.core.closing import SocketOwner
from posestudio.core.errors import InputError
from posestudio.core.skeleton_stream import TOPIC, SkeletonFrame, encode_frame

#: Where the live server publishes by default (every interface, port 5570).
DEFAULT_ENDPOINT = "tcp://*:5570"


class SkeletonPublisher(SocketOwner):
    """A bound ZeroMQ PUB socket sending :class:`SkeletonFrame` messages; a context manager.

    Args:
        endpoint: where to bind (``tcp://*:5570``; ``tcp://127.0.0.1:*`` picks a free port, see
            :attr:`endpoint`; ``ipc://`` and ``inproc://`` work too).
        hwm: send high-water mark, messages queued per subscriber before that subscriber misses frames.
        topic: the topic part of each message (the schema's ``b"skeleton"``).
        nodrop: when a subscriber's queue is full, drop the frame for everyone and count it in
            :attr:`dropped` rather than let that subscriber alone miss it (see the module docstring).
        context: the ZeroMQ context (default: the process's shared one).

    Attributes:
        endpoint: the endpoint actually bound (the port filled in where ``*`` was asked for).
        sent: frames handed to ZeroMQ.
        dropped: frames dropped because a queue was full (only with ``nodrop``).
        next_sequence: the number the next unnumbered frame gets.

    Raises:
        InputError: the endpoint is malformed or cannot be bound (port in use), or ``hwm`` < 1.
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, hwm: int = 100, *, topic: bytes = TOPIC,
                 nodrop: bool = False, context: zmq.Context | None = None) -> None:
        if hwm < 1:
            raise InputError(f"skeleton publisher: hwm must be at least 1 message, got {hwm}")
        self.topic = bytes(topic)
        self.sent = 0
        self.dropped = 0
        self.next_sequence = 0
        self._socket: zmq.Socket | None = (context or zmq.Context.instance()).socket(zmq.PUB)
        # options before bind (the pyzmq guide): they apply to the connections made afterwards
        self._socket.setsockopt(zmq.SNDHWM, int(hwm))
        self._socket.setsockopt(zmq.LINGER, 0)   # closing never waits on a slow subscriber
        if nodrop:
            self._socket.setsockopt(zmq.XPUB_NODROP, 1)
        try:
            self._socket.bind(endpoint)
        except zmq.ZMQError as exc:
            self.close()
            raise InputError(f"skeleton publisher: cannot bind {endpoint!r}: {exc}; expected a free "
                             "tcp://HOST:PORT (or tcp://*:PORT)") from None
        self.endpoint: str = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def publish(self, frame: SkeletonFrame) -> bool:
        """Send ``frame`` without blocking; True when queued, False when dropped (counted in :attr:`dropped`).

        A frame whose ``sequence`` is ``UNSEQUENCED`` (-1) gets :attr:`next_sequence`; a numbered frame
        keeps its number and the count goes on from it. A dropped frame still uses its number, so
        subscribers see the drop as a gap.
        """
        if self._socket is None:
            raise RuntimeError("skeleton publisher: publish() after close()")
        if frame.sequence < 0:
            frame = dataclasses.replace(frame, sequence=self.next_sequence)
        self.next_sequence = frame.sequence + 1
        try:
            self._socket.send_multipart(encode_frame(frame, self.topic), flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            self.dropped += 1
            return False
        self.sent += 1
        return True
