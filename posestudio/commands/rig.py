"""``posestudio rig``: convert rig files between tools, check a rig against recorded videos, refine a
rig from a take in which a camera moved."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from posestudio.calibration.resolution_check import explain_mismatches, source_sizes
from posestudio.calibration.rig_formats import EXPORT_FORMATS, IMPORT_FORMATS, export_rig, import_rig
from posestudio.capture.sources import FrameSource
from posestudio.core.errors import InputError
from posestudio.core.files import read_toml

CONVERT_EPILOG = """example:
  posestudio rig convert Calib.qca.txt rig.toml --to posestudio
  posestudio rig convert rig.toml calibration.toml --to anipose
formats read: posestudio, anipose, pose2sim, caliscope, qualisys (detected from the content when
--from is omitted); written: posestudio, anipose, pose2sim. Lengths are converted to metres."""

CHECK_EPILOG = """example:
  posestudio rig check rig.toml videos/cam01.mp4 videos/cam02.mp4 videos/cam03.mp4 videos/cam04.mp4 \\
      --reference cam01=stills/cam01_at_calibration.png --points points.toml --adjusted rig_video.toml
Videos are matched to cameras by file stem (cam01.mp4 -> camera cam01). --points is a TOML file with
cameras = [...] and [points.NAME] tables of camera = [x, y] pixels in the recorded frames;
--reference gives a still of a camera taken at the calibrated size (same scene)."""


REFINE_EPILOG = """example:
  posestudio rig refine --calibration rig.toml --keypoints2d keypoints2d.npz --out rig2.toml --report refine.json
The performer is the calibration object: each camera's detections are compared with the joints the
other cameras triangulate; a camera whose error jumps and stays up is reported (camera, frame, how
far it turned and shifted) and re-solved from the frames after (intrinsics fixed, scale and world
frame from the other cameras). rig2.toml is the rig as it stands at the end of the take; cameras
that did not move are written exactly as they were. Needs 3 or more cameras and 6 s of frames.
--whole-rig re-solves every camera's extrinsics together instead (intrinsics fixed; the world frame
and scale those of the rig as a whole), over the frames after the last move found."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rig convert``, ``rig check`` and ``rig refine``."""
    parser = subparsers.add_parser("rig", help="convert rig files; check a rig against videos; refine it from a take",
                                   description=__doc__)
    sub = parser.add_subparsers(dest="rig_command", metavar="ACTION")
    conv = sub.add_parser("convert", help="convert a rig file to another format",
                          epilog=CONVERT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    conv.add_argument("input", type=Path, help="rig file to read")
    conv.add_argument("output", type=Path, help="file to write")
    conv.add_argument("--to", required=True, choices=EXPORT_FORMATS, help="output format")
    conv.add_argument("--from", dest="source_format", choices=IMPORT_FORMATS, help="input format (default: detect)")
    conv.set_defaults(func=convert)
    chk = sub.add_parser("check", help="compare a rig's image sizes with recorded videos",
                         epilog=CHECK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    chk.add_argument("rig", type=Path, help="rig file (any importable format)")
    chk.add_argument("videos", type=Path, nargs="+", help="videos or image folders, named after the cameras")
    chk.add_argument("--points", type=Path, help="TOML of points seen in several views (recorded pixels)")
    chk.add_argument("--reference", action="append", default=[], metavar="CAM=IMAGE",
                     help="a still of CAM at the calibrated size (repeatable)")
    chk.add_argument("--adjusted", type=Path, help="write the adjusted rig here (PoseStudio rig.toml)")
    chk.set_defaults(func=check)
    ref = sub.add_parser("refine", help="find a camera that moved during a take and re-solve it from the performer",
                         epilog=REFINE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ref.add_argument("--calibration", type=Path, required=True, help="rig file (rig.toml) the take was calibrated with")
    ref.add_argument("--keypoints2d", type=Path, required=True, help="the take's 2D keypoint file (.npz)")
    ref.add_argument("--out", type=Path, required=True, help="write the rig as it stands at the end of the take here")
    ref.add_argument("--report", type=Path, default=None, help="also write the findings as JSON")
    ref.add_argument("--whole-rig", action="store_true",
                     help="re-solve every camera's extrinsics together (intrinsics fixed, scale from the rig)")
    ref.set_defaults(func=refine)
    parser.set_defaults(func=lambda args: parser.print_help() or 0)


def convert(args: argparse.Namespace) -> int:
    """Read a rig in one format and write it in another; returns the exit status."""
    rig = import_rig(args.input, args.source_format)
    export_rig(rig, args.output, args.to)
    print(f"wrote {args.output} ({args.to}, {len(rig)} cameras: {', '.join(rig.names)})")
    return 0


class PointsFileError(InputError):
    """A --points file that cannot be used (message names the file)."""


def load_points(path: Path, names: list[str]) -> np.ndarray:
    """``(C, N, 2)`` pixels for the rig's cameras ``names`` from a points TOML (NaN where absent)."""
    doc = read_toml(path, PointsFileError, "points file")
    pts = doc.get("points")
    if not isinstance(pts, dict) or not pts:
        raise PointsFileError(f"{path}: no [points.NAME] tables")
    out = np.full((len(names), len(pts), 2), np.nan)
    for j, (pname, tab) in enumerate(pts.items()):
        if not isinstance(tab, dict):
            raise PointsFileError(f"{path}: [points.{pname}] must be a table of CAMERA = [x, y]")
        for i, cam in enumerate(names):
            if cam in tab:
                try:
                    xy = np.asarray(tab[cam], dtype=float)
                except (TypeError, ValueError):
                    xy = np.zeros(0)
                if xy.shape != (2,):
                    raise PointsFileError(f"{path}: [points.{pname}] {cam} must be [x, y], got {tab[cam]!r}")
                out[i, j] = xy
    return out


def check(args: argparse.Namespace) -> int:
    """Compare the rig's image sizes with the recordings and explain a mismatch; returns the exit status."""
    rig = import_rig(args.rig)
    sources = {p.stem if p.is_file() else p.name: p for p in args.videos}
    unknown = sorted(set(sources) - set(rig.names))
    if unknown:
        raise InputError(f"no camera in {args.rig} for {', '.join(unknown)} (cameras: {', '.join(rig.names)}); "
                         "name each video after its camera")
    sizes = source_sizes(sources)
    pixels = load_points(args.points, rig.names) if args.points else None
    pairs = {}
    for item in args.reference:
        cam, sep, image = item.partition("=")
        if not sep or cam not in sources:
            raise InputError(f"--reference {item!r}: expected CAM=IMAGE with CAM one of {', '.join(sources)}")
        ref = cv2.imread(image, cv2.IMREAD_GRAYSCALE)
        if ref is None:
            raise InputError(f"{image}: cannot read image (missing, or not an image format OpenCV reads)")
        _, frame = next(FrameSource.open(sources[cam]).frames(gray=True))
        pairs[cam] = (ref, frame)
    report = explain_mismatches(rig, sizes, pixels, pairs)
    for line in report.lines():
        print(line)
    if args.adjusted and report.rig is not None:
        report.rig.save(args.adjusted)
        print(f"wrote adjusted rig {args.adjusted}")
    return 1 if report.mismatches and report.rig is None else 0


def refine(args: argparse.Namespace) -> int:
    """Find moved cameras in a take, write the rig at the end of it; returns the exit status."""
    # imported when the command runs: the reconstruction package is heavy to import
    from posestudio.core.files import write_json
    from posestudio.core.keypoints_file import read_keypoints2d
    from posestudio.core.rig import CameraRig
    from posestudio.reconstruction.rig_check import check_take_rig

    rig = CameraRig.load(args.calibration)
    kp = read_keypoints2d(args.keypoints2d)
    checked = check_take_rig(rig, kp, str(args.keypoints2d), whole_rig=args.whole_rig)
    for line in checked.drift.lines() + (checked.whole_rig.lines() if checked.whole_rig else []):
        print(line)
    checked.end_rig.save(args.out)
    solved = len(checked.whole_rig.rig) if checked.whole_rig else len({m.camera for m in checked.drift.moves})
    print(f"wrote {args.out} ({solved} camera{'s' if solved != 1 else ''} re-solved, {len(rig) - solved} unchanged)")
    if args.report:
        whole = {"whole_rig": checked.whole_rig.to_json()} if checked.whole_rig else {}
        write_json(args.report, {"calibration": str(args.calibration), "keypoints2d": str(args.keypoints2d),
                                 "out": str(args.out), **checked.drift.to_json(), **whole})
        print(f"wrote {args.report}")
    return 0
