"""Capture nodes over real loopback sockets: frames in order with plausible capture times, a queue that
drops the oldest frame, a grab loop that nothing downstream can block, independent cameras, and
``posestudio node`` end to end.

Timing assertions are loose on purpose (the test machine may be heavily loaded): each says what
would be plainly wrong, not what a quiet machine achieves. Every wait has a deadline."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import zmq

from posestudio.capture.node import CaptureNode, open_reader
from posestudio.capture.sources import SourceError
from posestudio.core.errors import InputError
from posestudio.core.frame_messages import FrameMessage, decode_frame_message

pytestmark = pytest.mark.timeout(120)

POSESTUDIO = str(Path(sys.executable).parent / "posestudio")


@pytest.fixture
def receiver() -> Iterator[tuple[zmq.Socket, str]]:
    """A bound SUB socket (the server's side) subscribed to every camera, and its endpoint."""
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"frame/")
    sub.bind("tcp://127.0.0.1:*")
    yield sub, sub.getsockopt_string(zmq.LAST_ENDPOINT)
    sub.close(linger=0)


def receive(sub: zmq.Socket, done: Callable[[], bool], timeout_s: float = 30.0, quiet_s: float = 0.3,
            on_message: Callable[[FrameMessage, int], None] | None = None) -> list[FrameMessage]:
    """Messages until ``done()`` and nothing more came for ``quiet_s``, or ``timeout_s`` passed."""
    out: list[FrameMessage] = []
    deadline = time.monotonic() + timeout_s
    done_at = last_at = None
    while time.monotonic() < deadline:
        if sub.poll(50):
            message = decode_frame_message(sub.recv_multipart())
            if on_message is not None:
                on_message(message, time.monotonic_ns())
            out.append(message)
            last_at = time.monotonic()
        if done_at is None and done():
            done_at = time.monotonic()
        if done_at is not None and time.monotonic() - max(done_at, last_at or done_at) >= quiet_s:
            break
    return out


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def image_folder(folder: Path, n: int, size: tuple[int, int] = (64, 48)) -> Path:
    """``n`` PNG frames whose grey level is ``8 * index`` (a frame says which it is, even after JPEG)."""
    folder.mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.full((size[1], size[0], 3), (8 * i) % 256, np.uint8))
    return folder


def numbered(n: int | None, size: tuple[int, int] = (32, 24)) -> Iterator[np.ndarray]:
    """Raw frames whose every pixel is ``index % 256`` (``n`` of them, or for ever)."""
    for i in itertools.count() if n is None else range(n):
        yield np.full((size[1], size[0], 3), i % 256, np.uint8)


def test_a_paced_image_folder_arrives_in_order_with_plausible_capture_times(tmp_path, receiver) -> None:
    sub, endpoint = receiver
    n, fps = 30, 20.0
    node = CaptureNode("cam1", image_folder(tmp_path / "cam1", n), endpoint, session="take7", fps=fps)
    start_ns = time.monotonic_ns()
    arrivals: dict[int, int] = {}
    node.start()
    got = receive(sub, lambda: node.wait(0), on_message=lambda m, t: arrivals.__setitem__(m.sequence, t))
    stats = node.stop()
    end_ns = time.monotonic_ns()
    assert stats.grabbed == n and node.error is None
    seq = [m.sequence for m in got]
    assert len(seq) >= n - 5 and seq[-1] == n - 1, seq        # the first few may be lost to ZeroMQ's slow joiner
    assert all(b > a for a, b in itertools.pairwise(seq))
    assert all((m.camera, m.session, m.encoding, m.width, m.height) == ("cam1", "take7", "jpeg", 64, 48) for m in got)
    for m in got:                                               # each frame is the file it says it is
        assert abs(float(m.image().mean()) - (8 * m.sequence) % 256) < 3
    times = np.array([m.capture_time_ns for m in got])
    assert (np.diff(times) > 0).all() and start_ns <= times[0] and times[-1] <= end_ns
    period_ms = np.median(np.diff(times) / np.diff(seq)) / 1e6
    assert 35 < period_ms < 80, period_ms                       # paced at 20 fps (50 ms), not a burst
    assert (end_ns - start_ns) / 1e9 > 0.7 * (n - 1) / fps
    latency_ms = np.array([arrivals[m.sequence] - m.capture_time_ns for m in got]) / 1e6
    assert (latency_ms > 0).all() and np.median(latency_ms) < 500, latency_ms


def test_capture_times_are_the_grab_midpoint_of_the_node_clock_minus_the_latency(receiver) -> None:
    sub, endpoint = receiver
    ticks = itertools.count(1)
    def clock() -> int:   # the node's clock: +1 ms per reading
        return next(ticks) * 1_000_000

    node = CaptureNode("cam2", numbered(12), endpoint, fps=25, encoding="raw-bgr8", clock=clock, latency_ns=300_000)
    node.start()
    got = receive(sub, lambda: node.wait(0))
    node.stop()
    assert len(got) >= 7
    for m in got:   # frame i is read between readings 2i+1 and 2i+2: the midpoint 2i+1.5 ms, minus 0.3 ms
        assert m.capture_time_ns == (2 * m.sequence + 1.5) * 1_000_000 - 300_000
        assert np.all(m.image() == m.sequence)


def test_the_queue_drops_the_oldest_frames_while_the_sender_is_stalled(receiver) -> None:
    sub, endpoint = receiver
    n = 30
    node = CaptureNode("cam1", numbered(n), endpoint, fps=50, encoding="raw-bgr8", queue_frames=2)
    calls, stalled_on, release = [0], [], threading.Event()
    encode = node._encode

    def stalling_encode(image: np.ndarray) -> bytes:
        calls[0] += 1
        if calls[0] == 6:                           # the sixth frame the sender takes: stall until released
            stalled_on.append(int(image[0, 0, 0]))
            assert release.wait(30)
        return encode(image)

    node._encode = stalling_encode
    node.start()
    got: list[FrameMessage] = []
    receiver_thread = threading.Thread(target=lambda: got.extend(receive(sub, lambda: node.wait(0))))
    receiver_thread.start()
    wait_for(lambda: node.grabbed == n)             # the grab loop went on to the end meanwhile
    sent_while_stalled = node.sent
    release.set()
    assert node.wait(30)
    receiver_thread.join(40)
    stats = node.stop()
    s = stalled_on[0]
    assert sent_while_stalled <= s and node.error is None
    assert stats.grabbed == n and stats.dropped_send == 0
    assert stats.sent + stats.dropped_queue == n
    assert stats.dropped_queue >= n - s - 3         # everything grabbed during the stall but the 2 newest
    seq = [m.sequence for m in got]
    assert seq[-3:] == [s, n - 2, n - 1], seq       # the oldest went, the newest two were kept
    assert not set(seq) & set(range(s + 1, n - 2))
    assert [int(m.image()[0, 0, 0]) for m in got[-2:]] == [n - 2, n - 1]


def test_a_slow_receiver_never_blocks_the_grab_loop() -> None:
    sub = zmq.Context.instance().socket(zmq.SUB)   # a server that reads one frame every 0.25 s
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 1)
    sub.setsockopt(zmq.RCVBUF, 65536)
    sub.setsockopt(zmq.SUBSCRIBE, b"frame/")
    sub.bind("tcp://127.0.0.1:*")
    endpoint = sub.getsockopt_string(zmq.LAST_ENDPOINT)
    done = threading.Event()

    def slow_server() -> None:   # the socket belongs to this thread from here on
        while not done.is_set():
            if sub.poll(50):
                sub.recv_multipart()
                done.wait(0.25)

    server = threading.Thread(target=slow_server)
    server.start()
    frame = np.zeros((480, 640, 3), np.uint8)      # 0.9 MB raw: the buffers fill within a few frames
    node = CaptureNode("cam1", itertools.repeat(frame), endpoint, fps=100, encoding="raw-bgr8", send_hwm=1,
                       send_buffer_bytes=65536)
    try:
        node.start()
        wait_for(lambda: node.dropped_send > 0)     # the socket is full: frames are dropped, not waited on
        a = node.stats()
        time.sleep(1.0)
        b = node.stats()
    finally:
        node.stop()
        done.set()
        server.join(10)
        sub.close(linger=0)
    assert b.grabbed - a.grabbed >= 25, (a, b)     # 100 fps asked; a loaded machine still grabs on
    assert b.dropped_send > a.dropped_send and b.sent - a.sent <= 15, (a, b)
    assert 0 <= b.grabbed - b.sent - b.dropped <= 3   # pending: at most the queue (2) and the frame in hand


def test_two_nodes_at_different_rates_do_not_wait_for_each_other(receiver) -> None:
    sub, endpoint = receiver
    fast = CaptureNode("fast", numbered(None), endpoint, fps=40, encoding="raw-bgr8")
    slow = CaptureNode("slow", numbered(None), endpoint, fps=5, encoding="raw-bgr8")
    release = threading.Event()
    encode = slow._encode
    slow._encode = lambda image: (release.wait(30), encode(image))[1]   # the slow camera's sender is stuck too
    arrivals: dict[str, list[int]] = {"fast": [], "slow": []}
    fast.start()
    slow.start()
    stop_at = time.monotonic() + 2.5
    release_at = time.monotonic() + 1.25
    try:
        def done() -> bool:
            if time.monotonic() >= release_at:
                release.set()
            return time.monotonic() >= stop_at

        receive(sub, done, quiet_s=0.0, on_message=lambda m, t: arrivals[m.camera].append(t))
    finally:
        release.set()
        fast_stats, slow_stats = fast.stop(), slow.stop()
    t_fast = np.array(arrivals["fast"]) / 1e9
    assert fast_stats.grabbed >= 40 and slow_stats.grabbed <= 16, (fast_stats, slow_stats)
    assert len(t_fast) >= 30
    while_stuck = ((t_fast > release_at - 1.0) & (t_fast < release_at)).sum()
    assert while_stuck >= 15, while_stuck          # 40 fps while the other camera sent nothing
    assert 10 < np.median(np.diff(t_fast)) * 1000 < 60
    assert 1 <= len(arrivals["slow"]) <= 16


def test_sources_and_options_are_checked(tmp_path) -> None:
    with pytest.raises(SourceError, match="no such file or folder"):
        open_reader(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no images"):
        open_reader(tmp_path / "empty")
    with pytest.raises(SourceError, match="camera index -1"):
        open_reader(-1)
    with pytest.raises(SourceError, match="source of type float"):
        open_reader(1.5)
    with pytest.raises(InputError, match="expected tcp://HOST:PORT"):
        CaptureNode("cam1", numbered(1), "localhost:5560")
    with pytest.raises(InputError, match="holds '/'"):
        CaptureNode("a/b", numbered(1), "tcp://127.0.0.1:5560")
    with pytest.raises(InputError, match="fps -1"):
        CaptureNode("cam1", numbered(1), "tcp://127.0.0.1:5560", fps=-1)


def test_a_list_source_loops_and_a_bad_frame_stops_the_node_with_its_error(receiver) -> None:
    _, endpoint = receiver
    frames = list(numbered(3))
    node = CaptureNode("cam1", frames, endpoint, fps=100, loop=True, encoding="raw-bgr8")
    node.start()
    wait_for(lambda: node.grabbed >= 10)
    node.stop()
    bad = CaptureNode("cam1", [np.zeros((4, 4), np.float32)], endpoint, fps=100)
    with pytest.raises(InputError, match="image is float32 array"):
        bad.run(duration_s=20)


def test_the_node_command_streams_a_folder_end_to_end(tmp_path, receiver) -> None:
    sub, endpoint = receiver
    folder = image_folder(tmp_path / "frames", 12)
    proc = subprocess.Popen([POSESTUDIO, "node", "--camera", "cam7", "--source", str(folder), "--server", endpoint,
                             "--fps", "20", "--loop", "--duration", "2", "--session", "s1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        got = receive(sub, lambda: proc.poll() is not None, timeout_s=90)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert len(got) >= 10 and {m.camera for m in got} == {"cam7"} and {m.session for m in got} == {"s1"}
    seq = [m.sequence for m in got]
    assert all(b > a for a, b in itertools.pairwise(seq)) and max(seq) >= 12   # looped past the folder's end
    lines = out.strip().splitlines()
    assert lines[0].startswith("node cam7: image folder") and "20 fps" in lines[0]
    assert lines[-1].startswith("node cam7: stopped; sent ") and "frames/s" in lines[-1]


@pytest.mark.parametrize("source", ["missing_folder", "empty_folder", "synthetic:missing_rig.toml"])
def test_a_bad_source_exits_2_with_one_line(tmp_path, source) -> None:
    (tmp_path / "empty_folder").mkdir()
    src = source if source.startswith("synthetic:") else str(tmp_path / source)
    out = subprocess.run([POSESTUDIO, "node", "--camera", "cam1", "--source", src, "--server", "tcp://127.0.0.1:5999"],
                         capture_output=True, text=True, timeout=90, check=False)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("posestudio node: error: "), out.stderr
    assert "Traceback" not in out.stderr


def test_a_synthetic_source_renders_the_rigs_camera(tmp_path) -> None:
    from posestudio.commands.node import parse_source
    from posestudio.synthetic.studio_rig import make_studio_rig

    rig = make_studio_rig(2, (320, 240), radius=(3.5, 4.5), seed=0, distortion="mild")
    rig.save(tmp_path / "rig.toml")
    frames, fps = parse_source(f"synthetic:{tmp_path / 'rig.toml'}", rig.names[1], None, loop=False)
    assert fps == 30.0
    first, second = next(frames), next(frames)
    assert first.shape == second.shape == (240, 320, 3) and first.dtype == np.uint8
    assert first.std() > 5 and not np.array_equal(first, second)   # a scene, and it moves
    frames.close()
    with pytest.raises(InputError, match="has no camera 'cam9'"):
        parse_source(f"synthetic:{tmp_path / 'rig.toml'}", "cam9", None, loop=False)


def test_the_node_command_has_help_with_an_example() -> None:
    out = subprocess.run([POSESTUDIO, "node", "--help"], capture_output=True, text=True, timeout=90, check=False)
    assert out.returncode == 0 and "example" in out.stdout.lower() and "synthetic:RIG.toml" in out.stdout
