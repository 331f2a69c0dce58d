"""Draft: the calibration peers on a synthetic take and on the real caliscope session.

Run from the repository root::

    .venv/bin/python -m benchmarks.calibration_peers_demo [--take DIR] [--caliscope DIR]
        [--out DIR] [--skip-aniposelib] [--with-posestudio]

For each take it detects the board once with PoseStudio's detector (those detections are what
every rig is scored on), runs aniposelib 0.8.0 (on colour-inverted copies when the board is
printed inverted), ``cv2.calibrateMultiview`` (intrinsics per camera first, and its own), and on
the caliscope session caliscope's stored result, then prints one table per take: board-size
error, reprojection RMS of the triangulated corners, ground-truth errors (synthetic takes only)
and wall time.

A take folder holds ``cam0.mp4, cam1.mp4, ...``, ``board.toml`` and (synthetic) ``truth_rig.toml``,
the layout ``posestudio.calibration.synthetic`` writes. Without ``--take`` a simple take is
rendered here: a ChArUco board at known poses warped (``cv2.warpPerspective`` of
``BoardSpec.render``) into four known distortion-free cameras.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import tomli_w

from posestudio.calibration.board import BoardSpec, board_to_dict, load_board
from posestudio.calibration.camera import Camera
from posestudio.calibration.detect import CameraDetections
from posestudio.calibration.rig import CameraRig

from benchmarks.peers import PeerResult, aniposelib_peer, caliscope_peer, opencv_multiview_peer
from benchmarks.scoring import board_size_error, reprojection_rms, score_against_truth, triangulate_board

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CALISCOPE = REPO.parent / "shared" / "data" / "caliscope_session"


# --------------------------------------------------------------------------- synthetic take
def _look_at(position: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera ``(R (3, 3), t (3,))`` of a camera at ``position`` looking at ``target``
    (world Z up; OpenCV camera axes: x right, y down, z forward)."""
    fwd = target - position
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    rot = np.stack([right, down, fwd])
    return rot, -rot @ position


def _random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A rotation ``(3, 3)`` about a random axis by up to ``max_deg`` degrees."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    return cv2.Rodrigues(axis * math.radians(rng.uniform(0, max_deg)))[0]


def make_synthetic_take(out: Path, n_frames: int = 60, seed: int = 0, size: tuple[int, int] = (1280, 720),
                        noise: float = 2.0) -> Path:
    """Render a simple 4-camera ChArUco take with known cameras and board poses.

    Args:
        out: folder to write ``cam0.mp4 .. cam3.mp4`` (MPEG-4, 30 fps), ``board.toml`` and
            ``truth_rig.toml``.
        n_frames: frames per camera.
        seed: random seed for intrinsics and board poses.
        size: image ``(width, height)``, pixels.
        noise: standard deviation of added Gaussian pixel noise (grey levels).
    Returns:
        ``out``.
    """
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    board = BoardSpec("charuco", 7, 5, 0.08, 0.06, "DICT_4X4_50", source="synthetic")
    target = np.array([0.0, 0.0, 1.0])
    cams = []
    for i, ang in enumerate((-50.0, -15.0, 20.0, 55.0)):
        a = math.radians(ang)
        pos = target + np.array([1.9 * math.cos(a), 1.9 * math.sin(a), rng.uniform(0.2, 0.6)])
        rot, t = _look_at(pos, target + rng.normal(0, 0.05, 3))
        f = rng.uniform(850, 1050)
        k = np.array([[f, 0, size[0] / 2 - 0.5 + rng.uniform(-12, 12)],
                      [0, f * rng.uniform(0.995, 1.005), size[1] / 2 - 0.5 + rng.uniform(-8, 8)], [0, 0, 1]])
        cams.append(Camera(f"cam{i}", size, k, np.zeros(5), rot, t))
    truth = CameraRig(cams, {"tool": "benchmarks.calibration_peers_demo synthetic", "seed": seed})
    truth.save(out / "truth_rig.toml")
    (out / "board.toml").write_text(tomli_w.dumps({"board": board_to_dict(board)}))

    ppm, margin = 600.0, 24
    tex = board.render(ppm, margin).astype(np.float32)
    w_m, h_m = board.size_m
    # render pixel (u, v) -> board point (x, y, 1), metres (see BoardSpec.render)
    render_to_board = np.array([[1 / ppm, 0, (0.5 - margin) / ppm], [0, 1 / ppm, (0.5 - margin) / ppm], [0, 0, 1]])
    writers = [cv2.VideoWriter(str(out / f"{c.name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, size, False)
               for c in cams]
    for f in range(n_frames):
        yaw = math.radians(rng.uniform(-10, 35))  # face the arc of cameras (their mean angle is +2.5 deg)
        face = np.array([-math.cos(yaw), -math.sin(yaw), 0.0])     # board z: away from the cameras
        r_wb, _ = _look_at(np.zeros(3), face)                      # columns-to-be: x right, y down, z = face
        r_wb = _random_rotation(rng, 40.0) @ r_wb.T                # board-to-world rotation
        centre = target + rng.uniform([-0.4, -0.4, -0.3], [0.4, 0.4, 0.3])
        origin = centre - r_wb @ np.array([w_m / 2, h_m / 2, 0.0])
        for cam, wr in zip(cams, writers):
            img = np.full((size[1], size[0]), 110, np.float32)
            r_cb = cam.rotation @ r_wb
            t_cb = cam.rotation @ origin + cam.translation
            if r_cb[2, 2] > 0.15:  # printed face towards the camera, not too oblique
                h = cam.matrix @ np.column_stack([r_cb[:, 0], r_cb[:, 1], t_cb]) @ render_to_board
                warped = cv2.warpPerspective(tex, h, size, flags=cv2.INTER_LINEAR, borderValue=-1)
                img = np.where(warped >= 0, warped, img)
            img = img + rng.normal(0, noise, img.shape)
            wr.write(np.clip(img, 0, 255).astype(np.uint8))
    for wr in writers:
        wr.release()
    return out


# --------------------------------------------------------------------------- running and scoring
def detect_take(videos: list[Path], board: BoardSpec) -> tuple[list[CameraDetections], float]:
    """PoseStudio's detections for every camera and the time they took (seconds)."""
    t0 = time.perf_counter()
    dets = opencv_multiview_peer.detect_videos(videos, board)
    return dets, time.perf_counter() - t0


def run_posestudio(videos: list[Path], board: BoardSpec) -> PeerResult:
    """PoseStudio's own calibrator when it is importable (a draft row, for orientation only)."""
    t0 = time.perf_counter()
    try:
        from posestudio.calibration.calibrate import calibrate_rig

        res = calibrate_rig(videos, board, progress=None)
        return PeerResult("posestudio", "draft", res.rig, time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001
        return PeerResult("posestudio", "draft", None, time.perf_counter() - t0, failure=f"{type(exc).__name__}: {exc}")


def score(result: PeerResult, dets: list[CameraDetections], board: BoardSpec, truth: CameraRig | None) -> dict:
    """All scores of one peer's rig (empty when it failed)."""
    if result.rig is None:
        return {}
    tb = triangulate_board(result.rig, dets, board)
    out = {"board": board_size_error(result.rig, dets, board, tb), "reproj": reprojection_rms(result.rig, dets, board, tb)}
    if truth is not None:
        out["truth"] = score_against_truth(result.rig, truth)
    return out


def print_table(title: str, rows: list[tuple[str, PeerResult, dict]], has_truth: bool, detect_s: float) -> None:
    """One table: board-size error, reprojection, ground-truth errors, wall time."""
    print(f"\n== {title}  (PoseStudio detection for scoring: {detect_s:.1f} s)")
    head = f"{'peer':<46}{'board |e| mm':>13}{'board rms mm':>13}{'reproj px':>10}"
    if has_truth:
        head += f"{'focal %':>9}{'pp px':>8}{'centre mm':>10}{'rot deg':>9}{'scale':>8}"
    head += f"{'wall s':>8}"
    print(head)
    print("-" * len(head))
    for label, res, sc in rows:
        if not res.ok:
            print(f"{label:<46}  FAILED after {res.seconds:.1f} s: {res.failure}")
            continue
        line = f"{label:<46}{sc['board']['mean_abs_mm']:>13.2f}{sc['board']['rms_mm']:>13.2f}{sc['reproj']['rms_px']:>10.2f}"
        if has_truth:
            m = sc["truth"]["mean"]
            line += (f"{m['focal_error_pct']:>9.2f}{m['principal_point_error_px']:>8.1f}{m['center_error_mm']:>10.1f}"
                     f"{m['rotation_error_deg']:>9.3f}{sc['truth']['scale_factor']:>8.4f}")
        line += f"{res.seconds:>8.1f}"
        print(line)
    for label, res, _ in rows:
        extra = [f"{k} {v:.1f} s" for k, v in res.timings.items()]
        if res.notes or extra:
            print(f"  {label}: " + "; ".join(res.notes + (["timings: " + ", ".join(extra)] if extra else [])))


def run_take(title: str, videos: list[Path], board: BoardSpec, truth: CameraRig | None,
             caliscope_config: Path | None, skip_aniposelib: bool, with_posestudio: bool) -> list[tuple[str, PeerResult, dict]]:
    """Run every peer on one take, print and return ``(label, result, scores)`` rows."""
    dets, detect_s = detect_take(videos, board)
    rows: list[tuple[str, PeerResult, dict]] = []

    def add(label: str, res: PeerResult) -> None:
        rows.append((label, res, score(res, dets, board, truth)))

    if with_posestudio:
        add("posestudio calibrate_rig (draft)", run_posestudio(videos, board))
    if not skip_aniposelib:
        res = aniposelib_peer.calibrate(videos, board, invert_frames=board.inverted)
        add(f"{res.label()}" + (" (inverted)" if board.inverted else ""), res)
    for mode in opencv_multiview_peer.INTRINSICS_MODES:
        res = opencv_multiview_peer.calibrate(videos, board, intrinsics=mode)
        add(f"{res.label()} [{mode}]", res)
    if caliscope_config is not None:
        add("caliscope (stored config.toml)", caliscope_peer.load(caliscope_config))
    print_table(title, rows, truth is not None, detect_s)
    return rows


def caliscope_board(session: Path) -> BoardSpec:
    """The caliscope session's board (from its ``charuco.toml``: 4 x 5 squares of 54 mm,
    markers 0.75 of a square, DICT_4X4_1000, printed inverted)."""
    import tomllib

    doc = tomllib.loads((session / "charuco.toml").read_text())
    square = float(doc["square_size_override_cm"]) / 100.0
    return BoardSpec("charuco", int(doc["columns"]), int(doc["rows"]), square, square * float(doc["aruco_scale"]),
                     str(doc["dictionary"]), bool(doc.get("inverted", False)), source=str(session / "charuco.toml"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--take", type=Path, help="existing synthetic take folder (cam*.mp4, board.toml, truth_rig.toml)")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "bench_peers", help="where to render the synthetic take")
    ap.add_argument("--frames", type=int, default=60, help="frames of the rendered synthetic take")
    ap.add_argument("--caliscope", type=Path, default=DEFAULT_CALISCOPE, help="caliscope_session folder")
    ap.add_argument("--skip-aniposelib", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--with-posestudio", action="store_true", help="also run PoseStudio's draft calibrate_rig")
    args = ap.parse_args(argv)

    print(f"peers: aniposelib {aniposelib_peer.version()}, OpenCV {opencv_multiview_peer.version()} "
          f"({opencv_multiview_peer.signature()})")
    if not args.skip_synthetic:
        take = args.take
        if take is None:
            t0 = time.perf_counter()
            take = make_synthetic_take(args.out / "synthetic_take", n_frames=args.frames)
            print(f"rendered synthetic take in {time.perf_counter() - t0:.1f} s: {take}")
        videos = sorted(take.glob("cam*.mp4"))
        truth_path = take / "truth_rig.toml"
        run_take(f"synthetic take {take}", videos, load_board(take / "board.toml"),
                 CameraRig.load(truth_path) if truth_path.is_file() else None, None,
                 args.skip_aniposelib, args.with_posestudio)
    if args.caliscope.is_dir():
        session = args.caliscope
        run_take(f"caliscope session {session}", sorted((session / "videos").glob("cam_*.mp4")),
                 caliscope_board(session), None, session / "config.toml", args.skip_aniposelib,
                 args.with_posestudio)
    else:
        print(f"\nskipping the caliscope session: {args.caliscope} not found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
