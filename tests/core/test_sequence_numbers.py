"""A stream's sequence numbers: gaps counted as lost, a step back or a repeat as a restart."""

from __future__ import annotations

from posestudio.core.sequence_numbers import SequenceCounter


def test_gaps_are_lost_and_a_step_back_is_a_restart_not_loss() -> None:
    counter = SequenceCounter()
    assert [counter.count(s) for s in (5, 6, 9, 10)] == [False] * 4   # the first number starts the count
    assert (counter.lost, counter.restarts, counter.last) == (2, 0, 10)  # 7 and 8 lost
    assert counter.count(0) is True                                      # a restarted sender
    assert counter.count(0) is True                                      # a repeat is no progress either
    assert [counter.count(s) for s in (1, 4)] == [False, False]
    assert (counter.lost, counter.restarts, counter.last) == (4, 2, 4)
