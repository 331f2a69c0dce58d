"""A camera's upright frame: the same camera turned about its optical axis until the world's
vertical points straight up in its image.

The lifting network is trained on virtual cameras without roll (``data.VirtualCameras``: yaw,
pitch, distance), so a body filmed by a camera on its side, or tilted by 13 or 26 degrees as two of
the real clip's are, is off its training distribution. A turn about the optical axis is exact for
a pinhole camera: normalised image coordinates turn by the same angle and depth is unchanged. So the
2D is turned into the upright frame, lifted there, and the 3D turned back. World frames are Z up
(the project's convention).
"""

from __future__ import annotations

import numpy as np

from posestudio.core.arrays import FloatArray

#: A camera whose view of the vertical is shorter than this (unit vector's image-plane part) looks
#: almost straight up or down: its roll is undefined and it is left as it is.
MIN_VERTICAL_IN_IMAGE = 0.05


def upright_turn(rotation: FloatArray) -> FloatArray:
    """The turn about the optical axis that makes a camera upright.

    Args:
        rotation: ``(..., 3, 3)`` world-to-camera rotations (world Z up).
    Returns:
        ``(..., 3, 3)`` rotations ``Q`` about the camera's Z axis such that ``Q @ rotation`` sees the
        world's up direction as image up (``-y``); the identity where the camera looks along the
        vertical.
    """
    up = np.asarray(rotation, dtype=np.float64)[..., :, 2]                                 # (..., 3) world Z in camera
    length = np.hypot(up[..., 0], up[..., 1])
    # angle that takes the image-plane direction of up to (0, -1)
    phi = np.where(length > MIN_VERTICAL_IN_IMAGE, -np.pi / 2 - np.arctan2(up[..., 1], up[..., 0]), 0.0)
    c, s = np.cos(phi), np.sin(phi)
    q = np.zeros(up.shape[:-1] + (3, 3))
    q[..., 0, 0], q[..., 0, 1], q[..., 1, 0], q[..., 1, 1], q[..., 2, 2] = c, -s, s, c, 1.0
    return q


def turn_image_points(xy: FloatArray, turn: FloatArray) -> FloatArray:
    """``(..., 2)`` normalised image coordinates in the turned camera (``turn`` ``(3, 3)`` about Z)."""
    return np.einsum("ij,...j->...i", turn[:2, :2], xy)


def turn_back(points: FloatArray, turn: FloatArray) -> FloatArray:
    """``(..., 3)`` camera-frame points of the turned camera back in the original camera's frame."""
    return np.einsum("ji,...j->...i", turn, points)
