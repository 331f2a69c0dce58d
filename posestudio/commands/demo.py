"""``posestudio demo``: render a synthetic rig, calibrate it from the videos, reconstruct a synthetic
performance through the calibration from 2D keypoints and from rendered videos, and print all of
it against the truth."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from posestudio.calibration.board import BoardSpec
from posestudio.calibration.calibrate import CalibrationOptions, calibrate_rig
from posestudio.calibration.compare import score_against_truth
from posestudio.calibration.report import write_report_json, write_report_png
from posestudio.core.errors import InputError, PoseStudioError
from posestudio.core.rig import CameraRig

EXAMPLE = """example:
  posestudio demo                       # 4 cameras, 1920x1080, into ./out/demo
  posestudio demo --cameras 6 --frames 200 --offsets-ms 0,4,-6,9,2,-3 --out /tmp/demo
  posestudio demo --live --out /tmp/live   # the live studio on this machine: server + 4 capture nodes

It renders a seeded studio rig filming a hand-held ChArUco board (strong lens distortion, motion
blur, noise, cameras a few milliseconds apart), writes one video per camera, runs the same
calibration as 'posestudio calibrate' on those videos and compares the result with the truth.
Then a procedurally animated performer walks through the volume; its 2D keypoints (with detector
noise, confident outliers, occlusions and joints leaving the images) are reconstructed through the
calibrated rig as 'posestudio reconstruct' does, and compared with the true 3D motion. Last, a
rendered performance (motion capture of a real actor, with a bystander in view) is filmed by the
rig and turned into 3D from the videos alone, as 'posestudio reconstruct --videos' does, with each
2D detector installed (BlazePose; our TCE network), and compared with the truth. The walk's
reconstruction is exported as an animation skeleton to OUT/take.bvh and rendered to
OUT/render.png ('posestudio view OUT/take' plays it).

--live runs the live studio instead, on this machine over loopback: a performer rendered into 4
cameras (--live-size, --live-fps, --live-seconds) is streamed by 4 capture nodes (threads, one
per camera, each registering on the control channel with its clock responder) to the live server
(posestudio serve's LiveServer: frame sets by studio time, BlazePose on all views, the causal
reconstruction); a skeleton-stream subscriber writes what it receives to OUT/live/points3d.npz,
then OUT/live.bvh, OUT/live.png and the server's OUT/stats.json, and a summary (frame sets/s,
latency p50/p95, drops, error against the rendered truth)."""


#: ``--live`` defaults: seconds streamed, frames per second, image size (small enough for a CPU's BlazePose).
LIVE_SECONDS = 8.0
LIVE_FPS = 10.0
LIVE_SIZE = "640x360"
#: ``--live``: cameras (capture nodes).
LIVE_CAMERAS = 4


@dataclass
class DemoOptions:
    """The demo's scene; the command line's defaults.

    Attributes:
        out: working folder; cameras: number of cameras; frames: frames per camera (30 fps);
        size: image ``WIDTHxHEIGHT``, pixels; offsets_ms: per-camera time offsets, milliseconds,
        comma-separated, or ``"random"``; seed: seed of the scene. The calibration uses
        :class:`CalibrationOptions`' defaults.
    """

    out: Path = Path("out/demo")
    cameras: int = 4
    frames: int = 300
    size: str = "1920x1080"
    offsets_ms: str = "0,3,-5,8"
    seed: int = 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand; its defaults are :class:`DemoOptions`'."""
    d = DemoOptions()
    p = sub.add_parser("demo", help="calibrate a rendered synthetic rig and compare with the truth",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=d.out, help=f"working folder (default {d.out})")
    p.add_argument("--cameras", type=int, default=d.cameras, help=f"number of cameras (default {d.cameras})")
    p.add_argument("--frames", type=int, default=d.frames,
                   help=f"frames per camera (default {d.frames}: {d.frames / 30:g} s at 30 fps)")
    p.add_argument("--size", default=d.size, help=f"image WIDTHxHEIGHT (default {d.size})")
    p.add_argument("--offsets-ms", default=d.offsets_ms,
                   help=f"per-camera time offsets in ms, comma-separated, or 'random' (default {d.offsets_ms})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed of the scene (default {d.seed})")
    p.add_argument("--live", action="store_true",
                   help="the live studio on this machine instead: server and 4 capture nodes over loopback")
    p.add_argument("--live-seconds", type=float, default=LIVE_SECONDS,
                   help=f"--live: seconds of performance streamed (default {LIVE_SECONDS:g})")
    p.add_argument("--live-fps", type=float, default=LIVE_FPS,
                   help=f"--live: frames per second of each camera and frame sets per second (default {LIVE_FPS:g})")
    p.add_argument("--live-size", default=LIVE_SIZE, help=f"--live: image WIDTHxHEIGHT (default {LIVE_SIZE})")
    p.add_argument("--live-detector", choices=("blazepose", "tce"), default="blazepose",
                   help="--live: the server's 2D detector (default blazepose)")
    p.set_defaults(func=run)


def studio_board() -> BoardSpec:
    """The board a 3-5 m studio uses: 9 x 6 squares of 10 cm (A1), as in studio_configs/."""
    return BoardSpec("charuco", 9, 6, 0.1, 0.075, "DICT_4X4_50", source="studio A1 board")


def _parse_offsets(text: str, n: int) -> list[float] | str:
    """``--offsets-ms`` as seconds for ``n`` cameras (missing ones 0), or ``"random"``."""
    if text == "random":
        return "random"
    try:
        vals = [float(v) / 1000.0 for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--offsets-ms: expected comma-separated milliseconds such as 0,3,-5,8 or 'random', "
                         f"got {text!r}") from None
    if len(vals) < n:
        vals += [0.0] * (n - len(vals))
    return vals[:n]


def run(args: argparse.Namespace) -> int:
    """Render, calibrate, reconstruct and print the errors against the truth; returns the exit status."""
    if getattr(args, "live", False):
        return run_live(args)
    # Imported here for start-up time: only this command renders.
    from posestudio.synthetic import write_synthetic_session

    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise InputError(f"--size: expected WIDTHxHEIGHT such as 1920x1080, got {args.size!r}") from None
    for option, value in (("--cameras", args.cameras), ("--frames", args.frames)):
        if value < 1:
            raise InputError(f"{option} must be at least 1, got {value}")
    offsets = _parse_offsets(args.offsets_ms, args.cameras)
    print(f"1/5 rendering a synthetic take: {args.cameras} cameras, {args.frames} frames, {w}x{h} -> {args.out}")
    t0 = time.perf_counter()
    session = write_synthetic_session(args.out, n_cameras=args.cameras, n_frames=args.frames, image_size=(w, h),
                                      seed=args.seed, time_offsets_s=offsets, board=studio_board())
    print(f"    rendered in {time.perf_counter() - t0:.1f} s")
    print("2/5 calibrating from the videos (detection, intrinsics, camera graph, bundle adjustment)")
    videos = [session.paths[name] for name in session.rig.names]
    result = calibrate_rig(videos, session.board, CalibrationOptions(),
                           progress=lambda m: print("    " + m, flush=True))
    result.rig.save(args.out / "rig.toml")
    write_report_json(result.report, args.out / "rig_report.json")
    write_report_png(result.report, args.out / "rig_report.png")
    print("3/5 errors against the ground truth")
    score = score_against_truth(result.rig, session.rig)
    ref = result.report.reference_camera
    ref_true = session.rig[ref].time_offset
    print(f"{'camera':<8}{'focal %':>9}{'pp px':>8}{'centre mm':>11}{'rot deg':>9}{'offset ms':>11}{'true ms':>9}"
          f"{'reproj px':>11}")
    for cam in session.rig.cameras:
        s = score["cameras"][cam.name]
        est = result.rig[cam.name]
        print(f"{cam.name:<8}{s['focal_error_pct']:>9.3f}{s['principal_point_error_px']:>8.2f}"
              f"{s['center_error_mm']:>11.2f}{s['rotation_error_deg']:>9.3f}{est.time_offset * 1000:>11.2f}"
              f"{(cam.time_offset - ref_true) * 1000:>9.2f}"
              f"{result.report.cameras[cam.name].reprojection_rms_px:>11.3f}")
    m = score["mean"]
    print(f"{'mean':<8}{m['focal_error_pct']:>9.3f}{m['principal_point_error_px']:>8.2f}{m['center_error_mm']:>11.2f}"
          f"{m['rotation_error_deg']:>9.3f}")
    bse = result.report.board_size_error
    print(f"board-size error (no ground truth needed): mean {bse.mean_abs_mm:.2f} mm; "
          f"scale factor vs truth {score['scale_factor']:.5f}; time {result.report.timing_s.total:.1f} s")
    print(f"wrote {args.out / 'rig.toml'}, {args.out / 'rig_report.json'}, {args.out / 'rig_report.png'}")
    rig = _reconstruct_performance(args, session.rig, result.rig)
    _videos_to_3d(args, session.rig, rig)
    export_bvh(args.out)
    render_take(args.out)
    return 0


def export_bvh(out: Path) -> Path:
    """The reconstructed walk as an animation skeleton: ``OUT/take.bvh``, as
    ``posestudio export OUT/take --bvh OUT/take.bvh`` writes it."""
    # Imported here for start-up time (the solver needs scipy only when it runs).
    from posestudio.reconstruction.export.take import read_take
    from posestudio.reconstruction.export.writers import export_take

    points, source = read_take(out / "take")
    written = export_take(points, {"bvh": out / "take.bvh"}, source=source)[0]
    print(f"BVH: {written.line()} (open it in Blender: File > Import > Motion Capture (.bvh))")
    return written.path


def render_take(out: Path) -> Path | None:
    """Last: the reconstructed walk (step 4) rendered offscreen to ``OUT/render.png``, as
    ``posestudio view OUT/take --offscreen OUT/render.png`` does; skipped, saying why, where nothing
    can render. Returns the PNG, or None when skipped."""
    # Imported here for start-up time: Open3D loads only when something is drawn.
    from posestudio.viewer.offscreen import RenderUnavailable, render_png
    from posestudio.viewer.take import load_rig, load_take

    take_dir, png = out / "take", out / "render.png"
    calibration = None if (take_dir / "rig.toml").is_file() else out / "rig_in_truth_frame.toml"
    take = load_take(take_dir)
    try:
        done = render_png(png, take, rig=load_rig(take_dir, calibration))
    except RenderUnavailable as exc:
        print(f"render: skipped, nothing can render here ({exc})")
        return None
    print(f"render: the reconstructed walk at frame {take.n_frames // 2}, cameras and floor "
          f"({done.size[0]}x{done.size[1]}, {done.renderer} renderer): wrote {done.path}")
    return done.path


def _reconstruct_performance(args: argparse.Namespace, true_rig: CameraRig, calibrated_rig: CameraRig) -> CameraRig:
    """Step 4: a synthetic performance seen by the true rig, reconstructed through the calibrated one."""
    # Imported here for start-up time: the pipeline loads torch, which no other command line needs.
    import numpy as np

    from posestudio.calibration.compare import align_rig_to_truth
    from posestudio.core.keypoints_file import Keypoints2D, write_keypoints2d
    from posestudio.core.pose_metrics import coverage, mpjpe, mpjpe_absolute, p_mpjpe
    from posestudio.core.skeleton import bone_length_cv
    from posestudio.models.keypoints import H36M17
    from posestudio.reconstruction.pipeline import run_reconstruction
    from posestudio.reconstruction.triangulation import triangulate_robust
    from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections
    from posestudio.synthetic.body_motion import walking_body

    print("4/5 reconstructing a synthetic performance through the calibrated rig")
    body = walking_body(150, start=(-1.1, -0.5), speed_m_s=0.5, heading_deg=25)
    views = simulate_detections(true_rig, body, DetectorErrors(seed=args.seed))
    # the calibration's world frame is its own; express it in the truth's to compare positions
    rig = align_rig_to_truth(calibrated_rig, true_rig)
    rig.save(args.out / "rig_in_truth_frame.toml")
    write_keypoints2d(args.out / "keypoints2d.npz", Keypoints2D(views.keypoints, rig.names, list(H36M17.joints), 30.0))
    t0 = time.perf_counter()
    result = run_reconstruction(args.out / "rig_in_truth_frame.toml", args.out / "keypoints2d.npz", args.out / "take")
    seconds = time.perf_counter() - t0
    pts = result.points.points3d
    raw = triangulate_robust(rig, views.keypoints).points
    print(f"{'':<28}{'MPJPE mm':>9}{'abs mm':>8}{'P-MPJPE':>9}{'cover %':>9}{'bone CV':>9}")
    both = np.isfinite(raw).all(-1)
    for label, p in (("triangulation alone", raw), ("full pipeline", pts),
                     ("  on triangulated joints", np.where(both[..., None], pts, np.nan))):
        print(f"{label:<28}{1000 * mpjpe(p, body):>9.1f}{1000 * mpjpe_absolute(p, body):>8.1f}"
              f"{1000 * p_mpjpe(p, body):>9.1f}{100 * coverage(p):>9.1f}"
              f"{bone_length_cv(p, H36M17.bone_indices):>9.3f}")
    rep = result.report
    print(f"    {rep.frames} frames in {seconds:.1f} s; triangulated {100 * rep.fraction_triangulated:.1f} %, "
          f"interpolated {100 * rep.fraction_gap_filled:.1f} %, carried along rays "
          f"{100 * rep.fraction_carried_along_rays:.1f} %, filled by the prior {100 * rep.fraction_filled_by_prior:.1f} %")
    print(f"wrote {args.out / 'keypoints2d.npz'}, {args.out / 'take' / 'points3d.npz'}, {args.out / 'take' / 'report.json'}")
    return rig


def _videos_to_3d(args: argparse.Namespace, true_rig: CameraRig, rig: CameraRig, frames: int = 60) -> None:
    """Step 5: a rendered performance (the subject and a bystander) filmed by the true rig, turned into
    3D from the videos alone through the calibrated rig, with every detector installed."""
    # Imported here for start-up time (torch, MediaPipe, the renderer).
    import importlib.util

    from posestudio.core.pose_metrics import coverage, mpjpe, mpjpe_absolute, p_mpjpe
    from posestudio.models.detectors.backends import create_detector
    from posestudio.reconstruction.videos import run_video_reconstruction
    from posestudio.synthetic.performance import performance_bodies, write_performance

    print(f"5/5 videos -> 3D: a rendered performance ({frames} frames, the subject and a bystander), "
          "2D detected per view, reconstructed through the calibrated rig")
    bodies, clips = performance_bodies(frames=frames, fps=30.0, people=2, seed=args.seed)
    t0 = time.perf_counter()
    write_performance(args.out / "performance", true_rig, bodies, fps=30.0, seed=args.seed, overwrite=True)
    print(f"    rendered {', '.join(clips)} in {time.perf_counter() - t0:.1f} s -> {args.out / 'performance'}")
    videos = [args.out / "performance" / "videos" / f"{name}.mp4" for name in rig.names]
    detectors = [d for d in ("blazepose", "tce") if d != "blazepose" or importlib.util.find_spec("mediapipe")]
    print(f"{'detector':<12}{'MPJPE mm':>9}{'abs mm':>8}{'P-MPJPE':>9}{'cover %':>9}{'people':>8}{'s':>7}")
    for name in detectors:
        try:
            detector = create_detector(name)
        except PoseStudioError as exc:  # a backend that is not installed is skipped, saying why
            print(f"{name:<12}skipped: {exc}")
            continue
        t0 = time.perf_counter()
        try:
            made = run_video_reconstruction(rig, videos, args.out / f"performance_{name}", detector)
        finally:
            detector.close()
        p, truth = made.result.points.points3d, bodies[0]
        print(f"{name:<12}{1000 * mpjpe(p, truth):>9.1f}{1000 * mpjpe_absolute(p, truth):>8.1f}"
              f"{1000 * p_mpjpe(p, truth):>9.1f}{100 * coverage(p):>9.1f}{made.video.people.shape[0]:>8d}"
              f"{time.perf_counter() - t0:>7.1f}")
    print(f"wrote {args.out / 'performance_<detector>'}/ (keypoints2d.npz, points3d.npz, report.json); abs mm "
          "near the others means the subject, not the bystander, was followed")


# --------------------------------------------------------------------------- demo --live
def run_live(args: argparse.Namespace) -> int:
    """``posestudio demo --live``: a rendered performer streamed by 4 capture nodes to the live server on this
    machine; the received skeletons written as ``OUT/live/points3d.npz``, ``OUT/live.bvh``, ``OUT/live.png``,
    the server's ``OUT/stats.json``; a summary printed. Returns the exit status."""
    # Imported here for start-up time: ZeroMQ, the renderer, the detector and the reconstruction.
    import threading

    import numpy as np

    from posestudio.capture.node import CaptureNode
    from posestudio.core.keypoints_file import Points3D, write_points3d
    from posestudio.core.pose_metrics import mpjpe, mpjpe_absolute
    from posestudio.models.detectors.backends import create_detector
    from posestudio.models.keypoints import H36M17
    from posestudio.reconstruction.live.config import CameraConfig, ServerConfig, StudioConfig
    from posestudio.reconstruction.live.server import LiveServer, LiveServerOptions
    from posestudio.reconstruction.options import ReconstructionOptions
    from posestudio.synthetic import make_studio_rig
    from posestudio.synthetic.performance import performance_bodies, write_performance
    from posestudio.viewer.stream_client import SkeletonSubscriber

    try:
        w, h = (int(v) for v in args.live_size.lower().split("x"))
    except ValueError:
        raise InputError(f"--live-size: expected WIDTHxHEIGHT such as 640x360, got {args.live_size!r}") from None
    fps, seconds = float(args.live_fps), float(args.live_seconds)
    if not (fps > 0 and seconds > 0 and w >= 64 and h >= 64):
        raise InputError(f"--live-fps {fps:g}, --live-seconds {seconds:g}, --live-size {w}x{h}: expected positive "
                         "rates and durations and images of at least 64x64 pixels")
    out = Path(args.out)
    live = out / "live"
    live.mkdir(parents=True, exist_ok=True)
    frames = max(2, round(seconds * fps))
    print(f"1/4 rendering a performer into {LIVE_CAMERAS} cameras: {frames} frames at {fps:g} fps, {w}x{h}")
    t0 = time.perf_counter()
    rig = make_studio_rig(LIVE_CAMERAS, (w, h), seed=args.seed)
    rig.save(live / "rig.toml")
    bodies, clips = performance_bodies(frames=frames, fps=fps, people=1, seed=args.seed)
    write_performance(out / "live_performance", rig, bodies, fps=fps, seed=args.seed, overwrite=True)
    print(f"    {', '.join(clips)} rendered in {time.perf_counter() - t0:.1f} s -> {out / 'live_performance'}")

    config = StudioConfig("demo-live", live / "rig.toml",
                          ServerConfig(host="127.0.0.1", data_port=0, control_port=0, skeleton_port=0, fps=fps,
                                       join_fraction=0.5, max_wait_s=min(0.5, 2.0 / fps),
                                       detector=args.live_detector),
                          tuple(CameraConfig(name) for name in rig.names))
    detector = create_detector(args.live_detector, max_people=1)
    received: list = []
    nodes: list[CaptureNode] = []
    try:
        server = LiveServer(config, rig, detector, LiveServerOptions(
            reconstruction=ReconstructionOptions(live=True), stats_json=out / "stats.json", clock_interval_s=1.0,
            source="posestudio demo --live"))
        server.start()
        print(f"2/4 live server: frames at {server.data_endpoint}, control at {server.control_endpoint}, skeletons at "
              f"{server.skeleton_endpoint}; detector {args.live_detector}")
        done = threading.Event()
        subscriber = SkeletonSubscriber(server.skeleton_endpoint)

        def receive() -> None:   # the viewer's side: every skeleton the stream delivers
            while not done.is_set():
                frame = subscriber.receive(timeout_s=0.1)
                if frame is not None:
                    received.append(frame)

        reader = threading.Thread(target=receive, name="demo-subscriber", daemon=True)
        reader.start()
        videos = out / "live_performance" / "videos"
        nodes = [CaptureNode(name, videos / f"{name}.mp4", server.data_endpoint, fps=fps, jpeg_quality=90,
                             clock_endpoint="tcp://127.0.0.1:*", control_endpoint=server.control_endpoint)
                 for name in rig.names]
        time.sleep(0.3)                                    # the subscriber's subscription reaches the publisher
        period_ns = round(1e9 / fps)
        start_ns = (time.monotonic_ns() // period_ns + 2) * period_ns   # every node starts on one tick
        time.sleep(max(0.0, (start_ns - time.monotonic_ns()) / 1e9))
        for node in nodes:
            node.start()
        print(f"3/4 streaming: {LIVE_CAMERAS} capture nodes (threads, each with its clock responder, registered on "
              f"the control channel) -> server -> skeleton stream, {seconds:g} s", flush=True)
        streamed = time.monotonic()
        for node in nodes:
            node.wait(seconds + 10.0)
        streamed_s = time.monotonic() - streamed
        registered = server.stats()["control"]
        time.sleep(min(1.5, 0.3 + 3.0 / fps))              # the last sets through detection and the stream
        done.set()
        reader.join(5.0)
        subscriber.close()
        final = server.stop()                              # before the nodes: it never probes a node gone
        node_stats = [node.stop() for node in nodes]
    finally:
        for node in nodes:
            node.stop()
        detector.close()
    if server.error is not None:
        raise server.error

    print("4/4 the live take: points3d.npz, BVH, render, stats")
    people = [f for f in received if f.n_people]
    if not people:
        raise PoseStudioError("demo --live: the skeleton stream delivered no skeleton; see OUT/stats.json")
    first = min(f.frame_index for f in people)
    n = max(f.frame_index for f in people) - first + 1
    joints = list(people[0].joint_names)
    points = np.full((n, len(joints), 3), np.nan)
    confidence = np.zeros((n, len(joints)))
    for f in people:
        points[f.frame_index - first] = f.points[0]
        confidence[f.frame_index - first] = f.confidence[0]
    write_points3d(live / "points3d.npz", Points3D(points, np.nan_to_num(confidence), joints, fps))
    print(f"    {len(people)} skeletons over {n} frame slots -> {live / 'points3d.npz'}")
    error = ""
    if joints == list(H36M17.joints):                 # against the rendered truth at each slot's instant
        index = np.array([round((f.timestamp_s * 1e9 - start_ns) / period_ns) for f in people])
        ok = (index >= 0) & (index < bodies[0].shape[0])
        if ok.any():
            pred = np.stack([f.points[0] for f in people])[ok]
            truth = bodies[0][index[ok]]
            error = (f"; error against the truth: MPJPE {1000 * mpjpe(pred, truth):.0f} mm, absolute "
                     f"{1000 * mpjpe_absolute(pred, truth):.0f} mm")
    try:
        bvh = _export_live_bvh(live, out / "live.bvh")
        print(f"    BVH: {bvh}")
    except PoseStudioError as exc:
        print(f"    BVH: skipped ({exc})")
    seen = np.flatnonzero(np.isfinite(points).any(axis=(1, 2)))       # slots dropped under overload are NaN
    _render_live(live, out / "live.png", int(seen[np.argmin(np.abs(seen - n // 2))]))

    summary = final["summary"]
    lat = summary["latency_ms"]
    fs = final["frame_sets"]
    node_drops = sum(s.dropped for s in node_stats)
    missing = sum(c["missing"] for c in final["cameras"].values())
    print(f"summary: {summary['sets']} frame sets published in {streamed_s:.1f} s ({summary['sets'] / streamed_s:.1f} "
          f"sets/s of {fps:g} asked), latency p50 {lat['p50']} ms, p95 {lat['p95']} ms; assembled {fs['assembled']} "
          f"({fs['complete']} complete), dropped under overload {fs['queue_dropped']}, camera-frames missing "
          f"{missing}, node drops {node_drops}; {len(registered['registered'])} nodes registered, "
          f"{len(people)} skeletons received{error}")
    print("    ms per set: " + ", ".join(f"{k} {v}" for k, v in summary["stages_ms"].items())
          + f"; stats: {out / 'stats.json'}")
    return 0


def _export_live_bvh(live: Path, target: Path) -> Path:
    """The live take as an animation skeleton (``reconstruction.export`` writers), as ``posestudio export``."""
    from posestudio.reconstruction.export.take import read_take
    from posestudio.reconstruction.export.writers import export_take

    points, source = read_take(live)
    return export_take(points, {"bvh": target}, source=source)[0].path


def _render_live(live: Path, png: Path, frame: int) -> Path | None:
    """The live take's ``frame`` rendered offscreen (as :func:`render_take`); None where nothing renders."""
    from posestudio.viewer.offscreen import RenderUnavailable, render_png
    from posestudio.viewer.take import load_rig, load_take

    take = load_take(live)
    try:
        done = render_png(png, take, frame, rig=load_rig(live, None))
    except RenderUnavailable as exc:
        print(f"    render: skipped, nothing can render here ({exc})")
        return None
    print(f"    render: frame {frame} ({done.size[0]}x{done.size[1]}, {done.renderer}): {done.path}")
    return done.path
