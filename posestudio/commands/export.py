"""``posestudio export``: a reconstruction as files other tools open (BVH, TRC, C3D, CSV, JSON)."""

from __future__ import annotations

import argparse
from pathlib import Path

from posestudio.core.errors import InputError
from posestudio.reconstruction.export.take import UP_AXES, read_take
from posestudio.reconstruction.export.writers import FORMATS, export_take

EXAMPLE = """example:
  posestudio export results/take1 --bvh take1.bvh
  posestudio export results/take1 --trc take1.trc --c3d take1.c3d --fps 100
  posestudio export results/take1 --bvh take1.bvh --units m --up z
  posestudio export results/take1 --person 1 --csv person1.csv --json person1.json
  posestudio export results/take1 --fbx take1.fbx        (needs Blender installed)

DIR is a 'posestudio reconstruct' output folder: DIR/points3d.npz is read (with --person K,
DIR/people/person_K/points3d.npz from --all-people). Name one file per format; several in one
call are written all or nothing: every option is checked first, each file is written under a
temporary name beside it, and only when all are written are they renamed into place.

Axes and units: BVH (a skeleton solved from the joints: Hips root, T-pose rest) and TRC (OpenSim)
are Y up by default, the world's Z becoming the file's Y ((x, y, z) -> (x, z, -y)); C3D, CSV and
JSON keep the world frame (Z up). --up sets every file's. --units sets BVH's (cm by default) and
TRC's (mm by default); C3D is always mm, CSV and JSON metres. --fps resamples in
time (linear interpolation of positions; BVH: of the solved motion). A joint the reconstruction
could not place is an empty field (TRC, CSV), a point with residual -1 (C3D) or null (JSON).
docs/export_formats.md describes each format."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand: one ``--<format> FILE`` option per format in ``FORMATS``."""
    p = sub.add_parser("export", help="write a reconstruction as BVH, TRC, C3D, CSV or JSON",
                       description=__doc__, epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path, metavar="DIR", help="a 'posestudio reconstruct' output folder")
    p.add_argument("--person", type=int, default=None, metavar="K",
                   help="export DIR/people/person_K (reconstruct --all-people) instead of the subject")
    for fmt in FORMATS.values():
        p.add_argument(f"--{fmt.name}", type=Path, default=None, metavar="FILE",
                       help=f"{fmt.description}; default {fmt.default_up.upper()} up, {fmt.units[0]}")
    p.add_argument("--fps", type=float, default=None, metavar="N",
                   help="frames per second of the files (default: the take's)")
    p.add_argument("--up", choices=UP_AXES, default=None,
                   help="up axis of every file (default: y for BVH and TRC, z for C3D, CSV and JSON)")
    p.add_argument("--units", choices=("mm", "cm", "m"), default=None,
                   help="length unit of BVH (default cm) and TRC (default mm); C3D is always mm, CSV and JSON m")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    outputs = {name: getattr(args, name) for name in FORMATS if getattr(args, name) is not None}
    if not outputs:
        raise InputError("nothing to export: name at least one file (" +
                         ", ".join(f"--{name} FILE" for name in FORMATS) + ")")
    if args.person is not None and args.person < 0:
        raise InputError(f"--person must be a person number (0 or more), got {args.person}")
    if "fbx" in outputs:
        from posestudio.reconstruction.skeleton.blender import find_blender

        if find_blender() is None:
            raise InputError("--fbx needs Blender (Debian: apt-get install blender; or set $BLENDER to its path)")
    points, path = read_take(args.folder, args.person)
    for written in export_take(points, outputs, up=args.up, units=args.units, fps=args.fps, source=path):
        print(written.line())
    return 0
