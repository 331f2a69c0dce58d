"""3D reconstruction benchmark: PoseStudio against Pose2Sim and aniposelib on the same 2D input.

Run from the repository root: ``.venv/bin/python -m benchmarks.reconstruction``.

Real motion capture (``../shared/data/bandai_mocap_1``, converted to the 17-joint body) is
projected into virtual studio rigs (lens distortion) and spoilt the way detectors do (Gaussian
noise, gross outliers with ordinary confidences, occlusion runs, joints leaving the image). Every
method gets the same keypoints; the table gives MPJPE (root-aligned and absolute), P-MPJPE,
PCK3D, coverage, bone-length CV and throughput.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestudio.calibration.rig import CameraRig
from posestudio.calibration.synthetic import make_studio_rig
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.bvh import bandai_to_h36m17, read_bvh
from posestudio.reconstruction.keypoints_file import Keypoints2D
from posestudio.reconstruction.metrics import (auc_pck3d, bone_length_cv, coverage, mpjpe, mpjpe_absolute,
                                               p_mpjpe, pck3d)
from posestudio.reconstruction.pipeline import ReconstructionOptions, reconstruct
from posestudio.reconstruction.synthetic_views import DetectorErrors, simulate_detections
from posestudio.reconstruction.triangulation import triangulate_robust

REPO = Path(__file__).resolve().parents[1]
MOCAP = REPO.parent / "shared" / "data" / "bandai_mocap_1"
#: clip name fragments for the issue's setting: walking, running, turning (walk-left), waving (byebye)
DEFAULT_CLIPS = ("walk_normal", "run_normal", "walk-left_normal", "byebye_normal", "dash_normal", "kick_normal")


@dataclass
class Take:
    name: str
    truth: np.ndarray  # (F, 17, 3) metres
    rig: CameraRig
    keypoints: np.ndarray  # (C, F, 17, 3)
    fps: float


def load_clips(fragments: tuple[str, ...], frames: int) -> list[tuple[str, np.ndarray]]:
    """One clip per name fragment: its middle ``frames`` frames, centred in the capture volume."""
    files = sorted(MOCAP.glob("*.bvh"))
    out = []
    for frag in fragments:
        match = next((f for f in files if frag in f.stem.lower()), None)
        if match is None:
            continue
        motion = bandai_to_h36m17(read_bvh(match))
        mid = len(motion) // 2
        motion = motion[max(mid - frames // 2, 0):mid + frames // 2]
        out.append((match.stem, motion - np.r_[motion[:, 0, :2].mean(axis=0), 0.0]))
    return out


def make_takes(n_cameras: int, errors: DetectorErrors, frames: int, seed: int) -> list[Take]:
    takes = []
    for k, (name, truth) in enumerate(load_clips(DEFAULT_CLIPS, frames)):
        rig = make_studio_rig(n_cameras, (1920, 1080), seed=seed + k)
        views = simulate_detections(rig, truth, DetectorErrors(**{**errors.__dict__, "seed": seed + k}))
        takes.append(Take(name, truth, rig, views.keypoints, 30.0))
    return takes


def run_posestudio(take: Take, mode: str) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    if mode == "triangulation":
        pts = triangulate_robust(take.rig, take.keypoints).points
    else:
        kp = Keypoints2D(take.keypoints, take.rig.names, list(H36M17.joints), take.fps)
        opts = ReconstructionOptions(live=mode.startswith("live"))
        if mode.endswith("no-prior"):
            opts.prior = None
        pts = reconstruct(take.rig, kp, opts).points.points3d
    return pts, time.perf_counter() - t0


def _aniposelib_group(rig: CameraRig):
    from aniposelib.cameras import Camera as ACamera, CameraGroup

    cams = [ACamera(name=c.name, size=c.image_size, matrix=c.matrix, dist=c.dist, rvec=c.rvec, tvec=c.translation)
            for c in rig.cameras]
    return CameraGroup(cams)


def run_aniposelib(take: Take, mode: str) -> tuple[np.ndarray, float]:
    group = _aniposelib_group(take.rig)
    kp = take.keypoints
    pts2d = np.where((np.nan_to_num(kp[..., 2]) >= 0.3)[..., None], kp[..., :2], np.nan)  # its score threshold
    c, f, j, _ = pts2d.shape
    flat = pts2d.reshape(c, f * j, 2)
    t0 = time.perf_counter()
    if mode == "ransac":
        # its RANSAC needs every point seen by at least two cameras; give it those, NaN elsewhere
        seen = np.isfinite(flat[..., 0]).sum(axis=0) >= 2
        out = np.full((f * j, 3), np.nan)
        out[seen] = group.triangulate_ransac(flat[:, seen], undistort=True, min_cams=2, progress=False)[0]
    else:
        out = group.triangulate(flat, undistort=True, progress=False, fast=(mode == "fast"))
    return np.asarray(out).reshape(f, j, 3), time.perf_counter() - t0


def score(pred: np.ndarray, truth: np.ndarray) -> dict:
    return {"mpjpe": mpjpe(pred, truth) * 1000, "abs": mpjpe_absolute(pred, truth) * 1000,
            "p_mpjpe": p_mpjpe(pred, truth) * 1000, "pck": pck3d(pred, truth) * 100,
            "auc": auc_pck3d(pred, truth) * 100, "coverage": coverage(pred) * 100,
            "bone_cv": bone_length_cv(pred, H36M17.bone_indices)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", type=int, nargs="+", default=[4], help="rig sizes (default 4)")
    ap.add_argument("--noise-px", type=float, default=3.0)
    ap.add_argument("--outliers", type=float, default=0.10)
    ap.add_argument("--dropouts", type=float, default=0.08)
    ap.add_argument("--frames", type=int, default=150, help="frames per clip (default 150 = 5 s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-peers", action="store_true")
    args = ap.parse_args(argv)
    if not MOCAP.is_dir():
        print(f"motion capture not found at {MOCAP}")
        return 1
    errors = DetectorErrors(noise_px=args.noise_px, outlier_rate=args.outliers, occlusion_rate=args.dropouts)
    methods: list[tuple[str, callable]] = [
        ("PoseStudio triangulation", lambda t: run_posestudio(t, "triangulation")),
        ("PoseStudio + smoothing, no prior", lambda t: run_posestudio(t, "offline no-prior")),
        ("PoseStudio + prior + smoothing", lambda t: run_posestudio(t, "offline")),
        ("PoseStudio live, no prior (causal)", lambda t: run_posestudio(t, "live no-prior")),
        ("PoseStudio live + prior (causal)", lambda t: run_posestudio(t, "live")),
    ]
    if not args.skip_peers:
        try:
            import aniposelib  # noqa: F401

            methods += [(f"aniposelib {m}", (lambda mode: (lambda t: run_aniposelib(t, mode)))(m))
                        for m in ("dlt", "ransac", "fast")]
        except ImportError:
            print("aniposelib not installed (make bench installs it): its rows are skipped")
        from benchmarks.peers import pose2sim_peer

        if pose2sim_peer.pose2sim_version():
            for filt in (False, True):
                label = f"Pose2Sim {pose2sim_peer.pose2sim_version()} triangulation" + (" + filtering" if filt else "")

                def fn(t, filt=filt):
                    pts, secs, info = pose2sim_peer.triangulate(t.rig, t.keypoints, t.fps, list(H36M17.joints), filt)
                    if pts is None:
                        raise RuntimeError(info.get("failure", "no output"))
                    return pts, secs
                methods.append((label, fn))
        else:
            print("Pose2Sim not installed (see benchmarks/README.md): its rows are skipped")
    for n_cams in args.cameras:
        takes = make_takes(n_cams, errors, args.frames, args.seed)
        print(f"\n== {n_cams} cameras, {len(takes)} clips ({', '.join(t.name for t in takes)}), {args.frames} frames "
              f"each; noise {args.noise_px} px, outliers {args.outliers:.0%}, occlusion {args.dropouts:.0%}")
        head = (f"{'method':<36}{'MPJPE':>8}{'abs':>8}{'P-MPJPE':>9}{'PCK150':>8}{'AUC':>7}{'cover %':>9}"
                f"{'bone CV':>9}{'points/s':>11}")
        print(head + "\n" + "-" * len(head))
        for label, fn in methods:
            rows, secs, n_pts = [], 0.0, 0
            try:
                for t in takes:
                    pred, s = fn(t)
                    if pred is None:
                        raise RuntimeError("no output")
                    rows.append(score(pred, t.truth))
                    secs += s
                    n_pts += t.truth.shape[0] * t.truth.shape[1]
            except Exception as exc:  # noqa: BLE001 - a peer's failure is a row, not a crash
                print(f"{label:<36}  FAILED: {type(exc).__name__}: {exc}")
                continue
            m = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
            print(f"{label:<36}{m['mpjpe']:>8.1f}{m['abs']:>8.1f}{m['p_mpjpe']:>9.1f}{m['pck']:>8.1f}{m['auc']:>7.1f}"
                  f"{m['coverage']:>9.1f}{m['bone_cv']:>9.3f}{n_pts / max(secs, 1e-9):>11.0f}")
    print("\nMPJPE: mean joint error after aligning the pelvis, mm; abs: without alignment (world frame), mm; "
          "P-MPJPE: after a per-frame similarity alignment, mm; PCK150 and AUC (0-150 mm) in %.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
