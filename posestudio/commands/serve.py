"""``posestudio serve``: the live reconstruction server (frames from capture nodes in, skeletons out)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from posestudio.core.errors import InputError

EXAMPLE = """example:
  posestudio serve --config studio_configs/example_studio.toml
  posestudio serve --config studio.toml --stats-json stats.json --detector tce --duration 60

The config (docs/live_studio.md) names the rig, the ports (data: nodes' frame messages, SUB;
skeleton: the skeleton stream, PUB), the frame-set rate, join fraction and wait, the detector and
the cameras, with each node's clock responder (clock = "tcp://HOST:PORT", from posestudio node
--clock-bind) when the node runs on another machine. Frames are assembled into sets by studio time,
2D keypoints found on all views at once, the skeleton reconstructed causally (the same stages as
reconstruct --live) and published. A line of stats every second (frame sets/s, capture-to-publish
latency p50/p95/p99, drops), and with --stats-json the full stats replaced each second. Ctrl-C
(or --duration) stops it cleanly with a summary."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand."""
    p = sub.add_parser("serve", help="the live reconstruction server: frame sets in, skeletons out (ZeroMQ)",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, type=Path, help="the studio configuration (studio_configs/*.toml)")
    p.add_argument("--stats-json", type=Path, default=None, metavar="FILE",
                   help="replace FILE with the stats every second (and the summary at the end)")
    p.add_argument("--detector", choices=("blazepose", "tce"), default=None,
                   help="2D detector (default: the config's [server] detector)")
    p.add_argument("--checkpoint", type=Path, default=None, help="TCE weights (default: the shipped checkpoint)")
    p.add_argument("--device", default="auto", help="TCE device: auto, cpu or cuda (default auto)")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: never)")
    p.add_argument("--queue-sets", type=int, default=2,
                   help="frame sets waiting for the detector before the oldest is dropped (default 2; 1: the "
                        "lowest latency under overload)")
    p.add_argument("--no-prior", action="store_true", help="no factorization prior for joints no two cameras give")
    p.add_argument("--quiet", action="store_true", help="no stats line every second")
    p.add_argument("--record", type=Path, default=None, metavar="DIR",
                   help="record the session into DIR (docs/recording.md): frames, index, clock log, rig, 2D and 3D")
    p.add_argument("--record-start-in", type=float, default=None, metavar="S",
                   help="with --record: start recording S seconds of studio time after the server starts "
                        "(default: at the first complete frame set)")
    p.add_argument("--keys", type=Path, default=None, metavar="DIR",
                   help="CURVE keys folder from 'posestudio keys' (server.key_secret, authorized/): only nodes with "
                        "an authorized key are heard; required when the config's host is not loopback")
    p.add_argument("--insecure", action="store_true",
                   help="serve a non-loopback host without keys (unauthenticated, unencrypted)")
    p.set_defaults(func=run)


def summary_lines(stats: dict[str, Any], seconds: float) -> list[str]:
    """The summary printed when the server stops."""
    s = stats.get("summary", {})
    lat = s.get("latency_ms", {})
    fs = stats["frame_sets"]
    lines = [f"posestudio serve: summary: {s.get('sets', 0)} frame sets published in {seconds:.1f} s "
             f"({s.get('sets', 0) / max(seconds, 1e-9):.1f}/s); assembled {fs['assembled']} ({fs['complete']} complete), "
             f"dropped {fs['queue_dropped']} under overload; latency p50/p95/p99 {lat.get('p50')}/{lat.get('p95')}/"
             f"{lat.get('p99')} ms; ms per set " + " / ".join(f"{k} {v}" for k, v in (s.get("stages_ms") or {}).items())
             + "; bad messages " + ", ".join(f"{k} {v}" for k, v in stats["malformed"].items())]
    for name, cam in stats["cameras"].items():
        clock = cam["clock"]
        sync = "no clock" if clock is None else f"clock offset {clock['offset_ms']} ms +- {clock['uncertainty_us']} us"
        lines.append(f"  {name}: {cam['frames']} frames, {cam['joined']} in sets, missing from {cam['missing']} sets, "
                     f"{cam['dropped']} dropped on the way, {cam['restarts']} restarts, {sync}")
    return lines


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: ZeroMQ, the reconstruction and the detector are heavy
    from posestudio.calibration.rig_formats import import_rig
    from posestudio.capture.keys import StudioKeys, check_security
    from posestudio.models.detectors.backends import create_detector
    from posestudio.reconstruction.live.config import StudioConfig
    from posestudio.reconstruction.live.server import LiveServer, LiveServerOptions
    from posestudio.reconstruction.options import ReconstructionOptions

    if args.duration is not None and not args.duration > 0:
        raise InputError(f"--duration {args.duration:g}: expected a positive number of seconds")
    if args.queue_sets < 1:
        raise InputError(f"--queue-sets {args.queue_sets}: expected at least 1")
    config = StudioConfig.load(args.config)
    keys = StudioKeys.load(args.keys) if args.keys is not None else None
    check_security(config.server.data_endpoint, keys is not None, args.insecure)
    name = args.detector or config.server.detector
    if name == "keypoints":
        raise InputError(f"{args.config}: [server] detector \"keypoints\" (nodes sending 2D keypoints) is not served "
                         "yet; expected blazepose or tce")
    rig = import_rig(config.rig)
    options = ReconstructionOptions(live=True)
    if args.no_prior:
        options.prior = None
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s",
                        stream=sys.stdout)
    detector = create_detector(name, args.checkpoint, max_people=1, device=args.device)
    recording = None
    if args.record is not None:                       # docs/recording.md; the server's own code is unchanged
        from posestudio.reconstruction.live.recording import ServerRecording

        recording = ServerRecording(args.record, rig, config.camera_names, config.server.fps, detector)
        detector = recording.detector
    try:
        server = LiveServer(config, rig, detector, LiveServerOptions(
            reconstruction=options, queue_sets=args.queue_sets, stats_json=args.stats_json,
            assembled_observer=recording.observe if recording else None, keys=keys))
        server.start()
        if recording is not None:
            recording.attach(server, args.record_start_in)
        print(f"posestudio serve: studio {config.name}, {len(config.cameras)} cameras at {config.server.fps:g} "
              f"frame sets/s, detector {name}; frames at {server.data_endpoint}, control at {server.control_endpoint}, "
              f"skeletons at {server.skeleton_endpoint}{', CURVE keys' if keys else ''}; Ctrl-C stops", flush=True)
        started = time.monotonic()

        def stop_on_signal(signum: int, _frame: object) -> None:
            # Ctrl-C (also where a shell started us with SIGINT ignored) or a service manager's SIGTERM:
            # the main thread's wait returns and the server stops cleanly; a second Ctrl-C interrupts
            signal.signal(signal.SIGINT, signal.default_int_handler)
            print(f"posestudio serve: {signal.Signals(signum).name}, stopping", flush=True)
            server.request_stop()

        previous = {s: signal.signal(s, stop_on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.wait(args.duration)
        except KeyboardInterrupt:
            print("posestudio serve: stopping", flush=True)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            final = server.stop()
            if recording is not None:
                meta = recording.close()
                print(f"posestudio serve: recorded {meta['counts']['sets']} frame sets into {args.record} "
                      f"(status {meta['status']})", flush=True)
    finally:
        detector.close()
    if server.error is not None:
        raise server.error
    for line in summary_lines(final, time.monotonic() - started):
        print(line, flush=True)
    return 0
