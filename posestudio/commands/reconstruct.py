"""``posestudio reconstruct``: 3D skeletons from multi-view 2D keypoints and a calibrated rig."""

from __future__ import annotations

import argparse
from pathlib import Path

from posestudio.core.errors import InputError
from posestudio.reconstruction.options import ReconstructionOptions

EXAMPLE = """example:
  posestudio reconstruct --calibration rig.toml --keypoints2d keypoints2d.npz --out results/take1
  posestudio reconstruct --calibration rig.toml --keypoints2d k.npz --out live_out --live
  posestudio reconstruct --calibration rig.toml --keypoints2d k.npz --out take1 --prior ours.pt

keypoints2d.npz holds keypoints (cameras, frames, joints, 3) = x, y in pixels and a confidence
(NaN where absent), camera_names matching the rig, joint_names of a known layout (H36M17,
COCO17, BlazePose33) and fps. Writes OUT/points3d.npz (frames, 17, 3) in metres in the rig's
world frame with per-joint confidence, and OUT/report.json. A joint's confidence says how it was
made: from the cameras, or 0.3 interpolated, 0.25 carried along one camera's rays, 0.2 filled by
the factorization prior (--prior: a checkpoint from 'posestudio train factorization', e.g.
fine-tuned on the studio's own sessions)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``reconstruct`` subcommand; its defaults are :class:`ReconstructionOptions`'."""
    d = ReconstructionOptions(prior=None)   # no prior: reading the shipped one's path would load torch
    p = sub.add_parser("reconstruct", help="triangulate and smooth 3D skeletons from 2D keypoints",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calibration", required=True, type=Path, help="rig file (rig.toml)")
    p.add_argument("--keypoints2d", required=True, type=Path, help="2D keypoint file (.npz)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--live", action="store_true", default=d.live,
                   help="causal: each frame refined as it arrives, no look-ahead (default: the whole take at once)")
    p.add_argument("--threshold-px", type=float, default=d.triangulation.threshold_px,
                   help=f"outlier view threshold, pixels (default {d.triangulation.threshold_px:g})")
    p.add_argument("--min-confidence", type=float, default=d.triangulation.min_confidence,
                   help=f"ignore detections below this (default {d.triangulation.min_confidence:g})")
    p.add_argument("--max-gap-s", type=float, default=d.max_gap_s,
                   help=f"offline: interpolate gaps up to this long, seconds (default {d.max_gap_s:g})")
    p.add_argument("--max-carry-s", type=float, default=d.max_carry_s,
                   help=f"carry joints along a single camera's rays at most this long, seconds (default {d.max_carry_s:g})")
    prior = p.add_mutually_exclusive_group()
    prior.add_argument("--prior", type=Path, default=None,
                       help="factorization checkpoint for joints no two cameras give (default: the shipped one)")
    prior.add_argument("--no-prior", action="store_true", help="leave joints no two cameras give empty")
    p.add_argument("--no-refine", action="store_false", dest="refine", default=d.refine,
                   help="skip the refinement (bone lengths, smoothness, reprojection): offline keeps the "
                        "zero-phase smoothing, live uses the One Euro filter")
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> ReconstructionOptions:
    """The :class:`ReconstructionOptions` the parsed arguments ask for; every other setting keeps its default.

    Raises:
        InputError: a negative duration or threshold.
    """
    for name in ("max_gap_s", "max_carry_s", "threshold_px"):
        if getattr(args, name) < 0:
            raise InputError(f"--{name.replace('_', '-')} must be zero or more, got {getattr(args, name)}")
    opts = ReconstructionOptions(live=args.live, max_gap_s=args.max_gap_s, max_carry_s=args.max_carry_s,
                                 refine=args.refine)
    opts.triangulation.min_confidence = args.min_confidence
    opts.triangulation.threshold_px = args.threshold_px
    if args.no_prior:
        opts.prior = None
    elif args.prior is not None:
        opts.prior = args.prior
    return opts


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: the pipeline loads torch, which would slow down every command line
    from posestudio.reconstruction.pipeline import run_reconstruction

    result = run_reconstruction(args.calibration, args.keypoints2d, args.out, options_from_args(args))
    r = result.report
    print(f"{r.frames} frames, {len(r.cameras)} cameras, layout {r.input_layout} -> {r.output_layout}: "
          f"{r.fraction_reconstructed:.1%} of joints reconstructed, reprojection RMS "
          f"{r.reprojection_rms_px:.2f} px, bone-length CV {r.bone_length_cv:.3f}")
    print(f"wrote {args.out / 'points3d.npz'} and {args.out / 'report.json'}")
    return 0
