"""2D detection benchmark, part 2: TCE against its single-frame ablation and BlazePose.

Run from the repository root: ``.venv/bin/python -m benchmarks.detection --tce`` (or
``.venv/bin/python -m benchmarks.detection_tce`` for this part's own options).

(a) Held-out rendered sequences. Bandai clips the TCE networks never trained on (every 5th clip,
the convention of ``models/factorization/data.split_clips``), played at 30 fps through a ring of
960 x 540 cameras 3.5-4.5 m away (``make_studio_rig``, as ``posestudio synth performance``: the
person is 230-300 pixels tall), one person, rendered three ways with the same motion, cameras and
scene: ``sharp`` (no blur, no occluders), ``blurred`` (motion blur over 70-100 % of the frame
interval on every camera, plus camera shake on half the frames, 4-12 pixels), ``occluded`` (one
to three occluders 20-50 % of the person's height in front of every camera, fixed in the image while
the person moves). Every detector runs through the :class:`Detector2D` interface on the same frames
(full frames; TCE finds the person by its whole-frame search, then tracks). Scores, per detector:

* PCK@0.1: share of the person's joints inside the image whose detection lies within 0.1 x the
  person's box size (the longer side of the bounding box of its true 2D joints in that frame); a
  view-frame without a detection counts every joint as missed. ``all 17`` joints; ``limbs``: the 12
  hips, knees, ankles, shoulders, elbows and wrists (BlazePose has no head-top, thorax or spine
  keypoint: the H36M17 mapping derives those, so its 17-joint figure is partly a definition gap);
  ``hidden``: the joints the renderer marks as not visible (occluded or self-occluded);
* jitter: mean keypoint acceleration ``|p[t+1] - 2 p[t] + p[t-1]|``, pixels / frame^2, over joints
  detected in three consecutive frames (``truth``: the same on the true 2D, the motion's own);
* ms/frame: wall time of ``detect`` per view and frame on this CPU (TCE: torch with one thread;
  BlazePose: MediaPipe's own threads, one person looked for).

(b) The real clip (``../shared/data/pose2sim_demo_single``, 4 cameras, 100 frames). Leave-one-
camera-out error (``reconstruction.view_agreement.leave_one_camera_out`` on the frames scored:
reconstruct from three cameras, project into the fourth, median distance to its own 2D, pixels,
each camera in turn; the table gives the mean of the four medians and the median of all) of
BlazePose, TCE as shipped, and TCE bootstrapped on the other half of the clip: the session is a
reconstruction of the training half only (the other half's 2D removed first, so no held-out frame
shapes the labels), ``posestudio train tce --init models/tce/checkpoint.pt --session ... --frames
A:B`` fine-tunes on it (rendered samples mixed in), and the fine-tuned network runs over the whole
clip; only the held-out half is scored. Both splits (train 0-49 / score 50-99 and the reverse).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from benchmarks.detection import detect_real
from benchmarks.tables import print_table
from posestudio.calibration.rig_formats import import_rig
from posestudio.core.keypoints_file import Keypoints2D, write_keypoints2d, write_points3d
from posestudio.models.datasets.bandai import DEFAULT_BANDAI_DIR, load_bandai
from posestudio.models.detectors.backends import create_detector
from posestudio.models.detectors.base import Detector2D
from posestudio.models.detectors.run import windows
from posestudio.models.keypoints import H36M17, to_h36m17
from posestudio.models.tce.detector import DEFAULT_CHECKPOINT, TCEDetector
from posestudio.reconstruction.pipeline import reconstruct
from posestudio.reconstruction.videos import VideoKeypoints
from posestudio.reconstruction.view_agreement import leave_one_camera_out
from posestudio.synthetic import make_studio_rig
from posestudio.synthetic.body_render import render_take
from posestudio.synthetic.performance import performance_bodies
from posestudio.synthetic.render_augment import RenderOptions
from posestudio.synthetic.tce_data import bandai_split

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT.parent / "shared" / "data" / "pose2sim_demo_single"
SINGLE_CHECKPOINT = ROOT / "benchmarks" / "checkpoints" / "tce_single.pt"

#: The 12 limb joints (defined alike by every keypoint layout).
LIMBS = tuple(H36M17.index(f"{s}_{j}") for s in ("l", "r")
              for j in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist"))

#: The three rendered conditions (everything else as ``RenderOptions()``; same seeds).
_CLEAN = dict(blur_prob=0.0, shake_prob=0.0, defocus_prob=0.0, occluder_prob=0.0, jpeg_prob=0.0)
CONDITIONS: dict[str, RenderOptions] = {
    "sharp": RenderOptions(**_CLEAN),
    "blurred": RenderOptions(**{**_CLEAN, "blur_prob": 1.0, "blur_exposure": (0.7, 1.0), "shake_prob": 0.5,
                                "shake_px": (4.0, 12.0)}),
    "occluded": RenderOptions(**{**_CLEAN, "occluder_prob": 1.0, "max_occluders": 3, "occluder_size": (0.2, 0.5)}),
}


# ---------------------------------------------------------------------------------------------
# Running a detector on frames in memory


def detect_frames(detector: Detector2D, views: Sequence[Sequence[np.ndarray]]) -> tuple[np.ndarray, float]:
    """Run ``detector`` over a take held in memory, as ``models.detectors.run.detect_sources`` does.

    Args:
        views: ``views[c][f]`` BGR frames, every view the same length.
    Returns:
        ``(keypoints (C, F, 17, 3)`` H36M17 pixels and confidence of each view's first person
        (NaN where nobody), ``seconds`` spent in ``detect``).
    """
    c, n = len(views), len(views[0])
    layout = detector.layout
    out = np.full((c, n, 17, 3), np.nan)
    detector.reset(c)
    seconds = 0.0
    for window in windows(([views[v][t] for v in range(c)] for t in range(n)), detector.context):
        t0 = time.perf_counter()
        people = detector.detect(window)
        seconds += time.perf_counter() - t0
        for v, p in enumerate(people):
            if len(p):
                out[v, window.index] = to_h36m17(p[0][None, None], layout, list(layout.joints))[0, 0]
    return out, seconds


@dataclass
class SynthScore:
    """One detector on one condition (see the module docstring)."""

    pck: float
    pck_limbs: float
    pck_hidden: float
    jitter_px: float
    jitter_truth_px: float
    found: float
    ms_per_frame: float


def score_sequences(pred: np.ndarray, truth: np.ndarray, alpha: float = 0.1) -> dict[str, float]:
    """PCK and jitter sums of ``pred`` against ``truth`` (both ``(C, F, 17, 3)``; truth's third column: visible).

    Returns sums and counts (``hits, n, hits_limbs, n_limbs, hits_hidden, n_hidden, acc, acc_truth,
    n_acc, found, views``) so that several takes pool exactly.
    """
    gt_ok = np.isfinite(truth[..., :2]).all(-1)
    xy = np.where(gt_ok[..., None], truth[..., :2], np.nan)
    with np.errstate(all="ignore"):
        size = np.nanmax(np.nanmax(xy, -2) - np.nanmin(xy, -2), -1)  # (C, F) longer box side
    err = np.linalg.norm(pred[..., :2] - truth[..., :2], axis=-1)
    hit = np.nan_to_num(err, nan=np.inf) <= alpha * size[..., None]
    limbs = np.zeros(17, bool)
    limbs[list(LIMBS)] = True
    hidden = gt_ok & (np.nan_to_num(truth[..., 2], nan=1.0) == 0)
    det = np.isfinite(pred[..., :2]).all(-1)
    ok3 = det[:, 2:] & det[:, 1:-1] & det[:, :-2] & gt_ok[:, 2:] & gt_ok[:, 1:-1] & gt_ok[:, :-2]
    acc = np.linalg.norm(pred[:, 2:, :, :2] - 2 * pred[:, 1:-1, :, :2] + pred[:, :-2, :, :2], axis=-1)
    acc_t = np.linalg.norm(truth[:, 2:, :, :2] - 2 * truth[:, 1:-1, :, :2] + truth[:, :-2, :, :2], axis=-1)
    return {"hits": float((hit & gt_ok).sum()), "n": float(gt_ok.sum()),
            "hits_limbs": float((hit & gt_ok & limbs).sum()), "n_limbs": float((gt_ok & limbs).sum()),
            "hits_hidden": float((hit & hidden).sum()), "n_hidden": float(hidden.sum()),
            "acc": float(acc[ok3].sum()), "acc_truth": float(acc_t[ok3].sum()), "n_acc": float(ok3.sum()),
            "found": float(det.any(-1).sum()), "views": float(det.shape[0] * det.shape[1])}


def held_out_clips(n: int, seed: int = 0) -> list[str]:
    """``n`` held-out Bandai clip names (seeded choice among clips long enough)."""
    clips = load_bandai(DEFAULT_BANDAI_DIR, frame_stride=1)
    _, test = bandai_split(clips)
    names = [name for name, c in test if len(c) >= 60]
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(names, size=min(n, len(names)), replace=False).tolist())


def synthetic_part(detectors: dict[str, Detector2D], n_clips: int, frames: int, cameras: int,
                   seed: int = 0) -> tuple[dict[str, dict[str, SynthScore]], list[str]]:
    """Score every detector on every condition; ``({condition: {detector: score}}, clip names)``."""
    clips = held_out_clips(n_clips, seed)
    sums: dict[str, dict[str, dict[str, float]]] = {c: {d: {} for d in detectors} for c in CONDITIONS}
    secs: dict[str, dict[str, float]] = {c: {d: 0.0 for d in detectors} for c in CONDITIONS}
    for i, clip in enumerate(clips):
        bodies, _ = performance_bodies(frames, 30.0, 1, clip=clip, seed=seed)
        rig = make_studio_rig(cameras, (960, 540), radius=(3.5, 4.5), seed=seed + 11 * i, distortion="mild")
        for cond, opts in CONDITIONS.items():
            views: list[list[np.ndarray]] = [[] for _ in range(cameras)]
            truth = np.empty((cameras, frames, 17, 3))
            for f, images, labels in render_take(rig, bodies, replace(opts, seed=seed + i), seed + 101 * i):
                for c, img in enumerate(images):
                    views[c].append(img)
                truth[:, f] = labels[0]
            for name, det in detectors.items():
                pred, s = detect_frames(det, views)
                part = score_sequences(pred, truth)
                for k, v in part.items():
                    sums[cond][name][k] = sums[cond][name].get(k, 0.0) + v
                secs[cond][name] += s
        print(f"  clip {i + 1}/{len(clips)} {clip}: done", flush=True)
    out: dict[str, dict[str, SynthScore]] = {}
    for cond in CONDITIONS:
        out[cond] = {}
        for name in detectors:
            s = sums[cond][name]
            out[cond][name] = SynthScore(
                pck=s["hits"] / max(s["n"], 1), pck_limbs=s["hits_limbs"] / max(s["n_limbs"], 1),
                pck_hidden=s["hits_hidden"] / max(s["n_hidden"], 1), jitter_px=s["acc"] / max(s["n_acc"], 1),
                jitter_truth_px=s["acc_truth"] / max(s["n_acc"], 1), found=s["found"] / max(s["views"], 1),
                ms_per_frame=1e3 * secs[cond][name] / max(s["views"], 1))
    return out, clips


# ---------------------------------------------------------------------------------------------
# The real clip


def loo_on_frames(vk: VideoKeypoints, frames: tuple[int, int]) -> tuple[dict[str, float], float]:
    """Leave-one-camera-out on frames ``A <= f < B`` only: ``({camera: median px}, median of all px)``."""
    kp = vk.keypoints
    a, b = frames
    sub = Keypoints2D(kp.keypoints[:, a:b], list(kp.camera_names), list(kp.joint_names), kp.fps)
    loo = leave_one_camera_out(vk.rig, sub)
    err = loo.error_px
    return loo.median_px(), float(np.nanmedian(err))


def write_session(folder: Path, vk: VideoKeypoints, frames: tuple[int, int]) -> Path:
    """A ``posestudio reconstruct --videos``-like folder made from the 2D of frames ``A <= f < B`` only."""
    folder.mkdir(parents=True, exist_ok=True)
    kp = vk.keypoints
    a, b = frames
    masked = np.full_like(kp.keypoints, np.nan)
    masked[:, a:b] = kp.keypoints[:, a:b]
    only = Keypoints2D(masked, list(kp.camera_names), list(kp.joint_names), kp.fps)
    result = reconstruct(vk.rig, only)
    write_keypoints2d(folder / "keypoints2d.npz", only)
    write_points3d(folder / "points3d.npz", result.points)
    vk.rig.save(folder / "rig.toml")
    return folder


def bootstrap(session: Path, videos: list[Path], frames: tuple[int, int], out: Path, steps: int, batch: int,
              lr: float, init: Path = DEFAULT_CHECKPOINT, log: io.TextIOBase | None = None) -> tuple[float | None, str]:
    """``posestudio train tce --init <shipped> --session ... --frames A:B`` in this process.

    Returns ``(seconds, its summary lines)``, or ``(None, the error line)`` when the command refused
    (exit status 2: e.g. a session whose cameras never agree, so no pseudo-labels).
    """
    from posestudio.cli import main as cli_main

    args = ["train", "tce", "--out", str(out), "--init", str(init), "--steps", str(steps),
            "--batch", str(batch), "--lr", str(lr), "--threads", "1", "--device", "cpu",
            "--checkpoint-every", str(steps), "--log-every", str(max(1, steps // 6)),
            "--session", str(session), "--videos", *map(str, videos), "--frames", f"{frames[0]}:{frames[1]}",
            "--session-share", "0.5"]
    buf, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        status = cli_main(args)
    text = buf.getvalue()
    if log is not None:
        log.write(text)
    if status == 2:  # a user error, e.g. no usable pseudo-labels: reported, not raised
        return None, err.getvalue().strip().splitlines()[-1]
    if status != 0:
        raise RuntimeError(f"bootstrapping failed ({status}): {text[-500:]} {err.getvalue()[-2000:]}")
    lines = [ln for ln in text.splitlines() if ln.startswith("session") or ln.startswith("trained")]
    return time.perf_counter() - t0, " | ".join(lines)


def real_part(steps: int, batch: int, lr: float, labels_from: Sequence[str], work: Path,
              checkpoint: Path = DEFAULT_CHECKPOINT) -> dict:
    """BlazePose, TCE and bootstrapped TCE on the real clip; what the tables print."""
    rig = import_rig(DEMO / "calibration" / "Calib.qca.txt")
    videos = sorted((DEMO / "videos").glob("cam0*.mp4"))
    splits = [((0, 50), (50, 100)), ((50, 100), (0, 50))]
    runs: dict[str, VideoKeypoints] = {}
    ms: dict[str, float] = {}
    runs["BlazePose"], ms["BlazePose"] = detect_real("blazepose", rig, videos)
    # the rig fitted to the recordings' frame sizes (cam01/cam02 are 8 columns narrower than calibrated),
    # judged on BlazePose's confident detections: a property of the recordings, used by every detector
    rig = runs["BlazePose"].rig
    runs["TCE (shipped)"], ms["TCE (shipped)"] = detect_real("tce", rig, videos, checkpoint=checkpoint)
    print(f"  detected: BlazePose {ms['BlazePose']:.1f} ms, TCE {ms['TCE (shipped)']:.1f} ms per view-frame",
          flush=True)
    rows: dict[str, dict[tuple[int, int], tuple[dict[str, float], float]]] = {}
    for name in runs:
        rows[name] = {test: loo_on_frames(runs[name], test) for _, test in splits}
    notes = []
    source = {"tce": "TCE (shipped)", "blazepose": "BlazePose"}
    for src in labels_from:
        for train, test in splits:
            session = write_session(work / f"session_{src}_{train[0]}_{train[1]}", runs[source[src]], train)
            out = work / f"boot_{src}_{train[0]}_{train[1]}.pt"
            secs, line = bootstrap(session, videos, train, out, steps, batch, lr, checkpoint)
            name = f"TCE bootstrapped ({src} labels)"
            if secs is None:
                notes.append(f"{name}, frames {train[0]}-{train[1] - 1}: not trained: {line}")
                print(f"  {notes[-1]}", flush=True)
                continue
            vk, ms_b = detect_real("tce", rig, videos, checkpoint=out)
            rows.setdefault(name, {})[test] = loo_on_frames(vk, test)
            ms[name] = ms_b
            notes.append(f"{name}, trained on frames {train[0]}-{train[1] - 1} in {secs:.0f} s: {line}")
            print(f"  {notes[-1]}", flush=True)
    return {"rows": rows, "ms": ms, "splits": splits, "notes": notes,
            "cameras": list(runs["BlazePose"].keypoints.camera_names)}


# ---------------------------------------------------------------------------------------------
# Tables


def print_synthetic(scores: dict[str, dict[str, SynthScore]]) -> None:
    header = ["condition", "detector", "PCK@0.1 all 17", "PCK limbs", "PCK hidden", "found", "jitter px/f^2",
              "truth jitter", "ms/frame"]
    rows = []
    for cond, per in scores.items():
        for name, s in per.items():
            rows.append([cond, name, f"{100 * s.pck:.1f} %", f"{100 * s.pck_limbs:.1f} %",
                         f"{100 * s.pck_hidden:.1f} %", f"{100 * s.found:.1f} %", f"{s.jitter_px:.2f}",
                         f"{s.jitter_truth_px:.2f}", f"{s.ms_per_frame:.1f}"])
    print_table(header, rows)


def print_real(real: dict) -> None:
    cams = real["cameras"]
    header = ["2D", "frames scored", *(f"LOO {c}" for c in cams), "LOO mean of cameras", "LOO median all",
              "ms/frame/view"]
    rows = []
    for name, per in real["rows"].items():
        for (a, b), (cam, med) in sorted(per.items()):
            vals = [cam[c] for c in cams]
            rows.append([name, f"{a}-{b - 1}", *(f"{v:.1f}" for v in vals), f"{np.mean(vals):.1f}", f"{med:.1f}",
                         f"{real['ms'][name]:.1f}"])
    print_table(header, rows)


# ---------------------------------------------------------------------------------------------


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """This part's options (defaults: what ``benchmarks/RESULTS.md`` records)."""
    ap.add_argument("--clips", type=int, default=4, help="held-out Bandai clips rendered")
    ap.add_argument("--frames", type=int, default=40, help="frames per clip (30 fps)")
    ap.add_argument("--cameras", type=int, default=3, help="cameras per clip (960 x 540)")
    ap.add_argument("--boot-steps", type=int, default=300, help="bootstrapping steps per split")
    ap.add_argument("--boot-batch", type=int, default=8)
    ap.add_argument("--boot-lr", type=float, default=3e-4)
    ap.add_argument("--boot-labels", nargs="+", choices=("tce", "blazepose"), default=["blazepose", "tce"],
                    help="whose reconstruction the bootstrapping session is (TCE's own: self-training)")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT,
                    help="the temporal network to score (default: the shipped one)")
    ap.add_argument("--single-checkpoint", type=Path, default=SINGLE_CHECKPOINT,
                    help="its single-frame ablation (default: benchmarks/checkpoints/tce_single.pt)")


def run(args: argparse.Namespace) -> int:
    """Part 2 of the detection benchmark (see the module docstring); prints its tables."""
    defaults = argparse.ArgumentParser()
    add_arguments(defaults)
    opts = defaults.parse_args([])
    for k, v in vars(args).items():
        setattr(opts, k, v)
    torch.set_num_threads(1)
    if not opts.checkpoint.is_file():
        print(f"no TCE checkpoint at {opts.checkpoint}: train it first (models/tce/CHECKPOINT.md)")
        return 1
    start = time.perf_counter()
    try:
        import mediapipe  # noqa: F401  (optional: `pip install .[blazepose]`)
        have_blazepose = True
    except ImportError:
        have_blazepose = False
    if not opts.skip_synthetic:
        if not DEFAULT_BANDAI_DIR.is_dir():
            print(f"(a) skipped: {DEFAULT_BANDAI_DIR} is absent")
        else:
            detectors: dict[str, Detector2D] = {"TCE temporal": TCEDetector.from_checkpoint(opts.checkpoint, "cpu")}
            if opts.single_checkpoint.is_file():
                detectors["TCE single-frame"] = TCEDetector.from_checkpoint(opts.single_checkpoint, "cpu")
            else:
                print(f"  (no single-frame ablation at {opts.single_checkpoint})")
            if have_blazepose:
                detectors["BlazePose"] = create_detector("blazepose", max_people=1)
            else:
                print("  (mediapipe is not installed: no BlazePose row)")
            t0 = time.perf_counter()
            scores, clips = synthetic_part(detectors, opts.clips, opts.frames, opts.cameras)
            for d in detectors.values():
                d.close()
            print(f"\n## (a) Held-out rendered sequences: {len(clips)} Bandai clips ({', '.join(clips)}), "
                  f"{opts.frames} frames x {opts.cameras} cameras of 960x540 each, per condition "
                  f"[{time.perf_counter() - t0:.0f} s]\n")
            print_synthetic(scores)
    if not opts.skip_real:
        if not DEMO.is_dir():
            print(f"(b) skipped: {DEMO} is absent")
        elif not have_blazepose:
            print("(b) skipped: mediapipe is not installed (BlazePose is the reference)")
        else:
            t0 = time.perf_counter()
            work = Path(tempfile.mkdtemp(prefix="tce_bench_"))
            try:
                real = real_part(opts.boot_steps, opts.boot_batch, opts.boot_lr, opts.boot_labels, work,
                                 checkpoint=opts.checkpoint)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            print(f"\n## (b) Real clip {DEMO.name}: leave-one-camera-out error on held-out frames, pixels "
                  f"(bootstrapping: {opts.boot_steps} steps, batch {opts.boot_batch}, lr {opts.boot_lr:g}, half "
                  f"the batch rendered) [{time.perf_counter() - t0:.0f} s]\n")
            print_real(real)
            print()
            for note in real["notes"]:
                print(f"- {note}")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
