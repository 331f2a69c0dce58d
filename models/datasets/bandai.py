"""The Bandai Namco Research Motion Dataset (professional motion capture, BVH) as H36M17 poses.

``../shared/data/bandai_mocap_1`` holds its clips; :func:`load_bandai` reads them all,
:func:`bandai_to_h36m17` maps one skeleton to the 17-joint body (metres, Z up).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from posestudio.core.arrays import FloatArray
from posestudio.core.bvh import BvhMotion, read_bvh
from posestudio.core.errors import InputError
from posestudio.models.keypoints import H36M17

#: Default location of the Bandai clips: ``$POSESTUDIO_DATA/bandai_mocap_1``, else
#: ``<repo>/../shared/data/bandai_mocap_1``.
DEFAULT_BANDAI_DIR = Path(os.environ.get("POSESTUDIO_DATA", Path(__file__).resolve().parents[2].parent
                                         / "shared" / "data")) / "bandai_mocap_1"


#: Distance (metres) from Bandai's ``Head`` joint to the top of the head, along the Head joint's
#: local +X axis (the neck-to-head direction; Bandai's Head End Site has a zero offset, so the file
#: does not say where the head ends). Bandai's ``Head`` joint lies at the upper neck, about chin
#: height (0.6 m above the pelvis); 0.21 m is an adult's chin-to-vertex head height (about 0.13 of
#: stature), giving standing heights of 1.54-1.62 m for the dataset's actors.
BANDAI_HEAD_TOP_OFFSET_M = 0.21

#: H36M17 joint -> Bandai joint(s); a tuple is averaged. See :func:`bandai_to_h36m17`.
BANDAI_TO_H36M17: dict[str, str | tuple[str, ...]] = {
    "pelvis": ("UpperLeg_L", "UpperLeg_R"),
    "r_hip": "UpperLeg_R", "r_knee": "LowerLeg_R", "r_ankle": "Foot_R",
    "l_hip": "UpperLeg_L", "l_knee": "LowerLeg_L", "l_ankle": "Foot_L",
    "spine": "Spine",
    "thorax": "Neck",
    "neck": "Head",
    "head": "Head",  # + BANDAI_HEAD_TOP_OFFSET_M along the Head joint's +X axis
    "l_shoulder": "UpperArm_L", "l_elbow": "LowerArm_L", "l_wrist": "Hand_L",
    "r_shoulder": "UpperArm_R", "r_elbow": "LowerArm_R", "r_wrist": "Hand_R",
}


def bandai_to_h36m17(motion: BvhMotion, frames: slice | NDArray[np.int64] | None = None,
                     head_top_offset_m: float = BANDAI_HEAD_TOP_OFFSET_M) -> FloatArray:
    """H36M17 joint positions of a Bandai-dataset motion (see ``posestudio.models.keypoints``).

    Mapping (Bandai joint names; every point is rigidly attached to one Bandai bone):

    * ``pelvis`` = midpoint of ``UpperLeg_L`` and ``UpperLeg_R`` (the hip joint centres; the
      ``Hips`` joint itself sits about 2 cm higher), as the 2D detector mappings define it;
    * hips, knees, ankles = ``UpperLeg``, ``LowerLeg``, ``Foot``;
    * ``spine`` = ``Spine`` (on average 4.4 cm from the pelvis-thorax midpoint over the 75 clips;
      ``Chest`` is 5.9 cm from it);
    * ``thorax`` = ``Neck`` (the base of the neck, 3.6 cm on average from the shoulders' midpoint);
    * ``neck`` = ``Head`` (Bandai's Head joint is at the upper neck, about chin height);
    * ``head`` = ``Head`` + ``head_top_offset_m`` along the Head joint's local +X axis (top of head);
    * shoulders, elbows, wrists = ``UpperArm``, ``LowerArm``, ``Hand``.

    Args:
        motion: a Bandai BVH motion (as read by :func:`read_bvh` with centimetres, Y up).
        frames: which frames (default all).
        head_top_offset_m: Head joint to head top, metres.
    Returns:
        ``(F, 17, 3)`` positions in metres, Z up, H36M17 order.
    Raises:
        KeyError: if a Bandai joint is missing from the skeleton.
    """
    rot, pos = motion.world_transforms(frames)
    out = np.empty(pos.shape[:1] + (H36M17.n_joints, 3))
    for dst, src in BANDAI_TO_H36M17.items():
        names = (src,) if isinstance(src, str) else src
        out[:, H36M17.index(dst)] = pos[:, [motion.index(n) for n in names]].mean(axis=1)
    head = motion.index("Head")
    out[:, H36M17.index("head")] += head_top_offset_m * rot[:, head, :, 0]
    return out


def load_bandai(root: str | os.PathLike[str] | None = None, frame_stride: int = 2) -> list[tuple[str, np.ndarray]]:
    """All Bandai clips as H36M17 poses.

    Args:
        root: folder of ``*.bvh`` files (default :data:`DEFAULT_BANDAI_DIR`).
        frame_stride: keep every ``frame_stride``-th frame.
    Returns:
        ``[(clip_stem, (F, 17, 3) float32 metres, Z up), ...]`` sorted by file name.
    Raises:
        InputError: when the folder holds no BVH file.
    """
    folder = Path(root) if root is not None else DEFAULT_BANDAI_DIR
    files = sorted(folder.glob("*.bvh"))
    if not files:
        raise InputError(f"{folder}: no .bvh files (expected the Bandai clips, e.g. ../shared/data/bandai_mocap_1)")
    return [(f.stem, bandai_to_h36m17(read_bvh(f))[::frame_stride].astype(np.float32)) for f in files]
