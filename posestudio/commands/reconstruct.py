"""``posestudio reconstruct``: 3D skeletons from multi-view 2D keypoints and a calibrated rig."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = """example:
  posestudio reconstruct --calibration rig.toml --keypoints2d keypoints2d.npz --out results/take1
  posestudio reconstruct --calibration rig.toml --keypoints2d k.npz --out live_out --live

keypoints2d.npz holds keypoints (cameras, frames, joints, 3) = x, y in pixels and a confidence
(NaN where absent), camera_names matching the rig, joint_names of a known layout (H36M17,
COCO17, BlazePose33) and fps. Writes OUT/points3d.npz (frames, 17, 3) in metres in the rig's
world frame with per-joint confidence, and OUT/report.json."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reconstruct", help="triangulate and smooth 3D skeletons from 2D keypoints",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calibration", required=True, type=Path, help="rig file (rig.toml)")
    p.add_argument("--keypoints2d", required=True, type=Path, help="2D keypoint file (.npz)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--live", action="store_true", help="causal low-latency filter instead of offline smoothing")
    p.add_argument("--threshold-px", type=float, default=12.0, help="outlier view threshold, pixels (default 12)")
    p.add_argument("--min-confidence", type=float, default=0.3, help="ignore detections below this (default 0.3)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from posestudio.reconstruction.pipeline import ReconstructionOptions, run_reconstruction
    from posestudio.reconstruction.triangulation import TriangulationOptions

    opts = ReconstructionOptions(live=args.live, triangulation=TriangulationOptions(
        min_confidence=args.min_confidence, threshold_px=args.threshold_px))
    result = run_reconstruction(args.calibration, args.keypoints2d, args.out, opts)
    r = result.report
    print(f"{r['frames']} frames, {len(r['cameras'])} cameras, layout {r['input_layout']} -> {r['output_layout']}: "
          f"{r['fraction_reconstructed']:.1%} of joints reconstructed, reprojection RMS "
          f"{r['reprojection_rms_px'] or float('nan'):.2f} px, bone-length CV {r['bone_length_cv']:.3f}")
    print(f"wrote {args.out / 'points3d.npz'} and {args.out / 'report.json'}")
    return 0
