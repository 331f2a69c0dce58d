"""Reconstruction at scale: wall time and peak memory per take length and frame rate.

Run from the repository root: ``.venv/bin/python -m benchmarks.reconstruction_scale`` (add
``--minutes 1 5 10 --fps 30 60`` to choose the cases; ``--live-minutes 1`` adds causal runs).

Each case is a synthetic take (``posestudio.synthetic``): the procedural walker walking a circle
of 1 m radius at 0.8 m/s in the middle of a 4-camera studio rig, for the case's length at its
frame rate, its 2D spoilt like a detector's (3 px noise, 10 % confident outliers, 8 % occlusion
runs). The take is written once to a temporary file; each case then runs ``reconstruct`` in a
fresh process, which reports its wall time, the peak resident memory of the whole process
(Linux ``VmHWM``: Python, numpy, torch and the take's arrays included; ``ru_maxrss`` would also
count the parent's memory at the fork) and its resident memory just before reconstructing
(imports, the prior and the take loaded), so the difference is what the reconstruction adds. MPJPE (pelvis-aligned) against the true motion checks that nothing
was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from posestudio.core.keypoints_file import Keypoints2D, read_keypoints2d, write_keypoints2d
from posestudio.core.pose_metrics import coverage, mpjpe
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.options import ReconstructionOptions
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections
from posestudio.synthetic.body_motion import walking_body

RADIUS_M = 1.0
SPEED_M_S = 0.8
RIG_SEED = 0


def circle_walk(frames: int, fps: float) -> np.ndarray:
    """``(frames, 17, 3)`` metres: the synthetic walker (legs and arms swinging) walking a circle of
    :data:`RADIUS_M` around the origin at :data:`SPEED_M_S`, facing where it goes."""
    in_place = walking_body(frames, fps, speed_m_s=0.0)                  # pelvis at the origin, facing +x
    t = np.arange(frames) / fps
    angle = SPEED_M_S / RADIUS_M * t
    heading = angle + np.pi / 2
    c, s = np.cos(heading), np.sin(heading)
    yaw = np.zeros((frames, 3, 3))
    yaw[:, 0, 0], yaw[:, 0, 1], yaw[:, 1, 0], yaw[:, 1, 1], yaw[:, 2, 2] = c, -s, s, c, 1.0
    centre = np.stack([RADIUS_M * np.cos(angle), RADIUS_M * np.sin(angle), np.zeros(frames)], -1)
    return np.einsum("fij,fkj->fki", yaw, in_place) + centre[:, None]


def write_take(folder: Path, minutes: float, fps: float, seed: int = 0) -> Path:
    """Simulate a case's take; write its keypoints (and truth) to ``folder``; return the keypoint file."""
    frames = round(minutes * 60 * fps)
    truth = circle_walk(frames, fps)
    rig = make_studio_rig(4, (1920, 1080), seed=RIG_SEED)
    views = simulate_detections(rig, truth, DetectorErrors(seed=seed))
    path = folder / f"take_{minutes:g}min_{fps:g}fps.npz"
    write_keypoints2d(path, Keypoints2D(views.keypoints, rig.names, list(H36M17.joints), fps))
    np.save(path.with_suffix(".truth.npy"), truth.astype(np.float32))
    return path


def _memory_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, MB, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1]) / 1024.0
    raise RuntimeError(f"/proc/self/status has no {field} (Linux only)")


def run_case(path: Path, live: bool) -> dict:
    """In the measuring process: reconstruct the take at ``path``; time, memory and accuracy."""
    # imported here, by the measuring process only: the pipeline loads torch, which the parent
    # (which only simulates takes) does not need
    from posestudio.reconstruction.pipeline import load_prior, reconstruct

    opts = ReconstructionOptions(live=live)
    load_prior(opts.prior)
    take = read_keypoints2d(path)
    rig = make_studio_rig(4, (1920, 1080), seed=RIG_SEED)
    before = _memory_mb("VmRSS")
    t0 = time.perf_counter()
    result = reconstruct(rig, take, opts)
    seconds = time.perf_counter() - t0
    peak = _memory_mb("VmHWM")
    truth = np.load(path.with_suffix(".truth.npy")).astype(np.float64)
    pts = result.points.points3d
    return {"frames": take.n_frames, "fps": take.fps, "seconds": seconds, "rss_before_mb": before,
            "peak_rss_mb": peak, "mpjpe_mm": 1000 * mpjpe(pts, truth), "coverage": 100 * coverage(pts)}


def measure(path: Path, live: bool, timeout_s: float, blas_threads: int | None = None) -> dict:
    """Run one case in a fresh Python process (so its peak memory is its own); ``blas_threads``
    sets OpenBLAS's and OpenMP's thread counts there (None: leave them as they are)."""
    cmd = [sys.executable, "-m", "benchmarks.reconstruction_scale", "--case", str(path)] + (["--live"] if live else [])
    env = dict(os.environ)
    if blas_threads:
        env.update(OPENBLAS_NUM_THREADS=str(blas_threads), OMP_NUM_THREADS=str(blas_threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False, env=env)
    if proc.returncode != 0:
        return {"failure": (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 10], help="take lengths (default 1 5 10)")
    ap.add_argument("--fps", type=float, nargs="+", default=[30, 60], help="frame rates (default 30 60)")
    ap.add_argument("--live-minutes", type=float, nargs="*", default=[1],
                    help="lengths of the causal (live) cases, at each frame rate (default 1)")
    ap.add_argument("--timeout-s", type=float, default=1800, help="per case (default 1800)")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="OpenBLAS / OpenMP threads in the measuring processes (default: as set; on a busy "
                         "2-core machine 1 is faster, threads spin waiting for each other)")
    ap.add_argument("--case", type=Path, help=argparse.SUPPRESS)       # the measuring process
    ap.add_argument("--live", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case, args.live)))
        return 0
    cases = [(m, f, False) for f in args.fps for m in args.minutes] + [(m, f, True) for f in args.fps
                                                                       for m in args.live_minutes]
    print(f"4 cameras, synthetic walker on a 1 m circle, 3 px noise, 10 % outliers, 8 % occlusion; default "
          f"options ({ReconstructionOptions(prior=None).refine_window.frames}-frame refinement windows); "
          f"one process per case; BLAS threads: {args.blas_threads or 'as set'}")
    head = (f"{'mode':<8}{'minutes':>8}{'fps':>5}{'frames':>8}{'wall s':>9}{'frames/s':>10}{'RSS before MB':>15}"
            f"{'peak RSS MB':>13}{'added MB':>10}{'MPJPE mm':>10}{'cover %':>9}")
    print(head + "\n" + "-" * len(head), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for minutes, fps, live in cases:
            path = write_take(Path(tmp), minutes, fps)
            r = measure(path, live, args.timeout_s, args.blas_threads)
            mode = "live" if live else "offline"
            if "failure" in r:
                print(f"{mode:<8}{minutes:>8g}{fps:>5g}  FAILED: {r['failure']}", flush=True)
                continue
            print(f"{mode:<8}{minutes:>8g}{fps:>5g}{r['frames']:>8d}{r['seconds']:>9.1f}{r['frames'] / r['seconds']:>10.0f}"
                  f"{r['rss_before_mb']:>15.0f}{r['peak_rss_mb']:>13.0f}{r['peak_rss_mb'] - r['rss_before_mb']:>10.0f}"
                  f"{r['mpjpe_mm']:>10.1f}{r['coverage']:>9.1f}", flush=True)
    print("RSS before: the measuring process's resident memory after imports, the prior and the take's keypoints "
          "loaded; peak RSS: its maximum resident memory (VmHWM); added: the difference, what reconstructing added.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
