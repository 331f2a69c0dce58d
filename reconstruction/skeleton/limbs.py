"""Two-bone limbs (arm, leg): a hinge axis that never flips, and analytic inverse kinematics.

The elbow's and the knee's hinge axis is the normal of the plane of the two bones. When the limb is
nearly straight that plane is undefined, and taking it at face value would spin the upper bone
about its axis from frame to frame. Here the axis is kept where the limb is bent enough to define
it and carried across the straight stretches without twist: expressed in frames that follow the
upper bone's swing by the smallest rotation from one frame to the next (parallel transport), and
interpolated there between the bent frames on either side. The twist changes smoothly and never
jumps by 180 degrees, however far the straight limb swings.

The end of the limb is then placed on its target (wrist or ankle, possibly pinned to the floor)
with the measured bone lengths: the middle joint lies in the hinge plane on the side the joint
bends to (law of cosines).
"""

from __future__ import annotations

import numpy as np

from posestudio.core.arrays import FloatArray

from .frames import minimal_rotations, perpendicular, unit
from .trajectories import smooth_weighted, smoothing_weight

#: Below this sine of the bend angle (about 6 degrees) the bone plane is ignored; above
#: ``BEND_RELIABLE`` (about 14 degrees) it is trusted fully.
BEND_IGNORED = 0.1
BEND_RELIABLE = 0.25


def swing_frames(direction: FloatArray) -> FloatArray:
    """Frames that follow a direction over time with no twist about it (parallel transport).

    Args:
        direction: ``(F, 3)`` a bone's direction per frame.
    Returns:
        ``(F, 3, 3)`` rotations ``T_f`` with ``T_0 = I`` and ``T_f = Q_f @ T_(f-1)``, ``Q_f`` the
        smallest rotation taking ``direction[f-1]`` to ``direction[f]``. Computed as a
        log-depth prefix product (vectorised; no loop over frames).
    """
    d = unit(direction)
    n_f = len(d)
    q = np.broadcast_to(np.eye(3), (n_f, 3, 3)).copy()
    if n_f > 1:
        q[1:] = minimal_rotations(d[:-1], d[1:])
    step = 1
    while step < n_f:  # Hillis-Steele scan: q[i] becomes q[i] @ ... @ q[i - 2 step + 1]
        q[step:] = q[step:] @ q[:-step].copy()
        step *= 2
    return q


def hinge_axes(upper: FloatArray, lower: FloatArray, torso: FloatArray, fallback: FloatArray, fps: float,
               bend_side: FloatArray | None = None, cutoff_hz: float = 100.0) -> FloatArray:
    """Per-frame hinge axes of a two-bone limb, continuous over time.

    Args:
        upper: ``(F, 3)`` upper bone vectors (shoulder->elbow, hip->knee).
        lower: ``(F, 3)`` lower bone vectors (elbow->wrist, knee->ankle).
        torso: ``(F, 3, 3)`` torso rotations (torso frame -> world), for ``bend_side``.
        fallback: ``(F, 3)`` world-frame axis for a normal bend in the current pose, used where
            the take never bends the limb.
        fps: frames per second; cutoff_hz: how closely the axis follows a clearly bent limb.
        bend_side: ``(3,)`` in the torso frame, or None. When given, a bend whose axis points
            against it is treated as unreliable (knees do not bend forward) instead of followed.
    Returns:
        ``(F, 3)`` unit axes (``upper x lower`` for the bend), perpendicular to ``upper``.
    """
    raw = np.cross(upper, lower)
    sine = np.linalg.norm(raw, axis=-1) / np.maximum(
        np.linalg.norm(upper, axis=-1) * np.linalg.norm(lower, axis=-1), 1e-12)
    weight = np.clip((sine - BEND_IGNORED) / (BEND_RELIABLE - BEND_IGNORED), 0.0, 1.0)
    if bend_side is not None:
        in_torso = np.einsum("fba,fb->fa", torso, raw)
        weight = np.where(in_torso @ np.asarray(bend_side, float) > 0.0, weight, 0.0)
    # In the swing frames the upper bone keeps its first direction d0, so an axis perpendicular to
    # it is an angle in the plane perpendicular to d0.
    carrier = swing_frames(upper)
    d0 = unit(upper[0])
    b1 = unit(perpendicular(np.eye(3)[np.argmin(np.abs(d0))], d0))
    b2 = np.cross(d0, b1)

    def angle(world: FloatArray) -> FloatArray:
        local = np.einsum("fba,fb->fa", carrier, world)
        return np.arctan2(local @ b2, local @ b1)

    observed = angle(raw)
    weighted = weight > 0.0
    if weighted.sum() >= 2:
        # The angle is unwrapped over the frames that say something, then smoothed with their
        # weights: a clearly bent limb is followed, straight stretches are bridged smoothly.
        theta_in = np.interp(frames := np.arange(len(raw)), frames[weighted], np.unwrap(observed[weighted]))
        theta = smooth_weighted(theta_in[:, None], weight**2, smoothing_weight(fps, cutoff_hz))[:, 0]
    else:
        # Never bent: take the fallback where it is best defined and carry it without twist (the
        # fallback itself turns over as the bone swings through its reference direction).
        best = int(np.argmax(np.linalg.norm(perpendicular(unit(fallback), unit(upper)), axis=-1)))
        theta = np.full(len(raw), angle(fallback)[best])
    local = np.cos(theta)[:, None] * b1 + np.sin(theta)[:, None] * b2
    return unit(np.einsum("fab,fb->fa", carrier, local))


def two_bone_ik(root: FloatArray, target: FloatArray, upper_length: float, lower_length: float,
                axis: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Middle and end joint of a limb whose end should reach ``target``.

    Args:
        root: ``(F, 3)`` shoulder / hip positions (metres).
        target: ``(F, 3)`` wanted wrist / ankle positions (metres).
        upper_length, lower_length: bone lengths (metres).
        axis: ``(F, 3)`` unit hinge axes (``upper x lower`` for the wanted bend).
    Returns:
        ``(middle (F, 3), end (F, 3))``; ``end == target`` where the target is within reach,
        otherwise the reachable point nearest to it along the same direction.
    """
    a, b = float(upper_length), float(lower_length)
    reach = target - root
    dist = np.linalg.norm(reach, axis=-1)
    u = reach / np.maximum(dist, 1e-12)[:, None]
    d = np.clip(dist, abs(a - b) + 1e-6, (a + b) * (1.0 - 1e-6))
    along = (a * a - b * b + d * d) / (2.0 * d)
    height = np.sqrt(np.maximum(a * a - along * along, 0.0))
    side = unit(np.cross(u, axis))
    middle = root + along[:, None] * u + height[:, None] * side
    return middle, root + d[:, None] * u


def two_bone_fit(root: FloatArray, middle_obs: FloatArray, end_obs: FloatArray, upper_length: float,
                 lower_length: float, axis: FloatArray, end_weight: FloatArray,
                 iterations: int = 24) -> tuple[FloatArray, FloatArray]:
    """Middle and end joint of a limb with fixed bones, as close as they can be to both observations.

    Plain two-bone IK puts the end exactly on its target; when the observed bones are not the
    actor's (a reconstruction whose left shin is 2 cm shorter than the right), a nearly straight
    limb then bends its middle joint far out of place to absorb the difference. This places the
    upper bone at the angle (in the hinge plane) minimising
    ``|middle - middle_obs|^2 + end_weight * (|end_obs - middle| - lower_length)^2``, searched
    between the IK angle and the observed upper bone's angle (golden section, vectorised), and
    aims the lower bone at ``end_obs``. A large ``end_weight`` (a planted foot) gives the IK answer.

    Args:
        root: ``(F, 3)`` shoulder / hip; middle_obs, end_obs: ``(F, 3)`` observed elbow / knee and
            wrist / ankle (metres).
        upper_length, lower_length: bone lengths (metres).
        axis: ``(F, 3)`` unit hinge axes; end_weight: ``(F,)`` weight of the end's distance.
    Returns:
        ``(middle (F, 3), end (F, 3))``.
    """
    a, b = float(upper_length), float(lower_length)
    ik_middle, _ = two_bone_ik(root, end_obs, a, b, axis)
    reach = end_obs - root
    u = unit(reach)
    side = unit(np.cross(u, axis))

    def angle_of(point: FloatArray) -> FloatArray:
        d = point - root
        return np.arctan2((d * side).sum(-1), (d * u).sum(-1))

    phi_ik, phi_obs = angle_of(ik_middle), angle_of(middle_obs)
    lo, hi = np.minimum(phi_ik, phi_obs), np.maximum(phi_ik, phi_obs)
    w = np.asarray(end_weight, float)

    def cost(phi: FloatArray) -> FloatArray:
        mid = root + a * (np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * side)
        miss = np.linalg.norm(end_obs - mid, axis=-1) - b
        return ((mid - middle_obs) ** 2).sum(-1) + w * miss**2

    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    f1, f2 = cost(x1), cost(x2)
    for _ in range(iterations):  # golden-section search, all frames at once
        left = f1 < f2
        hi = np.where(left, x2, hi)
        lo = np.where(left, lo, x1)
        x2n = np.where(left, x1, lo + ratio * (hi - lo))
        x1n = np.where(left, hi - ratio * (hi - lo), x2)
        x1, x2 = x1n, x2n
        f1, f2 = cost(x1), cost(x2)
    phi = 0.5 * (lo + hi)
    candidates = np.stack([phi, phi_ik], axis=0)  # never worse than plain IK
    best = candidates[np.argmin(np.stack([cost(phi), cost(phi_ik)]), axis=0), np.arange(len(phi))]
    middle = root + a * (np.cos(best)[:, None] * u + np.sin(best)[:, None] * side)
    end = middle + b * unit(end_obs - middle)
    return middle, end
