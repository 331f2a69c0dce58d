"""The skeleton stream end to end on loopback: SkeletonPublisher -> SkeletonSubscriber, bad messages
counted and skipped, losses counted, and ``posestudio publish`` replaying a reconstruct folder."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from posestudio.commands.publish import load_take, replay
from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import Points3D, write_points3d
from posestudio.core.skeleton_stream import TOPIC, UNSEQUENCED, SkeletonFrame, encode_frame
from posestudio.reconstruction.stream_publisher import SkeletonPublisher
from posestudio.viewer.stream_client import SkeletonSubscriber

pytestmark = pytest.mark.timeout(30)

NAMES = ("pelvis", "left_hip", "right_hip", "head")
LOOPBACK = "tcp://127.0.0.1:*"


def frame(sequence: int = UNSEQUENCED, people: int = 2) -> SkeletonFrame:
    points = np.arange(people * 12, dtype=np.float32).reshape(people, 4, 3) / 10
    if people:
        points[0, 3] = np.nan
    return SkeletonFrame(sequence, time.time(), NAMES, points, np.full((people, 4), 0.5, np.float32),
                         np.arange(people) + 10)


def join(send_probe: Callable[[], None], sub: SkeletonSubscriber, timeout_s: float = 5.0) -> None:
    """ZeroMQ's slow joiner: probe until the subscriber gets one, then drain the probes still in flight."""
    deadline = time.monotonic() + timeout_s
    while sub.receive(0.02) is None:
        assert time.monotonic() < deadline, f"subscriber did not join {sub.endpoint} in {timeout_s} s"
        send_probe()
    while sub.receive(0.1) is not None:
        pass


def test_frames_arrive_in_order_and_bit_exact() -> None:
    with SkeletonPublisher(LOOPBACK) as pub, SkeletonSubscriber(pub.endpoint) as sub:
        assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+", pub.endpoint)
        join(lambda: pub.publish(frame()), sub)
        first = pub.next_sequence
        sent = [frame(people=k % 3) for k in range(5)]
        for f in sent:
            assert pub.publish(f)
        got = [sub.receive(2.0) for _ in sent]
        assert [g.sequence for g in got] == list(range(first, first + 5))   # numbered by the publisher
        for f, g in zip(sent, got):
            assert g.points.tobytes() == f.points.tobytes() and g.person_ids.tolist() == f.person_ids.tolist()
            assert g.joint_names == NAMES and g.timestamp_s == f.timestamp_s and g.confidence.shape == (g.n_people, 4)
        assert (sub.lost, sub.malformed, sub.restarts) == (0, 0, 0)
        assert sub.receive(0.05) is None                                    # a timeout, not a hang


def test_malformed_messages_are_counted_and_skipped() -> None:
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.PUB)
    raw.setsockopt(zmq.LINGER, 0)
    raw.bind(LOOPBACK)
    probe = iter(range(1_000_000))
    try:
        with SkeletonSubscriber(raw.getsockopt_string(zmq.LAST_ENDPOINT)) as sub:
            join(lambda: raw.send_multipart(encode_frame(frame(next(probe)))), sub)
            assert sub.malformed == 0 and sub.last_error is None
            n = next(probe)
            topic, payload = encode_frame(frame(n + 1))
            newer = msgpack.unpackb(payload, raw=False) | {"version": 2}
            raw.send_multipart(encode_frame(frame(n)))
            raw.send_multipart([TOPIC, b"\xc1 not msgpack at all"])
            raw.send_multipart([topic, msgpack.packb(newer)])
            raw.send_multipart(encode_frame(frame(n + 1)))
            first, second = sub.receive(2.0), sub.receive(2.0)
            assert (first.sequence, second.sequence) == (n, n + 1)
            assert sub.malformed == 2 and sub.lost == 0
            assert "version 2 is newer than this reader's version 1" in sub.last_error
            raw.send_multipart([TOPIC, b"x", b"y"])                          # three parts: malformed too
            assert sub.receive(0.3) is None and sub.malformed == 3
    finally:
        raw.close()


def test_sequence_gaps_are_counted_as_lost_and_a_restart_is_not() -> None:
    with SkeletonPublisher(LOOPBACK) as pub, SkeletonSubscriber(pub.endpoint) as sub:
        join(lambda: pub.publish(frame()), sub)
        n = pub.next_sequence
        for s in (n, n + 1, n + 4, n + 5, n + 9):                         # 2 + 3 missing
            pub.publish(frame(s))
        assert [sub.receive(2.0).sequence for _ in range(5)] == [n, n + 1, n + 4, n + 5, n + 9]
        assert sub.lost == 5 and sub.restarts == 0
        pub.publish(frame(0))                                              # the publisher started again
        pub.publish(frame())                                               # and numbers on from there
        assert [sub.receive(2.0).sequence for _ in range(2)] == [0, 1]
        assert sub.lost == 5 and sub.restarts == 1


def test_latest_drains_the_queue_and_conflate_keeps_the_newest() -> None:
    with SkeletonPublisher(LOOPBACK) as pub, SkeletonSubscriber(pub.endpoint) as sub, \
            SkeletonSubscriber(pub.endpoint, conflate=True) as conflated:
        join(lambda: pub.publish(frame()), sub)
        join(lambda: pub.publish(frame()), conflated)
        while sub.receive(0.1) is not None:     # the second join's probes
            pass
        last = pub.next_sequence + 19
        for _ in range(20):
            pub.publish(frame())
        time.sleep(0.2)                         # all 20 queued at both subscribers (on an idle machine)
        skipped = sub.skipped

        def newest(read) -> list:
            # on a loaded machine some of the 20 may still be in flight: read until the last one came
            got = [read(1.0)]
            deadline = time.monotonic() + 10.0
            while got[-1] is not None and got[-1].sequence < last and time.monotonic() < deadline:
                got.append(read(0.5))
            return [f for f in got if f is not None]

        from_latest = newest(sub.latest)
        assert from_latest[-1].sequence == last
        assert sub.skipped - skipped + len(from_latest) == 20   # every frame either returned or passed over
        assert newest(conflated.receive)[-1].sequence == last
        assert sub.latest(0.05) is None and conflated.receive(0.05) is None
        assert sub.lost == 0


def test_a_stalled_subscriber_loses_frames_and_never_blocks_the_publisher() -> None:
    with SkeletonPublisher(LOOPBACK, hwm=5) as pub, SkeletonSubscriber(pub.endpoint, hwm=5) as sub:
        join(lambda: pub.publish(frame()), sub)
        big = frame(people=200)                              # ~10 kB a message: the buffers fill quickly
        start = time.monotonic()
        assert all(pub.publish(big) for _ in range(2000))   # plain PUB: never refused, never blocks
        assert time.monotonic() - start < 10
        got = 0
        while sub.receive(0.2) is not None:
            got += 1
        assert pub.publish(frame()) and sub.receive(2.0) is not None   # one more frame shows the gap at the end
        assert 0 < got < 2000 and sub.lost == 2000 - got
        assert pub.dropped == 0


def test_nodrop_counts_the_frames_a_full_queue_refused() -> None:
    with SkeletonPublisher(LOOPBACK, hwm=2, nodrop=True) as pub, SkeletonSubscriber(pub.endpoint, hwm=2) as sub:
        join(lambda: pub.publish(frame()), sub)
        big = frame(people=200)
        deadline = time.monotonic() + 10
        while pub.dropped == 0 and time.monotonic() < deadline:
            pub.publish(big)
        assert pub.dropped > 0
        assert not pub.publish(big)              # dropped, immediately
        while sub.receive(0.2) is not None:
            pass
        assert pub.publish(frame()) and sub.receive(2.0) is not None
        assert sub.lost == pub.dropped           # the dropped frames' numbers were used: seen as gaps


def test_bad_endpoints_are_input_errors() -> None:
    with SkeletonPublisher(LOOPBACK) as pub, pytest.raises(InputError, match="cannot bind 'tcp://127.0.0.1:[0-9]+'"):
        SkeletonPublisher(pub.endpoint)
    with pytest.raises(InputError, match="cannot connect to 'localhost:5570'"):
        SkeletonSubscriber("localhost:5570")
    with pytest.raises(InputError, match="hwm must be at least 1"):
        SkeletonPublisher(LOOPBACK, hwm=0)


def _take(folder: Path, frames: int = 10, fps: float = 100.0) -> Points3D:
    rng = np.random.default_rng(5)
    pts = rng.normal(0, 1, (frames, 4, 3))
    pts[2, 1] = np.nan
    pts[3] = np.nan                                                         # nobody in frame 3
    conf = np.where(np.isfinite(pts[..., 0]), 0.75, np.nan)
    take = Points3D(pts, conf, list(NAMES), fps)
    folder.mkdir(parents=True, exist_ok=True)
    write_points3d(folder / "points3d.npz", take)
    return take


def test_load_take_gathers_the_subject_and_everyone_else(tmp_path: Path) -> None:
    subject = _take(tmp_path)
    other = _take(tmp_path / "people" / "person_0")
    (tmp_path / "report.json").write_text('{"detection": {"subject": 2}}')
    take = load_take(tmp_path, all_people=True)
    assert take.person_ids.tolist() == [0, 2] and take.points.shape == (10, 2, 4, 3) and take.fps == 100
    assert take.points[:, 1].tobytes() == subject.points3d.astype(np.float32).tobytes()
    assert np.array_equal(take.points[:, 0], other.points3d.astype(np.float32), equal_nan=True)
    assert take.confidence[2, 1, 1] == 0 and take.confidence[0, 1, 0] == 0.75
    assert load_take(tmp_path).person_ids.tolist() == [2]
    _take(tmp_path / "people" / "person_4", frames=7)
    with pytest.raises(InputError, match="7 frames"):
        load_take(tmp_path, all_people=True)


def test_replay_keeps_the_frame_rate_and_stops_on_request(tmp_path: Path) -> None:
    _take(tmp_path, frames=10, fps=50.0)
    take = load_take(tmp_path)
    with SkeletonPublisher(LOOPBACK) as pub:
        start = time.monotonic()
        assert replay(pub, take, 50.0) == 10
        assert 0.17 < time.monotonic() - start < 0.6         # frames at 0, 20, ..., 180 ms
        stop = threading.Event()
        threading.Timer(0.15, stop.set).start()
        n = replay(pub, take, 50.0, loop=True, stop=stop)
        assert 5 <= n <= 12 and pub.sent == 10 + n


def test_posestudio_publish_streams_a_reconstruct_folder(tmp_path: Path) -> None:
    take = _take(tmp_path / "take1")
    proc = subprocess.Popen([sys.executable, "-m", "posestudio.cli", "publish", str(tmp_path / "take1"),
                             "--endpoint", LOOPBACK, "--loop"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        endpoint = re.match(r"publishing (tcp://127\.0\.0\.1:\d+): 10 frames of 1 person at 100 fps", line)
        assert endpoint, line + proc.stderr.read() if proc.poll() is not None else line
        seen: dict[int, SkeletonFrame] = {}
        with SkeletonSubscriber(endpoint.group(1)) as sub:
            deadline = time.monotonic() + 10
            while len(seen) < 10 and time.monotonic() < deadline:   # it loops: every frame comes round again
                f = sub.receive(0.5)
                if f is not None:
                    seen[f.frame_index] = f
        assert sorted(seen) == list(range(10))
        for i, f in seen.items():
            expected = take.points3d[i].astype(np.float32)
            people = 0 if i == 3 else 1                                  # nobody is sent for an empty frame
            assert f.n_people == people and f.joint_names == NAMES and f.source.startswith("posestudio publish")
            if people:
                assert f.points[0].tobytes() == expected.tobytes() and f.person_ids.tolist() == [0]
                assert np.array_equal(f.confidence[0], np.where(np.isfinite(expected[:, 0]), 0.75, 0))
        assert sub.malformed == 0
        proc.send_signal(signal.SIGINT)                                  # Ctrl-C
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert re.search(r"published \d+ of \d+ frames \(0 dropped\)", out), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_posestudio_publish_refuses_a_missing_take(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "posestudio.cli", "publish", str(tmp_path)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 2 and "points3d.npz: file not found" in out.stderr
