"""Frames decoded in a background thread a few frames ahead of their consumer.

Decoding (FFmpeg, OpenCV) releases the GIL, so a recording's next frames can be decoded on one core
while the current one is processed on another. Calibration's detection runs one worker per core,
each taking one recording at a time; with read-ahead the last recording still running when the
others are done uses two cores, not one.
"""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

#: How long a blocked producer waits before checking whether the consumer has gone, seconds.
_POLL_S = 0.1


class _Raised:
    """An exception the producer raised, to re-raise in the consumer."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


def read_ahead(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """The items of ``items`` in order, produced by a background thread at most ``depth`` ahead.

    Memory is bounded by ``depth`` items (for decoded frames: ``depth`` images). An exception the
    producer raises is raised in the consumer where the item would have come, after the items
    before it. Closing the returned iterator early (``break``, an exception in the consumer) stops
    the producer and closes ``items``.

    Raises:
        ValueError: ``depth`` < 1 (at the call, not at the first item).
    """
    if depth < 1:
        raise ValueError(f"read_ahead depth must be at least 1, got {depth}")
    return _read_ahead(items, depth)


def _read_ahead(items: Iterable[T], depth: int) -> Iterator[T]:
    """:func:`read_ahead`'s generator (the thread starts at the first item asked for)."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        """Wait for a free slot; False when the consumer has gone."""
        while not stop.is_set():
            try:
                slots.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(items)
        try:
            for item in source:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(_Raised(exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item = slots.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        producer.join()
