"""Calibration at studio scale: accuracy, wall time and peak memory against the number of cameras.

Run from the repository root: ``.venv/bin/python -m benchmarks.calibration --cameras 4 8 16 32``
(several ``--cameras`` values run this sweep; one value runs the peer comparison of
:mod:`benchmarks.calibration`). For each rig size a rendered take (``posestudio.synthetic``: a
ring, or with ``--layout overhead`` a ring whose every other camera hangs overhead; strong lens
distortion, motion blur, noise; the hand-held board turns once, so each board view is seen by only
a few neighbouring cameras) is rendered once into ``--out`` and reused. Each rig size then runs in
a fresh Python process, so its peak RSS is its own (``resource.getrusage``, the process and any
children it waited for, plus the peak of each of detection's worker processes: an upper bound on
what was resident at once, as each worker counts the libraries it shares): PoseStudio's board detection (timed separately), the calibration from
those detections, and its errors against the true rig. aniposelib (its own detection included)
runs on the same videos in another fresh process, with a time limit; the table says where it fails
or is skipped, and why.

With several ``--seed`` values the sweep runs once per seed, each drawing its own rigs and board
path, and then prints the errors per rig size averaged over the seeds: one draw's rig of 32 cameras
can hold worse-placed cameras than another draw's rig of 16, which says nothing of how accuracy
scales.

Wall time per camera-frame is the total (detection + calibration) divided by cameras x frames; the
CPU time of the same (all threads, ``resource.getrusage``, detection's worker processes included) is
printed too, as a machine shared with
other work inflates wall times unevenly across rig sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from posestudio.core.rig import CameraRig

REPO = Path(__file__).resolve().parents[1]
KEYS = ("focal_error_pct", "principal_point_error_px", "center_error_mm", "rotation_error_deg")


def _cpu_seconds() -> float:
    """User plus system CPU time of this process (all its threads), seconds."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _peak_rss_mb() -> float:
    """Peak resident set size of this process and of its waited-for children, MiB (the larger)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0  # Linux reports KiB


def take_folder(out: Path, layout: str, cameras: int, frames: int, size: tuple[int, int], seed: int) -> Path:
    """Where the take of one rig size is rendered (and found again)."""
    return out / f"{layout}{cameras}_f{frames}_{size[0]}x{size[1]}_s{seed}"


def render(take: Path, layout: str, cameras: int, frames: int, size: tuple[int, int], seed: int) -> float:
    """Render the take unless it is there; returns the seconds spent (0 when reused)."""
    if (take / "truth_rig.toml").is_file():
        return 0.0
    # Imported here: only rendering needs the renderer.
    from posestudio.commands.demo import studio_board
    from posestudio.synthetic import write_synthetic_session

    t0 = time.perf_counter()
    write_synthetic_session(take, n_cameras=cameras, n_frames=frames, image_size=size, seed=seed,
                            board=studio_board(), layout=layout, time_offsets_s="random")
    return time.perf_counter() - t0


def half_rigs(n_cameras: int) -> tuple[list[int], list[int]]:
    """Two halves of a rig, camera indices: cameras ``4k, 4k+1`` and ``4k+2, 4k+3``.

    Each half spreads around the volume as the whole rig does and, in the overhead layout (every
    odd camera overhead), holds as many overhead cameras as ring cameras.
    """
    first = [i for i in range(n_cameras) if i % 4 in (0, 1)]
    return first, [i for i in range(n_cameras) if i % 4 in (2, 3)]


def same_cameras_in_halves(dets: list, board, fps: float | None, truth: CameraRig, full_scores: dict) -> dict:
    """The take's cameras calibrated in two halves (:func:`half_rigs`) from the same detections.

    A paired comparison with the whole rig's solve: the same cameras, the same board views, only
    the number of cameras solved together differs, so it is free of the luck of which cameras a
    random rig of each size happened to get.

    Returns:
        ``{"halves": mean errors over all cameras from the half-rig solves, "whole": the same
        cameras' mean errors from the whole rig's solve, "better": per error, how many cameras the
        whole rig's solve got closer}``.
    """
    from posestudio.calibration.calibrate import CalibrationOptions, calibrate_from_detections
    from posestudio.calibration.compare import score_against_truth

    halves: dict[str, dict[str, float]] = {}
    for idx in half_rigs(len(dets)):
        res = calibrate_from_detections([dets[i] for i in idx], board, CalibrationOptions(), fps=fps, progress=None)
        halves.update(score_against_truth(res.rig, truth.subset([truth.names[i] for i in idx]))["cameras"])
    names = list(halves)
    return {"halves": {k: sum(halves[c][k] for c in names) / len(names) for k in KEYS},
            "whole": {k: sum(full_scores[c][k] for c in names) / len(names) for k in KEYS},
            "better": {k: sum(full_scores[c][k] < halves[c][k] for c in names) for k in KEYS},
            "cameras": len(names)}


def run_posestudio(take: Path, workers: int, halves: bool = False, views_alike: bool = False) -> dict:
    """PoseStudio on one take (in this process): detection, calibration, errors, peak RSS; with
    ``halves`` also :func:`same_cameras_in_halves`, with ``views_alike`` also the calibration with
    every board view weighed alike (``CalibrationOptions.weigh_views`` off; both after the timed part)."""
    from posestudio.calibration.board import load_board
    from posestudio.calibration.calibrate import CalibrationOptions, calibrate_from_detections
    from posestudio.calibration.compare import score_against_truth
    from posestudio.calibration.detect_recordings import DetectionUsage, detect_sources

    truth = CameraRig.load(take / "truth_rig.toml")
    board = load_board(take / "board.toml")
    videos = [take / f"{n}.mp4" for n in truth.names]
    t0, c0 = time.perf_counter(), _cpu_seconds()
    usage = DetectionUsage()
    dets, fps = detect_sources(videos, board, workers=workers, progress=None, usage=usage)
    t_det, c_det = time.perf_counter() - t0, _cpu_seconds() - c0 + usage.worker_cpu_s
    t1, c1 = time.perf_counter(), _cpu_seconds()
    res = calibrate_from_detections(dets, board, CalibrationOptions(), fps=fps, progress=None)
    t_cal, c_cal = time.perf_counter() - t1, _cpu_seconds() - c1
    sc = score_against_truth(res.rig, truth)
    rep = res.report
    paired = same_cameras_in_halves(dets, board, fps, truth, sc["cameras"]) if halves else None
    alike = None
    if views_alike:
        alike_sc = score_against_truth(calibrate_from_detections(
            dets, board, CalibrationOptions(weigh_views=False), fps=fps, progress=None).rig, truth)
        alike = {"mean": alike_sc["mean"], "worst": _worst(alike_sc)}
    return {"ok": True, "halves": paired, "alike": alike, "detection_s": t_det, "calibration_s": t_cal, "seconds": t_det + t_cal,
            "detection_cpu_s": c_det, "calibration_cpu_s": c_cal,
            "frames": dets[0].n_frames, "board_views": sum(len(d.observations) for d in dets),
            "corners": rep.adjustment.corners if rep.adjustment else 0,
            "board_poses": rep.adjustment.board_poses if rep.adjustment else 0,
            "reprojection_rms_px": rep.reprojection_rms_px, "stages": rep.timing_s.stages(),
            "ba_iterations": rep.adjustment.iterations if rep.adjustment else 0,
            "mean": sc["mean"], "worst": _worst(sc),
            "peak_rss_mb": _peak_rss_mb() + sum(usage.worker_peak_rss_mb),
            "worker_peak_rss_mb": usage.worker_peak_rss_mb, "tree_depth": _tree_depth(rep)}


def _worst(scores: dict) -> dict[str, float]:
    """The worst camera's value of each error in :func:`score_against_truth`'s ``scores``."""
    return {k: max(c[k] for c in scores["cameras"].values()) for k in KEYS}


def _tree_depth(report) -> int:
    """Longest chain of the initialisation's spanning tree, in edges."""
    edges = report.camera_graph.tree if report.camera_graph else []
    parent = {child: par for par, child in edges}

    def depth(n: str) -> int:
        d = 0
        while n in parent:
            n, d = parent[n], d + 1
        return d
    return max((depth(c) for _, c in edges), default=0)


def run_aniposelib(take: Path) -> dict:
    """aniposelib 0.8.0 on one take (in this process): its own detection and solve, errors, peak RSS."""
    from benchmarks.peers import aniposelib_peer
    from posestudio.calibration.board import load_board
    from posestudio.calibration.compare import score_against_truth

    truth = CameraRig.load(take / "truth_rig.toml")
    res = aniposelib_peer.calibrate([take / f"{n}.mp4" for n in truth.names], load_board(take / "board.toml"),
                                    keep_log=False)
    out = {"ok": res.ok, "seconds": res.seconds, "failure": res.failure, "version": res.version,
           "peak_rss_mb": _peak_rss_mb()}
    if res.ok:
        sc = score_against_truth(res.rig, truth)
        out["mean"] = sc["mean"]
        out["worst"] = _worst(sc)
    return out


def _in_fresh_process(tool: str, take: Path, workers: int, timeout_s: float, halves: bool = False,
                      views_alike: bool = False) -> dict:
    """Run one tool on one take in a new Python process (own peak RSS); its JSON result."""
    cmd = [sys.executable, "-m", "benchmarks.calibration_scale", "--worker", tool, str(take), "--workers", str(workers)]
    cmd += ["--halves"] if halves else []
    cmd += ["--views-alike"] if views_alike else []
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"ok": False, "seconds": time.perf_counter() - t0, "failure": f"did not finish within {timeout_s:.0f} s "
                "(stopped)"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ok": False, "seconds": time.perf_counter() - t0, "failure": f"exit {proc.returncode}: {tail}"}
    return json.loads(lines[-1])


def _row(label: str, n: int, frames: int, r: dict) -> str:
    if not r.get("ok"):
        if r.get("failure", "").startswith("skipped"):
            return f"{label:<22}{n:>5}  {r['failure']}"
        return f"{label:<22}{n:>5}  FAILED after {r.get('seconds', 0):.0f} s: {r.get('failure', '')}"
    det = f"{r['detection_s']:>7.1f}" if "detection_s" in r else f"{'-':>7}"
    per = r["seconds"] / (n * frames) * 1000
    return (f"{label:<22}{n:>5}{_error_columns(r['mean'])}{det}{r['seconds']:>8.1f}{per:>10.2f}"
            f"{r['peak_rss_mb']:>9.0f}")


def _error_columns(m: dict[str, float]) -> str:
    """The four error columns of the tables (focal %, pp px, centre mm, rotation deg)."""
    return (f"{m['focal_error_pct']:>9.3f}{m['principal_point_error_px']:>8.2f}"
            f"{m['center_error_mm']:>10.2f}{m['rotation_error_deg']:>9.3f}")


def _errors_row(label: str, n: int, m: dict[str, float]) -> str:
    """A table row of mean errors only (a variant solved from the same detections, untimed)."""
    return f"{label:<22}{n:>5}{_error_columns(m)}"


def main(cameras: list[int], args: argparse.Namespace) -> int:
    """The sweep over rig sizes (``benchmarks.calibration`` hands over its parsed arguments), once per
    seed of ``--seed``; with several seeds, then the errors per rig size averaged over them."""
    by_seed = {seed: _sweep(cameras, args, seed) for seed in args.seed}
    if len(by_seed) > 1:
        _across_seeds(by_seed)
    return 0


def _across_seeds(by_seed: dict[int, dict[int, dict]]) -> None:
    """Mean errors per rig size over the seeds (each seed draws its own rigs and board path), and the
    accuracy target on those means."""
    sizes = sorted(set.intersection(*(set(ok) for ok in by_seed.values())))
    if len(sizes) < 2:
        return
    print(f"\n== mean over seeds {', '.join(map(str, by_seed))} (rig sizes every seed solved)")
    print(f"{'cams':>5}{'focal %':>9}{'pp px':>8}{'centre mm':>10}{'rot deg':>9}   per seed: focal %")
    means = {}
    for n in sizes:
        means[n] = {k: sum(by_seed[s][n]["mean"][k] for s in by_seed) / len(by_seed) for k in KEYS}
        print(f"{n:>5}{_error_columns(means[n])}   "
              + " ".join(f"{by_seed[s][n]['mean']['focal_error_pct']:.3f}" for s in by_seed))
    if all(by_seed[s][n].get("alike") for s in by_seed for n in sizes):
        for n in sizes:
            alike = {k: sum(by_seed[s][n]["alike"]["mean"][k] for s in by_seed) / len(by_seed) for k in KEYS}
            print(f"{n:>5}{_error_columns(alike)}   (views weighed alike)")
    hi, second = sizes[-1], sizes[-2]
    worse = [k for k in KEYS if means[hi][k] > means[second][k]]
    print(f"target on the means over seeds: errors at {hi} cameras no worse than at {second}: "
          f"{'met' if not worse else 'MISSED (' + ', '.join(worse) + ')'}")


def _sweep(cameras: list[int], args: argparse.Namespace, seed: int) -> dict[int, dict]:
    """One seed's sweep, printed; PoseStudio's results per rig size it solved."""
    frames = args.frames or 240
    size = args.size
    out = args.out / "scale"
    load = os.getloadavg()
    print(f"calibration at scale: {args.layout} layout, {frames} frames a camera at {size[0]}x{size[1]}, seed "
          f"{seed}, random sub-frame time offsets; {os.cpu_count()} cores, detection workers "
          f"{args.workers or 'one per core'}; load average at start {load[0]:.2f}")
    results = []
    for n in cameras:
        take = take_folder(out, args.layout, n, frames, size, seed)
        t = render(take, args.layout, n, frames, size, seed)
        if t:
            print(f"  rendered {take} in {t:.0f} s", flush=True)
        ps = _in_fresh_process("posestudio", take, args.workers, args.timeout,
                               halves=args.halves and n == max(cameras), views_alike=args.views_alike)
        print(f"  {n} cameras: PoseStudio {'%.1f s' % ps['seconds'] if ps.get('ok') else 'FAILED: ' + ps['failure']}",
              flush=True)
        if args.skip_aniposelib:
            ani = {"ok": False, "seconds": 0.0, "failure": "skipped (--skip-aniposelib)", "version": ""}
        elif args.aniposelib_max_cameras and n > args.aniposelib_max_cameras:
            ani = {"ok": False, "seconds": 0.0, "failure": f"skipped: more than --aniposelib-max-cameras "
                   f"{args.aniposelib_max_cameras}"}
        else:
            ani = _in_fresh_process("aniposelib", take, args.workers, args.timeout)
        print(f"  {n} cameras: aniposelib {'%.1f s' % ani['seconds'] if ani.get('ok') else ani['failure']}", flush=True)
        results.append((n, ps, ani))

    head = (f"{'tool':<22}{'cams':>5}{'focal %':>9}{'pp px':>8}{'centre mm':>10}{'rot deg':>9}{'det s':>7}"
            f"{'wall s':>8}{'ms/cam-fr':>10}{'RSS MB':>9}")
    print(f"\n== rig size sweep ({args.layout}, {frames} frames a camera, {size[0]}x{size[1]}; errors are means over "
          "cameras against the true rig; wall time includes each tool's own board detection)")
    print(head)
    print("-" * len(head))
    for n, ps, ani in results:
        print(_row("PoseStudio", n, frames, ps))
        if ps.get("alike"):
            print(_errors_row("  views weighed alike", n, ps["alike"]["mean"]))
        print(_row(f"aniposelib {ani.get('version', '')}".strip(), n, frames, ani))
    print()
    for n, ps, _ in results:
        if ps.get("ok"):
            w = ps["worst"]
            print(f"  PoseStudio {n} cameras: {ps['board_views']} board views, {ps['corners']} corners, "
                  f"{ps['board_poses']} board poses, reprojection RMS {ps['reprojection_rms_px']:.2f} px, spanning-tree "
                  f"depth {ps['tree_depth']}; worst camera: focal {w['focal_error_pct']:.3f} %, pp "
                  f"{w['principal_point_error_px']:.2f} px, centre {w['center_error_mm']:.2f} mm, rotation "
                  f"{w['rotation_error_deg']:.3f} deg; stages: "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in ps["stages"].items() if k != "detection")
                  + f"; bundle adjustment {ps.get('ba_iterations', 0)} iterations; CPU detection "
                  f"{ps.get('detection_cpu_s', 0):.1f} s, calibration {ps.get('calibration_cpu_s', 0):.1f} s")
    ok = {n: ps for n, ps, _ in results if ps.get("ok")}
    if len(ok) >= 2:
        lo, hi = min(ok), max(ok)
        second = sorted(ok)[-2]
        worse = [k for k in KEYS if ok[hi]["mean"][k] > ok[second]["mean"][k]]
        per = {n: ok[n]["seconds"] / (n * frames) * 1000 for n in ok}
        cpu = {n: (ok[n].get("detection_cpu_s", 0) + ok[n].get("calibration_cpu_s", 0)) / (n * frames) * 1000
               for n in ok}
        print("\nCPU time per camera-frame (less sensitive to other load on the machine than wall time): "
              + ", ".join(f"{n} cameras {cpu[n]:.2f} ms" for n in sorted(ok)))
        print(f"\ntargets: errors at {hi} cameras no worse than at {second}: "
              f"{'met' if not worse else 'MISSED (' + ', '.join(worse) + ')'}; wall time per camera-frame at {hi} "
              f"cameras ({per[hi]:.2f} ms) no more than at {lo} ({per[lo]:.2f} ms): "
              f"{'met' if per[hi] <= per[lo] else 'MISSED'}")
    for n, ps in ok.items():
        if ps.get("halves"):
            _print_halves(n, ps["halves"])
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return ok


def _print_halves(n: int, paired: dict) -> None:
    """The paired comparison of :func:`same_cameras_in_halves`, with its verdict."""
    labels = {"focal_error_pct": ("focal", "%", 3), "principal_point_error_px": ("pp", "px", 2),
              "center_error_mm": ("centre", "mm", 2), "rotation_error_deg": ("rotation", "deg", 3)}
    parts = []
    for k in KEYS:
        name, unit, digits = labels[k]
        parts.append(f"{name} {paired['halves'][k]:.{digits}f} -> {paired['whole'][k]:.{digits}f} {unit} "
                     f"({paired['better'][k]}/{paired['cameras']} cameras closer)")
    worse = [labels[k][0] for k in KEYS if paired["whole"][k] > paired["halves"][k]]
    print(f"\nsame {paired['cameras']} cameras, solved in two {n // 2}-camera halves -> in the whole {n}-camera rig "
          "(same detections): " + "; ".join(parts))
    print(f"target (paired): errors at {n} cameras no worse than at {n // 2}: "
          f"{'met' if not worse else 'MISSED (' + ', '.join(worse) + ')'}")


def _worker(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", choices=("posestudio", "aniposelib"), required=True)
    ap.add_argument("take", type=Path)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--halves", action="store_true")
    ap.add_argument("--views-alike", action="store_true")
    a = ap.parse_args(argv)
    res = run_posestudio(a.take, a.workers, a.halves, a.views_alike) if a.worker == "posestudio" else run_aniposelib(a.take)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
