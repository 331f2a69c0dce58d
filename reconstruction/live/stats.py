"""The live server's counters and timings, and the stats document written every second.

Three kinds of numbers, each owned by one thread and read by the stats thread:

- :class:`ReceiveCounters`: what the receive thread saw (malformed messages by kind, per camera
  frames, sequence gaps, restarts, frames waiting for a clock model). Plain integers: a reader on
  another thread sees a value at most one message old.
- :class:`SetTimings`: per processed frame set, the capture-to-publish latency and the ms spent in
  each stage, recorded by the processing thread under a lock; the stats thread takes the second's
  samples (:meth:`SetTimings.take`) and keeps the last :data:`HISTORY` for the final summary.
- the assembler's and the clock tracker's own stats (``reconstruction/frame_sets.py``,
  ``capture/clock_sync.py``), merged into the document by the server.

Units: latencies and stage times in ms in the document, ns and s inside.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from posestudio.capture.clock_sync import NodeClockStatus
from posestudio.core.sequence_numbers import SequenceCounter

from ..frame_sets import FrameSetStats

#: Kinds of bad message the receive thread counts (see ``server.classify_frame_error``).
MALFORMED_KINDS = ("malformed", "truncated", "wrong_version", "unknown_camera")
#: The processing stages timed per frame set, in order.
STAGES = ("decode", "detect", "reconstruct", "publish")
#: Latency samples kept for the summary at the end (the last ones), sets.
HISTORY = 20_000


@dataclass
class CameraCounters:
    """One camera's counts in the receive thread.

    Attributes:
        frames: messages decoded for this camera.
        waiting_for_clock: frames dropped because the camera's clock is registered but has no model yet.
        node_time: frames taken on the node's clock as is (no clock registered; see the server's docstring).
        decode_errors: frames whose image could not be decoded (processing thread; the view is missing).
        sequence: the frames' sequence numbers: ``dropped`` (frames the node numbered but the server
            never received), ``restarts`` (times the sequence went back: a restarted node) and
            ``last_sequence`` read from it.
    """

    frames: int = 0
    waiting_for_clock: int = 0
    node_time: int = 0
    decode_errors: int = 0
    sequence: SequenceCounter = field(default_factory=SequenceCounter)

    def saw(self, sequence: int) -> bool:
        """Count a frame numbered ``sequence``: gaps are drops, a step back a restart (returns True)."""
        self.frames += 1
        return self.sequence.count(sequence)

    @property
    def dropped(self) -> int:
        return self.sequence.lost

    @property
    def restarts(self) -> int:
        return self.sequence.restarts

    @property
    def last_sequence(self) -> int | None:
        return self.sequence.last


@dataclass
class ReceiveCounters:
    """The receive thread's counts.

    Attributes:
        messages: multipart messages received.
        malformed: bad messages per kind (:data:`MALFORMED_KINDS`), dropped.
        cameras: per camera counts.
        queue_dropped: frame sets pushed out of the full processing queue (the oldest first).
        processing_errors: frame sets whose processing raised (logged, skipped; the server goes on).
    """

    cameras: dict[str, CameraCounters]
    messages: int = 0
    malformed: dict[str, int] = field(default_factory=lambda: {k: 0 for k in MALFORMED_KINDS})
    queue_dropped: int = 0
    processing_errors: int = 0


def percentiles_ms(samples_ns: np.ndarray) -> dict[str, float | int | None]:
    """``p50``, ``p95``, ``p99``, ``max`` (ms) and ``samples`` of latencies in ns (None when empty)."""
    if samples_ns.size == 0:
        return {"p50": None, "p95": None, "p99": None, "max": None, "samples": 0}
    p = np.percentile(samples_ns, [50, 95, 99]) / 1e6
    return {"p50": round(float(p[0]), 3), "p95": round(float(p[1]), 3), "p99": round(float(p[2]), 3),
            "max": round(float(samples_ns.max()) / 1e6, 3), "samples": int(samples_ns.size)}


class SetTimings:
    """Per processed set: latency (ns) and seconds per stage; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latency: list[int] = []
        self._stages: list[tuple[float, ...]] = []
        self._spread: list[int] = []
        self._uncertainty: list[int] = []
        self._history: deque[int] = deque(maxlen=HISTORY)
        self._stage_totals = np.zeros(len(STAGES))
        self.processed = 0

    def record(self, latency_ns: int, stage_s: tuple[float, ...], spread_ns: int, uncertainty_ns: int) -> None:
        """One set done: its capture-to-publish latency (ns), each stage's seconds (:data:`STAGES` order),
        its frames' spread and time uncertainty (ns)."""
        with self._lock:
            self._latency.append(int(latency_ns))
            self._stages.append(stage_s)
            self._spread.append(int(spread_ns))
            self._uncertainty.append(int(uncertainty_ns))
            self._history.append(int(latency_ns))
            self._stage_totals += stage_s
            self.processed += 1

    def take(self, seconds: float) -> dict[str, Any]:
        """The samples since the last call as a stats section (``seconds``: the window's length), and reset."""
        with self._lock:
            latency, stages = np.array(self._latency, np.int64), np.array(self._stages, np.float64)
            spread, unc = self._spread, self._uncertainty
            self._latency, self._stages, self._spread, self._uncertainty = [], [], [], []
        n = len(latency)
        means = stages.mean(axis=0) * 1e3 if n else np.full(len(STAGES), np.nan)
        return {"sets": n, "sets_per_s": round(n / seconds, 2) if seconds > 0 else None,
                "latency_ms": percentiles_ms(latency),
                "stages_ms": {**{s: _ms(m) for s, m in zip(STAGES, means)}, "total": _ms(float(np.sum(means)))},
                "spread_ms_max": round(max(spread) / 1e6, 3) if spread else None,
                "uncertainty_us_max": round(max(unc) / 1e3, 1) if unc else None}

    def summary(self) -> dict[str, Any]:
        """Over the whole run: latency percentiles of the last :data:`HISTORY` sets, mean ms per stage."""
        with self._lock:
            history = np.fromiter(self._history, np.int64, len(self._history))
            n, totals = self.processed, self._stage_totals.copy()
        means = totals / n * 1e3 if n else np.full(len(STAGES), np.nan)
        return {"sets": n, "latency_ms": percentiles_ms(history),
                "stages_ms": {**{s: _ms(m) for s, m in zip(STAGES, means)}, "total": _ms(float(np.sum(means)))}}


def _ms(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 3)


def stats_document(studio: str, uptime_s: float, counters: ReceiveCounters, assembled: FrameSetStats,
                   clocks: dict[str, NodeClockStatus], queue_depth: int, queue_capacity: int,
                   publisher: dict[str, Any]) -> dict[str, Any]:
    """The stats document (``docs/live_studio.md``, "Stats") from the server's parts, without ``window``.

    Args:
        studio: the studio's name; uptime_s: seconds since the server started.
        counters: the receive thread's; assembled: the assembler's; clocks: the clock tracker's status.
        queue_depth, queue_capacity: sets waiting for processing now, and the most that may.
        publisher: ``{"endpoint", "sent", "dropped"}`` of the skeleton publisher.
    """
    cameras = {}
    for name, counts in counters.cameras.items():
        a = assembled.cameras[name]
        status = clocks.get(name)
        cameras[name] = {
            "frames": counts.frames, "joined": a.joined, "missing": a.missing, "dropped": counts.dropped,
            "restarts": counts.restarts, "off_grid": a.off_grid, "late": a.late, "duplicate": a.duplicate,
            "future": a.future, "waiting_for_clock": counts.waiting_for_clock, "node_time": counts.node_time,
            "decode_errors": counts.decode_errors, "last_sequence": counts.last_sequence,
            "clock": None if status is None else {
                "endpoint": status.endpoint, "bursts": status.bursts, "offset_ms": status.offset_ms,
                "drift_ppm": status.drift_ppm, "uncertainty_us": status.uncertainty_us,
                "round_trip_us": status.round_trip_us, "failures": status.failures, "last_error": status.last_error}}
    malformed = {k: counters.malformed[k] for k in MALFORMED_KINDS}
    malformed["total"] = sum(malformed.values())
    return {
        "schema": "posestudio.serve-stats", "version": 1, "studio": studio, "time_unix_s": time.time(),
        "uptime_s": round(uptime_s, 3),
        "frame_sets": {"assembled": assembled.complete + assembled.partial, "complete": assembled.complete,
                       "partial": assembled.partial, "empty_slots": assembled.empty_slots,
                       "queue_depth": queue_depth, "queue_capacity": queue_capacity,
                       "queue_dropped": counters.queue_dropped,
                       "processing_errors": counters.processing_errors, "grid_phase_ms": assembled.phase_ns / 1e6},
        "messages": counters.messages, "malformed": malformed, "cameras": cameras, "publisher": publisher}


def stats_line(doc: dict[str, Any]) -> str:
    """One line of a stats document with a ``window`` (the log's line each second)."""
    w, fs = doc["window"], doc["frame_sets"]
    lat, stages = w["latency_ms"], w["stages_ms"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    missing = sum(c["missing"] for c in doc["cameras"].values())
    return (f"serve: {w['sets_per_s'] or 0:.1f} sets/s, latency p50/p95/p99 {ms(lat['p50'])}/{ms(lat['p95'])}/"
            f"{ms(lat['p99'])} ms, ms per set " + " ".join(f"{k} {ms(v)}" for k, v in stages.items())
            + f"; assembled {fs['assembled']} ({fs['complete']} complete, camera-missing {missing}), "
            f"queue dropped {fs['queue_dropped']}, malformed {doc['malformed']['total']}")
