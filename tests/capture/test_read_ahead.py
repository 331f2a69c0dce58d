"""Read-ahead keeps order, bounds memory, hands on the producer's errors and stops with its consumer."""

from __future__ import annotations

import threading
import time
from typing import Iterator

import pytest

from posestudio.capture.read_ahead import read_ahead


def test_items_come_in_order_from_another_thread() -> None:
    threads: set[str] = set()

    def produce() -> Iterator[int]:
        for i in range(50):
            threads.add(threading.current_thread().name)
            yield i

    assert list(read_ahead(produce(), depth=3)) == list(range(50))
    assert threading.current_thread().name not in threads


def test_the_producer_runs_at_most_depth_items_ahead() -> None:
    produced = []

    def produce() -> Iterator[int]:
        for i in range(100):
            produced.append(i)
            yield i

    items = read_ahead(produce(), depth=2)
    assert next(items) == 0
    time.sleep(0.3)  # time for the producer to run as far ahead as it may
    # 0 consumed, two waiting in the queue, one more made and waiting for a slot.
    assert len(produced) <= 4
    assert list(items) == list(range(1, 100))


def test_a_producer_error_comes_after_the_items_before_it() -> None:
    def produce() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("frame 3 of cam2.mp4 cannot be decoded")

    got = []
    with pytest.raises(OSError, match="frame 3 of cam2.mp4"):
        for item in read_ahead(produce(), depth=4):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_stops_and_closes_the_producer() -> None:
    closed = threading.Event()

    def produce() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    before = threading.active_count()
    items = read_ahead(produce(), depth=2)
    for item in items:
        if item == 5:
            break
    items.close()
    assert closed.wait(2.0)
    assert threading.active_count() == before


def test_depth_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="depth must be at least 1, got 0"):
        list(read_ahead(iter([1]), depth=0))
