"""The live studio benchmark, transport part: 4 capture nodes streaming 1080p JPEG to one receiver.

Run from the repository root::

    .venv/bin/python -m benchmarks.live                 # 4 node processes, 8 s per run, about 30 s in all
    .venv/bin/python -m benchmarks.live --threads       # the 4 nodes as threads of this process instead
    .venv/bin/python -m benchmarks.live --cameras 6 --fps 30 --seconds 5
    .venv/bin/python -m benchmarks.live --loop          # then the whole loop (nodes -> serve) per detector
    .venv/bin/python -m benchmarks.live --loop-only --detectors blazepose --loop-fps 15

Each node is a :class:`~posestudio.capture.node.CaptureNode` (by default in its own process, as in a
studio) whose source is one rendered 1920x1080 frame of the synthetic performer seen by that camera
of a studio rig (:func:`posestudio.synthetic.body_render.render_frame`: textured backdrop, floor,
sensor noise), handed over again and again; the node JPEG-encodes every frame it sends (quality 90)
and publishes it to one SUB socket bound on loopback in this process, which decodes each header
(:func:`~posestudio.core.frame_messages.decode_frame_message`) and stamps its arrival. Two runs:

- ``max``: the nodes asked for 1000 frames/s, so each sends as fast as it can encode (the grab
  queue of 2 drops what the sender cannot take: those drops are expected here);
- ``paced``: the nodes paced at ``--fps`` (default 60), as cameras would be.

Each run starts every node at once, skips a 1 s warm-up (connections, ZeroMQ's slow joiner) and
measures ``--seconds``. The table gives per camera and in total: frames/s received in the measured
window, the fewest frames received in any whole second of it (the dips), capture-to-receive latency
p50/p95/p99 in ms (the node's capture stamp and the arrival on the same machine clock,
``time.monotonic_ns``), and over the whole run: frames dropped in the node's grab queue (``drop
q``) and at its socket (``drop tx``), frames the node sent that never arrived (``lost``: ZeroMQ's
slow joiner at the start, nothing after), and JPEG encode ms per frame (the nodes' own timing).
JPEG decode ms per frame is measured afterwards on received payloads (the server's cost, not part
of the latency). The targets (issue 16: at least 4 x 60 frames/s received with p95 under 20 ms)
are checked on the paced run and the FreeMoCap anchor (median 31 of 30 requested frames/s with 6
cameras, dips to 20 on one host) is printed beside this run's median and dips.

The whole loop (``--loop``, ``--loop-only``; :func:`run_loop`): 4 nodes (threads) stream a rendered
performer (960x540, JPEG q90, ``--loop-fps``) to a :class:`~posestudio.reconstruction.live.server.LiveServer`
in this process, once per detector of ``--detectors``; after a warm-up the server's own stats over
``--loop-seconds`` give frame sets/s, capture-to-publish latency p50/p95/p99, sets dropped whole at the
detector's queue, camera-frames missing from sets, node drops, and ms per set in each stage
(decode / detect / reconstruct / publish). Targets (issue 16): on a GPU 4 x 30 sets/s with p95 under
100 ms; on a CPU, what it sustains and where the time goes.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zmq

from posestudio.capture.node import CaptureNode, NodeStats
from posestudio.core.frame_messages import FrameMessage, FrameMessageError, decode_frame_message
from posestudio.core.rig import CameraRig
from posestudio.synthetic.body_motion import walking_body
from posestudio.synthetic.body_render import render_frame
from posestudio.synthetic.render_augment import RenderOptions
from posestudio.synthetic.studio_rig import make_studio_rig

WIDTH, HEIGHT = 1920, 1080
JPEG_QUALITY = 90
WARMUP_S = 1.0
MAX_FPS = 1000.0
TARGET_FPS = 60.0
TARGET_P95_MS = 20.0
#: Payloads per camera kept to time JPEG decoding after a run.
DECODE_SAMPLES = 20


def rendered_frames(cameras: int, seed: int = 0) -> dict[str, np.ndarray]:
    """One 1920x1080 BGR frame per camera of a seeded studio rig: the synthetic performer, mid-stride."""
    rig = make_studio_rig(cameras, (WIDTH, HEIGHT), radius=(3.5, 4.5), seed=seed, distortion="mild")
    body = walking_body(30, 30.0, 0.6, (0.0, 0.0), 30.0)[15]
    options = RenderOptions(seed=seed)
    out = {}
    for c, cam in enumerate(rig.cameras):
        image, _ = render_frame(cam, [body], options=options, rng=np.random.default_rng([seed, c]), occluders=[])
        out[cam.name] = image
    return out


# --------------------------------------------------------------------------- nodes
def _node_process(camera: str, image: np.ndarray, endpoint: str, fps: float, duration_s: float,
                  ready: mp.Event, go: mp.Event, results: mp.Queue) -> None:
    """A node in its own process: made, then started when ``go`` is set; its final counters go to ``results``."""
    node = CaptureNode(camera, itertools.repeat(image), endpoint, fps=fps, jpeg_quality=JPEG_QUALITY)
    ready.set()
    go.wait(60)
    stats = node.run(duration_s)
    results.put((camera, stats))


def _start_processes(frames: dict[str, np.ndarray], endpoint: str, fps: float, duration_s: float
                     ) -> tuple[Callable[[], None], Callable[[], dict[str, NodeStats]]]:
    """Node processes, made and waiting; returns ``(go, collect)``."""
    ctx = mp.get_context("spawn")   # no fork of a process that holds ZeroMQ threads
    go, results = ctx.Event(), ctx.Queue()
    procs, readies = [], []
    for camera, image in frames.items():
        ready = ctx.Event()
        proc = ctx.Process(target=_node_process, args=(camera, image, endpoint, fps, duration_s, ready, go, results),
                           daemon=True)
        proc.start()
        procs.append(proc)
        readies.append(ready)
    for ready in readies:
        if not ready.wait(120):
            raise RuntimeError("a node process did not start within 120 s")

    def collect() -> dict[str, NodeStats]:
        out = dict(results.get(timeout=duration_s + 60) for _ in procs)
        for proc in procs:
            proc.join(10)
        return out

    return go.set, collect


def _start_threads(frames: dict[str, np.ndarray], endpoint: str, fps: float, duration_s: float
                   ) -> tuple[Callable[[], None], Callable[[], dict[str, NodeStats]]]:
    """Nodes in this process; returns ``(go, collect)``."""
    nodes = {c: CaptureNode(c, itertools.repeat(img), endpoint, fps=fps, jpeg_quality=JPEG_QUALITY)
             for c, img in frames.items()}
    out: dict[str, NodeStats] = {}
    runners = [threading.Thread(target=lambda c=c, n=n: out.__setitem__(c, n.run(duration_s)), daemon=True)
               for c, n in nodes.items()]

    def go() -> None:
        for r in runners:
            r.start()

    def collect() -> dict[str, NodeStats]:
        for r in runners:
            r.join(duration_s + 60)
        return out

    return go, collect


# --------------------------------------------------------------------------- one run
@dataclass
class CameraResult:
    """What the receiver saw of one camera in the measured window, and the node's counters."""

    arrivals_s: list[float] = field(default_factory=list)   # receive times, s since the window's start
    latency_ms: list[float] = field(default_factory=list)
    sequences: list[int] = field(default_factory=list)
    payloads: list[FrameMessage] = field(default_factory=list)
    received: int = 0   # frames received over the whole run, warm-up included
    stats: NodeStats = field(default_factory=lambda: NodeStats(0, 0, 0, 0, 0.0, 0.0))


def run_once(frames: dict[str, np.ndarray], fps: float, seconds: float, threads: bool) -> dict[str, CameraResult]:
    """Stream every camera at ``fps`` for the warm-up and ``seconds``; what arrived in the measured window."""
    context = zmq.Context.instance()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 100)
    sub.setsockopt(zmq.SUBSCRIBE, b"frame/")
    sub.bind("tcp://127.0.0.1:*")
    endpoint = sub.getsockopt_string(zmq.LAST_ENDPOINT)
    duration = WARMUP_S + seconds
    start = _start_threads if threads else _start_processes
    go, collect = start(frames, endpoint, fps, duration)
    results = {c: CameraResult() for c in frames}
    malformed = 0
    go()
    t_go = time.monotonic_ns()
    begin, end = t_go + int(WARMUP_S * 1e9), t_go + int(duration * 1e9)
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    while time.monotonic_ns() < end + int(0.5e9):
        if not poller.poll(100):
            continue
        parts = sub.recv_multipart(copy=False)
        now = time.monotonic_ns()
        try:
            m = decode_frame_message(parts)
        except FrameMessageError:
            malformed += 1
            continue
        results[m.camera].received += 1
        if begin <= m.capture_time_ns and now <= end:
            r = results[m.camera]
            r.arrivals_s.append((now - begin) / 1e9)
            r.latency_ms.append((now - m.capture_time_ns) / 1e6)
            r.sequences.append(m.sequence)
            if len(r.payloads) < DECODE_SAMPLES:
                r.payloads.append(m)
    for camera, stats in collect().items():
        results[camera].stats = stats
    sub.close(linger=0)
    if malformed:
        print(f"  ({malformed} malformed messages)")
    return results


def decode_ms(results: dict[str, CameraResult]) -> float:
    """Mean JPEG decode time per frame, ms, over the kept payloads."""
    times = []
    for r in results.values():
        for m in r.payloads:
            t0 = time.perf_counter()
            m.image()
            times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.mean(times)) if times else float("nan")


# --------------------------------------------------------------------------- the table
def _row(name: str, label: str, r_rate: float, dip: float, lat: np.ndarray, dq: int, ds: int, lost: int,
         enc: float) -> str:
    p50, p95, p99 = (np.percentile(lat, [50, 95, 99]) if lat.size else (np.nan,) * 3)
    return (f"{name:<8} {label:<7} {r_rate:9.1f} {dip:8.0f} {p50:7.1f} {p95:7.1f} {p99:7.1f} {dq:9d} {ds:8d} "
            f"{lost:6d} {enc:9.1f}")


def _dip(arrivals_s: list[float], seconds: float) -> float:
    """The fewest frames received in any whole second of the window."""
    n = int(seconds)
    if n < 1:
        return float("nan")
    per_second = np.bincount(np.floor(np.asarray(arrivals_s, float)).astype(int), minlength=n)[:n]
    return float(per_second.min())


def summarise(name: str, results: dict[str, CameraResult], seconds: float) -> tuple[list[float], float, list[float]]:
    """Print the run's rows; returns ``(per-camera frames/s, p95 ms over all, per-camera dips)``."""
    rates, dips = [], []
    for camera, r in results.items():
        st = r.stats
        rates.append(len(r.arrivals_s) / seconds)
        dips.append(_dip(r.arrivals_s, seconds))
        print(_row(name, camera, rates[-1], dips[-1], np.asarray(r.latency_ms), st.dropped_queue, st.dropped_send,
                   st.sent - r.received, st.encode_ms))
    every = [r for r in results.values()]
    lat = np.concatenate([np.asarray(r.latency_ms) for r in every])
    print(_row(name, "total", sum(rates), _dip([t for r in every for t in r.arrivals_s], seconds), lat,
               sum(r.stats.dropped_queue for r in every), sum(r.stats.dropped_send for r in every),
               sum(r.stats.sent - r.received for r in every), float(np.mean([r.stats.encode_ms for r in every]))))
    p95 = float(np.percentile(lat, 95)) if lat.size else float("nan")
    return rates, p95, dips


# --------------------------------------------------------------------------- the whole loop
#: The whole loop's frame size (pixels) and motion clip length (s); each node plays its clip again and again.
LOOP_SIZE = (960, 540)
LOOP_CLIP_S = 2.0
LOOP_WARMUP_S = 3.0
LOOP_DETECTORS = ("blazepose", "tce")


def loop_clips(cameras: int, fps: float, seed: int = 0) -> tuple[CameraRig, dict[str, list[np.ndarray]], np.ndarray]:
    """A seeded studio rig at :data:`LOOP_SIZE` and :data:`LOOP_CLIP_S` seconds of the synthetic performer
    rendered into every camera at ``fps``: ``(rig, {camera: [BGR frames]}, truth (F, 17, 3) metres)``."""
    # imported here: only the loop part renders a performance (benchmarks may import upper layers)
    from posestudio.synthetic.body_render import render_take
    from posestudio.synthetic.performance import performance_bodies

    rig = make_studio_rig(cameras, LOOP_SIZE, radius=(3.5, 4.5), seed=seed, distortion="mild")
    bodies, _ = performance_bodies(max(2, round(LOOP_CLIP_S * fps)), fps, 1, None, seed)
    clips: dict[str, list[np.ndarray]] = {c: [] for c in rig.names}
    for _, images, _ in render_take(rig, bodies, RenderOptions(seed=seed), seed):
        for c, image in zip(rig.names, images):
            clips[c].append(image)
    return rig, clips, np.asarray(bodies[0])


def run_loop(detector_name: str, rig: CameraRig, clips: dict[str, list[np.ndarray]], fps: float, seconds: float,
             device: str = "auto") -> dict:
    """The whole loop once: nodes (threads, JPEG q90, paced at ``fps``, started in phase) -> LiveServer (clock: node time, one
    machine) with ``detector_name`` -> skeleton stream. Returns the server's stats with ``window`` = the
    measured ``seconds`` after :data:`LOOP_WARMUP_S` of warm-up (sets/s, latency, ms per stage).

    Frames join their nearest slot (``join_fraction`` 0.5): on a loaded machine a node whose grab
    falls a frame behind starts a new schedule at another phase, as free-running cameras have
    any phase; the default 0.25 would leave such a camera off-grid."""
    # imported here: the server and the detectors load MediaPipe / torch
    from posestudio.models.detectors.backends import create_detector
    from posestudio.reconstruction.live.config import CameraConfig, ServerConfig, StudioConfig
    from posestudio.reconstruction.live.server import LiveServer, LiveServerOptions
    from posestudio.reconstruction.options import ReconstructionOptions

    config = StudioConfig("bench", Path("rig.toml"), ServerConfig(data_port=0, control_port=0, skeleton_port=0,
                                                                  fps=fps, join_fraction=0.5,
                                                                  detector=detector_name),
                          tuple(CameraConfig(c) for c in clips))
    detector = create_detector(detector_name, max_people=1, device=device)
    server = LiveServer(config, rig, detector, LiveServerOptions(reconstruction=ReconstructionOptions(live=True),
                                                                 stats_every_s=3600.0))
    nodes = []
    try:
        server.start()
        endpoint = server.data_endpoint.replace("0.0.0.0", "127.0.0.1")
        nodes = [CaptureNode(c, frames, endpoint, fps=fps, loop=True, jpeg_quality=JPEG_QUALITY)
                 for c, frames in clips.items()]
        for node in nodes:   # in phase, as genlocked cameras: free-running phases would leave frames off-grid
            time.sleep(1 / fps - time.monotonic() % (1 / fps))
            node.start()
        time.sleep(LOOP_WARMUP_S)
        server.stats(window=True)                    # the window starts here
        time.sleep(seconds)
        doc = server.stats(window=True)
        doc["nodes"] = {n.camera: n.stats() for n in nodes}
        return doc
    finally:
        for node in nodes:
            node.stop()
        server.stop()
        detector.close()


def print_loop(results: dict[str, dict], fps: float, cameras: int) -> None:
    """The whole loop's table: per detector sets/s, complete sets, latency, drops, ms per stage."""
    header = (f"{'detector':<10} {'sets/s':>7} {'of':>5} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'q drop':>7} "
              f"{'missing':>8} {'node drop':>9}  ms per set (decode / detect / reconstruct / publish)")
    print(header)
    print("-" * len(header))
    for name, doc in results.items():
        if "error" in doc:
            print(f"{name:<10} not run: {doc['error']}")
            continue
        w, lat, st = doc["window"], doc["window"]["latency_ms"], doc["window"]["stages_ms"]
        missing = sum(c["missing"] for c in doc["cameras"].values())
        node_drop = sum(s.dropped for s in doc["nodes"].values())

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}"

        print(f"{name:<10} {w['sets_per_s']:>7.1f} {fps:>5g} {ms(lat['p50']):>7} {ms(lat['p95']):>7} "
              f"{ms(lat['p99']):>7} {doc['frame_sets']['queue_dropped']:>7} {missing:>8} {node_drop:>9}  "
              f"{ms(st['decode'])} / {ms(st['detect'])} / {ms(st['reconstruct'])} / {ms(st['publish'])}")
    print(f"targets (issue 16): on a GPU {cameras} x 30 frames/s with p95 under 100 ms; on CPU: what it sustains. "
          "'q drop': whole old frame sets dropped at the detector's queue (overload); 'missing': camera-frames "
          "absent from emitted sets; 'node drop': frames the nodes dropped.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, default=4, help="capture nodes (default 4)")
    parser.add_argument("--fps", type=float, default=TARGET_FPS, help="the paced run's frame rate (default 60)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per run (default 8)")
    parser.add_argument("--threads", action="store_true", help="nodes as threads of this process, not processes")
    parser.add_argument("--loop", action="store_true", help="also run the whole loop (nodes -> serve) per detector")
    parser.add_argument("--loop-only", action="store_true", help="only the whole loop, no transport runs")
    parser.add_argument("--detectors", default=",".join(LOOP_DETECTORS), help="the loop's detectors (default all)")
    parser.add_argument("--loop-fps", type=float, default=30.0, help="the loop's frame rate (default 30)")
    parser.add_argument("--loop-seconds", type=float, default=10.0, help="the loop's measured seconds (default 10)")
    parser.add_argument("--device", default="auto", help="TCE's device in the loop (default auto)")
    args = parser.parse_args(argv)
    if args.loop_only:
        return main_loop(args)
    t0 = time.perf_counter()
    frames = rendered_frames(args.cameras)
    where = "threads of one process" if args.threads else "one process each"
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"transport: {args.cameras} nodes ({where}) x {WIDTH}x{HEIGHT} JPEG q{JPEG_QUALITY} -> one SUB on loopback "
          f"tcp; {args.seconds:g} s measured per run after {WARMUP_S:g} s warm-up; {os.cpu_count()} CPUs, load "
          f"average {load}")
    header = (f"{'run':<8} {'camera':<7} {'frames/s':>9} {'dip/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
              f"{'drop q':>9} {'drop tx':>8} {'lost':>6} {'enc ms':>9}")
    print(header)
    print("-" * len(header))
    max_results = run_once(frames, MAX_FPS, args.seconds, args.threads)
    max_rates, max_p95, _ = summarise("max", max_results, args.seconds)
    paced_results = run_once(frames, args.fps, args.seconds, args.threads)
    rates, p95, dips = summarise(f"paced{args.fps:g}", paced_results, args.seconds)
    dec = decode_ms({**{f"m{c}": r for c, r in max_results.items()}, **paced_results})
    print("-" * len(header))
    print(f"JPEG decode (the server's cost, measured after the runs): {dec:.1f} ms per frame; encode is the "
          "'enc ms' column (each node's own timing)")
    fps_ok = all(r >= 0.98 * args.fps for r in rates) and args.fps >= TARGET_FPS
    print(f"target: at least {args.cameras} x {TARGET_FPS:g} frames/s received: "
          f"{'met' if fps_ok else 'NOT met'} (paced run: {' / '.join(f'{r:.1f}' for r in rates)} frames/s at "
          f"{args.fps:g} asked; max run: {sum(max_rates):.1f} frames/s in total)")
    print(f"target: capture-to-receive p95 under {TARGET_P95_MS:g} ms: {'met' if p95 < TARGET_P95_MS else 'NOT met'} "
          f"(paced run p95 {p95:.1f} ms; max run p95 {max_p95:.1f} ms)")
    print(f"FreeMoCap anchor: median 31 of 30 requested frames/s with 6 cameras, dips to 20 on one host; here: "
          f"median {np.median(rates):.1f} of {args.fps:g} requested frames/s with {args.cameras} cameras, lowest "
          f"whole second {min(dips):.0f} frames/s")
    print(f"({time.perf_counter() - t0:.0f} s in all)")
    return main_loop(args) if args.loop else 0


def main_loop(args: argparse.Namespace) -> int:
    """The whole loop with each detector of ``--detectors`` (``--loop``, ``--loop-only``)."""
    t0 = time.perf_counter()
    rig, clips, _ = loop_clips(args.cameras, args.loop_fps)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"whole loop: {args.cameras} nodes (threads) x {LOOP_SIZE[0]}x{LOOP_SIZE[1]} JPEG q{JPEG_QUALITY} at "
          f"{args.loop_fps:g} fps -> posestudio serve's LiveServer (detector, causal reconstruction, skeleton "
          f"stream); {args.loop_seconds:g} s measured after {LOOP_WARMUP_S:g} s; load average {load}")
    results: dict[str, dict] = {}
    for name in [d.strip() for d in args.detectors.split(",") if d.strip()]:
        try:
            results[name] = run_loop(name, rig, clips, args.loop_fps, args.loop_seconds, args.device)
        except Exception as exc:   # noqa: BLE001 - a backend that cannot run here is reported, the others run
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    print_loop(results, args.loop_fps, args.cameras)
    print(f"({time.perf_counter() - t0:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
