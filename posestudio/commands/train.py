"""``posestudio train``: train the studio's learned models (``posestudio train factorization``)."""

from __future__ import annotations

import argparse
import shlex
import sys

EXAMPLE = """example:
  posestudio train factorization --out models/factorization/checkpoint.pt --epochs 500 --seed 0
  posestudio train factorization --out single.pt --epochs 500 --single-level   # ablation
  posestudio train factorization --out ours.pt --init models/factorization/checkpoint.pt --epochs 50 \\
      --session day1/rig.toml day1/keypoints2d.npz --session day2/rig.toml day2/keypoints2d.npz

Trains the consistent factorization network (2D pose -> canonical 3D shape + viewpoint) from 2D
projections of the Bandai motion capture seen by random virtual cameras; every 5th clip is held out
and scored (P-MPJPE of the canonical shape, mm). With --session it learns from a studio's own
recordings instead: each frame's 2D keypoints from the rig's cameras, with the rig's camera
rotations (still no 3D); --init fine-tunes an existing checkpoint. Uses CUDA when available."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand and its ``factorization`` model."""
    p = subparsers.add_parser("train", help="train a learned model (factorization prior)",
                              description="Train one of the studio's learned models.", epilog=EXAMPLE,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    models = p.add_subparsers(dest="model", metavar="MODEL", required=True)
    # The model's own options are parsed when the command runs: building them needs torch, which
    # every other posestudio command would otherwise import at start-up.
    f = models.add_parser("factorization", help="consistent factorization network (C3DPO-like 3D pose prior)",
                          add_help=False)
    f.add_argument("options", nargs=argparse.REMAINDER, help="training options (see --help)")
    f.set_defaults(func=run_factorization, passes_options_on="factorization")


def run_factorization(args: argparse.Namespace) -> int:
    """Train and save the factorization network; returns the exit status."""
    # Imported here for start-up time: the trainer imports torch, which no other command needs.
    from posestudio.models.factorization.train import build_parser, run

    parser = argparse.ArgumentParser(prog="posestudio train factorization",
                                     description="Train the consistent factorization network from 2D views only.",
                                     epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    build_parser(parser)
    options = parser.parse_args(args.options)
    return run(options, "posestudio " + shlex.join(sys.argv[1:]))
