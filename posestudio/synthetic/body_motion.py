"""A procedurally animated 17-joint body: ground truth that needs no motion-capture files.

:func:`walking_body` swings legs and arms (hips, knees, shoulders, elbows) over a straight walk
by forward kinematics, so every bone keeps its length exactly. Tests and demos use it where the
real motion capture in ``../shared/data`` is not available.
"""

from __future__ import annotations

import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.models.keypoints import H36M17

#: Offset of each joint from its parent in the body frame (x forward, y left, z up), metres.
_OFFSETS = {
    "pelvis": (0.0, 0.0, 0.0),
    "r_hip": (0.0, -0.10, 0.0), "r_knee": (0.0, 0.0, -0.42), "r_ankle": (0.0, 0.0, -0.42),
    "l_hip": (0.0, 0.10, 0.0), "l_knee": (0.0, 0.0, -0.42), "l_ankle": (0.0, 0.0, -0.42),
    "spine": (0.0, 0.0, 0.22), "thorax": (0.0, 0.0, 0.25), "neck": (0.0, 0.0, 0.10), "head": (0.05, 0.0, 0.12),
    "l_shoulder": (0.0, 0.18, -0.02), "l_elbow": (0.0, 0.0, -0.28), "l_wrist": (0.0, 0.0, -0.25),
    "r_shoulder": (0.0, -0.18, -0.02), "r_elbow": (0.0, 0.0, -0.28), "r_wrist": (0.0, 0.0, -0.25),
}


def _pitch(angle: FloatArray) -> FloatArray:
    """``(F, 3, 3)`` rotations about the body's y axis (positive swings a limb forward, +x)."""
    c, s = np.cos(angle), np.sin(angle)
    z, o = np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, z, -s], -1), np.stack([z, o, z], -1), np.stack([s, z, c], -1)], -2)


def walking_body(frames: int = 150, fps: float = 30.0, speed_m_s: float = 1.2, start: tuple[float, float] = (0.0, 0.0),
                 heading_deg: float = 0.0, stride_hz: float = 0.9, pelvis_height_m: float = 0.95) -> FloatArray:
    """Joints of a body walking in a straight line.

    Args:
        frames: number of frames; fps: frame rate, Hz.
        speed_m_s: walking speed, metres per second.
        start: ``(x, y)`` of the pelvis at frame 0, metres.
        heading_deg: walking direction, degrees anticlockwise from +x.
        stride_hz: leg-swing frequency, Hz.
        pelvis_height_m: height of the pelvis, metres.
    Returns:
        ``(frames, 17, 3)`` world positions (z up), metres, in :data:`~posestudio.models.keypoints.H36M17` order.
    """
    t = np.arange(frames) / fps
    phase = 2 * np.pi * stride_hz * t
    swing = {  # joint whose child segment rotates -> angle (radians) per frame
        "r_hip": 0.45 * np.sin(phase), "l_hip": -0.45 * np.sin(phase),
        "r_knee": -0.35 * (1 + np.sin(phase - 1.2)), "l_knee": -0.35 * (1 + np.sin(phase + np.pi - 1.2)),
        "l_shoulder": 0.35 * np.sin(phase), "r_shoulder": -0.35 * np.sin(phase),
        "l_elbow": 0.3 + 0.25 * np.sin(phase), "r_elbow": 0.3 - 0.25 * np.sin(phase),
    }
    parents = H36M17.parents
    names = list(H36M17.joints)
    rot = np.zeros((frames, len(names), 3, 3))
    pos = np.zeros((frames, len(names), 3))
    for j in H36M17.topological_order():
        name = names[j]
        p = parents[j]
        local = _pitch(swing[name]) if name in swing else np.broadcast_to(np.eye(3), (frames, 3, 3))
        if p < 0:
            rot[:, j] = local
            continue
        pos[:, j] = pos[:, p] + np.einsum("fij,j->fi", rot[:, p], np.asarray(_OFFSETS[name]))
        rot[:, j] = rot[:, p] @ local
    heading = np.deg2rad(heading_deg)
    c, s = np.cos(heading), np.sin(heading)
    yaw = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    bob = 0.02 * np.cos(2 * phase)
    root = np.stack([start[0] + c * speed_m_s * t, start[1] + s * speed_m_s * t, pelvis_height_m + bob], -1)
    return pos @ yaw.T + root[:, None, :]
