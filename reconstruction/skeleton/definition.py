"""The animation skeleton PoseStudio exports: standard joint names, hierarchy, T-pose, channel orders.

The names are the ones Blender's, MotionBuilder's and common retargeting tools' (Mixamo-style)
name maps expect, so a BVH opens and retargets without renaming::

    Hips (root)
    ├── Spine ── Spine1 ─┬─ Neck ── Head ── (End Site: top of the head)
    │                    ├─ LeftShoulder ── LeftArm ── LeftForeArm ── LeftHand ── (End Site)
    │                    └─ RightShoulder ── RightArm ── RightForeArm ── RightHand ── (End Site)
    ├── LeftUpLeg ── LeftLeg ── LeftFoot ── LeftToeBase ── (End Site)
    └── RightUpLeg ── RightLeg ── RightFoot ── RightToeBase ── (End Site)

Axes of the skeleton's own frame (BVH convention, Y up): the character faces +Z, its left side is
+X. Rest pose: a T-pose (legs straight down, arms straight out along +-X, palms down, feet flat
pointing +Z).

Where each joint sits, in H36M17 terms (``posestudio.models.keypoints.H36M17``): ``Hips`` = pelvis,
``Spine`` = spine, ``Spine1`` halfway from spine to thorax, ``Neck`` = thorax (base of the neck),
``Head`` = H36M ``neck`` (upper neck), its End Site = H36M ``head`` (top of the head); the
clavicles (``LeftShoulder``) start at the thorax; ``LeftArm`` / ``LeftForeArm`` / ``LeftHand`` =
shoulder / elbow / wrist; ``LeftUpLeg`` / ``LeftLeg`` / ``LeftFoot`` = hip / knee / ankle.
``LeftToeBase`` and the hand and toe End Sites are not observed by a 17-joint body: they are
placed from anthropometric proportions of the measured bones (see :mod:`.actor`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class SkeletonJoint:
    """One joint of the export skeleton.

    Attributes:
        name: BVH joint name.
        parent: name of the parent joint ("" for the root).
        h36m: the H36M17 joint at this joint's position, or "" when it is placed, not observed.
        channels: rotation channel order (BVH names; ``R = R_A1 @ R_A2 @ R_A3``). The middle axis
            is the bone's own axis (its twist), the rotation least likely to reach 90 degrees, so
            Euler angles stay away from gimbal lock.
    """

    name: str
    parent: str
    h36m: str
    channels: tuple[str, str, str]


_BONE_Y = ("Zrotation", "Yrotation", "Xrotation")  # bones along +-Y (spine, neck, legs)
_BONE_X = ("Zrotation", "Xrotation", "Yrotation")  # bones along +-X (clavicles, arms)
_FOOT = ("Xrotation", "Zrotation", "Yrotation")    # the foot points along +Z
_ROOT = ("Yrotation", "Zrotation", "Xrotation")    # heading outermost, roll in the middle

STUDIO_SKELETON: tuple[SkeletonJoint, ...] = (
    SkeletonJoint("Hips", "", "pelvis", _ROOT),
    SkeletonJoint("Spine", "Hips", "spine", _BONE_Y),
    SkeletonJoint("Spine1", "Spine", "", _BONE_Y),
    SkeletonJoint("Neck", "Spine1", "thorax", _BONE_Y),
    SkeletonJoint("Head", "Neck", "neck", _BONE_Y),
    SkeletonJoint("LeftShoulder", "Spine1", "", _BONE_X),
    SkeletonJoint("LeftArm", "LeftShoulder", "l_shoulder", _BONE_X),
    SkeletonJoint("LeftForeArm", "LeftArm", "l_elbow", _BONE_X),
    SkeletonJoint("LeftHand", "LeftForeArm", "l_wrist", _BONE_X),
    SkeletonJoint("RightShoulder", "Spine1", "", _BONE_X),
    SkeletonJoint("RightArm", "RightShoulder", "r_shoulder", _BONE_X),
    SkeletonJoint("RightForeArm", "RightArm", "r_elbow", _BONE_X),
    SkeletonJoint("RightHand", "RightForeArm", "r_wrist", _BONE_X),
    SkeletonJoint("LeftUpLeg", "Hips", "l_hip", _BONE_Y),
    SkeletonJoint("LeftLeg", "LeftUpLeg", "l_knee", _BONE_Y),
    SkeletonJoint("LeftFoot", "LeftLeg", "l_ankle", _FOOT),
    SkeletonJoint("LeftToeBase", "LeftFoot", "", _FOOT),
    SkeletonJoint("RightUpLeg", "Hips", "r_hip", _BONE_Y),
    SkeletonJoint("RightLeg", "RightUpLeg", "r_knee", _BONE_Y),
    SkeletonJoint("RightFoot", "RightLeg", "r_ankle", _FOOT),
    SkeletonJoint("RightToeBase", "RightFoot", "", _FOOT),
)
"""The export skeleton, parents before children."""

JOINT_NAMES: tuple[str, ...] = tuple(j.name for j in STUDIO_SKELETON)
PARENTS: tuple[int, ...] = tuple(JOINT_NAMES.index(j.parent) if j.parent else -1 for j in STUDIO_SKELETON)

#: Joints that own a BVH ``End Site`` (the head top, finger tips, toe tips).
END_SITE_JOINTS: tuple[str, ...] = ("Head", "LeftHand", "RightHand", "LeftToeBase", "RightToeBase")

#: H36M17 points that are End Sites rather than joints: H36M ``head`` is the Head's End Site.
H36M_END_SITES: dict[str, str] = {"head": "Head"}


def joint_index(name: str) -> int:
    """Index of ``name`` in :data:`STUDIO_SKELETON`; KeyError listing the names if absent."""
    try:
        return JOINT_NAMES.index(name)
    except ValueError:
        raise KeyError(f"no joint {name!r} in the export skeleton; joints: {', '.join(JOINT_NAMES)}") from None


def observed_pairs(h36m_names: tuple[str, ...] | list[str]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Export joints that sit on an H36M17 joint, and which.

    Args:
        h36m_names: the H36M17 joint names in their file order.
    Returns:
        ``(skeleton joint indices (K,), H36M17 indices (K,))`` for the K observed joints (End
        Sites such as the head top not included).
    """
    sk, h = [], []
    for i, joint in enumerate(STUDIO_SKELETON):
        if joint.h36m:
            sk.append(i)
            h.append(list(h36m_names).index(joint.h36m))
    return np.asarray(sk, np.int64), np.asarray(h, np.int64)
