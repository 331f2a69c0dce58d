"""Offline and live reconstruction of 3D skeletons from multi-view 2D keypoints: the entry points.

``reconstruct(rig, keypoints)``: cameras matched by name, detector layout mapped to the 17-joint
Human3.6M body, left and right confused in one view undone (:mod:`.swaps`), robust triangulation,
then smoothing: zero-phase smoothing, gap filling and the trajectory refinement in windows offline
(:mod:`.offline`), or frame by frame through the same :class:`~.reconstructor.Reconstructor` a
live server pushes frames to (``live=True``).
``run_reconstruction`` does the files.
"""

from __future__ import annotations

from pathlib import Path

from posestudio.core.keypoints_file import Keypoints2D, read_keypoints2d, write_points3d
from posestudio.core.rig import CameraRig

from .options import ReconstructionOptions
from .reconstructor import Reconstructor
from .report import ReconstructionReport, ReconstructionResult
from .stages import CARRIED_CONFIDENCE, GAP_FILL_CONFIDENCE, PRIOR_CONFIDENCE, TORSO, load_prior

__all__ = [
    "CARRIED_CONFIDENCE",
    "GAP_FILL_CONFIDENCE",
    "PRIOR_CONFIDENCE",
    "TORSO",
    "ReconstructionOptions",
    "ReconstructionReport",
    "ReconstructionResult",
    "Reconstructor",
    "load_prior",
    "reconstruct",
    "run_reconstruction",
]


def reconstruct(rig: CameraRig, kp: Keypoints2D, options: ReconstructionOptions | None = None,
                source: str = "<keypoints>") -> ReconstructionResult:
    """Reconstruct ``(frames, 17, 3)`` joints in metres from multi-view 2D keypoints.

    Args:
        rig: the calibrated rig (it may have more cameras than ``kp``).
        kp: the take's 2D keypoints; options: :class:`~.options.ReconstructionOptions`.
        source: where ``kp`` came from, named in errors.
    Returns:
        :class:`~.report.ReconstructionResult`: the joints with their confidence, and the report.
    """
    return Reconstructor.for_take(rig, kp, options, source).run(kp)


def run_reconstruction(calibration: str | Path, keypoints: str | Path, out_dir: str | Path,
                       options: ReconstructionOptions | None = None) -> ReconstructionResult:
    """Read the rig and keypoints, reconstruct, write ``OUT/points3d.npz``, ``OUT/report.json`` and
    ``OUT/rig.toml`` (the rig used, so that the viewer finds the cameras beside the take).

    Nothing is written unless everything succeeded; each file is written atomically.
    """
    rig = CameraRig.load(calibration)
    kp = read_keypoints2d(keypoints)
    result = reconstruct(rig, kp, options, str(keypoints))
    write_reconstruction(out_dir, result, rig)
    return result


def write_reconstruction(out_dir: str | Path, result: ReconstructionResult, rig: CameraRig) -> None:
    """``OUT/points3d.npz``, ``OUT/report.json`` and ``OUT/rig.toml`` (the rig used), each atomic."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_points3d(out / "points3d.npz", result.points)
    result.report.write(out / "report.json")
    rig.save(out / "rig.toml")
