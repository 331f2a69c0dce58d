"""A stream's sequence numbers counted: a gap is messages lost, a step back a restarted sender."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SequenceCounter:
    """The sequence numbers of one sender's messages, as a receiver sees them.

    Attributes:
        lost: messages missing between consecutive sequence numbers.
        restarts: times the sequence stepped back or repeated (a sender that restarted numbers anew;
            what it skipped is not counted as lost).
        last: the last sequence number seen (None before the first).
    """

    lost: int = 0
    restarts: int = 0
    last: int | None = None

    def count(self, sequence: int) -> bool:
        """Count the message numbered ``sequence``; True when it shows a restart."""
        last, self.last = self.last, sequence
        if last is None:
            return False
        if sequence <= last:
            self.restarts += 1
            return True
        self.lost += sequence - last - 1
        return False
