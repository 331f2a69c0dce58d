"""Animation export benchmark: 3D joints -> solved skeleton -> BVH -> read back, against a swing-only peer.

Run from the repository root: ``.venv/bin/python -m benchmarks.export`` (``--clips N`` limits the
motion-capture clips, ``--no-blender`` skips the Blender check).

Three inputs:

1. **Motion capture** (``../shared/data/bandai_mocap_1``, all clips as 17-joint bodies): the truth
   is exact, so the round trip measures the solver and the file alone.
2. **Reconstructed takes**: the reconstruction benchmark's clips seen by 4 virtual cameras with
   realistic detector errors (correlated jitter, biases, left/right swaps, outliers), reconstructed
   by PoseStudio's offline pipeline; the solver works from the reconstruction (with its
   confidences), and the table also scores the BVH against the motion-capture truth.
3. **A 10-minute take at 60 fps** (a clip tiled): solve time against the take's own duration.
4. With ``--take DIR``: any ``posestudio reconstruct`` output, e.g. of the real 4-camera clip
   (``make bench`` reconstructs ``../shared/data/pose2sim_demo_single`` with BlazePose first).

Columns: round trip (mean / p95 distance between the input joints and the joints forward
kinematics gives from the written-and-reread BVH, mm); bone-length error (mean absolute difference
between the actor's solved bones and the motion capture's, mm); foot sliding (mean ground-plane
motion per frame of the ankle while planted, contacts detected on the input, mm/frame, input ->
output); the largest frame-to-frame rotation of any bone (degrees; the motion capture's own BVH
in brackets) and of the body without the feet, which a 17-joint body does not observe; solve
speed (frames/s).

The peer: no installable package turns 3D joints into a BVH (FreeMoCap's and EasyMocap's
exporters live inside their applications; the motion-generation community's ``joints2bvh`` scripts
are not packaged), so the row a user would otherwise get is written here from that approach's
description: each bone's rotation is the smallest rotation from its template direction to the
observed one (no twist control), bone lengths are the take's mean lengths, no foot handling.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestudio.core.bvh import Y_UP_TO_Z_UP, read_bvh, write_bvh
from posestudio.core.keypoints_file import Keypoints2D, Points3D
from posestudio.models.datasets.bandai import bandai_to_h36m17
from posestudio.models.keypoints import H36M17
from posestudio.reconstruction.pipeline import reconstruct
from posestudio.reconstruction.skeleton import JOINT_NAMES, rotation_jumps_deg, solve_skeleton
from posestudio.reconstruction.skeleton.actor import measure_bones
from posestudio.reconstruction.skeleton.blender import blender_joints, find_blender
from posestudio.reconstruction.skeleton.contacts import detect_contacts, foot_slide_mm
from posestudio.reconstruction.skeleton.definition import observed_pairs
from posestudio.reconstruction.skeleton.frames import minimal_rotations, unit
from posestudio.reconstruction.skeleton.solution import bvh_h36m_points
from posestudio.synthetic.body_detections import DetectorErrors

from .reconstruction import MOCAP, make_takes

FOOT_JOINTS = {i for i, n in enumerate(JOINT_NAMES) if "Foot" in n or "Toe" in n}
BODY = [i for i in range(len(JOINT_NAMES)) if i not in FOOT_JOINTS]


@dataclass
class Row:
    """One method on one take."""

    round_trip_mm: np.ndarray  # per frame and joint
    bone_err_mm: float
    slide_in: float
    slide_out: float
    jump_all: float
    jump_body: float
    seconds: float
    frames: int
    joints: np.ndarray  # (F, 17, 3) what the method's skeleton puts at the H36M17 points


def bvh_h36m(path: Path) -> np.ndarray:
    """``(F, 17, 3)`` H36M17 points of one of our BVH files read back by the independent reader."""
    return bvh_h36m_points(read_bvh(path))


def ankle_slide(joints: np.ndarray, fps: float, contacts: np.ndarray) -> float:
    """Mean of both ankles' sliding (mm/frame) over the given ``(F, 2)`` contacts; Z-up input."""
    y_up = joints @ Y_UP_TO_Z_UP
    values = [foot_slide_mm(y_up[:, H36M17.index(n)], contacts[:, k]) for k, n in enumerate(("l_ankle", "r_ankle"))]
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def input_contacts(joints: np.ndarray, fps: float) -> np.ndarray:
    y_up = joints @ Y_UP_TO_Z_UP
    return np.stack([detect_contacts(y_up[:, H36M17.index(n)], fps) for n in ("l_ankle", "r_ankle")], axis=1)


def ours(points: Points3D, tmp: Path) -> tuple[np.ndarray, np.ndarray, float, dict[str, float]]:
    """Solve, write, read back: (H36M17 joints from the file, rotations, seconds, bones)."""
    t0 = time.perf_counter()
    solution = solve_skeleton(points)
    bvh = solution.to_bvh()
    seconds = time.perf_counter() - t0
    write_bvh(tmp / "ours.bvh", bvh)
    return bvh_h36m(tmp / "ours.bvh"), solution.rotations, seconds, solution.actor.bone_lengths


def swing_only(points: Points3D) -> tuple[np.ndarray, np.ndarray, float, dict[str, float]]:
    """The peer approach: smallest rotation from each template bone to the observed bone, chained
    from the root, with the take's mean bone lengths (NaN frames held from the previous value)."""
    t0 = time.perf_counter()
    j = np.asarray(points.points3d, float)
    ok = np.isfinite(j).all(axis=-1)
    idx = np.where(ok, np.arange(len(j))[:, None], 0)
    j = np.take_along_axis(j, np.maximum.accumulate(idx, axis=0)[..., None], axis=0)  # hold last value
    bones = H36M17.bone_indices
    lengths = np.nanmean(np.linalg.norm(j[:, bones[:, 1]] - j[:, bones[:, 0]], axis=-1), axis=0)
    template = unit(np.median(j[:, bones[:, 1]] - j[:, bones[:, 0]], axis=0))  # a fixed template pose
    direction = unit(j[:, bones[:, 1]] - j[:, bones[:, 0]])
    out = np.empty_like(j)
    out[:, 0] = j[:, 0]
    rot = np.empty((len(j), len(bones), 3, 3))
    for b, (p, c) in enumerate(bones):  # bones are listed parents first
        rot[:, b] = minimal_rotations(np.broadcast_to(template[b], direction[:, b].shape), direction[:, b])
        out[:, c] = out[:, p] + lengths[b] * np.einsum("fab,b->fa", rot[:, b], template[b])
    seconds = time.perf_counter() - t0
    return out, rot, seconds, measure_bones(j @ Y_UP_TO_Z_UP, np.ones(j.shape[:2]))  # bones: for the table only


def score(name: str, method, points: Points3D, truth_bones: dict[str, float], tmp: Path) -> Row:
    joints = np.asarray(points.points3d, float)
    contacts = input_contacts(np.nan_to_num(joints), points.fps)
    if method == "ours":
        out, rot, seconds, bones = ours(points, tmp)
    else:
        out, rot, seconds, bones = swing_only(points)
    ok = np.isfinite(joints).all(axis=-1)
    rt = 1000 * np.linalg.norm(out - joints, axis=-1)[ok]
    bone_err = 1000 * np.mean([abs(bones[k] - truth_bones[k]) for k in truth_bones])
    jumps = rotation_jumps_deg(rot)
    body = jumps[:, BODY] if method == "ours" else jumps
    return Row(rt, bone_err, ankle_slide(np.nan_to_num(joints), points.fps, contacts),
               ankle_slide(out, points.fps, contacts), float(jumps.max()), float(body.max()), seconds, len(joints),
               out)


def print_table(title: str, rows: dict[str, list[Row]], extra: str = "") -> None:
    print(f"\n{title}")
    print(f"{'method':34s} {'takes':>5s} {'round trip mm':>15s} {'bones mm':>9s} {'slide in->out mm/f':>19s} "
          f"{'max jump deg':>13s} {'(body)':>7s} {'frames/s':>10s}")
    for name, rs in rows.items():
        rt = np.concatenate([r.round_trip_mm for r in rs])
        frames = sum(r.frames for r in rs)
        secs = sum(r.seconds for r in rs)
        slide_in = np.nanmean([r.slide_in for r in rs])
        slide_out = np.nanmean([r.slide_out for r in rs])
        print(f"{name:34s} {len(rs):5d} {rt.mean():7.2f} / {np.percentile(rt, 95):5.1f} {np.mean([r.bone_err_mm for r in rs]):9.2f} "
              f"{slide_in:8.2f} -> {slide_out:6.2f} {max(r.jump_all for r in rs):13.1f} {max(r.jump_body for r in rs):7.1f} "
              f"{frames / secs:10.0f}")
    if extra:
        print(extra)


def mocap_part(n_clips: int | None, tmp: Path) -> None:
    files = sorted(MOCAP.glob("*.bvh"))[:n_clips]
    rows: dict[str, list[Row]] = {"PoseStudio solve -> BVH -> reread": [], "swing-only (joints2bvh-style)": []}
    captured_jump = 0.0
    for f in files:
        motion = read_bvh(f)
        joints = bandai_to_h36m17(motion)
        points = Points3D(joints, np.ones(joints.shape[:2]), list(H36M17.joints), motion.fps)
        truth = measure_bones(joints @ Y_UP_TO_Z_UP, np.ones(joints.shape[:2]))
        rows["PoseStudio solve -> BVH -> reread"].append(score(f.stem, "ours", points, truth, tmp))
        rows["swing-only (joints2bvh-style)"].append(score(f.stem, "peer", points, truth, tmp))
        captured_jump = max(captured_jump, float(rotation_jumps_deg(motion.world_transforms()[0]).max()))
    print_table(f"## Motion capture: {len(files)} Bandai clips, {sum(r.frames for r in rows['swing-only (joints2bvh-style)'])} "
                "frames at 30 fps (truth exact)", rows,
                f"largest frame-to-frame bone rotation in the motion capture's own BVH: {captured_jump:.1f} deg")


def reconstructed_part(frames: int, tmp: Path) -> None:
    takes = make_takes(4, DetectorErrors.realistic(0), frames, 0)
    rows: dict[str, list[Row]] = {"PoseStudio solve -> BVH -> reread": [], "swing-only (joints2bvh-style)": []}
    vs_truth: list[tuple[float, float, float]] = []
    for take in takes:
        result = reconstruct(take.rig, Keypoints2D(take.keypoints, take.rig.names, list(H36M17.joints), take.fps))
        points = result.points
        truth = measure_bones(take.truth @ Y_UP_TO_Z_UP, np.ones(take.truth.shape[:2]))
        rows["PoseStudio solve -> BVH -> reread"].append(score(take.name, "ours", points, truth, tmp))
        rows["swing-only (joints2bvh-style)"].append(score(take.name, "peer", points, truth, tmp))
        rec = np.asarray(points.points3d)
        vs_truth.append(tuple(float(np.nanmean(np.linalg.norm(x - take.truth, axis=-1)))
                              for x in (rec, rows["PoseStudio solve -> BVH -> reread"][-1].joints,
                                        rows["swing-only (joints2bvh-style)"][-1].joints)))
    a, b, c = np.mean(vs_truth, axis=0) * 1000
    print_table(f"## Reconstructed takes: {len(takes)} clips x {frames} frames, 4 cameras, realistic detector errors; "
                "round trip against the reconstruction, bones against the motion capture", rows,
                f"against the motion-capture truth (absolute, mm): reconstruction {a:.1f}, PoseStudio's BVH {b:.1f}, "
                f"swing-only {c:.1f}")


def folder_part(folder: Path, tmp: Path) -> None:
    """A ``posestudio reconstruct`` output (e.g. real footage): round trip against its joints."""
    from posestudio.core.keypoints_file import read_points3d
    from posestudio.core.skeleton import bone_length_cv

    points = read_points3d(folder / "points3d.npz")
    joints = np.asarray(points.points3d)
    truth = measure_bones(np.nan_to_num(joints) @ Y_UP_TO_Z_UP, np.nan_to_num(points.confidence))
    rows = {"PoseStudio solve -> BVH -> reread": [score(folder.name, "ours", points, truth, tmp)],
            "swing-only (joints2bvh-style)": [score(folder.name, "peer", points, truth, tmp)]}
    cv_in = bone_length_cv(joints, H36M17.bone_indices)
    print_table(f"## {folder}: {len(joints)} frames at {points.fps:g} fps (a reconstruction; no truth: bones "
                "against the reconstruction's medians)", rows,
                f"bone-length CV of the reconstruction {100 * cv_in:.2f} %; of the BVH 0 % by construction")


def long_take_part(tmp: Path) -> None:
    f = next(f for f in sorted(MOCAP.glob("*.bvh")) if "walk_normal" in f.stem)
    motion = read_bvh(f)
    clip = bandai_to_h36m17(motion)
    t = np.arange(len(clip)) / motion.fps
    t60 = np.arange(int(t[-1] * 60)) / 60.0
    clip60 = np.stack([[np.interp(t60, t, clip[:, j, k]) for k in range(3)] for j in range(17)]).transpose(2, 0, 1)
    n = 10 * 60 * 60
    reps = int(np.ceil(n / len(clip60)))
    drift = np.repeat(np.arange(reps), len(clip60))[:n, None, None] * (clip60[-1, 0] - clip60[0, 0])
    take = np.tile(clip60, (reps, 1, 1))[:n] + drift
    points = Points3D(take, np.full(take.shape[:2], 0.9), list(H36M17.joints), 60.0)
    t0 = time.perf_counter()
    bvh = solve_skeleton(points).to_bvh()
    solve_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    write_bvh(tmp / "long.bvh", bvh)
    write_s = time.perf_counter() - t1
    print(f"\n## A 10-minute take at 60 fps ({n} frames, {f.stem} tiled): solve + BVH channels {solve_s:.1f} s "
          f"({n / solve_s:.0f} frames/s, {600 / solve_s:.0f}x faster than the take), writing the file {write_s:.1f} s "
          f"({(tmp / 'long.bvh').stat().st_size / 1e6:.0f} MB)")


def blender_part(tmp: Path) -> None:
    if find_blender() is None:
        print("\n## Blender: not installed (apt-get install blender; make bench installs it): skipped")
        return
    for fragment in ("walk_normal", "dance-short_normal"):
        f = next(f for f in sorted(MOCAP.glob("*.bvh")) if fragment in f.stem)
        motion = read_bvh(f)
        joints = bandai_to_h36m17(motion)
        solution = solve_skeleton(Points3D(joints, np.ones(joints.shape[:2]), list(H36M17.joints), motion.fps))
        write_bvh(tmp / "b.bvh", solution.to_bvh())
        t0 = time.perf_counter()
        arm = blender_joints(tmp / "b.bvh")
        sk, h = observed_pairs(H36M17.joints)
        heads = np.stack([arm.joint(JOINT_NAMES[i]) for i in sk], axis=1)
        err = 1000 * np.linalg.norm(heads - joints[:, h], axis=-1)
        print(f"\n## Blender's BVH importer ({f.stem}, {len(joints)} frames): armature joints vs our 3D joints "
              f"mean {err.mean():.1f} mm, p95 {np.percentile(err, 95):.1f} mm, max {err.max():.1f} mm "
              f"[{time.perf_counter() - t0:.1f} s]")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", type=int, default=None, help="motion-capture clips (default all)")
    p.add_argument("--frames", type=int, default=150, help="frames per reconstructed take")
    p.add_argument("--no-blender", action="store_true")
    p.add_argument("--take", type=Path, action="append", default=[],
                   help="also a 'posestudio reconstruct' output folder (repeatable), e.g. of real footage")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        mocap_part(args.clips, tmp)
        reconstructed_part(args.frames, tmp)
        for folder in args.take:
            folder_part(folder, tmp)
        long_take_part(tmp)
        if not args.no_blender:
            blender_part(tmp)
    print(f"\n[{time.perf_counter() - t0:.0f} s]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
