"""Pinhole projection to normalised image coordinates and its Jacobian, batched over any shape.

Lens distortion is undone once on the 2D side (:meth:`posestudio.core.camera.Camera.undistort_points`),
so every solver after calibration works in ideal normalised coordinates ``(x/z, y/z)``; a
residual there times the focal length is pixels.
"""

from __future__ import annotations

import numpy as np

from .arrays import FloatArray

#: Depths below this (metres) are clamped so that points behind or on a camera give finite values.
MIN_DEPTH_M = 1e-6


def to_camera(rotation: FloatArray, translation: FloatArray, points: FloatArray) -> FloatArray:
    """World points into camera frames, ``X_cam = R X + t``.

    Args:
        rotation: ``(..., 3, 3)`` world-to-camera rotations; translation: ``(..., 3)`` metres.
        points: ``(..., 3)`` world points, metres (broadcast against the poses).
    Returns:
        ``(..., 3)`` camera-frame points, metres.
    """
    return np.einsum("...ij,...j->...i", rotation, points) + translation


def to_cameras(rotations: FloatArray, translations: FloatArray, points: FloatArray) -> FloatArray:
    """The same world points in each of ``C`` cameras (one matrix product per camera, the fast form).

    Args:
        rotations: ``(C, 3, 3)`` world-to-camera; translations: ``(C, 3)`` metres.
        points: ``(..., 3)`` world points, metres.
    Returns:
        ``(C, ..., 3)`` camera-frame points, metres.
    """
    flat = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    out = flat @ np.swapaxes(rotations, 1, 2) + translations[:, None, :]                   # (C, N, 3)
    return out.reshape((len(rotations),) + np.shape(points))


def normalized_projection(camera_points: FloatArray, min_depth: float = MIN_DEPTH_M) -> tuple[FloatArray, FloatArray]:
    """Perspective division of camera-frame points.

    Args:
        camera_points: ``(..., 3)`` metres.
        min_depth: depths below it are clamped (points behind the camera stay finite).
    Returns:
        ``(xy (..., 2), z (..., ))``: normalised coordinates and the clamped depth.
    """
    z = np.where(camera_points[..., 2] > min_depth, camera_points[..., 2], min_depth)
    return camera_points[..., :2] / z[..., None], z


def normalized_projection_jacobian(camera_points: FloatArray, min_depth: float = MIN_DEPTH_M) -> FloatArray:
    """Derivative of ``(x/z, y/z)`` with respect to the camera-frame point.

    ``[[1/z, 0, -x/z^2], [0, 1/z, -y/z^2]]``; chain it with ``R`` for the derivative with respect to
    the world point.

    Args:
        camera_points: ``(..., 3)`` metres.
        min_depth: as in :func:`normalized_projection`.
    Returns:
        ``(..., 2, 3)`` per metre.
    """
    z = np.where(camera_points[..., 2] > min_depth, camera_points[..., 2], min_depth)
    jac = np.zeros(camera_points.shape[:-1] + (2, 3))
    jac[..., 0, 0] = jac[..., 1, 1] = 1.0 / z
    jac[..., 0, 2] = -camera_points[..., 0] / z**2
    jac[..., 1, 2] = -camera_points[..., 1] / z**2
    return jac


def world_point_jacobian(rotation: FloatArray, camera_points: FloatArray, min_depth: float = MIN_DEPTH_M) -> FloatArray:
    """Derivative of ``(x/z, y/z)`` with respect to the world point: the Jacobian above times ``R``.

    Args:
        rotation: ``(..., 3, 3)`` world-to-camera rotations (broadcast against the points).
        camera_points: ``(..., 3)`` the points in those cameras, metres.
    Returns:
        ``(..., 2, 3)`` per metre.
    """
    return normalized_projection_jacobian(camera_points, min_depth) @ rotation
