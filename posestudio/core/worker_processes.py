"""How PoseStudio starts worker processes: forked from a clean fork server, spawned where there is none.

Not plain ``fork``: a process that already runs thread pools (OpenCV's, BLAS's, ZeroMQ's I/O threads,
a caller's own) can deadlock in a forked child on a lock one of those threads held at the fork. A fork
server is a fresh single-threaded process that imports the modules it is given once; each worker is
forked from it in milliseconds with those modules loaded. Platforms without one (Windows) spawn
each worker (a fresh interpreter that imports what it needs, about half a second on a slow core).

A caller's script needs the usual ``if __name__ == "__main__":`` guard, as with spawn.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext


def worker_context(preload: list[str] | None = None) -> BaseContext:
    """The multiprocessing context to start workers with (see the module).

    Args:
        preload: modules the fork server imports before forking any worker (dotted names). They
            take effect only when this call starts the fork server: one already running (started
            earlier in this process) keeps its own, and workers import the rest on first use.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    if preload:
        context.set_forkserver_preload(preload)
    return context
