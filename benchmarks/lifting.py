"""The self-supervised lifting network (issue 17): one camera's 2D to 3D, scored.

Run from the repository root: ``.venv/bin/python -m benchmarks.lifting`` (``make bench`` does).

Part 1, held-out motion capture (every 5th Bandai clip, never trained on): each window rendered
into one random virtual camera (2.5-7 m, focal 650-1350 px) with 3 px Gaussian 2D noise; the
centre frame's lift against the true camera-frame joints. Rows: the shipped self-supervised
network, the same network trained with 3D labels (the upper bound), the seed's ablations (no
root-position branch: weak-perspective depth; no transform re-projection loss: single-view losses
only), and the factorization prior alone (its canonical shape turned by its predicted viewpoint,
1.70 m tall, placed by weak perspective). Metrics are defined in
:mod:`posestudio.models.lifting.evaluation` (MPJPE root-aligned, P-MPJPE, N-MPJPE, PCK3D at
150 mm, AUC 0-150 mm, absolute root error, scale of the body).

Part 2, real footage (``../shared/data/pose2sim_demo_single``, 4 cameras, BlazePose 2D through
``posestudio reconstruct --videos``'s 2D stage): each camera's monocular 3D against the
four-camera reconstruction: MPJPE after root alignment, P-MPJPE, and the absolute (world-frame)
error, with the network's own scale and with the height of the four-camera skeleton given.

How the pipeline's fills change with lifting is measured in ``benchmarks/reconstruction_ablation.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.tables import print_table
from posestudio.core import pose_metrics
from posestudio.core.keypoints_file import Keypoints2D, write_keypoints2d
from posestudio.models.datasets.bandai import DEFAULT_BANDAI_DIR, load_bandai
from posestudio.models.factorization.network import normalise_2d
from posestudio.models.factorization.prior import FactorizationPrior
from posestudio.models.keypoints import keypoints_for_rig
from posestudio.models.lifting.data import MotionWindows
from posestudio.models.lifting.evaluation import evaluate, render_test_set, score
from posestudio.models.lifting.lifter import DEFAULT_CHECKPOINT, Lifter, body_height
from posestudio.models.lifting.losses import TYPICAL_HEIGHT_M
from posestudio.models.lifting.network import root_from_depth, weak_perspective_depth
from posestudio.models.lifting.train import LiftingTrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "benchmarks" / "checkpoints"
ABLATIONS = {
    "self-supervised (shipped)": DEFAULT_CHECKPOINT,
    "3D labels (upper bound)": CHECKPOINTS / "lifting_supervised.pt",
    "no root-position branch": CHECKPOINTS / "lifting_no_root.pt",
    "no transform loss": CHECKPOINTS / "lifting_no_transform.pt",
}
COLUMNS = [("MPJPE", "mpjpe_mm", "{:.1f}"), ("P-MPJPE", "p_mpjpe_mm", "{:.1f}"), ("N-MPJPE", "n_mpjpe_mm", "{:.1f}"),
           ("PCK3D", "pck3d", "{:.1f}"), ("AUC", "auc", "{:.1f}"), ("root mm", "root_mm", "{:.0f}"),
           ("abs mm", "abs_mpjpe_mm", "{:.0f}"), ("scale", "scale", "{:.3f}")]


@torch.no_grad()
def prior_alone(test: dict[str, torch.Tensor], window: int) -> dict[str, float]:
    """The factorization prior's single-view reading as a lift: ``R X`` (its viewpoint), scaled to
    :data:`TYPICAL_HEIGHT_M`, root depth from weak perspective, root X, Y from the 2D."""
    prior = FactorizationPrior.load(device="cpu")
    mid = window // 2
    xy, weight = test["xy"][:, mid].double(), test["weight"][:, mid].double()
    normed, mask, _, radius = normalise_2d(xy, weight > 0)
    out = prior.model(normed.float(), mask.float())
    shape = torch.einsum("nij,nkj->nki", out["rotation"].double(), out["shape"].double())
    shape = shape * (TYPICAL_HEIGHT_M / torch.as_tensor(body_height(shape.numpy())))[:, None, None]
    rel = shape - shape[:, :1]
    root = root_from_depth(rel, weak_perspective_depth(rel, weight, radius), xy, weight)
    return score((root[:, None] + rel).numpy(), test["truth"][:, mid].double().numpy())


def held_out(args: argparse.Namespace) -> None:
    clips = load_bandai(args.data, frame_stride=1)
    test_clips = [c for i, (_, c) in enumerate(clips) if i % 5 == 4]
    names = [n for i, (n, _) in enumerate(clips) if i % 5 == 4]
    lifters = {name: Lifter.load(path, device="cpu") for name, path in ABLATIONS.items() if Path(path).is_file()}
    window = next(iter(lifters.values())).config.window
    test = render_test_set(MotionWindows(test_clips, window, args.stride), seed=args.seed)
    n = test["xy"].shape[0]
    print(f"\n## Held-out motion capture: {len(test_clips)} Bandai clips ({', '.join(names[:4])}, ...), "
          f"{n} windows (centred every {args.stride} frames), one random camera each, 3 px noise\n")
    rows = []
    for name, path in ABLATIONS.items():
        if name not in lifters:
            print(f"  {name}: {path} not found (train it with the command in benchmarks/checkpoints/README.md)")
            continue
        t0 = time.perf_counter()
        scores = evaluate(lifters[name].model, test)
        ms = 1e3 * (time.perf_counter() - t0) / n
        rows.append([name, *(fmt.format(scores[key]) for _, key, fmt in COLUMNS), f"{ms:.3f}"])
    scores = prior_alone(test, window)
    rows.append(["factorization prior alone", *(fmt.format(scores[key]) for _, key, fmt in COLUMNS), "-"])
    print_table(["lifting", *(c for c, _, _ in COLUMNS), "ms/frame"], rows)
    print("\nMPJPE: root (pelvis) aligned, mm; P-MPJPE: per-frame similarity; N-MPJPE: root aligned + per-frame scale; "
          "PCK3D: % within 150 mm (root aligned); AUC: mean PCK3D over 0-150 mm, %; root mm: the pelvis's "
          "camera-frame position error; abs mm: joints without alignment; scale: median lifted / true height. "
          "ms/frame: CPU, batches of 4096, one thread.")


def finetune_on_half(rig_path: Path, kp: Keypoints2D, frames: slice, epochs: int, workdir: Path) -> Path:
    """``posestudio train lifting --init <shipped> --session`` on the frames ``frames`` of a take
    alone (written as their own keypoints file); returns the checkpoint."""
    part = Keypoints2D(kp.keypoints[:, frames], kp.camera_names, kp.joint_names, kp.fps)
    session = workdir / f"keypoints2d_{frames.start}_{frames.stop}.npz"
    write_keypoints2d(session, part)
    out = workdir / f"lifting_{frames.start}_{frames.stop}.pt"
    config = LiftingTrainConfig(pretrain_epochs=0, epochs=epochs, lr=3e-4, lr_step_epochs=10 * epochs,
                                sessions=[(str(rig_path), str(session))], session_share=0.5, eval_every=10 * epochs)
    train(config, init=str(DEFAULT_CHECKPOINT), out=out)
    return out


def real_footage(args: argparse.Namespace) -> None:
    from benchmarks.detection import DEMO, detect_real
    from posestudio.calibration.rig_formats import import_rig
    from posestudio.reconstruction.pipeline import reconstruct

    if not DEMO.is_dir():
        print(f"\n(real footage skipped: {DEMO} not found)")
        return
    rig = import_rig(DEMO / "calibration" / "Calib.qca.txt")
    videos = sorted((DEMO / "videos").glob("cam0*.mp4"))
    vk, _ = detect_real("blazepose", rig, videos)
    ref = reconstruct(vk.rig, vk.keypoints).points.points3d                              # (F, 17, 3)
    height = float(np.nanmedian(body_height(ref)))
    rig17, kp, _ = keypoints_for_rig(vk.rig, vk.keypoints, "BlazePose 2D")             # (C, F, 17, 3) H36M17
    fps, n = vk.keypoints.fps, kp.shape[1]
    halves = [slice(0, n // 2), slice(n // 2, n)]
    print(f"\n## Real footage: {DEMO.name}, each camera's monocular 3D (BlazePose 2D) against the four-camera "
          f"reconstruction ({n} frames at {fps:g} fps; its skeleton is {height:.2f} m tall)\n")
    lifts: dict[str, list] = {"shipped": [Lifter.load(device="cpu")] * 2}
    with tempfile.TemporaryDirectory() as tmp:
        rig_path = Path(tmp) / "rig.toml"
        vk.rig.save(rig_path)
        t0 = time.perf_counter()
        # each half is scored by the network fine-tuned on the other half
        lifts[f"fine-tuned on the other half ({args.finetune_epochs} epochs)"] = [
            Lifter.load(finetune_on_half(rig_path, vk.keypoints, halves[1 - h], args.finetune_epochs, Path(tmp)),
                        device="cpu") for h in range(2)]
        tuning_s = time.perf_counter() - t0
    rows = []
    for name, (first, second) in lifts.items():
        for c, cam in enumerate(rig17):
            own = [lifter.lift_camera(cam, kp[c], fps) for lifter in (first, second)]
            given = [lifter.lift_camera(cam, kp[c], fps, height_m=height) for lifter in (first, second)]
            pick = lambda views: np.concatenate([views[h].world_points[halves[h]] for h in range(2)])  # noqa: E731
            mine, scaled = pick(own), pick(given)
            rows.append([name, cam.name, f"{100 * np.mean([v.lifted.mean() for v in own]):.0f} %",
                         f"{1000 * pose_metrics.mpjpe(mine, ref):.1f}", f"{1000 * pose_metrics.p_mpjpe(mine, ref):.1f}",
                         f"{1000 * pose_metrics.mpjpe_absolute(mine, ref):.0f}",
                         f"{np.mean([v.height_m for v in own]):.2f}",
                         f"{1000 * pose_metrics.mpjpe_absolute(scaled, ref):.0f}"])
    print_table(["lifting", "camera", "frames lifted", "MPJPE", "P-MPJPE", "abs mm (own scale)", "height m",
                 "abs mm (height given)"], rows)
    print(f"\nMPJPE: pelvis aligned, mm, against the four-camera reconstruction (itself about 9 px reprojection, "
          f"benchmarks/detection.py); P-MPJPE: per-frame similarity; abs: world frame, no alignment. Fine-tuning: "
          f"`posestudio train lifting --init models/lifting/checkpoint.pt --pretrain-epochs 0 --epochs "
          f"{args.finetune_epochs} --lr 3e-4 --session rig.toml half.npz` (the session's 2D and rig only, mixed "
          f"half and half with the motion capture), {tuning_s:.0f} s for both halves; frames 0-{n // 2 - 1} are "
          f"scored with the network tuned on frames {n // 2}-{n - 1} and the other way round.")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lifting", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help=f"Bandai clips (default {DEFAULT_BANDAI_DIR})")
    p.add_argument("--stride", type=int, default=2, help="score every Nth frame of the held-out clips")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--skip-real", action="store_true", help="leave out the real footage")
    p.add_argument("--finetune-epochs", type=int, default=40, help="fine-tuning on each half of the real clip")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    held_out(args)
    if not args.skip_real:
        real_footage(args)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
