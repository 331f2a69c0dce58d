"""Ablations of the factorization prior on the reconstruction benchmark's data.

Run from the repository root: ``.venv/bin/python -m benchmarks.reconstruction_ablation``.

Setting: the six Bandai clips of ``benchmarks/reconstruction.py`` (walk, run, walk-left, byebye,
dash, kick; their middle 150 frames at most, 30 fps), projected into the same seeded 4-camera
studio rigs with lens distortion and the same default detector errors (3 px noise, 10 % confident
outliers, 8 % occlusion runs, joints leaving the images). Three checkpoints of the factorization
network, trained identically but for the dictionary: the shipped hierarchical one
(``models/factorization/checkpoint.pt``, 10 coarse + 10 fine bases) and the single-level
ablations in ``benchmarks/checkpoints/`` (10 bases; 20 bases = the same dictionary size).

a. Dictionary ablation: the canonical shape read from one camera's 2D and averaged over all
   usable cameras, scored against the motion capture by P-MPJPE and by a bone-scaled rigid MPJPE;
   then the whole pipeline with each checkpoint as its prior (error of the joints it filled).
b. Joints seen by fewer than two cameras: random runs of 10-30 frames in which a joint's 2D is
   removed from every camera but one (about 10 % of the (frame, joint) cells); the pipeline with
   and without the prior, and with its other fill mechanisms (interpolation, single-camera rays)
   switched off, scored on exactly those cells.
c. Joints no camera sees: runs of N = 3, 10, 30, 60 frames in which a joint is removed from every
   camera; interpolation only, the default (interpolation up to ``max_gap_s`` = 0.5 s, then the
   prior) and the prior only (``max_gap_s=0``), scored on the removed cells.
d. The whole body seen by one camera: in each clip one run of 30-60 frames (at most a third of the
   clip) in which every joint's 2D is left to one camera (chosen per run); the pipeline's fills
   scored on those cells.

With ``--lifting PATH`` (default: the shipped ``models/lifting/checkpoint.pt`` when it exists) parts
a2, b and d add rows with the lifting network (``ReconstructionOptions.lifting``) filling joints
instead of the prior (``prior=None``) and before it (the prior fills what it leaves).

Errors on cells are world-frame distances (no alignment: a calibrated studio reconstructs in the
world frame), pooled over every cell of every clip. "Overall MPJPE" is the benchmark's MPJPE
(pelvis-aligned, all joints), pooled over every frame of every clip.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.reconstruction import Take, describe_errors, describe_takes, make_takes
from posestudio.core.alignment import procrustes_align
from posestudio.core.keypoints_file import Keypoints2D
from posestudio.core.pose_metrics import coverage, mpjpe
from posestudio.core.rotations import nearest_rotation
from posestudio.core.skeleton import bone_lengths, scale_to_lengths
from posestudio.models.factorization.prior import DEFAULT_CHECKPOINT, FactorizationPrior
from posestudio.models.keypoints import H36M17
from posestudio.models.lifting.lifter import DEFAULT_CHECKPOINT as DEFAULT_LIFTING
from posestudio.reconstruction.options import LiftingFillOptions
from posestudio.reconstruction.pipeline import (
    CARRIED_CONFIDENCE,
    GAP_FILL_CONFIDENCE,
    PRIOR_CONFIDENCE,
    ReconstructionOptions,
    reconstruct,
)
from posestudio.reconstruction.stages import LIFTED_CONFIDENCE
from posestudio.synthetic.body_detections import DetectorErrors

HERE = Path(__file__).resolve().parent
#: (label, checkpoint): the shipped hierarchical prior and the single-level ablation checkpoints
CHECKPOINTS = (
    ("hierarchical 10+10 (shipped)", DEFAULT_CHECKPOINT),
    ("single level, 10 bases", HERE / "checkpoints" / "factorization_single10.pt"),
    ("single level, 20 bases", HERE / "checkpoints" / "factorization_single20.pt"),
)
PELVIS = H36M17.index("pelvis")
#: The lifting checkpoint of the lifting rows (None: no lifting rows); set by ``--lifting``.
LIFTING: Path | None = None
#: Row labels of the lifting network on one-camera bodies: also aligned to the rays' joints, and
#: the default (only bodies with too few reconstructed joints, which must be placed).
ALIGNED_TOO = "lifting (one-camera bodies, aligned too), then prior"
DEFAULT_ROW = "lifting (one-camera bodies to place), then prior = default"


def lifting_variants(base: dict, prefix: str = "") -> list[tuple[str, dict]]:
    """Rows with the lifting network on ``base``'s other options: every case (one-camera bodies, joints one
    camera sees, joints none sees) instead of the prior and before it, the same with the best camera's lift
    alone, and the default cases (one-camera bodies only) before the prior."""
    if LIFTING is None:
        return []
    rest = {k: v for k, v in base.items() if k != "prior"}
    prior = base.get("prior", DEFAULT_CHECKPOINT)
    every = LiftingFillOptions(seen_joints=True, unseen_joints=True, align_one_camera_bodies=True)
    return [(f"{prefix}lifting (all cases) instead of prior", dict(rest, prior=None, lifting=LIFTING, lifting_fill=every)),
            (f"{prefix}lifting (all cases), then prior", dict(rest, lifting=LIFTING, prior=prior, lifting_fill=every)),
            (f"{prefix}lifting (all cases, best camera), then prior",
             dict(rest, lifting=LIFTING, prior=prior,
                  lifting_fill=LiftingFillOptions(seen_joints=True, unseen_joints=True, align_one_camera_bodies=True,
                                                  cameras="best"))),
            (f"{prefix}{ALIGNED_TOO}", dict(rest, lifting=LIFTING, prior=prior,
                                             lifting_fill=LiftingFillOptions(align_one_camera_bodies=True))),
            (f"{prefix}{DEFAULT_ROW}", dict(rest, lifting=LIFTING, prior=prior))]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

@dataclass
class Run:
    """One pipeline run over every take, frames concatenated: points, confidence, truth."""

    points: np.ndarray  # (F, 17, 3)
    confidence: np.ndarray  # (F, 17)
    truth: np.ndarray  # (F, 17, 3)
    seconds: float


def run_pipeline(takes: list[Take], keypoints: list[np.ndarray], **options) -> Run:
    """``reconstruct`` each take (with its own, possibly edited, keypoints) and concatenate; without the
    lifting network unless ``options`` name it (the rows compare the prior with and without it)."""
    options.setdefault("lifting", None)
    pts, conf, secs = [], [], 0.0
    for t, kp in zip(takes, keypoints):
        t0 = time.perf_counter()
        res = reconstruct(t.rig, Keypoints2D(kp, t.rig.names, list(H36M17.joints), t.fps),
                          ReconstructionOptions(**options))
        secs += time.perf_counter() - t0
        pts.append(res.points.points3d)
        conf.append(res.points.confidence)
    return Run(np.concatenate(pts), np.concatenate(conf), np.concatenate([t.truth for t in takes]), secs)


def cell_errors(run: Run) -> np.ndarray:
    """``(F, 17)`` world-frame error per cell, metres (NaN where not output)."""
    return np.linalg.norm(run.points - run.truth, axis=-1)


def mean_mm(err: np.ndarray, mask: np.ndarray) -> float:
    e = err[mask]
    e = e[np.isfinite(e)]
    return 1000 * float(e.mean()) if e.size else float("nan")


def median_mm(err: np.ndarray, mask: np.ndarray) -> float:
    e = err[mask]
    e = e[np.isfinite(e)]
    return 1000 * float(np.median(e)) if e.size else float("nan")


def mechanisms(run: Run) -> dict[str, np.ndarray]:
    """Which mechanism produced each cell, read from the confidence the pipeline gives it."""
    c = run.confidence
    return {"interp": np.isclose(c, GAP_FILL_CONFIDENCE), "rays": np.isclose(c, CARRIED_CONFIDENCE),
            "prior": np.isclose(c, PRIOR_CONFIDENCE), "lift": np.isclose(c, LIFTED_CONFIDENCE)}


def fmt(x: float, width: int, spec: str = ".1f", sign: str = "") -> str:
    return f"{'-':>{width}}" if not np.isfinite(x) else format(x, f">{sign}{width}{spec}")


def table(head: list[tuple[str, int]], rows: list[list[str]], first: int) -> None:
    line = f"{head[0][0]:<{first}}" + "".join(f"{h:>{w}}" for h, w in head[1:])
    print(line + "\n" + "-" * len(line))
    for r in rows:
        print(f"{r[0]:<{first}}" + "".join(r[1:]) if r != [""] else "")


def rigid_about_pelvis(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``pred`` rotated (proper rotation, no scale) about its pelvis onto ``truth`` centred on its pelvis;
    both returned pelvis-centred: ``(aligned, truth_centred)``."""
    p = pred - pred[:, PELVIS:PELVIS + 1]
    g = truth - truth[:, PELVIS:PELVIS + 1]
    rot = nearest_rotation(np.einsum("fji,fjk->fik", g, p))  # maximises tr(R^T sum_j g_j p_j^T)
    return np.einsum("fik,fjk->fji", rot, p), g


def bone_scaled(shape: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Unit-RMS canonical shapes ``(N, 17, 3)`` scaled so their bones best match ``lengths (B,)`` metres
    (least squares: ``s = sum L l / sum l^2``)."""
    s = scale_to_lengths(bone_lengths(shape, H36M17.bone_indices), lengths, min_bones=1)
    return shape * s[:, None, None]


def performer_bone_lengths(truth: np.ndarray) -> np.ndarray:
    return np.median(bone_lengths(truth, H36M17.bone_indices), axis=0)


def held_out_clips(path: Path) -> set[str]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    return set(ckpt.get("log", {}).get("test_clips", []))


# ---------------------------------------------------------------------------------------------
# a. dictionary ablation
# ---------------------------------------------------------------------------------------------

def shape_scores(prior: FactorizationPrior, takes: list[Take], held: set[str]) -> dict[str, dict[str, float]]:
    """Canonical-shape errors (mm) over groups of takes: 'all', 'held-out', 'trained-on' (not in ``held``)."""
    acc: dict[str, dict[str, list]] = {}
    for t in takes:
        views = prior.read_views(t.keypoints, t.rig)
        lengths = performer_bone_lengths(t.truth)
        single = views.shapes[views.use]  # (N, 17, 3)
        single_truth = np.broadcast_to(t.truth, views.shapes.shape)[views.use]
        mean, ok = views.mean_shape()
        for name, shp, tru in (("1 view", single, single_truth), ("all views", mean[ok], t.truth[ok])):
            al, g = rigid_about_pelvis(bone_scaled(shp, lengths), tru)
            err_m = np.linalg.norm(al - g, axis=-1).mean(-1)  # (N,) per shape
            err_p = _per_shape_pmpjpe(shp, tru)
            group = "held-out" if t.name in held else "trained-on"
            for key in ("all", group):
                d = acc.setdefault(key, {})
                d.setdefault(f"mpjpe {name}", []).append(err_m)
                d.setdefault(f"p_mpjpe {name}", []).append(err_p)
    return {g: {k: 1000 * float(np.concatenate(v).mean()) for k, v in d.items()} for g, d in acc.items()}


def _per_shape_pmpjpe(shape: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``(N,)`` P-MPJPE of each shape (similarity Procrustes, no reflection), metres."""
    aligned, _ = procrustes_align(shape, truth)
    return np.linalg.norm(aligned - truth, axis=-1).mean(-1)


def ablation_dictionary(takes: list[Take]) -> None:
    print("\n== a. Dictionary ablation: canonical shape from the cameras' 2D (4-camera rig, default errors)")
    held = held_out_clips(CHECKPOINTS[0][1])
    names = [t.name.removeprefix("dataset-1_") for t in takes]
    print("   clips held out from training (same split for all three): "
          + ", ".join(n for n, t in zip(names, takes) if t.name in held)
          + "; trained on (every 2nd frame seen in training, as 2D): "
          + ", ".join(n for n, t in zip(names, takes) if t.name not in held))
    columns = [("all", "p_mpjpe 1 view"), ("all", "p_mpjpe all views"), ("all", "mpjpe 1 view"),
               ("all", "mpjpe all views"), ("held-out", "p_mpjpe all views"), ("held-out", "mpjpe all views"),
               ("trained-on", "p_mpjpe all views"), ("trained-on", "mpjpe all views")]
    scores = {label: shape_scores(FactorizationPrior.load(path, device="cpu"), takes, held_out_clips(path))
              for label, path in CHECKPOINTS}

    def value(label: str, group: str, key: str) -> float:
        return scores[label].get(group, {}).get(key, np.nan)

    rows = [[label] + [fmt(value(label, g, k), 10) for g, k in columns] for label, _ in CHECKPOINTS]
    base = CHECKPOINTS[0][0]
    rows += [[f"  {label.replace('single level, ', 'single ')} minus hierarchical"]
             + [fmt(value(label, g, k) - value(base, g, k), 10, sign="+") for g, k in columns]
             for label, _ in CHECKPOINTS[1:]]
    print(f"{'':<40}{f' all {len(takes)} clips ':-^40}{' held-out clips ':-^20}{' trained-on clips ':-^20}")
    table([("checkpoint", 40), ("P 1 view", 10), ("P all", 10), ("M 1 view", 10), ("M all", 10),
           ("P all", 10), ("M all", 10), ("P all", 10), ("M all", 10)], rows, 40)
    print("P = P-MPJPE: each canonical shape aligned to the true pose by a similarity (rotation, translation, scale; "
          "no reflection), mm.\nM = MPJPE: each unit-RMS canonical shape scaled so its bone lengths best fit the "
          "performer's (median true bone lengths of the clip, least squares),\n    both poses centred on the pelvis, "
          "then the best rotation about the pelvis (no scale, no reflection); mean over the 17 joints, mm.\n"
          "1 view: every (camera, frame) with >= 6 joints of confidence >= 0.3; all views: the shapes of a frame's "
          "usable cameras averaged\n(FactorizationPrior.shapes_from_views). Means pooled over shapes. Positive "
          "differences: the hierarchical dictionary is better. Seed paper (Human3.6M): hierarchical\n3.9 mm lower "
          "MPJPE and 5.2 mm lower P-MPJPE than single level.")

    # through the whole pipeline, each checkpoint as the prior
    print("\n-- a2. Through the pipeline (default options but no lifting, prior = each checkpoint; then the lifting "
          "rows): joints filled by the prior")
    kps = [t.keypoints for t in takes]
    runs = {label: run_pipeline(takes, kps, prior=path) for label, path in CHECKPOINTS}
    none = run_pipeline(takes, kps, prior=None)
    filled = {label: mechanisms(r)["prior"] for label, r in runs.items()}
    common = np.logical_and.reduce(list(filled.values()))
    lifted = {label.strip(): run_pipeline(takes, kps, **opts) for label, opts in lifting_variants({})}
    rows = []
    for label, r in [("no prior (prior=None)", none)] + list(runs.items()) + list(lifted.items()):
        err = cell_errors(r)
        mech = mechanisms(r)
        f = filled.get(label, mech["prior"] | mech["lift"] if label in lifted else np.zeros_like(common))
        rows.append([label, f"{int(f.sum()):>9}", fmt(mean_mm(err, f), 11), fmt(median_mm(err, f), 9),
                     fmt(mean_mm(err, common), 11), fmt(1000 * mpjpe(r.points, r.truth), 15),
                     fmt(100 * coverage(r.points), 9)])
    table([("prior", 48), ("filled", 9), ("filled mm", 11), ("median", 9), ("common mm", 11), ("overall MPJPE", 15),
           ("cover %", 9)], rows, 48)
    print(f"filled: cells the prior filled (confidence {PRIOR_CONFIDENCE}) of {common.size}; filled mm / median: "
          f"their world-frame error, mean / median; common mm: error on the {int(common.sum())} cells every "
          "checkpoint filled;\n"
          f"lifting rows (checkpoint {LIFTING}): filled = cells the lifting network (confidence {LIFTED_CONFIDENCE}) "
          "or the prior filled, the prior the shipped one; 'all cases': LiftingFillOptions(seen_joints=True, "
          "unseen_joints=True);\n"
          "overall MPJPE: the benchmark's pelvis-aligned MPJPE over all cells, pooled, mm.")


# ---------------------------------------------------------------------------------------------
# masks
# ---------------------------------------------------------------------------------------------

def random_runs(rng: np.random.Generator, f: int, j: int, rate: float, run: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(F, J)`` mask of runs (a run starts at a cell with probability ``rate / mean run``; overlaps make
    the covered share somewhat lower than ``rate``), and each cell's run start frame."""
    mean_run = 0.5 * (run[0] + run[1])
    starts = rng.random((f, j)) < rate / mean_run
    lengths = rng.integers(run[0], run[1] + 1, (f, j))
    idx = np.arange(f)[:, None]
    running_end = np.maximum.accumulate(np.where(starts, idx + lengths, -1), axis=0)
    last_start = np.maximum.accumulate(np.where(starts, idx, -1), axis=0)
    return running_end > idx, np.maximum(last_start, 0)


def one_camera_only(take: Take, rng: np.random.Generator, rate: float, run: tuple[int, int]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints with runs of cells left to one camera (chosen per run), and the ``(F, J)`` mask."""
    c, f, j, _ = take.keypoints.shape
    mask, start = random_runs(rng, f, j, rate, run)
    cam_at_start = rng.integers(0, c, (f, j))
    kept = np.take_along_axis(cam_at_start, start, axis=0)  # the run's camera, every frame of it
    kp = take.keypoints.copy()
    drop = mask[None] & (np.arange(c)[:, None, None] != kept[None])
    kp[drop] = np.nan
    return kp, mask


def unseen_runs(take: Take, rng: np.random.Generator, n: int, per_window: int = 2, margin: int = 10
                ) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints with ``per_window`` random joints removed from every camera for ``n`` frames, in
    consecutive windows of ``n + margin`` frames (at least ``margin`` seen frames before, between
    and after runs, so interpolation always has both ends), and the ``(F, J)`` mask."""
    c, f, j, _ = take.keypoints.shape
    mask = np.zeros((f, j), bool)
    slack = (f - 2 * margin - n) % (n + margin) if f >= 2 * margin + n else 0
    s = margin + int(rng.integers(0, slack + 1))
    while s + n <= f - margin:
        mask[s:s + n, rng.choice(j, per_window, replace=False)] = True
        s += n + margin
    kp = take.keypoints.copy()
    kp[:, mask] = np.nan
    return kp, mask


# ---------------------------------------------------------------------------------------------
# b. joints seen by fewer than two cameras
# ---------------------------------------------------------------------------------------------

def ablation_one_camera(takes: list[Take], seed: int, rate: float = 0.13) -> None:
    rng = np.random.default_rng(seed + 1000)
    edited = [one_camera_only(t, rng, rate, (10, 30)) for t in takes]
    kps = [k for k, _ in edited]
    cells = np.concatenate([m for _, m in edited])
    kp_all = np.concatenate(kps, axis=1)  # (C, F, 17, 3)
    views = (np.isfinite(kp_all[..., 0]) & (np.nan_to_num(kp_all[..., 2]) >= 0.3)).sum(0)
    print(f"\n== b. Joints seen by fewer than two cameras: runs of 10-30 frames with a joint's 2D left to one camera "
          f"(chosen per run)\n   {int(cells.sum())} cells = {cells.mean():.1%} of all; of them "
          f"{(views[cells] == 1).mean():.0%} "
          f"still seen by that camera, {(views[cells] == 0).mean():.0%} by none (that camera had lost it too)")
    shipped = CHECKPOINTS[0][1]
    variants = [
        ("interp + rays, no prior (prior=None)", dict(prior=None)),
        ("interp + rays + prior (no lifting)", dict(prior=shipped)),
        ("  same, prior = single level 10", dict(prior=CHECKPOINTS[1][1])),
        ("  same, prior = single level 20", dict(prior=CHECKPOINTS[2][1])),
        ("rays only (max_gap_s=0, prior=None)", dict(max_gap_s=0.0, prior=None)),
        ("rays + prior (max_gap_s=0)", dict(max_gap_s=0.0, prior=shipped)),
        ("prior only (max_gap_s=0, max_carry_s=0)", dict(max_gap_s=0.0, max_carry_s=0.0, prior=shipped)),
    ] + lifting_variants(dict(prior=shipped), "interp + rays + ") + (
        [("lifting only, all cases (max_gap_s=0, max_carry_s=0)",
          dict(max_gap_s=0.0, max_carry_s=0.0, prior=None, lifting=LIFTING,
               lifting_fill=LiftingFillOptions(seen_joints=True, unseen_joints=True)))] if LIFTING else [])
    one, zero = cells & (views == 1), cells & (views == 0)
    runs, rows = {}, []
    for label, opts in variants:
        r = run_pipeline(takes, kps, **opts)
        runs[label] = r
        err, mech = cell_errors(r), mechanisms(r)
        out = np.isfinite(r.points).all(-1)
        row = [label]
        for m in (cells, one, zero):
            row += [fmt(mean_mm(err, m), 9), fmt(100 * out[m].mean(), 8)]
        for k in ("interp", "rays", "prior", "lift"):
            m = mech[k] & cells
            row += [f"{int(m.sum()):>6}", fmt(mean_mm(err, m), 6)]
        row += [fmt(1000 * mpjpe(r.points, r.truth), 7), fmt(100 * coverage(r.points), 7)]
        rows.append(row)
    print(f"{'':<58}{' edited cells ':-^17}{' 1 camera ':-^17}{' no camera ':-^17}{' interp ':-^12}"
          f"{' rays ':-^12}{' prior ':-^12}{' lifting ':-^12}{' all cells ':-^14}")
    table([("pipeline", 58), ("mm", 9), ("cover%", 8), ("mm", 9), ("cover%", 8), ("mm", 9), ("cover%", 8),
           ("n", 6), ("mm", 6), ("n", 6), ("mm", 6), ("n", 6), ("mm", 6), ("n", 6), ("mm", 6), ("MPJPE", 7),
           ("cover%", 7)], rows, 58)
    print("edited cells: world-frame error (mm) and share output on the edited cells; 1 camera / no camera: "
          "the same on "
          "the edited cells the kept camera\nstill sees / does not see; interp / rays / prior / lifting: how many edited "
          "cells each mechanism filled (confidence 0.3 / 0.25 / 0.2 / 0.22) and their error;\nall cells: pelvis-aligned MPJPE "
          "and coverage over every cell of every clip.")
    pairs = [("interp + rays, no prior (prior=None)", "interp + rays + prior (no lifting)"),
             ("rays only (max_gap_s=0, prior=None)", "rays + prior (max_gap_s=0)"),
             ("rays only (max_gap_s=0, prior=None)", "prior only (max_gap_s=0, max_carry_s=0)")]
    print("\n   paired, on the edited cells both output:")
    for a, b in pairs:
        ea, eb = cell_errors(runs[a]), cell_errors(runs[b])
        both = cells & np.isfinite(ea) & np.isfinite(eb)
        differ = both & (np.abs(ea - eb) > 1e-9)
        print(f"   {a}  vs  {b}: {int(both.sum())} cells, {mean_mm(ea, both):.1f} vs {mean_mm(eb, both):.1f} mm; "
              f"on the {int(differ.sum())} that differ {mean_mm(ea, differ):.1f} vs {mean_mm(eb, differ):.1f} mm")
    if LIFTING:
        pairs = [("interp + rays + prior (no lifting)", "interp + rays + lifting (all cases), then prior"),
                 ("interp + rays + prior (no lifting)", f"interp + rays + {DEFAULT_ROW}")]
        for a, b in pairs:
            ea, eb = cell_errors(runs[a]), cell_errors(runs[b])
            for name, m in (("1 camera", one), ("no camera", zero)):
                differ = m & np.isfinite(ea) & np.isfinite(eb) & (np.abs(ea - eb) > 1e-9)
                print(f"   {a}  vs  {b}, {name}: on the {int(differ.sum())} cells that differ "
                      f"{mean_mm(ea, differ):.1f} vs {mean_mm(eb, differ):.1f} mm "
                      f"(median {median_mm(ea, differ):.1f} vs {median_mm(eb, differ):.1f})")
    base, full = runs["interp + rays, no prior (prior=None)"], runs["interp + rays + prior (no lifting)"]
    gained = cells & ~np.isfinite(base.points).all(-1) & np.isfinite(full.points).all(-1)
    err = cell_errors(full)
    print(f"   edited cells the pipeline without prior leaves empty, filled with the prior (no lifting): "
          f"{int((gained & one).sum())} seen by 1 camera, {mean_mm(err, gained & one):.1f} mm "
          f"(median {median_mm(err, gained & one):.1f}); {int((gained & zero).sum())} by none, "
          f"{mean_mm(err, gained & zero):.1f} mm (median {median_mm(err, gained & zero):.1f})")


# ---------------------------------------------------------------------------------------------
# c. joints no camera sees
# ---------------------------------------------------------------------------------------------

def ablation_unseen(takes: list[Take], seed: int, lengths: tuple[int, ...], repeats: int) -> None:
    print(f"\n== c. Joints no camera sees for N frames: 2 random joints removed from every camera per window of "
          f"N + 10 frames\n   (>= 10 seen frames before, between and after runs), {repeats} random draws per N; "
          "clips shorter than N + 20 frames get none")
    shipped = CHECKPOINTS[0][1]
    variants = [
        ("interpolation only, gaps <= 0.5 s (prior=None)", dict(prior=None)),
        ("interpolation only, any gap (prior=None, max_gap_s=100)", dict(prior=None, max_gap_s=100.0)),
        ("default: interpolation <= 0.5 s, then prior", dict(prior=shipped)),
        ("prior only (max_gap_s=0)", dict(max_gap_s=0.0, prior=shipped)),
    ]
    rows = []
    for n in lengths:
        acc = {label: [] for label, _ in variants}
        masks = []
        for rep in range(repeats):
            rng = np.random.default_rng(seed + 2000 + 97 * n + rep)
            edited = [unseen_runs(t, rng, n) for t in takes]
            kps = [k for k, _ in edited]
            masks.append(np.concatenate([m for _, m in edited]))
            for label, opts in variants:
                acc[label].append(run_pipeline(takes, kps, **opts))
        cells = np.concatenate(masks)
        for label, _ in variants:
            rs = acc[label]
            r = Run(np.concatenate([x.points for x in rs]), np.concatenate([x.confidence for x in rs]),
                    np.concatenate([x.truth for x in rs]), sum(x.seconds for x in rs))
            err, mech = cell_errors(r), mechanisms(r)
            out = np.isfinite(r.points).all(-1)
            rows.append([f"N={n:<3} {label}", f"{int(cells.sum()):>7}", fmt(mean_mm(err, cells), 10),
                         fmt(100 * out[cells].mean(), 9), f"{int((mech['interp'] & cells).sum()):>9}",
                         fmt(mean_mm(err, mech["interp"] & cells), 8), f"{int((mech['prior'] & cells).sum()):>8}",
                         fmt(mean_mm(err, mech["prior"] & cells), 8), f"{int((mech['rays'] & cells).sum()):>7}",
                         fmt(1000 * mpjpe(r.points, r.truth), 10)])
        rows.append([""])
    table([("N   pipeline", 62), ("cells", 7), ("cells mm", 10), ("cover %", 9), ("interp n", 9), ("mm", 8),
           ("prior n", 8), ("mm", 8), ("rays n", 7), ("all MPJPE", 10)], rows[:-1], 62)
    print("cells: removed (frame, joint) cells; cells mm / cover %: world-frame error and share output there; "
          "interp / prior / rays: how many removed cells each\nmechanism filled (confidence 0.3 / 0.2 / 0.25) and "
          "their error; all MPJPE: pelvis-aligned MPJPE over every cell output, pooled over draws\n(a variant "
          "that leaves the hard cells empty is not charged for them: compare it at equal cover %).")


# ---------------------------------------------------------------------------------------------
# d. the whole body seen by one camera
# ---------------------------------------------------------------------------------------------

def one_camera_body(take: Take, rng: np.random.Generator, run: tuple[int, int], margin: int = 10
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints with one run of frames (``run`` frames long, at most a third of the clip, at least
    ``margin`` frames from either end) whose 2D is left to one random camera, and the ``(F, J)``
    mask of that run's cells."""
    c, f, j, _ = take.keypoints.shape
    n = min(int(rng.integers(run[0], run[1] + 1)), f // 3)
    start = int(rng.integers(min(margin, f - n), max(min(margin, f - n), f - n - margin) + 1))
    frames = np.zeros(f, bool)
    frames[start:start + n] = True
    kp = take.keypoints.copy()
    kept = int(rng.integers(0, c))
    drop = frames[None] & (np.arange(c)[:, None] != kept)
    kp[drop] = np.nan
    return kp, np.repeat(frames[:, None], j, axis=1)


def ablation_one_camera_body(takes: list[Take], seed: int) -> dict[str, tuple[float, float]]:
    """Part d; returns each row's ``(mean error on the edited cells, overall MPJPE)``, mm."""
    rng = np.random.default_rng(seed + 3000)
    edited = [one_camera_body(t, rng, (30, 60)) for t in takes]
    kps = [k for k, _ in edited]
    cells = np.concatenate([m for _, m in edited])
    print(f"\n== d. The whole body seen by one camera: one run of 30-60 frames per clip (at most a third "
          f"of it) with every joint's 2D left to one camera (chosen per run)\n   {int(cells[:, 0].sum())} frames = {cells[:, 0].mean():.1%} of all")
    shipped = CHECKPOINTS[0][1]
    variants = [("interp + rays, no prior (prior=None)", dict(prior=None)),
                ("interp + rays + prior (no lifting)", dict(prior=shipped))] + lifting_variants(dict(prior=shipped))
    # without the rays (max_carry_s=0) the one-camera frames keep too few joints for an alignment:
    # the prior places the body by model-based PnP, the lifting network by its own root position
    variants += [("no rays (max_carry_s=0): prior", dict(max_carry_s=0.0, prior=shipped))] + lifting_variants(
        dict(max_carry_s=0.0, prior=shipped), "no rays (max_carry_s=0): ")[-1:]
    rows, runs, summary = [], {}, {}
    for label, opts in variants:
        r = runs[label] = run_pipeline(takes, kps, **opts)
        err, mech = cell_errors(r), mechanisms(r)
        out = np.isfinite(r.points).all(-1)
        row = [label, fmt(mean_mm(err, cells), 9), fmt(median_mm(err, cells), 8), fmt(100 * out[cells].mean(), 8)]
        for k in ("interp", "rays", "prior", "lift"):
            m = mech[k] & cells
            row += [f"{int(m.sum()):>6}", fmt(mean_mm(err, m), 6)]
        row += [fmt(1000 * mpjpe(r.points, r.truth), 7), fmt(100 * coverage(r.points), 7)]
        rows.append(row)
        summary[label] = (mean_mm(err, cells), 1000 * mpjpe(r.points, r.truth))
    print(f"{'':<56}{' edited cells ':-^25}{' interp ':-^12}{' rays ':-^12}{' prior ':-^12}{' lifting ':-^12}"
          f"{' all cells ':-^14}")
    table([("pipeline", 56), ("mm", 9), ("median", 8), ("cover%", 8), ("n", 6), ("mm", 6), ("n", 6), ("mm", 6),
           ("n", 6), ("mm", 6), ("n", 6), ("mm", 6), ("MPJPE", 7), ("cover%", 7)], rows, 56)
    print("edited cells: world-frame error (mm, mean and median) and share output on the cells of the one-camera "
          "frames; interp / rays / prior / lifting:\nhow many of them each mechanism filled and their error; all "
          "cells: pelvis-aligned MPJPE and coverage over every cell of every clip.")
    if LIFTING:
        print("\n   paired, on the edited cells both output:")
        for a, b in (("interp + rays + prior (no lifting)", ALIGNED_TOO), ("interp + rays + prior (no lifting)", DEFAULT_ROW),
                     ("no rays (max_carry_s=0): prior", f"no rays (max_carry_s=0): {DEFAULT_ROW}")):
            ea, eb = cell_errors(runs[a]), cell_errors(runs[b])
            both = cells & np.isfinite(ea) & np.isfinite(eb)
            differ = both & (np.abs(ea - eb) > 1e-9)
            print(f"   {a}  vs  {b}: {int(both.sum())} cells, {mean_mm(ea, both):.1f} vs {mean_mm(eb, both):.1f} mm; "
                  f"on the {int(differ.sum())} that differ {mean_mm(ea, differ):.1f} vs {mean_mm(eb, differ):.1f} mm "
                  f"(median {median_mm(ea, differ):.1f} vs {median_mm(eb, differ):.1f})")
    return summary


def print_seed_summary(per_seed: dict[int, dict[str, tuple[float, float]]]) -> None:
    """Part d's rows over every seed: the edited cells' mean error and the overall MPJPE per seed,
    and their means (each seed its own rigs, detector errors and one-camera runs)."""
    seeds = sorted(per_seed)
    labels = list(per_seed[seeds[0]])
    print(f"\n== d over seeds {seeds}: edited cells mm / overall MPJPE mm")
    head = f"{'pipeline':<86}" + "".join(f"{'seed ' + str(s):>14}" for s in seeds) + f"{'mean':>14}"
    print(head + "\n" + "-" * len(head))
    for label in labels:
        vals = np.array([per_seed[s][label] for s in seeds])
        cells = "".join(f"{e:>7.1f} /{m:>5.1f}" for e, m in vals) + f"{vals[:, 0].mean():>7.1f} /{vals[:, 1].mean():>5.1f}"
        print(f"{label:<86}{cells}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=150, help="frames per clip, at most (default 150)")
    ap.add_argument("--seed", type=int, nargs="+", default=[0],
                    help="seeds (each its own rigs, detector errors and edits; several: part d's rows summarised "
                         "over them at the end)")
    ap.add_argument("--gaps", type=int, nargs="+", default=[3, 10, 30, 60], help="run lengths N of part c")
    ap.add_argument("--repeats", type=int, default=3, help="random draws per N in part c")
    ap.add_argument("--parts", default="abcd", help="which parts to run (default abcd)")
    ap.add_argument("--lifting", type=Path, default=DEFAULT_LIFTING if DEFAULT_LIFTING.is_file() else None,
                    help="lifting checkpoint for the lifting rows of a2, b and d (default: the shipped one "
                         "when it exists, else no lifting rows)")
    args = ap.parse_args(argv)
    global LIFTING
    LIFTING = args.lifting
    missing = [str(p) for _, p in CHECKPOINTS if not Path(p).is_file()]
    if missing:
        print("checkpoints not found: " + ", ".join(missing))
        return 1
    t_start = time.perf_counter()
    errors = DetectorErrors()
    part_d: dict[int, dict[str, tuple[float, float]]] = {}
    for seed in args.seed:
        takes = make_takes(4, errors, args.frames, seed)
        print(f"\nFactorization-prior and lifting ablations (lifting checkpoint {LIFTING}): 4 cameras, "
              f"{describe_takes(takes)}; {describe_errors(errors)}; seed {seed}")
        for part, fn in (("a", lambda: ablation_dictionary(takes)),
                         ("b", lambda: ablation_one_camera(takes, seed)),
                         ("c", lambda: ablation_unseen(takes, seed, tuple(args.gaps), args.repeats)),
                         ("d", lambda: part_d.__setitem__(seed, ablation_one_camera_body(takes, seed)))):
            if part in args.parts:
                t0 = time.perf_counter()
                fn()
                print(f"   [{time.perf_counter() - t0:.0f} s]")
    if len(part_d) > 1:
        print_seed_summary(part_d)
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
