"""A solved take: the actor's skeleton, per-frame joint rotations, root path, and their BVH form."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from posestudio.core.arrays import BoolArray, FloatArray
from posestudio.core.bvh import Y_UP_TO_Z_UP, BvhMotion
from posestudio.core.errors import InputError
from posestudio.core.rotations import rotation_angle_deg
from posestudio.models.keypoints import H36M17

from .actor import ActorSkeleton
from .definition import END_SITE_JOINTS, H36M_END_SITES, JOINT_NAMES, PARENTS, STUDIO_SKELETON, observed_pairs

#: Metres per unit of each BVH length unit the exporter offers.
UNITS_M: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001}

#: Axis letters of skeleton (Y-up) axes as they read in a Z-up file: Y-up (x, y, z) is Z-up (x, -z, y).
_AXIS_IN_Z_UP = {"X": "X", "Y": "Z", "Z": "Y"}


def euler_channels(local: FloatArray, orders: list[tuple[str, str, str]]) -> FloatArray:
    """BVH Euler angles (degrees) of local rotations, continuous over frames.

    Args:
        local: ``(F, N, 3, 3)`` joint-to-parent rotations.
        orders: per joint, its three rotation channel names (``R = R_A1 @ R_A2 @ R_A3``).
    Returns:
        ``(F, N, 3)`` angles in channel order. The middle angle lies in [-90, 90]; the outer ones
        are unwrapped over time, so no channel jumps by 360 degrees between frames.
    """
    n_f, n_j = local.shape[:2]
    out = np.empty((n_f, n_j, 3))
    for j, order in enumerate(orders):  # one vectorised conversion per joint
        seq = "".join(ch[0] for ch in order)  # upper case: intrinsic, i.e. R = R_A1 R_A2 R_A3
        out[:, j] = Rotation.from_matrix(local[:, j]).as_euler(seq, degrees=True)
    out[..., 0] = np.unwrap(out[..., 0], period=360.0, axis=0)
    out[..., 2] = np.unwrap(out[..., 2], period=360.0, axis=0)
    return out


@dataclass(frozen=True, eq=False)
class SkeletonSolution:
    """One actor's solved take (skeleton axes: Y up, facing +Z at rest; metres).

    Attributes:
        actor: the rest skeleton (bone lengths, T-pose offsets).
        rotations: ``(F, N, 3, 3)`` joint-to-world rotations of the N export joints.
        root: ``(F, 3)`` Hips positions (metres, skeleton axes).
        fps: frames per second.
        contacts: ``(F, 2)`` left / right foot planted.
        foot_slide_input_mm: ground-plane ankle motion per planted frame in the input (left, right), mm.
    """

    actor: ActorSkeleton
    rotations: FloatArray
    root: FloatArray
    fps: float
    contacts: BoolArray
    foot_slide_input_mm: tuple[float, float]

    @property
    def n_frames(self) -> int:
        return int(self.rotations.shape[0])

    def local_rotations(self) -> FloatArray:
        """``(F, N, 3, 3)`` joint-to-parent rotations (the root's is its global one)."""
        par = np.asarray(PARENTS)
        local = self.rotations.copy()
        child = par >= 0
        local[:, child] = np.einsum("fjba,fjbc->fjac", self.rotations[:, par[child]], self.rotations[:, child])
        return local

    def joint_positions(self) -> FloatArray:
        """``(F, N, 3)`` forward kinematics of the rest offsets (metres, skeleton axes)."""
        pos = np.empty(self.rotations.shape[:2] + (3,))
        for j, p in enumerate(PARENTS):  # hierarchy order; vectorised over frames
            pos[:, j] = self.root if p < 0 else pos[:, p] + self.rotations[:, p] @ self.actor.offsets[j]
        return pos

    def end_site_positions(self, positions: FloatArray | None = None) -> FloatArray:
        """``(F, E, 3)`` End Site positions (head top, finger tips, toe tips), metres, skeleton axes."""
        pos = self.joint_positions() if positions is None else positions
        idx = [JOINT_NAMES.index(n) for n in END_SITE_JOINTS]
        return pos[:, idx] + np.einsum("feab,eb->fea", self.rotations[:, idx], self.actor.end_site_offsets)

    def h36m_positions(self) -> FloatArray:
        """``(F, 17, 3)`` the solved skeleton's H36M17 points in the studio world (metres, Z up)."""
        pos = self.joint_positions()
        return h36m_points(pos, self.end_site_positions(pos)) @ Y_UP_TO_Z_UP.T

    def resampled(self, fps: float) -> SkeletonSolution:
        """The take at another frame rate: rotations by spherical interpolation, root linearly."""
        if fps <= 0 or not np.isfinite(fps):
            raise InputError(f"--fps must be a positive number, got {fps}")
        if abs(fps - self.fps) < 1e-9 or self.n_frames < 2:
            return self
        t_in = np.arange(self.n_frames) / self.fps
        t_out = np.arange(int(np.floor(t_in[-1] * fps + 1e-9)) + 1) / fps
        rots = np.empty((len(t_out),) + self.rotations.shape[1:])
        for j in range(self.rotations.shape[1]):  # one Slerp per joint
            rots[:, j] = Slerp(t_in, Rotation.from_matrix(self.rotations[:, j]))(t_out).as_matrix()
        root = np.stack([np.interp(t_out, t_in, self.root[:, k]) for k in range(3)], axis=-1)
        nearest = np.clip(np.rint(t_out * self.fps).astype(np.int64), 0, self.n_frames - 1)
        return SkeletonSolution(self.actor, rots, root, fps, self.contacts[nearest], self.foot_slide_input_mm)

    def to_bvh(self, up: str = "y", units: str = "cm", fps: float | None = None) -> BvhMotion:
        """The take as a BVH motion (T-pose rest, standard names; see :mod:`.definition`).

        Args:
            up: ``"y"`` (BVH's usual convention, Blender's importer default) or ``"z"``.
            units: ``"cm"`` (default), ``"m"`` or ``"mm"`` for offsets and root positions.
            fps: output frame rate (default: the take's).
        Returns:
            A :class:`~posestudio.core.bvh.BvhMotion`; the Hips has position and rotation channels,
            the other joints rotations, in the orders of :data:`~.definition.STUDIO_SKELETON`.
        """
        if up not in ("y", "z"):
            raise InputError(f"up axis must be 'y' or 'z', got {up!r}")
        if units not in UNITS_M:
            raise InputError(f"units must be one of {', '.join(UNITS_M)}, got {units!r}")
        sol = self if fps is None else self.resampled(fps)
        scale = 1.0 / UNITS_M[units]
        axes = np.eye(3) if up == "y" else Y_UP_TO_Z_UP  # skeleton axes -> file axes
        local = sol.local_rotations()
        if up == "z":
            local = np.einsum("ab,fjbc,dc->fjad", axes, local, axes)
        orders: list[tuple[str, str, str]] = []
        for joint in STUDIO_SKELETON:
            order = joint.channels
            if up == "z":
                order = tuple(_AXIS_IN_Z_UP[c[0]] + c[1:] for c in order)  # type: ignore[assignment]
            orders.append(order)
        angles = euler_channels(local, orders)
        root = scale * sol.root @ axes.T
        columns: list[FloatArray] = [root, angles[:, 0]]
        columns += [angles[:, j] for j in range(1, len(orders))]
        channels = [("Xposition", "Yposition", "Zposition") + orders[0]] + [orders[j] for j in range(1, len(orders))]
        end_parents = tuple(JOINT_NAMES.index(n) for n in END_SITE_JOINTS)
        return BvhMotion(names=JOINT_NAMES, parents=PARENTS, offsets=scale * self.actor.offsets @ axes.T,
                         channels=tuple(tuple(c) for c in channels), frame_time=1.0 / sol.fps,
                         motion=np.concatenate(columns, axis=1), end_site_parents=end_parents,
                         end_site_offsets=scale * self.actor.end_site_offsets @ axes.T,
                         length_unit_m=UNITS_M[units], up_axis=up)


def h36m_points(joints: FloatArray, end_sites: FloatArray) -> FloatArray:
    """The H36M17 points of the export skeleton's joints and End Sites.

    Args:
        joints: ``(F, N, 3)`` in :data:`~.definition.JOINT_NAMES` order.
        end_sites: ``(F, E, 3)`` in :data:`~.definition.END_SITE_JOINTS` order.
    Returns:
        ``(F, 17, 3)`` in H36M17 order, same units and axes.
    """
    out = np.full((joints.shape[0], H36M17.n_joints, 3), np.nan)
    sk, h = observed_pairs(H36M17.joints)
    out[:, h] = joints[:, sk]
    for h36m_name, joint in H36M_END_SITES.items():
        out[:, H36M17.index(h36m_name)] = end_sites[:, END_SITE_JOINTS.index(joint)]
    return out


def bvh_h36m_points(motion: BvhMotion) -> FloatArray:
    """``(F, 17, 3)`` H36M17 points of a BVH with the export skeleton, read back through its own
    forward kinematics (:meth:`~posestudio.core.bvh.BvhMotion.world_positions`): metres, Z up.

    Raises:
        KeyError: the file lacks a joint or End Site of the export skeleton.
    """
    pos = motion.world_positions(include_end_sites=True)
    ends = [motion.names[p] for p in motion.end_site_parents]
    return h36m_points(pos[:, [motion.index(n) for n in JOINT_NAMES]],
                       pos[:, [motion.n_joints + ends.index(n) for n in END_SITE_JOINTS]])


def rotation_jumps_deg(rotations: FloatArray) -> FloatArray:
    """``(F-1, N)`` angle (degrees) between consecutive frames' rotations of each joint."""
    return rotation_angle_deg(rotations[:-1], rotations[1:])

