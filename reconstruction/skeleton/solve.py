"""Skeleton solving: 3D joints of a take -> one actor's bone lengths, joint rotations and root path.

Steps (all vectorised over frames; the loops run over the skeleton's joints):

1. The joints' paths are followed with confidence weights (:mod:`.trajectories`): confident
   joints closely, low-confidence ones loosely, gaps bridged.
2. Bone lengths are measured once for the actor, symmetric (:mod:`.actor`).
3. Orientations, root to leaves: the pelvis from the hip line and the lower spine; the chest from
   the spine and the shoulder line; neck and head aimed at the next joint; clavicles at the
   shoulders. Arms and legs are placed by two-bone inverse kinematics on their wrist / ankle
   targets with a hinge axis that is continuous over time (:mod:`.limbs`); planted feet hold still
   (:mod:`.contacts`). Each rotation aims the bone exactly and takes its twist from a second
   direction (:mod:`.frames`), so forward kinematics with the actor's bones lands on the joints.
4. Feet (no toes in a 17-joint body) point along the knee's forward direction, flat on the ground.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from posestudio.core.bvh import Y_UP_TO_Z_UP
from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import Points3D
from posestudio.core.rotations import axis_rotation
from posestudio.models.keypoints import H36M17

from .actor import build_actor, measure_bones, weighted_median
from .contacts import ContactOptions, detect_contacts, foot_slide_mm, pin_contacts
from .definition import JOINT_NAMES, joint_index
from .frames import aim_rotation, fit_rotations, unit
from .limbs import hinge_axes, two_bone_fit
from .solution import SkeletonSolution
from .trajectories import follow_trajectories

X, Y, Z = np.eye(3)

#: How far the solver flexes an ankle to keep the foot level (radians either way).
ANKLE_RANGE_RAD = np.radians(45.0)


@dataclass(frozen=True)
class SolveOptions:
    """Options of :func:`solve_skeleton`.

    Attributes:
        cutoff_hz: how closely a joint at confidence 1 is followed (half-power cutoff, Hz); lower
            confidence follows more loosely (:mod:`.trajectories`).
        pin_feet: hold planted feet still (:mod:`.contacts`).
        planted_foot_weight: how much more a planted ankle's distance from its hold counts than
            the knee's distance from the reconstruction (:func:`~.limbs.two_bone_fit`). 30 keeps
            planted feet within about 0.1 mm a frame while knees stay near the reconstruction even
            where its legs are not symmetric; a very large value is plain inverse kinematics.
        contacts: contact detection thresholds.
    """

    cutoff_hz: float = 10.0
    pin_feet: bool = True
    planted_foot_weight: float = 30.0
    contacts: ContactOptions = field(default_factory=ContactOptions)


def _h36m_points(points: Points3D) -> tuple[np.ndarray, np.ndarray]:
    """``(F, 17, 3)`` points in H36M17 order (studio world) and ``(F, 17)`` confidences."""
    names = list(points.joint_names)
    missing = [n for n in H36M17.joints if n not in names]
    if missing:
        raise InputError(f"points3d has joints {names}; the skeleton solver needs the H36M17 joints "
                         f"(missing: {', '.join(missing)})")
    idx = [names.index(n) for n in H36M17.joints]
    pts = np.asarray(points.points3d, float)
    if pts.ndim != 3 or pts.shape[0] == 0 or pts.shape[2] != 3:
        raise InputError(f"points3d has shape {pts.shape}; expected (frames > 0, joints, 3)")
    return pts[:, idx], np.asarray(points.confidence, float)[:, idx]


def solve_skeleton(points: Points3D, options: SolveOptions | None = None) -> SkeletonSolution:
    """Solve one actor's skeleton motion from a take's 3D joints.

    Args:
        points: the take (``points3d (F, J, 3)`` metres, studio world Z up, NaN where unknown;
            ``confidence (F, J)``; H36M17 joint names; ``fps``).
        options: :class:`SolveOptions`.
    Returns:
        :class:`~.solution.SkeletonSolution` (``to_bvh`` writes it as BVH).
    Raises:
        InputError: if the joints are not H36M17, the take is empty, or a joint is never known.
    """
    opt = options or SolveOptions()
    fps = float(points.fps)
    if not (np.isfinite(fps) and fps > 0):
        raise InputError(f"points3d fps must be a positive number, got {fps}")
    raw, conf = _h36m_points(points)
    followed = follow_trajectories(raw @ Y_UP_TO_Z_UP, conf, fps, opt.cutoff_hz, H36M17.joints)  # to Y up
    conf = np.where(np.isfinite(raw).all(axis=-1), np.nan_to_num(conf, nan=0.0), 0.0).clip(0.0, 1.0)
    p = {name: followed[:, i] for i, name in enumerate(H36M17.joints)}
    n_f = followed.shape[0]
    rot = np.broadcast_to(np.eye(3), (n_f, len(JOINT_NAMES), 3, 3)).copy()

    def set_rot(name: str, r: np.ndarray) -> None:
        rot[:, joint_index(name)] = r

    # Pelvis: first aimed at the lower spine and turned by the hip line; the actor's pelvis layout
    # (hips and lower spine in that frame) is measured, then the rotation is refitted to all three
    # points at once (Kabsch), so a reconstruction whose spine leans against its hip line shares
    # the difference between them instead of loading it on one.
    hips = aim_rotation(p["spine"] - p["pelvis"], p["l_hip"] - p["r_hip"], Y, X)
    around_pelvis = np.stack([p[n] - p["pelvis"] for n in ("l_hip", "r_hip", "spine")], axis=1)
    pelvis_weights = conf[:, H36M17.indices(["l_hip", "r_hip", "spine"])] + 1e-3
    bones = measure_bones(followed, conf)
    for _ in range(2):
        local = np.einsum("fba,fnb->fna", hips, around_pelvis)
        w_hip = np.minimum(pelvis_weights[:, 0], pelvis_weights[:, 1])[:, None].repeat(3, axis=1)
        hip_left = weighted_median(np.concatenate([local[:, 0], local[:, 1] * [-1.0, 1.0, 1.0]]),
                                   np.concatenate([w_hip, w_hip]))
        spine_local = weighted_median(local[:, 2], pelvis_weights[:, [2]].repeat(3, axis=1))
        actor = build_actor(bones, hip_left, spine_local)
        rest = actor.offsets[[joint_index("LeftUpLeg"), joint_index("RightUpLeg"), joint_index("Spine")]]
        hips = fit_rotations(rest, around_pelvis, pelvis_weights)
    set_rot("Hips", hips)
    off = {name: actor.offsets[joint_index(name)] for name in JOINT_NAMES}

    # Spine, chest, neck, head: each aimed at the next joint, twist from the hip and shoulder lines.
    spine = p["pelvis"] + hips @ off["Spine"]
    shoulder_line = p["l_shoulder"] - p["r_shoulder"]
    chest_dir = p["thorax"] - spine
    set_rot("Spine", aim_rotation(chest_dir, unit(p["l_hip"] - p["r_hip"]) + unit(shoulder_line), Y, X))
    chest = aim_rotation(chest_dir, shoulder_line, Y, X)
    set_rot("Spine1", chest)
    thorax = spine + unit(chest_dir) * actor.bone_lengths["spine_to_thorax"]
    set_rot("Neck", aim_rotation(p["neck"] - thorax, shoulder_line, Y, X))
    neck = thorax + unit(p["neck"] - thorax) * actor.bone_lengths["neck"]
    set_rot("Head", aim_rotation(p["head"] - neck, shoulder_line, Y, X))

    chest_forward = chest @ Z
    chest_up = chest @ Y
    for side, s, sign in (("Left", "l", 1.0), ("Right", "r", -1.0)):
        clavicle = aim_rotation(p[f"{s}_shoulder"] - thorax, chest_up, sign * X, Y)
        set_rot(f"{side}Shoulder", clavicle)
        shoulder = thorax + clavicle @ off[f"{side}Arm"]
        upper = p[f"{s}_elbow"] - p[f"{s}_shoulder"]
        # Elbows bend towards the front: the fallback axis is upper x (forward, a little up).
        fallback = np.cross(unit(upper), chest_forward + 0.3 * chest_up)
        axis = hinge_axes(upper, p[f"{s}_wrist"] - p[f"{s}_elbow"], chest, fallback, fps)
        elbow, wrist = two_bone_fit(shoulder, p[f"{s}_elbow"], p[f"{s}_wrist"], actor.bone_lengths[f"{s}_upper_arm"],
                                    actor.bone_lengths[f"{s}_forearm"], axis, np.ones(n_f))
        rest_axis = -sign * Y  # T-pose: arm along sign*X, elbow bends the forearm to +Z
        set_rot(f"{side}Arm", aim_rotation(elbow - shoulder, axis, sign * X, rest_axis))
        forearm = aim_rotation(wrist - elbow, axis, sign * X, rest_axis)
        set_rot(f"{side}ForeArm", forearm)
        set_rot(f"{side}Hand", forearm)

    pelvis_forward = hips @ Z
    contacts = np.zeros((n_f, 2), bool)
    slide_in: list[float] = []
    for k, (side, s) in enumerate((("Left", "l"), ("Right", "r"))):
        hip = p["pelvis"] + hips @ off[f"{side}UpLeg"]
        ankle = p[f"{s}_ankle"]
        contacts[:, k] = detect_contacts(ankle, fps, opt.contacts)
        slide_in.append(foot_slide_mm(ankle, contacts[:, k]))
        target = (pin_contacts(ankle, contacts[:, k], fps, opt.contacts.blend_s, opt.contacts.max_correction_m)
                  if opt.pin_feet else ankle)
        # A planted (or landing) foot must reach its target; elsewhere knee and ankle share the
        # difference between the actor's bones and the reconstruction's.
        held = np.linalg.norm(target - ankle, axis=-1) > 1e-9
        end_weight = np.where(contacts[:, k] | held, opt.planted_foot_weight, 1.0) if opt.pin_feet else np.ones(n_f)
        thigh = p[f"{s}_knee"] - p[f"{s}_hip"]
        # Knees bend backwards: the axis thigh x shin points to the actor's left (+X of the pelvis).
        fallback = np.cross(unit(thigh), -pelvis_forward)
        axis = hinge_axes(thigh, ankle - p[f"{s}_knee"], hips, fallback, fps, bend_side=X)
        knee, ankle_solved = two_bone_fit(hip, p[f"{s}_knee"], target, actor.bone_lengths[f"{s}_thigh"],
                                          actor.bone_lengths[f"{s}_shin"], axis, end_weight)
        set_rot(f"{side}UpLeg", aim_rotation(knee - hip, axis, -Y, X))
        set_rot(f"{side}Leg", aim_rotation(ankle_solved - knee, axis, -Y, X))
        # The ankle flexes about the knee's axis (the shin frame's x) by the angle that levels the
        # foot, within the ankle's range: flat on the ground while the shin is upright, fading to
        # the rest angle as the shin tips past horizontal (kicks, kneeling), so it never flips.
        shin = aim_rotation(ankle_solved - knee, axis, -Y, X)
        upright = shin[:, 1, 1]  # world-up component of the shin frame's y (1 when standing)
        level = np.clip(np.arctan2(shin[:, 1, 2], upright), -ANKLE_RANGE_RAD, ANKLE_RANGE_RAD)
        flex = level * np.clip(upright / 0.7, 0.0, 1.0)
        foot = shin @ axis_rotation(0, flex)
        set_rot(f"{side}Foot", foot)
        set_rot(f"{side}ToeBase", foot)
    return SkeletonSolution(actor, rot, p["pelvis"].copy(), fps, contacts, (slide_in[0], slide_in[1]))
