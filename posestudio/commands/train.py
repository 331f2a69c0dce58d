"""``posestudio train``: train the studio's learned models (``factorization``, ``tce``, ``lifting``)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from posestudio.core.errors import InputError

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

LIFTING_EXAMPLE = """example:
  posestudio train lifting --out models/lifting/checkpoint.pt --threads 1
  posestudio train lifting --out lift.pt --resume lift.pt                 # continue an interrupted run
  posestudio train lifting --out sup.pt --supervised                      # upper bound: 3D labels
  posestudio train lifting --out ours.pt --init models/lifting/checkpoint.pt --pretrain-epochs 0 \\
      --epochs 40 --session day1/rig.toml day1/keypoints2d.npz

Trains the lifting network (a window of one camera's 2D -> 3D in that camera, metres, with a
root-position branch) without 3D labels: pre-training on reprojection and bone symmetry, then the
transform re-projection loss (each view's lift moved into the instant's other views with the rig's
poses and compared with their 2D) and the single-view rotation cycle. Data: the Bandai motion
capture seen by random virtual cameras with detector-like 2D (every 5th clip held out and scored),
and with --session a studio's own recordings (rig + 2D; still no 3D). A checkpoint with the
optimiser state is written every 10 epochs and on --max-seconds; --resume continues it. Uses CUDA
when available (--device)."""

TCE_EXAMPLE = """example:
  posestudio train tce --out tce.pt --steps 3000 --threads 1
  posestudio train tce --out tce.pt --steps 3000 --resume               # continue an interrupted run
  posestudio train tce --out single.pt --steps 3000 --single-frame      # ablation: no temporal module
  posestudio reconstruct --calibration rig.toml --videos take1/cam0*.mp4 --out take1 --detector tce
  posestudio train tce --out ours.pt --init models/tce/checkpoint.pt --steps 400 \\
      --session take1 --videos take1/cam01.mp4 take1/cam02.mp4 take1/cam03.mp4 --calibration rig.toml

Trains the TCE video pose network (frames t-1, t, t+1 -> frame t's 17 joints) on three-frame crops
rendered from the Bandai motion capture (every 5th clip held out; procedural walks where
../shared/data/bandai_mocap_1 is absent): tracker-like boxes, wider ones and whole-frame-search-like
views with a small person. With --session (a 'posestudio reconstruct --videos' output folder, with
that take's --videos, repeatable) it also learns from the studio's own footage (multi-view
bootstrapping): the session's 3D reprojected into every camera where the cameras agree, on crops of
the real frames (--frames A:B restricts the frames used), mixed with rendered samples
(--session-share). --init fine-tunes a checkpoint. Progress is printed every --log-every steps and a
checkpoint written every --checkpoint-every steps (--resume continues from it). Uses CUDA when
available (--device)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand and its ``factorization``, ``tce`` and ``lifting`` models."""
    p = subparsers.add_parser("train", help="train a learned model (factorization prior, TCE 2D pose network, lifting network)",
                              description="Train one of the studio's learned models.",
                              epilog=EXAMPLE + "\n\n" + TCE_EXAMPLE + "\n\n" + LIFTING_EXAMPLE,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    models = p.add_subparsers(dest="model", metavar="MODEL", required=True)
    # The model's own options are parsed when the command runs: building them needs torch, which
    # every other posestudio command would otherwise import at start-up.
    f = models.add_parser("factorization", help="consistent factorization network (C3DPO-like 3D pose prior)",
                          add_help=False)
    f.add_argument("options", nargs=argparse.REMAINDER, help="training options (see --help)")
    f.set_defaults(func=run_factorization, passes_options_on="factorization")
    t = models.add_parser("tce", help="TCE video 2D pose network (rendered data, multi-view bootstrapping)",
                          add_help=False)
    t.add_argument("options", nargs=argparse.REMAINDER, help="training options (see --help)")
    t.set_defaults(func=run_tce, passes_options_on="tce")
    lift = models.add_parser("lifting", help="self-supervised 2D-to-3D lifting network (one camera -> 3D)",
                             add_help=False)
    lift.add_argument("options", nargs=argparse.REMAINDER, help="training options (see --help)")
    lift.set_defaults(func=run_lifting, passes_options_on="lifting")


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


def run_lifting(args: argparse.Namespace) -> int:
    """Train and save the lifting network; returns the exit status."""
    # Imported here for start-up time: the trainer imports torch, which no other command needs.
    from posestudio.models.lifting.train import build_parser, run

    parser = _OneLineParser(prog="posestudio train lifting",
                            description="Train the lifting network (one camera's 2D -> 3D) without 3D labels.",
                            epilog=LIFTING_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    build_parser(parser)
    options = parser.parse_args(args.options)
    return run(options, "posestudio " + shlex.join(sys.argv[1:]))


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose mistakes are :class:`InputError` (one line, exit status 2, from the CLI)."""

    def error(self, message: str):  # type: ignore[override]
        raise InputError(message)


def frame_range(text: str) -> tuple[int, int]:
    """``"A:B"`` -> ``(A, B)``: frames ``A <= f < B`` (either end may be empty: ``":50"``, ``"50:"``)."""
    parts = text.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"{text!r}: expected A:B (frames A to B-1, e.g. 0:50)")
    try:
        lo = int(parts[0]) if parts[0].strip() else 0
        hi = int(parts[1]) if parts[1].strip() else sys.maxsize
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected whole frame numbers A:B (e.g. 0:50)") from None
    if lo < 0 or hi <= lo:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0 <= A < B")
    return lo, hi


def tce_parser() -> argparse.ArgumentParser:
    """The options of ``posestudio train tce`` (the network's and the data's)."""
    from posestudio.models.tce.train import build_parser
    from posestudio.synthetic.tce_data import RENDERED_BOXES, RenderedSourceOptions

    p = _OneLineParser(prog="posestudio train tce", description="Train the TCE video 2D pose network.",
                       epilog=TCE_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    build_parser(p)
    p.add_argument("--log-every", type=int, default=25, help="steps between progress lines")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's; 1 on a shared machine)")
    p.add_argument("--strip", action="store_true",
                   help="write the final checkpoint without optimizer state (small, to ship; no --resume after)")
    d = p.add_argument_group("rendered data")
    d.add_argument("--bandai", type=Path, default=None,
                   help="folder of Bandai BVH clips (default ../shared/data/bandai_mocap_1; walks when absent)")
    lo, hi = RenderedSourceOptions().search_scale
    d.add_argument("--wide-share", type=float, default=RENDERED_BOXES.wide_share,
                   help="share of wider-than-tracked boxes (the rendered crops' boxes.wide_share)")
    d.add_argument("--search-share", type=float, default=RENDERED_BOXES.search_share,
                   help=f"share of whole-frame-search views (person {lo:g}-{hi:g}x smaller than the crop; "
                        "boxes.search_share)")
    s = p.add_argument_group("multi-view bootstrapping on a studio's footage")
    s.add_argument("--session", type=Path, action="append", default=[],
                   help="a 'posestudio reconstruct --videos' output folder (keypoints2d.npz, points3d.npz); "
                        "repeatable, each followed by its --videos")
    s.add_argument("--videos", nargs="+", action="append", default=[],
                   help="the session's recordings, named after the cameras")
    s.add_argument("--calibration", type=Path, action="append", default=[],
                   help="the rig the session was reconstructed with (once for all sessions, or once per "
                        "session); not needed where the session folder has its own rig.toml")
    s.add_argument("--frames", type=frame_range, default=None,
                   help="A:B: train on the session frames A..B-1 only (and crop no frame outside them)")
    s.add_argument("--session-share", type=float, default=0.5, help="share of each batch from the sessions")
    s.add_argument("--session-memory-mb", type=float, default=512.0,
                   help="at most this much memory for the sessions' crops (frames are subsampled evenly)")
    return p


def _session_sources(opts: argparse.Namespace, input_size: int):  # noqa: ANN202 - a SampleSource
    """The sessions' sample source (one per session, drawn in proportion to their samples), or None."""
    if not opts.session:
        if opts.videos or opts.calibration or opts.frames is not None:
            raise InputError("--videos, --calibration and --frames describe a --session; give --session DIR")
        return None
    from posestudio.reconstruction.tce_sessions import SessionOptions, SessionSource, concat_sessions

    if len(opts.videos) != len(opts.session):
        raise InputError(f"--session given {len(opts.session)} times but --videos {len(opts.videos)} times: "
                         "give each session its recordings")
    if len(opts.calibration) not in (0, 1, len(opts.session)):
        raise InputError(f"--calibration given {len(opts.calibration)} times for {len(opts.session)} sessions: "
                         "give it once for all or once per session")
    if not 0.0 < opts.session_share <= 1.0:
        raise InputError(f"--session-share {opts.session_share}: expected a share in (0, 1]")
    sources = []
    budget = opts.session_memory_mb / len(opts.session)
    for i, (folder, videos) in enumerate(zip(opts.session, opts.videos)):
        calib = (opts.calibration[i] if len(opts.calibration) > 1 else
                 opts.calibration[0] if opts.calibration else None)
        options = SessionOptions(input_size=input_size, max_memory_mb=budget)
        src = SessionSource.from_folder(folder, videos, calibration=calib, frames=opts.frames, options=options)
        print(f"session {folder}: {src.describe()}", flush=True)
        sources.append(src)
    return concat_sessions(sources)


def run_tce(args: argparse.Namespace) -> int:
    """Train and save the TCE network; returns the exit status."""
    # Imported here for start-up time: the trainer imports torch, which no other command needs.
    from dataclasses import replace

    import torch

    from posestudio.models.tce.train import config_from_args, save_tce_checkpoint, train_tce
    from posestudio.synthetic.tce_data import (
        RENDERED_BOXES,
        RenderedSource,
        RenderedSourceOptions,
        mix_sources,
        training_motions,
    )

    opts = tce_parser().parse_args(args.options)
    command = "posestudio " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else (
        "posestudio train tce " + shlex.join(args.options))
    if opts.threads is not None:
        if opts.threads < 1:
            raise InputError(f"--threads {opts.threads}: expected >= 1")
        torch.set_num_threads(opts.threads)
    if opts.log_every < 1:
        raise InputError(f"--log-every {opts.log_every}: expected >= 1")
    try:
        config = config_from_args(opts)
    except InputError as exc:
        raise InputError(f"{exc} (see --help)") from None
    config.log_every = opts.log_every
    config.augment.crop = False  # the sources crop as the detector does (tracked, wide and search views)
    out = Path(opts.out)
    if opts.resume and not out.is_file():
        print(f"--resume: {out} does not exist yet; starting a new run", flush=True)
    sessions = _session_sources(opts, config.input_size)
    motions, where = training_motions(opts.bandai)
    boxes = replace(RENDERED_BOXES, wide_share=opts.wide_share, search_share=opts.search_share)
    rendered = RenderedSource(motions, RenderedSourceOptions(input_size=config.input_size, boxes=boxes))
    source = rendered if sessions is None else mix_sources(rendered, sessions, opts.session_share)
    kind = "temporal" if config.temporal else "single-frame"
    print(f"training TCE ({kind}, {config.input_size} px crops) for {config.steps} steps, batch {config.batch}, "
          f"on {where}" + ("" if sessions is None else f" and {len(opts.session)} session(s), "
                                                       f"share {opts.session_share:g}")
          + (f"; from {opts.init}" if opts.init else "") + f"; torch threads {torch.get_num_threads()}", flush=True)
    started = time.perf_counter()
    last = {"step": None, "seconds": None}

    def progress(entry: dict) -> None:
        step, secs = entry["step"], entry["seconds"]
        rate = ((secs - last["seconds"]) / (step - last["step"]) if last["step"] is not None and step > last["step"]
                else secs / max(step, 1))
        last.update(step=step, seconds=secs)
        eta = rate * (config.steps - step)
        print(f"step {step}/{config.steps}  loss {entry['loss']:.5f}  lr {entry['lr']:.2e}  {rate:.2f} s/step  "
              f"elapsed {secs:.0f} s  eta {eta:.0f} s", flush=True)

    out.parent.mkdir(parents=True, exist_ok=True)
    model, log = train_tce(config, source, init=opts.init, checkpoint=out, resume=opts.resume, progress=progress,
                           command=command)
    log["data"] = where + ("" if sessions is None else f"; sessions {[str(s) for s in opts.session]} "
                                                       f"(share {opts.session_share:g}, frames {opts.frames})")
    if opts.strip:
        config.save_optimizer = False
        save_tce_checkpoint(out, model.cpu(), config, log, command)
    last_loss = log["steps"][-1]["loss"] if log["steps"] else float("nan")
    print(f"trained to step {log.get('step', 0)} in {log['seconds']:.0f} s on {log['device']} "
          f"({log['n_parameters']} parameters); final loss {last_loss:.5f}"
          + (f"; stopped early after --max-seconds at step {log['stopped_early']}" if "stopped_early" in log else "")
          + f"; this run {time.perf_counter() - started:.0f} s", flush=True)
    print(f"wrote {out}" + (" (no optimizer state)" if opts.strip else ""), flush=True)
    return 0
