"""Objects that own a resource and close it at the end of a ``with`` block.

The studio's network pieces (publishers, subscribers, clock probes, trackers) each hold a ZeroMQ
socket or a thread; :class:`ClosesOnExit` gives them the context-manager protocol around their
``close()``, :class:`SocketOwner` the ``close()`` of one socket in ``self._socket``, and
:func:`wake_address` the address of the socket pair that wakes their polling thread.
"""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any, Self


class ClosesOnExit:
    """``with obj: ...`` calls ``obj.close()`` at the end of the block (the subclass defines it)."""

    def close(self) -> None:  # pragma: no cover - always overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class SocketOwner(ClosesOnExit):
    """Owns one ZeroMQ socket in ``self._socket`` (None once closed)."""

    _socket: Any

    def close(self) -> None:
        """Close the socket at once (unsent messages are discarded); safe to call twice."""
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None


def wake_address(owner: str) -> str:
    """A fresh ``inproc://`` address for an object's wake-up socket pair.

    Unique per call (not derived from ``id(obj)``: Python reuses the id of a collected object while
    a socket it bound may not be closed yet, and binding the address again fails).
    """
    return f"inproc://posestudio-{owner}-{uuid.uuid4().hex}"
