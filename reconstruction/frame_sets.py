"""Frame sets assembled by studio time, not by index: :class:`FrameSetAssembler`.

Cameras that are not genlocked deliver frames at their own instants, over their own network paths,
in any order; a camera may drop frames, vanish and come back, or run at a slightly different rate.
The assembler puts each frame (already on the studio clock, ``capture/clock_sync.py``) into a
**slot** of a grid at the frame period and hands out one :class:`FrameSet` per slot, in slot order.

The slot rule (``docs/clock_sync.md``):

- Slot ``k`` is at ``origin + phase + k / fps``; ``origin`` is the first frame's time, ``phase``
  the grid's slow re-anchoring (below). A frame joins the nearest slot when it lies within
  ``join_fraction`` of a period of it; otherwise it is *off-grid*: counted and dropped.
- A slot's set is emitted once every camera has a frame in it, or once studio time has passed the
  slot time by ``max_wait_s`` (the cameras without a frame are then *missing*); "studio time" is
  the latest of the frames' times and the times given to :meth:`FrameSetAssembler.poll`.
- Sets leave in slot order. A complete set waits for the slot before it only when that slot was
  never emitted and has not timed out yet (frames for it may still be on the way). Slots that no
  camera filled are skipped, not emitted (counted as ``empty_slots``).
- A frame for a slot already emitted or skipped is *late*: counted and dropped. A second frame of
  one camera for one slot keeps whichever is closer to the slot time; the other is a *duplicate*.
- Re-anchoring: after each emitted set the grid's phase moves by ``reanchor_gain`` times the median
  over cameras of each camera's median residual (frame time minus nearest slot time, off-grid frames
  included) over the last ``reanchor_window_s`` seconds. The grid thus follows the cameras when all
  of them run at 29.97 frames/s against a nominal 30 (1 ms/s), or when the first frame was early;
  one camera at a different rate than the others cannot pull it (the median), and its frames
  join while they are within the join window of the others' and are off-grid when they are not.

Each camera's sub-frame time offset from calibration (``Camera.time_offset``, seconds its frames
lag) is added to its frames' times before anything else, so slots pair exposures, not stamps.

Pure logic: no sockets, no threads (the server calls it from one thread). Units: integer ns for
times, seconds where a name ends in ``_s``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np


class TimedFrame(NamedTuple):
    """One camera's frame on the studio clock (a plain 4-tuple works as well).

    Attributes:
        camera: the camera's name.
        time_ns: capture time on the studio clock, ns.
        payload: whatever the caller carries (JPEG bytes, an image, keypoints); passed through.
        uncertainty_ns: how far ``time_ns`` may be off (the clock model's uncertainty), ns.
    """

    camera: str
    time_ns: int
    payload: Any
    uncertainty_ns: int = 0


@dataclass(frozen=True)
class FrameSet:
    """The frames of one slot.

    Attributes:
        slot: the slot's number (increasing; gaps where slots were empty).
        time_ns: the slot's time on the studio clock, ns.
        frames: every camera (in the assembler's camera order) -> its payload, ``None`` when missing.
        missing: the cameras without a frame, in camera order.
        spread_ns: latest minus earliest frame time in the set, ns (0 with one frame).
        uncertainty_ns: the largest of the frames' time uncertainties, ns.
        times_ns: each present camera's frame time (offset added), ns: how far each is from the
            slot, for a reconstruction that interpolates.
    """

    slot: int
    time_ns: int
    frames: dict[str, Any | None]
    missing: tuple[str, ...]
    spread_ns: int
    uncertainty_ns: int
    times_ns: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every camera has a frame."""
        return not self.missing


@dataclass
class CameraStats:
    """One camera's counts. Every frame pushed ends up in exactly one of ``joined``, ``off_grid``,
    ``late``, ``duplicate``, ``future`` (or is still pending).

    Attributes:
        frames: frames pushed.
        joined: frames emitted in a set.
        off_grid: frames further than ``join_fraction`` of a period from every slot.
        late: frames for a slot already emitted or skipped.
        duplicate: second frames for a slot (the one further from the slot time).
        future: frames stamped more than ``max_ahead_s`` past the last :meth:`poll` time.
        missing: emitted sets without this camera.
    """

    frames: int = 0
    joined: int = 0
    off_grid: int = 0
    late: int = 0
    duplicate: int = 0
    future: int = 0
    missing: int = 0


@dataclass
class FrameSetStats:
    """What the assembler did.

    Attributes:
        complete: sets emitted with every camera.
        partial: sets emitted with a camera missing.
        empty_slots: slots skipped because no camera had a frame in them.
        unknown_camera: frames from a camera not in the list (dropped).
        cameras: per camera counts.
        phase_ns: how far the grid has been re-anchored from the first frame, ns.
    """

    complete: int = 0
    partial: int = 0
    empty_slots: int = 0
    unknown_camera: int = 0
    cameras: dict[str, CameraStats] = field(default_factory=dict)
    phase_ns: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for ``--stats-json``)."""
        return asdict(self)


class FrameSetAssembler:
    """Frames in any order -> :class:`FrameSet` per slot, in slot order (the module docstring has the rule).

    Args:
        cameras: the cameras' names, unique; the order of :attr:`FrameSet.frames` and ``missing``.
        fps: the nominal frame rate, frames per second (the slot period is ``1 / fps``).
        join_fraction: how far from its slot a frame may lie and still join, a fraction of the period
            in (0, 0.5].
        max_wait_s: studio seconds past a slot's time after which it is emitted without the cameras
            still missing.
        time_offsets_s: camera -> seconds its frames lag (calibration's ``Camera.time_offset``),
            added to its frames' times; absent cameras 0.
        reanchor_window_s: seconds of recent frames whose residuals re-anchor the grid.
        reanchor_gain: fraction of the median residual the grid moves per emitted set, in [0, 1]
            (0: never re-anchor).
        max_ahead_s: frames stamped more than this past the last :meth:`poll` time are dropped as
            ``future`` (a wrong clock must not flush the grid); None: no check. Without any
            :meth:`poll` call there is no check either.
    """

    def __init__(self, cameras: Sequence[str], fps: float, join_fraction: float = 0.25, max_wait_s: float = 0.1,
                 *, time_offsets_s: Mapping[str, float] | None = None, reanchor_window_s: float = 2.0,
                 reanchor_gain: float = 0.05, max_ahead_s: float | None = 1.0) -> None:
        cams = tuple(str(c) for c in cameras)
        if not cams or len(set(cams)) != len(cams):
            raise ValueError(f"frame sets: cameras must be a non-empty list of unique names, got {list(cameras)}")
        if not (math.isfinite(fps) and fps > 0):
            raise ValueError(f"frame sets: fps must be positive, got {fps}")
        if not 0 < join_fraction <= 0.5:
            raise ValueError(f"frame sets: join_fraction must be in (0, 0.5], got {join_fraction}")
        if not max_wait_s >= 0:
            raise ValueError(f"frame sets: max_wait_s must be >= 0, got {max_wait_s}")
        if not 0 <= reanchor_gain <= 1:
            raise ValueError(f"frame sets: reanchor_gain must be in [0, 1], got {reanchor_gain}")
        unknown = set(time_offsets_s or {}) - set(cams)
        if unknown:
            raise ValueError(f"frame sets: time offsets for unknown cameras {sorted(unknown)}")
        self.cameras = cams
        self.fps = float(fps)
        self.period_ns = 1e9 / self.fps
        self.join_ns = join_fraction * self.period_ns
        self.max_wait_ns = int(round(max_wait_s * 1e9))
        self.max_ahead_ns = None if max_ahead_s is None else int(round(max_ahead_s * 1e9))
        self.reanchor_window_ns = int(round(reanchor_window_s * 1e9))
        self.reanchor_gain = float(reanchor_gain)
        self._offset_ns = {c: int(round((time_offsets_s or {}).get(c, 0.0) * 1e9)) for c in cams}
        self._origin: int | None = None          # first frame's time, ns
        self._phase = 0.0                        # re-anchoring, ns
        self._pending: dict[int, dict[str, tuple[int, Any, int]]] = {}   # slot -> camera -> (t, payload, unc)
        self._next_slot: int | None = None       # the first slot not yet emitted or skipped
        self._now: int | None = None             # latest studio time known, ns
        self._polled: int | None = None          # latest poll() time, ns
        maxlen = int(self.fps * max(reanchor_window_s, 0.0) * 4) + 16
        self._recent: dict[str, deque[int]] = {c: deque(maxlen=maxlen) for c in cams}
        self._stats = FrameSetStats(cameras={c: CameraStats() for c in cams})

    # ------------------------------------------------------------------ the grid
    def slot_time_ns(self, slot: int) -> int:
        """Slot ``slot``'s time on the studio clock now (the grid moves slowly), ns."""
        if self._origin is None:
            raise RuntimeError("frame sets: no frame yet, so no grid")
        return self._origin + int(round(self._phase + slot * self.period_ns))

    def _nearest(self, t: int) -> tuple[int, float]:
        """The nearest slot to time ``t`` and ``t`` minus its time, ns."""
        assert self._origin is not None
        rel = (t - self._origin) - self._phase
        slot = int(round(rel / self.period_ns))
        return slot, rel - slot * self.period_ns

    def _reanchor(self) -> None:
        """Move the grid's phase toward the median over cameras of their median recent residual."""
        if self.reanchor_gain == 0 or self._now is None or self._origin is None:
            return
        cutoff = self._now - self.reanchor_window_ns
        medians = []
        for recent in self._recent.values():
            while recent and recent[0] < cutoff:
                recent.popleft()
            if len(recent) >= 3:
                rel = (np.fromiter(recent, dtype=np.int64, count=len(recent)) - self._origin) - self._phase  # (n,) ns
                residual = rel - np.round(rel / self.period_ns) * self.period_ns                          # wrapped
                medians.append(float(np.median(residual)))
        if medians:
            self._phase += self.reanchor_gain * float(np.median(medians))
            self._stats.phase_ns = self._phase

    # ------------------------------------------------------------------ input
    def push(self, frame: TimedFrame | tuple[str, int, Any, int]) -> list[FrameSet]:
        """Add one frame; returns the sets it completes or whose wait its time ends (in slot order)."""
        camera, time_ns, payload, uncertainty_ns = frame
        stats = self._stats.cameras.get(camera)
        if stats is None:
            self._stats.unknown_camera += 1
            return []
        stats.frames += 1
        t = int(time_ns) + self._offset_ns[camera]
        if self._polled is not None and self.max_ahead_ns is not None and t > self._polled + self.max_ahead_ns:
            stats.future += 1
            return []
        if self._origin is None:
            self._origin = t
        self._recent[camera].append(t)
        self._now = t if self._now is None else max(self._now, t)
        slot, residual = self._nearest(t)
        if abs(residual) > self.join_ns:
            stats.off_grid += 1
        elif self._next_slot is not None and slot < self._next_slot:
            stats.late += 1
        else:
            frames = self._pending.setdefault(slot, {})
            held = frames.get(camera)
            if held is not None:
                stats.duplicate += 1
                slot_t = self.slot_time_ns(slot)
                if abs(t - slot_t) >= abs(held[0] - slot_t):
                    return self._emit_due()
            frames[camera] = (t, payload, int(uncertainty_ns))
        return self._emit_due()

    def poll(self, now_ns: int) -> list[FrameSet]:
        """Studio time is ``now_ns``: returns the sets whose wait has ended (in slot order)."""
        now_ns = int(now_ns)
        self._polled = now_ns if self._polled is None else max(self._polled, now_ns)
        self._now = now_ns if self._now is None else max(self._now, now_ns)
        return self._emit_due()

    def flush(self) -> list[FrameSet]:
        """Emit every pending set now, complete or not (the end of a take)."""
        out = []
        while self._pending:
            out.append(self._emit(min(self._pending)))
        return out

    # ------------------------------------------------------------------ output
    def _timed_out(self, slot: int) -> bool:
        return self._now is not None and self._now >= self.slot_time_ns(slot) + self.max_wait_ns

    def _emit_due(self) -> list[FrameSet]:
        out = []
        while self._pending:
            slot = min(self._pending)
            complete = len(self._pending[slot]) == len(self.cameras)
            ready = self._timed_out(slot) or (
                complete and (slot == self._next_slot or self._timed_out(slot - 1)))
            if not ready:
                break
            out.append(self._emit(slot))
        return out

    def _emit(self, slot: int) -> FrameSet:
        held = self._pending.pop(slot)
        if self._next_slot is not None:
            self._stats.empty_slots += max(0, slot - self._next_slot)
        self._next_slot = slot + 1
        frames: dict[str, Any | None] = {}
        times: dict[str, int] = {}
        missing = []
        for cam in self.cameras:
            if cam in held:
                t, payload, _ = held[cam]
                frames[cam], times[cam] = payload, t
                self._stats.cameras[cam].joined += 1
            else:
                frames[cam] = None
                missing.append(cam)
                self._stats.cameras[cam].missing += 1
        if missing:
            self._stats.partial += 1
        else:
            self._stats.complete += 1
        stamps = list(times.values())
        result = FrameSet(slot=slot, time_ns=self.slot_time_ns(slot), frames=frames, missing=tuple(missing),
                          spread_ns=max(stamps) - min(stamps), uncertainty_ns=max(u for _, _, u in held.values()),
                          times_ns=times)
        self._reanchor()
        return result

    @property
    def pending(self) -> int:
        """Slots holding frames and not yet emitted."""
        return len(self._pending)

    def stats(self) -> FrameSetStats:
        """The counts so far (a copy)."""
        s = self._stats
        return FrameSetStats(s.complete, s.partial, s.empty_slots, s.unknown_camera,
                             {c: CameraStats(**asdict(v)) for c, v in s.cameras.items()}, s.phase_ns)
