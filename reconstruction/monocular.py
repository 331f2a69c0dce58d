"""3D from one camera: a take's 2D keypoints in one calibrated view lifted to metres in the world.

:func:`reconstruct_monocular` reads one camera's 2D (any known layout, mapped to H36M17), lifts it
with the self-supervised lifting network (:class:`posestudio.models.lifting.lifter.Lifter`: depth
and scale from its root-position branch), scales the body about the camera centre to the
performer's height when it is given (projections unchanged), puts it in the rig's world frame and
smooths it lightly over time (the offline path's zero-phase Butterworth,
:func:`~.filters.butterworth_zero_phase`; gaps are not bridged). Every output joint has the
confidence :data:`~.stages.LIFTED_CONFIDENCE`: it is made by the network from one view, not
triangulated. :class:`MonocularReport` (``report.json``) says which camera, how many frames were
lifted and the height used, given or estimated. :func:`run_monocular` does the files, in the same
output folder layout as the multi-camera reconstruction (``points3d.npz``, ``report.json``,
``rig.toml``), so ``posestudio export`` and ``posestudio view`` read it alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posestudio.core.errors import InputError
from posestudio.core.files import absent_field, write_json
from posestudio.core.keypoints_file import Keypoints2D, Points3D, read_keypoints2d, write_points3d
from posestudio.core.rig import CameraRig
from posestudio.models.keypoints import H36M17, keypoints_for_rig
from posestudio.models.lifting.lifter import DEFAULT_CHECKPOINT, Lifter

from .filters import butterworth_zero_phase
from .stages import LIFTED_CONFIDENCE, load_lifter

FORMAT = "posestudio-monocular-report"
FORMAT_VERSION = 1
#: Heights accepted for a performer, metres (a child to a basketball player; 175 is centimetres).
HEIGHT_RANGE_M = (0.5, 2.5)


@dataclass(kw_only=True)
class MonocularReport:
    """The contents of a monocular ``report.json`` (NaN written as ``null``).

    Attributes:
        format, format_version: ``"posestudio-monocular-report"``, 1.
        mode: ``"monocular"``; camera: the camera lifted; cameras: ``[camera]`` (as the
            multi-camera report lists the cameras used).
        frames: frames in the take; fps: their rate, Hz; frames_lifted: frames with enough 2D
            (``min_joints`` joints of confidence ``>= min_confidence``) to lift;
            fraction_reconstructed: share of (frame, joint) cells output.
        input_layout: the 2D keypoints' layout; output_layout: ``"h36m17"``.
        height_m: the performer's height the body was scaled to, metres (ankle to head top along
            the bones, :func:`posestudio.models.lifting.lifter.body_height`);
        height_source: ``"given"`` (``--height``) or ``"estimated"`` (the network's own scale,
            the median lifted height).
        checkpoint: the lifting checkpoint; confidence: the confidence every output joint has.
        min_confidence, min_joints: what a frame needs to be lifted.
        smoothing: the filter and its settings (None: none).
        detection: when the 2D came from videos, the 2D stage's summary; absent otherwise.
    """

    format: str = field(default=FORMAT, init=False)
    format_version: int = field(default=FORMAT_VERSION, init=False)
    mode: str = field(default="monocular", init=False)
    camera: str
    cameras: list[str]
    frames: int
    fps: float
    frames_lifted: int
    fraction_reconstructed: float
    input_layout: str
    output_layout: str
    height_m: float
    height_source: str
    checkpoint: str
    confidence: float
    min_confidence: float
    min_joints: int
    smoothing: dict[str, Any] | None
    detection: dict[str, Any] | None = absent_field()

    def write(self, path: str | Path) -> None:
        """Write ``report.json`` atomically (NaN as null)."""
        write_json(path, self)


@dataclass
class MonocularResult:
    """One camera's 3D: ``points.points3d`` ``(F, 17, 3)`` world metres (NaN where not lifted),
    ``points.confidence`` ``(F, 17)``, and the report."""

    points: Points3D
    report: MonocularReport


def check_height(height_m: float | None, what: str = "--height") -> float | None:
    """The performer's height, metres, checked (None: estimate it).

    Raises:
        InputError: not a number in :data:`HEIGHT_RANGE_M`, naming the value (centimetres say so).
    """
    if height_m is None:
        return None
    lo, hi = HEIGHT_RANGE_M
    value = float(height_m)
    if not (np.isfinite(value) and lo <= value <= hi):
        hint = f" (centimetres? give {value / 100:g})" if np.isfinite(value) and lo * 100 <= value <= hi * 100 else ""
        raise InputError(f"{what} {height_m:g}: expected the performer's height in metres, "
                         f"between {lo:g} and {hi:g}{hint}")
    return value


def camera_keypoints(rig: CameraRig, kp: Keypoints2D, camera: str, source: str = "<keypoints>",
                     ) -> tuple[CameraRig, np.ndarray, str]:
    """One camera of a take, checked: ``(rig of that camera, keypoints (F, 17, 3) H36M17, layout name)``.

    Raises:
        InputError: ``camera`` not in the rig, or not in the keypoints (naming those there).
    """
    if camera not in rig.names:
        raise InputError(f"--monocular {camera}: no such camera in the rig (rig cameras: {', '.join(rig.names)})")
    if camera not in kp.camera_names:
        raise InputError(f"{source}: no keypoints of camera {camera!r} (cameras in the file: "
                         f"{', '.join(kp.camera_names)})")
    one = Keypoints2D(kp.keypoints[[kp.camera_names.index(camera)]], [camera], kp.joint_names, kp.fps)
    sub, kp17, layout = keypoints_for_rig(rig, one, source)
    return sub, kp17[0], layout.name


def reconstruct_monocular(rig: CameraRig, kp: Keypoints2D, camera: str, lifter: Lifter,
                          height_m: float | None = None, *, min_confidence: float = 0.3, min_joints: int = 6,
                          cutoff_hz: float | None = 6.0, source: str = "<keypoints>",
                          checkpoint: str = "") -> MonocularResult:
    """3D joints in metres from one camera's 2D keypoints.

    Args:
        rig: the calibrated rig; kp: the take's 2D keypoints (``(C, F, J, 3)``, any known layout;
            only ``camera``'s are read); camera: the camera's name.
        lifter: the lifting network; height_m: the performer's height, metres (None: the
            network's scale).
        min_confidence: 2D below it is not shown to the network; min_joints: frames with fewer
            such joints are not lifted (left NaN).
        cutoff_hz: zero-phase Butterworth cut-off over time, Hz (None: no smoothing); capped at
            0.4 x the frame rate.
        source: where ``kp`` came from (named in errors); checkpoint: named in the report.
    Returns:
        :class:`MonocularResult`.
    Raises:
        InputError: an unknown camera, a bad height, or no frame with enough 2D to lift.
    """
    height_m = check_height(height_m)
    sub, kp17, layout = camera_keypoints(rig, kp, camera, source)
    if not (np.isfinite(kp.fps) and kp.fps > 0):
        raise InputError(f"{source}: the frame rate must be a positive number, got {kp.fps}")
    seen = (np.isfinite(kp17[..., :2]).all(-1) & (np.nan_to_num(kp17[..., 2]) >= min_confidence)).sum(-1)
    if not (seen >= min_joints).any():
        raise InputError(f"{source}: camera {camera!r} has no frame with at least {min_joints} joints of "
                         f"confidence >= {min_confidence:g} (most in one frame: {int(seen.max(initial=0))}); "
                         "nothing to lift")
    view = lifter.lift_camera(sub.cameras[0], kp17, kp.fps, min_confidence=min_confidence, min_joints=min_joints,
                              height_m=height_m)
    points = view.world_points
    smoothing = None
    if cutoff_hz is not None:
        cut = min(cutoff_hz, 0.4 * kp.fps)
        points = butterworth_zero_phase(points, kp.fps, cut, max_gap_frames=0)
        smoothing = {"filter": "butterworth zero-phase", "cutoff_hz": cut, "order": 4, "gaps_filled_up_to_frames": 0}
    made = np.isfinite(points).all(-1)
    confidence = np.where(made, LIFTED_CONFIDENCE, 0.0)
    report = MonocularReport(camera=camera, cameras=[camera], frames=int(points.shape[0]), fps=float(kp.fps),
                             frames_lifted=int(view.lifted.sum()), fraction_reconstructed=float(made.mean()),
                             input_layout=layout, output_layout=H36M17.name, height_m=float(view.height_m),
                             height_source="given" if height_m is not None else "estimated",
                             checkpoint=checkpoint, confidence=LIFTED_CONFIDENCE, min_confidence=min_confidence,
                             min_joints=min_joints, smoothing=smoothing)
    return MonocularResult(Points3D(points, confidence, list(H36M17.joints), float(kp.fps)), report)


def write_monocular(out_dir: str | Path, result: MonocularResult, rig: CameraRig) -> list[Path]:
    """``OUT/points3d.npz``, ``OUT/report.json`` and ``OUT/rig.toml`` (each atomic); the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_points3d(out / "points3d.npz", result.points)
    result.report.write(out / "report.json")
    rig.save(out / "rig.toml")
    return [out / "points3d.npz", out / "report.json", out / "rig.toml"]


def run_monocular(calibration: str | Path, keypoints: str | Path, camera: str, out_dir: str | Path,
                  height_m: float | None = None, checkpoint: str | Path | None = None) -> MonocularResult:
    """Read the rig and the keypoints, lift ``camera``, write the output folder (nothing is written
    unless everything succeeded).

    Args:
        checkpoint: the lifting checkpoint (None: the shipped one,
            :data:`posestudio.models.lifting.lifter.DEFAULT_CHECKPOINT`).
    """
    check_height(height_m)
    rig = CameraRig.load(calibration)
    kp = read_keypoints2d(keypoints)
    path = Path(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
    result = reconstruct_monocular(rig, kp, camera, load_lifter(path), height_m, source=str(keypoints),
                                   checkpoint=str(path))
    write_monocular(out_dir, result, rig)
    return result
