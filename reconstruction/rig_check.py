"""A take's rig checked against the take itself: cameras that moved during it, warned about and,
if asked, used at their re-solved pose from the frame they moved (``reconstruct --refine-rig``,
``rig refine``).

The finding and re-solving live in :mod:`posestudio.calibration.rig_drift` (generic joint arrays);
this module maps a keypoint file's cameras and layout onto the rig (``models/keypoints.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from posestudio.calibration.drift_whole_rig import WholeRigFit, refine_whole_rig
from posestudio.calibration.rig_drift import DriftOptions, RigDrift, RigDriftError, find_moved_cameras
from posestudio.core.keypoints_file import Keypoints2D, read_keypoints2d
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import rotation_angle_deg
from posestudio.models.keypoints import H36M17, keypoints_for_rig

from .options import ReconstructionOptions
from .pipeline import reconstruct, write_reconstruction
from .report import ReconstructionResult
from .swaps import H36M17_PAIRS

#: ``(17,)`` each H36M17 joint's left/right twin (itself for the midline): a detector's left/right
#: confusion is not taken for a moved camera
H36M17_MIRROR = np.arange(H36M17.n_joints)
H36M17_MIRROR[H36M17_PAIRS[:, 0]], H36M17_MIRROR[H36M17_PAIRS[:, 1]] = H36M17_PAIRS[:, 1], H36M17_PAIRS[:, 0]


@dataclass
class TakeRig:
    """What a take says about its rig.

    Attributes:
        drift: :class:`~posestudio.calibration.rig_drift.RigDrift` over the keypoints' cameras (in
            the keypoints' order).
        end_rig: the whole rig as it stands at the end of the take (moved cameras at their last
            pose, every other camera, in the keypoints or not, exactly as given; with ``whole_rig``
            the keypoints' cameras all re-solved together).
        whole_rig: the joint re-solve of every camera of the keypoints
            (:func:`~posestudio.calibration.drift_whole_rig.refine_whole_rig`; its turns and shifts
            against the given rig), or None.
    """

    drift: RigDrift
    end_rig: CameraRig
    whole_rig: WholeRigFit | None = None

    def warnings(self) -> list[str]:
        """One line per moved camera (empty when none moved)."""
        return [f"warning: {m.line()}" for m in self.drift.moves]

    def segmented_take(self, rig: CameraRig, kp: Keypoints2D) -> tuple[CameraRig, Keypoints2D]:
        """The rig and keypoints for a reconstruction that uses each moved camera's re-solved pose
        from the frame it moved: one more camera per move (``NAME@FRAME``), each camera's
        detections on the frames it holds (the keypoints' own joint layout kept)."""
        seg = self.drift.segmented
        others = [c for c in rig.cameras if c.name not in kp.camera_names]
        keypoints = self.drift.split_keypoints(kp.keypoints)
        return (CameraRig(list(seg.cameras) + others, dict(rig.metadata)),
                Keypoints2D(keypoints, list(seg.names), list(kp.joint_names), kp.fps))


def check_take_rig(rig: CameraRig, kp: Keypoints2D, source: str, options: DriftOptions | None = None,
                   whole_rig: bool = False) -> TakeRig:
    """Find cameras of ``rig`` that moved during the take ``kp`` and re-solve them.

    Args:
        rig: the calibrated rig (it may have more cameras than ``kp``); kp: the take's 2D, any known
        layout; source: the keypoints' file, named in errors; options: detection settings;
        whole_rig: then re-solve every camera of ``kp`` together (intrinsics fixed, the world frame
        and scale of those cameras as a whole): over the whole take before the move search (so a
        rig a little off everywhere is not taken for a moved camera), and again over the frames
        from the last move on when one is found.
    Raises:
        KeypointFileError: a camera of ``kp`` not in the rig, or joints of no known layout.
        RigDriftError: fewer than 3 cameras or too few frames to tell.
    """
    sub, kp17, _ = keypoints_for_rig(rig, kp, source)
    # a rig a little off everywhere makes the performer's offsets follow where they stand, which the
    # move search could take for a move: with whole_rig it is re-solved over the whole take first
    fit = refine_whole_rig(sub, kp17, options, source=source) if whole_rig else None
    drift = find_moved_cameras(fit.rig if fit else sub, kp17, kp.fps, options, source, H36M17_MIRROR)
    moved = drift.end_rig()
    if fit is not None:
        start = max((m.frame for m in drift.moves), default=0)
        if start > 0:  # the rig as it stands after the last move, re-solved as a whole again
            fit = refine_whole_rig(moved, kp17, options, (start, kp17.shape[1]), source=source)
        fit = replace(fit, rotation_deg=np.array([float(rotation_angle_deg(a.rotation, b.rotation))
                                                  for a, b in zip(fit.rig.cameras, sub.cameras)]),
                      shift_m=np.array([float(np.linalg.norm(a.center - b.center))
                                        for a, b in zip(fit.rig.cameras, sub.cameras)]))
        moved = CameraRig(list(fit.rig.cameras), dict(moved.metadata) | {"rig_refine_whole": fit.lines()[-1]})
    end = CameraRig([moved[c.name] if c.name in moved.names else c.copy() for c in rig.cameras], dict(moved.metadata))
    return TakeRig(drift, end, fit)


def run_reconstruction_checked(calibration: str | Path, keypoints: str | Path, out_dir: str | Path,
                               options: ReconstructionOptions | None = None, refine_rig: bool = False,
                               say: Callable[[str], None] = print) -> ReconstructionResult:
    """:func:`~.pipeline.run_reconstruction` that first checks the rig against the take: a moved
    camera is warned about in one line (naming it and the frame), and with ``refine_rig`` its
    re-solved pose is used from that frame on (``OUT/rig.toml`` is then the rig used, with one more
    camera per move). Takes too short or with too few cameras to tell are reconstructed unchecked.
    """
    rig = CameraRig.load(calibration)
    kp = read_keypoints2d(keypoints)
    used_rig, used_kp = rig, kp
    try:
        checked = check_take_rig(rig, kp, str(keypoints))
    except RigDriftError:
        checked = None
    if checked is not None:
        for line in checked.warnings():
            say(line + ("" if refine_rig else "; --refine-rig uses its re-solved pose from that frame on"))
        if refine_rig and checked.drift.moved:
            used_rig, used_kp = checked.segmented_take(rig, kp)
    result = reconstruct(used_rig, used_kp, options, str(keypoints))
    write_reconstruction(out_dir, result, used_rig)
    return result
