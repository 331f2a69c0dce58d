"""``posestudio train``: train the studio's learned models (``posestudio train factorization``)."""

from __future__ import annotations

import argparse
import shlex
import sys

EXAMPLE = """example:
  posestudio train factorization --out models/factorization/checkpoint.pt --epochs 500 --seed 0
  posestudio train factorization --out single.pt --epochs 500 --single-level   # ablation

Trains the consistent factorization network (2D pose -> canonical 3D shape + viewpoint) from 2D
projections of the Bandai motion capture seen by random virtual cameras; every 5th clip is held out
and scored (P-MPJPE of the canonical shape, mm). Uses CUDA when available."""


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
    f.set_defaults(func=run_factorization, passes_options_on=True)


def run_factorization(args: argparse.Namespace) -> int:
    """Train and save the factorization network; returns the exit status."""
    from posestudio.models.factorization.train import build_parser, run

    parser = argparse.ArgumentParser(prog="posestudio train factorization",
                                     description="Train the consistent factorization network from 2D views only.",
                                     epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    build_parser(parser)
    options = parser.parse_args(args.options)
    return run(options, "posestudio " + shlex.join(sys.argv[1:]))
