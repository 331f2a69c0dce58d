"""3D reconstruction benchmark: PoseStudio against Pose2Sim and aniposelib on the same 2D input.

Run from the repository root: ``.venv/bin/python -m benchmarks.reconstruction`` (add ``--grid``
for the rig-size / detector-error sweep after the main table, ``--realistic`` for the realistic
detector mode; ``--realistic-only`` runs that mode alone).

Real motion capture (``../shared/data/bandai_mocap_1``, converted to the 17-joint body) is
projected into virtual studio rigs (lens distortion) and spoilt the way detectors do (Gaussian
noise, gross outliers with ordinary confidences, occlusion runs, joints leaving the image). Every
method gets the same keypoints; the table gives MPJPE (root-aligned and absolute), P-MPJPE,
PCK3D, coverage, bone-length CV and throughput.

``--grid`` then runs a compact sweep (3, 4, 6 and 8 cameras at the default errors; 4 cameras at
2 / 5 px noise x 5 / 10 % outliers) with PoseStudio (triangulation; full offline pipeline with
and without the prior), Pose2Sim (triangulation; + filtering) and aniposelib (fast mode; its
RANSAC, ~200 points/s, is left out of the sweep), each setting's ratio of PoseStudio's full
pipeline MPJPE to Pose2Sim's full pipeline, and a summary table over the settings.

``--realistic`` then runs the same clips with the errors real detectors add
(:meth:`~posestudio.synthetic.body_detections.DetectorErrors.realistic`: jitter correlated from
frame to frame, a fixed bias per joint and view, left and right confused for runs of frames in one
view at a time, besides noise, outliers and occlusion): PoseStudio (with ablation rows: swaps left
in; the settings before issue 14), Pose2Sim and aniposelib fast, with the ratio of PoseStudio's
full pipeline MPJPE to Pose2Sim's and the issue's targets (< 15 mm at > 99 % coverage, <= 0.6x).

Time and peak memory per take length and frame rate: ``benchmarks/reconstruction_scale.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from posestudio.core.bvh import read_bvh
from posestudio.core.keypoints_file import Keypoints2D
from posestudio.core.pose_metrics import auc_pck3d, coverage, mpjpe, mpjpe_absolute, p_mpjpe, pck3d
from posestudio.core.rig import CameraRig
from posestudio.core.skeleton import bone_length_cv
from posestudio.models.datasets.bandai import bandai_to_h36m17
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.options import SwapOptions, ViewBiasOptions
from posestudio.reconstruction.pipeline import ReconstructionOptions, reconstruct
from posestudio.reconstruction.triangulation import triangulate_robust
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_detections import DetectorErrors, simulate_detections

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


#: a benchmark row: label and ``take -> (points (F, 17, 3), seconds)``
Method = tuple[str, Callable[[Take], tuple[np.ndarray, float]]]


def load_clips(fragments: tuple[str, ...], frames: int) -> list[tuple[str, np.ndarray]]:
    """One clip per name fragment: its middle ``frames`` frames (fewer when the clip is shorter),
    centred in the capture volume."""
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
    elif mode == "triangulation+prior":
        # the prior's own contribution: triangulation, then the factorization prior fills what
        # is missing (no interpolation, rays, smoothing or refinement)
        from posestudio.models.factorization.prior import DEFAULT_CHECKPOINT
        from posestudio.reconstruction.anchors import torso_anchors
        from posestudio.reconstruction.pipeline import TORSO, load_prior
        from posestudio.reconstruction.plausibility import reference_bone_lengths
        from posestudio.reconstruction.prior_fill import fill_with_prior

        tri = triangulate_robust(take.rig, take.keypoints)
        lengths = reference_bone_lengths(tri.points, H36M17.bone_indices, tri.n_views >= 3)
        anchors, sigma = torso_anchors(tri.points, take.fps, TORSO)
        pts, _ = fill_with_prior(load_prior(DEFAULT_CHECKPOINT), tri.points, take.keypoints, take.rig, bone_lengths=lengths,
                                                        anchors=anchors, anchor_sigma=sigma)
    else:
        kp = Keypoints2D(take.keypoints, take.rig.names, list(H36M17.joints), take.fps)
        opts = ReconstructionOptions(live=mode.startswith("live"))
        if mode.endswith("no-prior"):
            opts.prior, opts.lifting = None, None      # no learned fill at all (the default has both)
        if mode.endswith("no-lifting"):
            opts.lifting = None
        if mode.endswith("no-swaps"):
            opts.swaps = SwapOptions(enabled=False)
        if mode.endswith("before"):
            # issue 13's pipeline: no swap check, no pelvis tie, no view bias, 1 cm bones
            opts.swaps, opts.tie_midpoints, opts.view_bias = SwapOptions(enabled=False), False, ViewBiasOptions(False)
            opts.refine_weights.bone_m = 0.01
        pts = reconstruct(take.rig, kp, opts).points.points3d
    return pts, time.perf_counter() - t0


def _aniposelib_group(rig: CameraRig):
    from aniposelib.cameras import Camera as ACamera
    from aniposelib.cameras import CameraGroup

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
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():  # its fast mode warns on all-NaN joints ("All-NaN slice")
                warnings.simplefilter("ignore", RuntimeWarning)
                out = group.triangulate(flat, undistort=True, progress=False, fast=(mode == "fast"))
    return np.asarray(out).reshape(f, j, 3), time.perf_counter() - t0


def score(pred: np.ndarray, truth: np.ndarray) -> dict:
    return {"mpjpe": mpjpe(pred, truth) * 1000, "abs": mpjpe_absolute(pred, truth) * 1000,
            "p_mpjpe": p_mpjpe(pred, truth) * 1000, "pck": pck3d(pred, truth) * 100,
            "auc": auc_pck3d(pred, truth) * 100, "coverage": coverage(pred) * 100,
            "bone_cv": bone_length_cv(pred, H36M17.bone_indices)}


# ---------------------------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------------------------

#: PoseStudio rows: label -> run_posestudio mode
POSESTUDIO_ROWS = {
    "triangulation": "PoseStudio triangulation",
    "triangulation+prior": "PoseStudio triangulation + prior",
    "offline no-prior": "PoseStudio + smoothing, no prior",
    "offline no-lifting": "PoseStudio + prior + smoothing, no lifting",
    "offline": "PoseStudio + prior + smoothing",
    "live no-prior": "PoseStudio live, no prior (causal)",
    "live": "PoseStudio live + prior (causal)",
    "offline no-swaps": "PoseStudio + prior + smoothing, swaps left in",
    "offline before": "PoseStudio + prior + smoothing, before issue 14",
    "live before": "PoseStudio live + prior, before issue 14",
}


def posestudio_methods(modes: tuple[str, ...]) -> list[Method]:
    return [(POSESTUDIO_ROWS[m], (lambda mode: (lambda t: run_posestudio(t, mode)))(m)) for m in modes]


def aniposelib_methods(modes: tuple[str, ...]) -> list[Method]:
    try:
        import aniposelib  # noqa: F401
    except ImportError:
        print("aniposelib not installed (make bench installs it): its rows are skipped")
        return []
    return [(f"aniposelib {m}", (lambda mode: (lambda t: run_aniposelib(t, mode)))(m)) for m in modes]


def pose2sim_label(filtering: bool) -> str:
    from benchmarks.peers import pose2sim_peer

    return f"Pose2Sim {pose2sim_peer.pose2sim_version()} triangulation" + (" + filtering" if filtering else "")


def pose2sim_methods(filterings: tuple[bool, ...]) -> list[Method]:
    from benchmarks.peers import pose2sim_peer

    if not pose2sim_peer.pose2sim_version():
        print("Pose2Sim not installed (see benchmarks/README.md): its rows are skipped")
        return []
    methods = []
    for filt in filterings:
        def fn(t: Take, filt: bool = filt) -> tuple[np.ndarray, float]:
            pts, secs, info = pose2sim_peer.triangulate(t.rig, t.keypoints, t.fps, list(H36M17.joints), filt)
            if pts is None:
                raise RuntimeError(info.get("failure", "no output"))
            return pts, secs
        methods.append((pose2sim_label(filt), fn))
    return methods


# ---------------------------------------------------------------------------------------------
# running and printing
# ---------------------------------------------------------------------------------------------

def evaluate(fn: Callable[[Take], tuple[np.ndarray, float]], takes: list[Take]) -> dict:
    """Mean scores over the takes (clips weighted equally) and ``points_per_s`` over all of them."""
    rows, secs, n_pts = [], 0.0, 0
    for t in takes:
        pred, s = fn(t)
        if pred is None:
            raise RuntimeError("no output")
        rows.append(score(pred, t.truth))
        secs += s
        n_pts += t.truth.shape[0] * t.truth.shape[1]
    m = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
    m["points_per_s"] = n_pts / max(secs, 1e-9)
    return m


#: table columns: (metric key, header, width, format)
FULL_COLUMNS = (("mpjpe", "MPJPE", 8, ".1f"), ("abs", "abs", 8, ".1f"), ("p_mpjpe", "P-MPJPE", 9, ".1f"),
                ("pck", "PCK150", 8, ".1f"), ("auc", "AUC", 7, ".1f"), ("coverage", "cover %", 9, ".1f"),
                ("bone_cv", "bone CV", 9, ".3f"), ("points_per_s", "points/s", 11, ".0f"))
COMPACT_COLUMNS = (("mpjpe", "MPJPE", 8, ".1f"), ("p_mpjpe", "P-MPJPE", 9, ".1f"), ("pck", "PCK150", 8, ".1f"),
                   ("coverage", "cover %", 9, ".1f"), ("bone_cv", "bone CV", 9, ".3f"),
                   ("points_per_s", "points/s", 11, ".0f"))


def run_table(methods: list[Method], takes: list[Take], columns=FULL_COLUMNS) -> dict[str, dict]:
    """Run every method on the takes, print one row each; return label -> mean scores."""
    width = max([36] + [len(label) + 2 for label, _ in methods])
    head = f"{'method':<{width}}" + "".join(f"{h:>{w}}" for _, h, w, _ in columns)
    print(head + "\n" + "-" * len(head))
    results = {}
    for label, fn in methods:
        try:
            m = evaluate(fn, takes)
        except Exception as exc:  # noqa: BLE001 - a peer's failure is a row, not a crash
            print(f"{label:<{width}}  FAILED: {type(exc).__name__}: {exc}")
            continue
        results[label] = m
        print(f"{label:<{width}}" + "".join(f"{m[k]:>{w}{fmt}}" for k, _, w, fmt in columns), flush=True)
    return results


def describe_takes(takes: list[Take]) -> str:
    frames = [t.truth.shape[0] for t in takes]
    return (f"{len(takes)} clips ({', '.join(t.name.removeprefix('dataset-1_') for t in takes)}), "
            f"{'/'.join(map(str, frames))} frames ({sum(frames)} in all)")


def describe_errors(e: DetectorErrors) -> str:
    out = f"noise {e.noise_px:g} px, outliers {e.outlier_rate:.0%}, occlusion {e.occlusion_rate:.0%}"
    if e.jitter_px:
        out += f", jitter {e.jitter_px:g} px (frame-to-frame correlation {e.jitter_correlation:g})"
    if e.bias_px:
        out += f", bias {e.bias_px:g} px per joint and view"
    if e.swap_rate:
        out += (f", left/right swapped in {e.swap_rate:.0%} of each view's frames (runs of {e.swap_run[0]}-"
                f"{e.swap_run[1]}, {e.swap_whole_body:.0%} whole body)")
    return out


#: the realistic mode's targets (issue 14): MPJPE mm, coverage %, ratio to Pose2Sim's full pipeline
REALISTIC_TARGETS = (15.0, 99.0, 0.6)


def run_realistic(frames: int, seed: int, skip_peers: bool, measured: bool = False) -> None:
    """The realistic-detector mode: the main table's clips with
    :meth:`~posestudio.synthetic.body_detections.DetectorErrors.realistic` errors (``measured``:
    :meth:`~posestudio.synthetic.body_detections.DetectorErrors.measured_blazepose`), 4 cameras."""
    t0 = time.perf_counter()
    errors = DetectorErrors.measured_blazepose(seed) if measured else DetectorErrors.realistic(seed)
    takes = make_takes(4, errors, frames, seed)
    mode = "BlazePose as measured on real footage" if measured else "realistic detector"
    print(f"\n######## {mode}: 4 cameras, {describe_takes(takes)}; {describe_errors(errors)}")
    methods = posestudio_methods(("triangulation", "offline", "offline no-prior", "offline no-swaps",
                                  "offline before", "live", "live before"))
    full, p2s_full = POSESTUDIO_ROWS["offline"], None
    if not skip_peers:
        p2s = pose2sim_methods((False, True))
        p2s_full = p2s[-1][0] if p2s else None
        methods += p2s + aniposelib_methods(("fast",))
    res = run_table(methods, takes)
    if full not in res:
        return
    mine = res[full]
    line = f"targets: MPJPE {mine['mpjpe']:.1f} mm (< {REALISTIC_TARGETS[0]:g}), coverage {mine['coverage']:.1f} % " \
           f"(> {REALISTIC_TARGETS[1]:g})"
    met = mine["mpjpe"] < REALISTIC_TARGETS[0] and mine["coverage"] > REALISTIC_TARGETS[1]
    if p2s_full in res:
        ratio = mine["mpjpe"] / res[p2s_full]["mpjpe"]
        line += f", ratio to {p2s_full} {ratio:.2f} (<= {REALISTIC_TARGETS[2]:g})"
        met = met and ratio <= REALISTIC_TARGETS[2]
    print(f"{line}: {'met' if met else 'MISSED'}   [{time.perf_counter() - t0:.0f} s]")


def grid_settings(errors: DetectorErrors) -> list[tuple[str, int, DetectorErrors]]:
    """The ``--grid`` sweep: rig sizes at the default errors, then 4 cameras at 2 / 5 px x 5 / 10 %."""
    out = [(f"{n} cameras, default errors", n, errors) for n in (3, 4, 6, 8)]
    for noise in (2.0, 5.0):
        for rate in (0.05, 0.10):
            e = DetectorErrors(**{**errors.__dict__, "noise_px": noise, "outlier_rate": rate})
            out.append((f"4 cameras, {noise:g} px, {rate:.0%} outliers", 4, e))
    return out


def run_grid(errors: DetectorErrors, frames: int, seed: int, skip_peers: bool) -> None:
    full, p2s_full = POSESTUDIO_ROWS["offline"], None
    methods = posestudio_methods(("triangulation", "offline", "offline no-prior"))
    if not skip_peers:
        p2s = pose2sim_methods((False, True))
        p2s_full = p2s[-1][0] if p2s else None
        methods += p2s + aniposelib_methods(("fast",))
    summary = []
    t_grid = time.perf_counter()
    print(f"\n######## grid: rig size and detector errors ({frames} frames per clip at most, seed {seed}; "
          "aniposelib RANSAC left out: ~200 points/s)")
    settings = grid_settings(errors)
    for i, (name, n_cams, e) in enumerate(settings, 1):
        t0 = time.perf_counter()
        takes = make_takes(n_cams, e, frames, seed)
        print(f"\n== grid {i}/{len(settings)}: {n_cams} cameras, {describe_errors(e)}; {describe_takes(takes)}")
        res = run_table(methods, takes, COMPACT_COLUMNS)
        ratio = (res[full]["mpjpe"] / res[p2s_full]["mpjpe"]
                 if p2s_full in res and full in res else float("nan"))
        if p2s_full:
            print(f"MPJPE ratio, PoseStudio full offline (prior + smoothing) / {p2s_full}: {ratio:.2f}"
                  f"   [{time.perf_counter() - t0:.0f} s]")
        summary.append((name, res, ratio))
    print(f"\n== grid summary: MPJPE mm (pelvis-aligned); ratio = PoseStudio full offline / Pose2Sim full "
          f"(triangulation + filtering)   [grid {time.perf_counter() - t_grid:.0f} s]")
    cols = [(POSESTUDIO_ROWS["triangulation"], "PS tri"), (full, "PS full"),
            (POSESTUDIO_ROWS["offline no-prior"], "PS no prior")]
    if not skip_peers:
        cols += [(pose2sim_label(False), "P2S tri"), (pose2sim_label(True), "P2S full"),
                 ("aniposelib fast", "anipose fast")]
    covers = [(full, "PS full cover%")] + ([(p2s_full, "P2S full cover%")] if p2s_full else [])
    head = (f"{'setting':<34}" + "".join(f"{h:>13}" for _, h in cols) + f"{'ratio':>8}"
            + "".join(f"{h:>17}" for _, h in covers))
    print(head + "\n" + "-" * len(head))
    for name, res, ratio in summary:
        vals = "".join(f"{res[k]['mpjpe']:>13.1f}" if k in res else f"{'-':>13}" for k, _ in cols)
        cover = "".join(f"{res[k]['coverage']:>17.1f}" if k in res else f"{'-':>17}" for k, _ in covers)
        shown = f"{ratio:>8.2f}" if np.isfinite(ratio) else f"{'-':>8}"
        print(f"{name:<34}{vals}{shown}{cover}")


def run_lifting_grid(errors: DetectorErrors, frames: int, seeds: list[int]) -> None:
    """Issue 17's check: the grid's cells with the lifting network's fill (the default) and without
    it (``lifting=None``), each seed its own rigs and detector errors; MPJPE (pelvis-aligned) and
    coverage, and whether any cell got worse."""
    print(f"\n######## grid with and without the lifting network's fill: seeds {seeds}, {frames} frames per clip at most")
    head = f"{'setting':<34}" + "".join(f"{'seed ' + str(s) + ' without/with':>24}" for s in seeds) + f"{'worse':>7}"
    print(head + "\n" + "-" * len(head))
    worse_any = False
    for name, n_cams, e in grid_settings(errors):
        cells, worse = "", False
        for seed in seeds:
            takes = make_takes(n_cams, e, frames, seed)
            truth = np.concatenate([t.truth for t in takes])
            a, b = (score(np.concatenate([run_posestudio(t, mode)[0] for t in takes]), truth)
                    for mode in ("offline no-lifting", "offline"))
            worse |= b["mpjpe"] > a["mpjpe"] + 1e-9 or b["coverage"] < a["coverage"] - 1e-9
            cells += f"{a['mpjpe']:>16.3f} /{b['mpjpe']:>6.3f}"
        worse_any |= worse
        print(f"{name:<34}{cells}{'yes' if worse else 'no':>7}", flush=True)
    print(f"MPJPE mm without / with the lifting fill; any cell worse (MPJPE or coverage): "
          f"{'yes' if worse_any else 'no'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cameras", type=int, nargs="+", default=[4], help="rig sizes (default 4)")
    ap.add_argument("--noise-px", type=float, default=3.0)
    ap.add_argument("--outliers", type=float, default=0.10)
    ap.add_argument("--dropouts", type=float, default=0.08)
    ap.add_argument("--frames", type=int, default=150,
                    help="frames per clip, at most (default 150 = 5 s; run_normal and dash_normal are shorter)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--grid", action="store_true",
                    help="after the main table, sweep 3/4/6/8 cameras and 4 cameras at 2/5 px noise x 5/10 %% outliers")
    ap.add_argument("--grid-frames", type=int, default=None, help="frames per clip in the grid (default: --frames)")
    ap.add_argument("--grid-only", action="store_true", help="run the grid without the main table")
    ap.add_argument("--realistic", action="store_true",
                    help="after the main table, the realistic-detector mode (correlated jitter, per-joint bias, "
                         "left/right swaps)")
    ap.add_argument("--realistic-only", action="store_true", help="the realistic-detector mode alone")
    ap.add_argument("--lifting-grid", type=int, nargs="*", default=None, metavar="SEED",
                    help="only the grid's cells with and without the lifting network's fill, for these seeds "
                         "(default 0 1 2)")
    ap.add_argument("--measured", action="store_true",
                    help="with --realistic(-only): also the errors BlazePose showed on real footage (benchmarks/detection.py)")
    args = ap.parse_args(argv)
    if not MOCAP.is_dir():
        print(f"motion capture not found at {MOCAP}")
        return 1
    errors = DetectorErrors(noise_px=args.noise_px, outlier_rate=args.outliers, occlusion_rate=args.dropouts)
    if args.lifting_grid is not None:
        run_lifting_grid(errors, args.grid_frames or args.frames, args.lifting_grid or [0, 1, 2])
        return 0
    if not (args.grid_only or args.realistic_only):
        methods = posestudio_methods(("triangulation", "triangulation+prior", "offline no-prior", "offline",
                                      "live no-prior", "live"))
        if not args.skip_peers:
            methods += aniposelib_methods(("dlt", "ransac", "fast")) + pose2sim_methods((False, True))
        for n_cams in args.cameras:
            takes = make_takes(n_cams, errors, args.frames, args.seed)
            print(f"\n== {n_cams} cameras, {describe_takes(takes)}; {describe_errors(errors)}")
            run_table(methods, takes)
        print("\nMPJPE: mean joint error after aligning the pelvis, mm; abs: without alignment (world frame), mm; "
              "P-MPJPE: after a per-frame similarity alignment, mm; PCK150 and AUC (0-150 mm) in %.")
    if args.realistic or args.realistic_only:
        run_realistic(args.frames, args.seed, args.skip_peers)
        if args.measured:
            run_realistic(args.frames, args.seed, args.skip_peers, measured=True)
    if args.grid or args.grid_only:
        run_grid(errors, args.grid_frames or args.frames, args.seed, args.skip_peers)
        print("\nGrid columns as above (MPJPE pelvis-aligned, P-MPJPE similarity-aligned, mm; PCK150 %; cover %: "
              "share of joints output; points/s: joints per second of the method's own run).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
