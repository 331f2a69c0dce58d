"""Frame sets by studio time: per-camera offsets and jitter, random arrival order, drops, a camera gone
for a second, cameras at a slightly different rate; sets aligned, missing marked, order kept, counts right."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from posestudio.reconstruction.frame_sets import FrameSet, FrameSetAssembler, TimedFrame

pytestmark = pytest.mark.timeout(120)

MS = 1_000_000
S = 1_000_000_000
T0 = 5_000 * S            # studio time of the take's start (any large value)
CAMS = ["cam01", "cam02", "cam03", "cam04"]


@dataclass(frozen=True)
class Shot:
    """A payload that remembers the truth: camera, its frame index, its true capture time (ns)."""

    camera: str
    index: int
    true_ns: int


def simulate(seconds: float, *, fps: float = 30.0, offsets_ms: dict[str, float] | None = None,
             rates: dict[str, float] | None = None, drop: dict[str, float] | None = None,
             gone: dict[str, tuple[float, float]] | None = None, jitter_ms: float = 0.5,
             latency_ms: float = 60.0, seed: int = 0) -> tuple[list[tuple[int, TimedFrame]], dict[str, set[int]]]:
    """Every camera's frames with their arrival times (sorted by arrival), and each camera's lost indices."""
    rng = np.random.default_rng(seed)
    offsets_ms, rates, drop, gone = offsets_ms or {}, rates or {}, drop or {}, gone or {}
    arrivals: list[tuple[int, TimedFrame]] = []
    lost: dict[str, set[int]] = {}
    for cam in CAMS:
        rate = rates.get(cam, fps)
        n = int(seconds * rate)
        idx = np.arange(n)
        true = T0 + np.round((idx / rate + offsets_ms.get(cam, 0.0) / 1e3) * 1e9).astype(np.int64)
        stamp = true + np.round(rng.normal(0.0, jitter_ms * MS, n)).astype(np.int64)      # clock + grab jitter
        keep = rng.uniform(size=n) >= drop.get(cam, 0.0)
        if cam in gone:
            a, b = gone[cam]
            keep &= ~((idx / rate >= a) & (idx / rate < b))
        lost[cam] = set(idx[~keep].tolist())
        arrive = stamp + np.round(rng.uniform(0, latency_ms * MS, n)).astype(np.int64)     # network: any order
        for i in idx[keep]:
            arrivals.append((int(arrive[i]), TimedFrame(cam, int(stamp[i]), Shot(cam, int(i), int(true[i])), 100_000)))
    arrivals.sort(key=lambda a: a[0])
    return arrivals, lost


def run(asm: FrameSetAssembler, arrivals: list[tuple[int, TimedFrame]]) -> list[FrameSet]:
    """The server's loop: poll at each arrival, push the frame, flush at the end."""
    out: list[FrameSet] = []
    for arrive, frame in arrivals:
        out += asm.poll(arrive)
        out += asm.push(frame)
    return out + asm.flush()


def check_accounting(asm: FrameSetAssembler, sets: list[FrameSet], pushed: dict[str, int]) -> None:
    """Each frame pushed is in exactly one set or one drop count; sets in strict slot order."""
    stats = asm.stats()
    assert [s.slot for s in sets] == sorted({s.slot for s in sets})
    assert all(b.time_ns > a.time_ns for a, b in zip(sets, sets[1:]))
    assert stats.complete + stats.partial == len(sets)
    assert stats.complete == sum(s.complete for s in sets)
    for cam in CAMS:
        c = stats.cameras[cam]
        assert c.frames == pushed[cam]
        assert c.frames == c.joined + c.off_grid + c.late + c.duplicate + c.future
        assert c.joined == sum(s.frames[cam] is not None for s in sets)
        assert c.missing == sum(cam in s.missing for s in sets)
    for s in sets:
        assert s.missing == tuple(c for c in CAMS if s.frames[c] is None)
        present = [s.times_ns[c] for c in CAMS if s.frames[c] is not None]
        assert s.spread_ns == max(present) - min(present)
        assert s.uncertainty_ns == 100_000


def test_four_cameras_offsets_jitter_drops_a_gone_camera_and_a_slow_one() -> None:
    fps, seconds = 30.0, 8.0
    period = S / fps
    arrivals, lost = simulate(seconds, fps=fps, offsets_ms={"cam01": 0.0, "cam02": -4.0, "cam03": -3.0, "cam04": 1.5},
                              rates={"cam02": 29.97}, drop={"cam03": 0.10}, gone={"cam04": (4.0, 5.0)})
    asm = FrameSetAssembler(CAMS, fps, join_fraction=0.25, max_wait_s=0.1)
    sets = run(asm, arrivals)
    pushed = {c: sum(f.camera == c for _, f in arrivals) for c in CAMS}
    check_accounting(asm, sets, pushed)
    stats = asm.stats()

    # cam01 is never lost: one set per frame of it, no slot empty, nothing late, doubled or off the grid
    assert len(sets) == int(seconds * fps) and stats.empty_slots == 0
    assert all(s.frames["cam01"] is not None for s in sets)
    for cam in CAMS:
        c = stats.cameras[cam]
        assert (c.late, c.duplicate, c.off_grid, c.future) == (0, 0, 0, 0), (cam, c)

    # aligned: each set pairs the same instant (cam02's index walks: it runs at 29.97)
    for s in sets:
        i = s.frames["cam01"].index
        for cam in ("cam03", "cam04"):
            if s.frames[cam] is not None:
                assert s.frames[cam].index == i
        true = [s.frames[c].true_ns for c in CAMS if s.frames[c] is not None]
        assert max(true) - min(true) < 0.4 * period
        assert s.spread_ns < 0.5 * period
        assert all(abs(s.times_ns[c] - s.time_ns) <= 0.3 * period for c in s.times_ns)

    # missing marked exactly where frames were lost: cam03's 10 %, cam04's second
    by_index = {s.frames["cam01"].index: s for s in sets}
    for cam in ("cam03", "cam04"):
        assert {i for i, s in by_index.items() if cam in s.missing} == lost[cam]
    assert 15 <= len(lost["cam03"]) <= 40 and len(lost["cam04"]) == 30
    assert stats.cameras["cam02"].missing <= 1          # 239 frames at 29.97 for 240 slots
    assert stats.partial == sum(1 for s in sets if s.missing)
    slow_missing = {i for i, s in by_index.items() if "cam02" in s.missing}
    assert stats.complete == len(sets) - len(lost["cam03"] | lost["cam04"] | slow_missing)


def test_all_cameras_at_29_97_stay_in_their_slots_because_the_grid_re_anchors() -> None:
    fps, seconds = 30.0, 60.0
    rates = {c: 29.97 for c in CAMS}
    offsets = {"cam01": 0.0, "cam02": 1.0, "cam03": -1.0, "cam04": 2.0}
    arrivals, _ = simulate(seconds, fps=fps, offsets_ms=offsets, rates=rates, latency_ms=40.0, seed=1)
    pushed = {c: sum(f.camera == c for _, f in arrivals) for c in CAMS}

    anchored = FrameSetAssembler(CAMS, fps)
    sets = run(anchored, arrivals)
    check_accounting(anchored, sets, pushed)
    stats = anchored.stats()
    assert all(stats.cameras[c].off_grid == 0 for c in CAMS)
    assert stats.partial == 0 and stats.complete == pushed["cam01"]
    # the grid's phase absorbed the 60 ms walk (about two periods): slots stay consecutive, none empty
    assert stats.empty_slots == 0 and [s.slot for s in sets] == list(range(sets[0].slot, sets[0].slot + len(sets)))
    assert stats.phase_ns == pytest.approx(60 * MS, abs=5 * MS)
    for s in sets:                                      # every set pairs one frame index
        assert len({f.index for f in s.frames.values()}) == 1

    fixed = FrameSetAssembler(CAMS, fps, reanchor_gain=0.0)      # without re-anchoring they walk out
    run(fixed, arrivals)
    assert sum(fixed.stats().cameras[c].off_grid for c in CAMS) > 0.2 * sum(pushed.values())


def test_one_camera_at_another_rate_cannot_pull_the_grid() -> None:
    fps, seconds = 30.0, 40.0
    period = S / fps
    arrivals, _ = simulate(seconds, fps=fps, rates={"cam04": 29.97}, latency_ms=40.0, seed=2)
    pushed = {c: sum(f.camera == c for _, f in arrivals) for c in CAMS}
    asm = FrameSetAssembler(CAMS, fps)
    sets = run(asm, arrivals)
    check_accounting(asm, sets, pushed)
    stats = asm.stats()
    assert abs(stats.phase_ns) < 2 * MS
    for cam in CAMS[:3]:
        assert stats.cameras[cam].joined == pushed[cam] and stats.cameras[cam].missing == 0
    # cam04 walks 40 ms (1.2 periods) through the grid: it joins while within a quarter period
    odd = stats.cameras["cam04"]
    assert 0.3 * pushed["cam04"] < odd.off_grid < 0.7 * pushed["cam04"]
    assert odd.joined + odd.off_grid == pushed["cam04"]
    for s in sets:
        if s.frames["cam04"] is not None:
            assert abs(s.times_ns["cam04"] - s.time_ns) <= 0.26 * period


# ---------------------------------------------------------------- the rule, case by case

P = int(round(S / 30))       # the period at 30 frames/s, ns (33.3 ms)


def frame(cam: str, slot: float, payload: object = None, unc: int = 0) -> TimedFrame:
    return TimedFrame(cam, T0 + int(round(slot * S / 30)), payload if payload is not None else (cam, slot), unc)


def test_a_set_is_emitted_when_complete() -> None:
    asm = FrameSetAssembler(CAMS, 30.0, max_wait_s=0.1)
    out = []
    for k, cam in enumerate(CAMS):
        out += asm.push(frame(cam, 0.02 * k, unc=1000 * (k + 1)))
    # the first slot waits for the slot before it to time out (frames for it could still come) ...
    assert out == [] and asm.pending == 1
    out = asm.poll(T0 + 100 * MS - P + 1)
    assert len(out) == 1
    s = out[0]
    assert s.complete and s.slot == 0 and s.time_ns == T0 and s.missing == ()
    assert s.frames == {cam: (cam, 0.02 * k) for k, cam in enumerate(CAMS)}
    assert s.spread_ns == int(round(0.06 * P)) and s.uncertainty_ns == 4000
    # ... and from then on, a complete set leaves at once
    out = []
    for cam in CAMS:
        out += asm.push(frame(cam, 1.0))
    assert [s.slot for s in out] == [1]


def test_timeout_marks_missing_and_then_the_frame_is_late() -> None:
    asm = FrameSetAssembler(CAMS, 30.0, max_wait_s=0.1)
    for cam in CAMS[:3]:
        asm.push(frame(cam, 0))
    assert asm.poll(T0 + 100 * MS - 1) == []
    (s,) = asm.poll(T0 + 100 * MS)
    assert s.missing == ("cam04",) and s.frames["cam04"] is None and not s.complete
    assert asm.push(frame("cam04", 0)) == []
    st = asm.stats()
    assert st.cameras["cam04"].late == 1 and st.cameras["cam04"].missing == 1 and st.partial == 1


def test_sets_leave_in_slot_order() -> None:
    asm = FrameSetAssembler(CAMS, 30.0, max_wait_s=0.1)
    for cam in CAMS:
        asm.push(frame(cam, 0))
    asm.poll(T0 + 100 * MS)                     # slot 0 out
    out = asm.push(frame("cam01", 1))           # slot 1 incomplete
    for cam in CAMS:
        out += asm.push(frame(cam, 2))          # slot 2 complete, but slot 1 has not timed out
    assert out == []
    out = asm.poll(T0 + P + 100 * MS)           # slot 1 times out: both leave, in order
    assert [s.slot for s in out] == [1, 2] and out[0].missing == ("cam02", "cam03", "cam04") and out[1].complete


def test_time_moves_with_frames_too() -> None:
    asm = FrameSetAssembler(CAMS, 30.0, max_wait_s=0.1)
    asm.push(frame("cam01", 0))
    out = asm.push(frame("cam01", 3.0))         # 100 ms later: slot 0 has waited long enough
    assert [s.slot for s in out] == [0]


def test_off_grid_duplicate_unknown_and_future_frames_are_counted_and_dropped() -> None:
    asm = FrameSetAssembler(CAMS, 30.0, join_fraction=0.25, max_wait_s=0.1)
    asm.push(frame("cam01", 0, payload="far"))
    asm.push(frame("cam01", 0.4))                          # 0.4 of a period from any slot
    asm.push(frame("cam02", 0.1, payload="second-far"))
    asm.push(frame("cam02", -0.05, payload="second-near"))  # closer: replaces the first
    asm.push(frame("cam02", 0.2, payload="third"))          # further: dropped
    asm.push(TimedFrame("cam99", T0, None, 0))
    asm.poll(T0)
    asm.push(frame("cam03", 60.0))                          # 2 s past the last poll: a wrong clock
    (s,) = asm.flush()
    assert s.frames["cam02"] == "second-near" and s.frames["cam01"] == "far"
    st = asm.stats()
    assert st.cameras["cam01"].off_grid == 1 and st.cameras["cam02"].duplicate == 2
    assert st.unknown_camera == 1 and st.cameras["cam03"].future == 1
    assert st.as_dict()["cameras"]["cam02"]["duplicate"] == 2


def test_empty_slots_are_skipped_and_counted() -> None:
    asm = FrameSetAssembler(CAMS, 30.0, max_wait_s=0.1)
    out = []
    for k in (0, 1, 5):
        for cam in CAMS:
            out += asm.push(frame(cam, k))
    out += asm.flush()
    assert [s.slot for s in out] == [0, 1, 5] and all(s.complete for s in out)
    assert asm.stats().empty_slots == 3
    assert asm.push(frame("cam01", 3)) == [] and asm.stats().cameras["cam01"].late == 1


def test_calibrated_time_offsets_are_added_before_slotting() -> None:
    # cam02's stamps are 10 ms early (beyond the 8.3 ms join window): calibration says it lags 10 ms
    arrivals = [frame(cam, 0) for cam in CAMS[:1]] + [frame("cam02", -0.3)] + [frame(cam, 0) for cam in CAMS[2:]]
    plain = FrameSetAssembler(CAMS, 30.0)
    for f in arrivals:
        plain.push(f)
    assert plain.stats().cameras["cam02"].off_grid == 1
    offset = 0.3 / 30
    fixed = FrameSetAssembler(CAMS, 30.0, time_offsets_s={"cam02": offset})
    for f in arrivals:
        fixed.push(f)
    (s,) = fixed.flush()
    assert s.complete and s.times_ns["cam02"] == pytest.approx(T0, abs=2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(cameras=[], fps=30.0), "non-empty list of unique"),
    (dict(cameras=["a", "a"], fps=30.0), "unique"),
    (dict(cameras=["a"], fps=0.0), "fps must be positive"),
    (dict(cameras=["a"], fps=30.0, join_fraction=0.6), "join_fraction"),
    (dict(cameras=["a"], fps=30.0, max_wait_s=-1.0), "max_wait_s"),
    (dict(cameras=["a"], fps=30.0, time_offsets_s={"b": 0.01}), "unknown cameras"),
])
def test_bad_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FrameSetAssembler(**kwargs)
