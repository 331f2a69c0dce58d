"""One actor's skeleton: bone lengths measured once over the take, left/right symmetric, in a T-pose.

Each bone's length is the confidence-weighted median of its length over the take (robust to
frames where a joint was wrong), then left and right are averaged, so the exported character has
one set of proportions however the reconstruction jittered. The T-pose offsets (skeleton axes:
Y up, facing +Z, left = +X; metres) follow from the lengths; the hips and the lower spine, whose
layout is a property of the actor rather than of a standard pose, keep their measured offsets in
the pelvis frame (mirrored to be symmetric). Parts a 17-joint body does not observe (the toe and
the hand and toe tips) are placed from proportions of the measured shin and forearm (adult
anthropometry: ankle height 0.16, ankle to ball of the foot 0.32 and ball to toe tip 0.17 of the
shin length; wrist to finger tip 0.75 of the forearm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.models.keypoints import H36M17

from .definition import END_SITE_JOINTS, JOINT_NAMES, PARENTS, joint_index

#: Where ``Spine1`` sits on the spine-thorax segment (fraction from the spine joint).
SPINE1_FRACTION = 0.5
ANKLE_HEIGHT_PER_SHIN = 0.16
BALL_AHEAD_PER_SHIN = 0.32
TOE_TIP_PER_SHIN = 0.17
HAND_PER_FOREARM = 0.75

#: H36M17 bones measured for the actor, by the name the solver uses.
_BONES: dict[str, tuple[str, str]] = {
    "spine_to_thorax": ("spine", "thorax"), "neck": ("thorax", "neck"), "head": ("neck", "head"),
    "l_clavicle": ("thorax", "l_shoulder"), "r_clavicle": ("thorax", "r_shoulder"),
    "l_upper_arm": ("l_shoulder", "l_elbow"), "r_upper_arm": ("r_shoulder", "r_elbow"),
    "l_forearm": ("l_elbow", "l_wrist"), "r_forearm": ("r_elbow", "r_wrist"),
    "l_thigh": ("l_hip", "l_knee"), "r_thigh": ("r_hip", "r_knee"),
    "l_shin": ("l_knee", "l_ankle"), "r_shin": ("r_knee", "r_ankle"),
}


def weighted_median(values: FloatArray, weights: FloatArray) -> FloatArray:
    """Weighted median along axis 0.

    Args:
        values: ``(F, ...)``; weights: ``(F, ...)`` non-negative (all-zero columns count equally).
    Returns:
        ``(...)`` the value where the cumulative weight first reaches half the total.
    """
    order = np.argsort(values, axis=0)
    v = np.take_along_axis(values, order, axis=0)
    w = np.take_along_axis(weights, order, axis=0) + 1e-12
    cum = np.cumsum(w, axis=0)
    idx = (cum < 0.5 * cum[-1:]).sum(axis=0, keepdims=True)
    return np.take_along_axis(v, idx, axis=0)[0]


@dataclass(frozen=True)
class ActorSkeleton:
    """The actor's rest skeleton in skeleton axes (Y up, facing +Z, left = +X), metres.

    Attributes:
        offsets: ``(N, 3)`` each joint's offset from its parent in the T-pose (the root's is 0).
        end_site_offsets: ``(E, 3)`` End Site offsets of :data:`~.definition.END_SITE_JOINTS`.
        bone_lengths: measured, symmetrised lengths (metres) by bone name (see ``_BONES``).
    """

    offsets: FloatArray
    end_site_offsets: FloatArray
    bone_lengths: dict[str, float]

    @property
    def height_m(self) -> float:
        """Standing height of the T-pose: toe-tip level to the top of the head (metres)."""
        pos = self.rest_positions()
        ends = self.end_site_positions(pos)
        ys = np.concatenate([pos[:, 1], ends[:, 1]])
        return float(ys.max() - ys.min())

    def rest_positions(self) -> FloatArray:
        """``(N, 3)`` joint positions of the T-pose with the root at the origin (metres)."""
        pos = np.zeros_like(self.offsets)
        for j, p in enumerate(PARENTS):
            if p >= 0:
                pos[j] = pos[p] + self.offsets[j]
        return pos

    def end_site_positions(self, rest: FloatArray) -> FloatArray:
        """``(E, 3)`` End Site positions of the T-pose given its joint positions ``rest`` (N, 3)."""
        return rest[[joint_index(n) for n in END_SITE_JOINTS]] + self.end_site_offsets


def measure_bones(points: FloatArray, confidence: FloatArray) -> dict[str, float]:
    """Left/right symmetric bone lengths of one actor over a take.

    Args:
        points: ``(F, 17, 3)`` H36M17 positions (metres), finite.
        confidence: ``(F, 17)`` in [0, 1].
    Returns:
        metres by bone name; left and right entries equal (their mean).
    """
    names = list(_BONES)
    a = H36M17.indices([_BONES[n][0] for n in names])
    b = H36M17.indices([_BONES[n][1] for n in names])
    lengths = np.linalg.norm(points[:, b] - points[:, a], axis=-1)
    weights = np.minimum(confidence[:, a], confidence[:, b])
    med = dict(zip(names, weighted_median(lengths, weights).tolist()))
    for name in names:
        if name.startswith("l_"):
            mean = 0.5 * (med[name] + med["r_" + name[2:]])
            med[name] = med["r_" + name[2:]] = mean
    return med


def build_actor(bones: dict[str, float], hip_offset_left: FloatArray, spine_offset: FloatArray) -> ActorSkeleton:
    """The T-pose skeleton from measured bones and the pelvis layout.

    Args:
        bones: from :func:`measure_bones`.
        hip_offset_left: ``(3,)`` left hip in the pelvis frame (skeleton axes), metres; the right
            hip is its mirror image (x negated).
        spine_offset: ``(3,)`` spine joint in the pelvis frame, metres (its x is set to 0).
    """
    off = np.zeros((len(JOINT_NAMES), 3))

    def put(name: str, xyz: tuple[float, float, float] | FloatArray) -> None:
        off[joint_index(name)] = xyz

    hip = np.asarray(hip_offset_left, float)
    put("LeftUpLeg", hip)
    put("RightUpLeg", hip * np.array([-1.0, 1.0, 1.0]))
    put("Spine", np.array([0.0, spine_offset[1], spine_offset[2]]))
    chest = bones["spine_to_thorax"]
    put("Spine1", (0.0, SPINE1_FRACTION * chest, 0.0))
    upper_chest = (0.0, (1.0 - SPINE1_FRACTION) * chest, 0.0)
    for name in ("Neck", "LeftShoulder", "RightShoulder"):  # the clavicles start at the neck's base
        put(name, upper_chest)
    put("Head", (0.0, bones["neck"], 0.0))
    for side, sign in (("Left", 1.0), ("Right", -1.0)):
        s = side[0].lower()
        put(f"{side}Arm", (sign * bones[f"{s}_clavicle"], 0.0, 0.0))
        put(f"{side}ForeArm", (sign * bones[f"{s}_upper_arm"], 0.0, 0.0))
        put(f"{side}Hand", (sign * bones[f"{s}_forearm"], 0.0, 0.0))
        put(f"{side}Leg", (0.0, -bones[f"{s}_thigh"], 0.0))
        put(f"{side}Foot", (0.0, -bones[f"{s}_shin"], 0.0))
        shin = bones[f"{s}_shin"]
        put(f"{side}ToeBase", (0.0, -ANKLE_HEIGHT_PER_SHIN * shin, BALL_AHEAD_PER_SHIN * shin))
    ends = []
    for name in END_SITE_JOINTS:
        if name == "Head":
            ends.append((0.0, bones["head"], 0.0))
        elif name.endswith("Hand"):
            sign = 1.0 if name.startswith("Left") else -1.0
            ends.append((sign * HAND_PER_FOREARM * bones[f"{name[0].lower()}_forearm"], 0.0, 0.0))
        else:  # toe tips
            ends.append((0.0, 0.0, TOE_TIP_PER_SHIN * bones[f"{name[0].lower()}_shin"]))
    return ActorSkeleton(off, np.asarray(ends, float), dict(bones))
