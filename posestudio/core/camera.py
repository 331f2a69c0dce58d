"""The camera model: OpenCV's pinhole + Brown distortion (or fisheye), world-to-camera pose.

A :class:`Camera` maps world points (metres, right-handed world frame) to image pixels:
``X_cam = R @ X_world + t``, then perspective division, lens distortion and the intrinsic
matrix ``K``. Every method is vectorised over any number of points.

Distortion coefficients follow OpenCV's order:
- ``model="pinhole"``: ``(k1, k2, p1, p2[, k3[, k4, k5, k6]])`` (radial-tangential, optional rational)
- ``model="fisheye"``: ``(k1, k2, k3, k4)`` (equidistant, ``cv2.fisheye``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from numpy.typing import NDArray

from .arrays import FloatArray
from .rotations import matrix_to_rodrigues, rodrigues_to_matrix

CAMERA_MODELS = ("pinhole", "fisheye")


@dataclass
class Camera:
    """One calibrated camera.

    Attributes:
        name: camera name (unique in a rig).
        image_size: ``(width, height)`` in pixels.
        matrix: ``(3, 3)`` intrinsic matrix K (fx, fy, cx, cy in pixels).
        dist: distortion coefficients (see module docstring), length 4, 5 or 8.
        rotation: ``(3, 3)`` world-to-camera rotation R.
        translation: ``(3,)`` world-to-camera translation t, metres.
        model: ``"pinhole"`` or ``"fisheye"``.
        time_offset: seconds this camera's frames lag the rig's reference clock (calibration
            estimate; 0 when unknown or trusted).
    """

    name: str
    image_size: tuple[int, int]
    matrix: FloatArray
    dist: FloatArray = field(default_factory=lambda: np.zeros(5))
    rotation: FloatArray = field(default_factory=lambda: np.eye(3))
    translation: FloatArray = field(default_factory=lambda: np.zeros(3))
    model: str = "pinhole"
    time_offset: float = 0.0

    def __post_init__(self) -> None:
        self.matrix = np.asarray(self.matrix, dtype=np.float64).reshape(3, 3)
        self.dist = np.asarray(self.dist, dtype=np.float64).ravel()
        self.rotation = np.asarray(self.rotation, dtype=np.float64).reshape(3, 3)
        self.translation = np.asarray(self.translation, dtype=np.float64).ravel()
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        if self.model not in CAMERA_MODELS:
            raise ValueError(f"camera {self.name!r}: unknown model {self.model!r}, expected one of {CAMERA_MODELS}")
        if self.model == "fisheye" and self.dist.size != 4:
            raise ValueError(f"camera {self.name!r}: fisheye needs 4 distortion coefficients, got {self.dist.size}")
        if self.model == "pinhole" and self.dist.size not in (4, 5, 8):
            raise ValueError(f"camera {self.name!r}: pinhole needs 4, 5 or 8 distortion coefficients, got {self.dist.size}")
        if self.translation.size != 3:
            raise ValueError(f"camera {self.name!r}: translation must have 3 values, got {self.translation.size}")

    # ----------------------------------------------------------------- properties
    @property
    def rvec(self) -> FloatArray:
        """World-to-camera rotation as a Rodrigues vector ``(3,)``, radians."""
        return matrix_to_rodrigues(self.rotation)

    @property
    def center(self) -> FloatArray:
        """Camera centre in world coordinates ``(3,)``, metres."""
        return -self.rotation.T @ self.translation

    @property
    def focal(self) -> tuple[float, float]:
        """``(fx, fy)`` in pixels."""
        return float(self.matrix[0, 0]), float(self.matrix[1, 1])

    @property
    def principal_point(self) -> tuple[float, float]:
        """``(cx, cy)`` in pixels."""
        return float(self.matrix[0, 2]), float(self.matrix[1, 2])

    @property
    def projection_matrix(self) -> FloatArray:
        """``(3, 4)`` matrix ``[R | t]`` acting on world points (normalised image coordinates)."""
        return np.hstack([self.rotation, self.translation[:, None]])

    def with_pose(self, rotation: FloatArray, translation: FloatArray) -> "Camera":
        """Copy with another world-to-camera pose."""
        return replace(self, rotation=np.asarray(rotation, float), translation=np.asarray(translation, float))

    def copy(self) -> "Camera":
        return replace(self, matrix=self.matrix.copy(), dist=self.dist.copy(),
                       rotation=self.rotation.copy(), translation=self.translation.copy())

    # ----------------------------------------------------------------- mapping
    def world_to_camera(self, points: FloatArray) -> FloatArray:
        """World points ``(..., 3)`` to camera coordinates ``(..., 3)``, metres."""
        points = np.asarray(points, dtype=np.float64)
        return points @ self.rotation.T + self.translation

    def distort_normalized(self, xy: FloatArray) -> FloatArray:
        """Apply lens distortion to ideal normalised coordinates.

        Args:
            xy: ``(..., 2)`` ideal normalised image coordinates (x/z, y/z).
        Returns:
            ``(..., 2)`` distorted normalised coordinates.
        """
        return distort_normalized(xy, self.dist, self.model)

    def project(self, points: FloatArray) -> FloatArray:
        """Project world points to distorted pixel coordinates.

        Args:
            points: ``(..., 3)`` world points, metres.
        Returns:
            ``(..., 2)`` pixels; points at or behind the camera plane come back NaN.
        """
        pc = self.world_to_camera(points)
        z = pc[..., 2:3]
        with np.errstate(divide="ignore", invalid="ignore"):
            xy = pc[..., :2] / z
        xy = np.where(z > 1e-9, xy, np.nan)
        xyd = self.distort_normalized(xy)
        k = self.matrix
        u = k[0, 0] * xyd[..., 0] + k[0, 1] * xyd[..., 1] + k[0, 2]
        v = k[1, 1] * xyd[..., 1] + k[1, 2]
        return np.stack([u, v], axis=-1)

    def undistort_points(self, pixels: FloatArray) -> FloatArray:
        """Remove lens distortion: pixels to ideal normalised coordinates.

        Args:
            pixels: ``(..., 2)`` distorted pixel coordinates (NaN allowed).
        Returns:
            ``(..., 2)`` normalised coordinates ``(x/z, y/z)``; NaN stays NaN.
        """
        pixels = np.asarray(pixels, dtype=np.float64)
        flat = pixels.reshape(-1, 2)
        out = np.full_like(flat, np.nan)
        ok = np.isfinite(flat).all(axis=1)
        if ok.any():
            src = np.ascontiguousarray(flat[ok]).reshape(-1, 1, 2)
            if self.model == "fisheye":
                und = cv2.fisheye.undistortPoints(src, self.matrix, self.dist,
                                                  criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12))
            else:
                und = cv2.undistortPoints(src, self.matrix, self.dist, None, None, None,
                                          (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12))
            out[ok] = und.reshape(-1, 2)
        return out.reshape(pixels.shape)

    def undistort_pixels(self, pixels: FloatArray) -> FloatArray:
        """Pixels with distortion removed, still in pixels (same K): ``(..., 2)``."""
        xy = self.undistort_points(pixels)
        k = self.matrix
        return np.stack([k[0, 0] * xy[..., 0] + k[0, 1] * xy[..., 1] + k[0, 2],
                         k[1, 1] * xy[..., 1] + k[1, 2]], axis=-1)

    def backproject(self, pixels: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Rays through pixels.

        Args:
            pixels: ``(..., 2)`` distorted pixel coordinates.
        Returns:
            ``(origin (3,), directions (..., 3))``: the camera centre and unit ray directions in the
            world frame.
        """
        xy = self.undistort_points(pixels)
        rays_cam = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1)
        rays_cam /= np.linalg.norm(rays_cam, axis=-1, keepdims=True)
        return self.center, rays_cam @ self.rotation  # (R^T d)^T = d^T R

    def backproject_to_depth(self, pixels: FloatArray, depth: FloatArray) -> FloatArray:
        """World points at camera-frame depth ``z`` along pixel rays.

        Args:
            pixels: ``(..., 2)`` distorted pixels.
            depth: ``(...)`` depth along the optical axis, metres.
        Returns:
            ``(..., 3)`` world points.
        """
        xy = self.undistort_points(pixels)
        pc = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1) * np.asarray(depth)[..., None]
        return (pc - self.translation) @ self.rotation

    def in_image(self, pixels: FloatArray, margin: float = 0.0) -> NDArray[np.bool_]:
        """Whether pixels ``(..., 2)`` fall inside the image (with a margin in pixels)."""
        w, h = self.image_size
        x, y = pixels[..., 0], pixels[..., 1]
        with np.errstate(invalid="ignore"):
            return (x >= -0.5 + margin) & (x <= w - 0.5 - margin) & (y >= -0.5 + margin) & (y <= h - 0.5 - margin)


def distort_normalized(xy: FloatArray, dist: FloatArray, model: str = "pinhole") -> FloatArray:
    """Lens distortion on ideal normalised coordinates (OpenCV's models), vectorised.

    Args:
        xy: ``(..., 2)`` ideal normalised coordinates.
        dist: distortion coefficients (OpenCV order).
        model: ``"pinhole"`` or ``"fisheye"``.
    Returns:
        ``(..., 2)`` distorted normalised coordinates.
    """
    x, y = xy[..., 0], xy[..., 1]
    d = np.zeros(8)
    d[: min(8, len(dist))] = np.asarray(dist, dtype=np.float64)[:8]
    if model == "fisheye":
        r = np.sqrt(x * x + y * y)
        theta = np.arctan(r)
        t2 = theta * theta
        theta_d = theta * (1 + d[0] * t2 + d[1] * t2**2 + d[2] * t2**3 + d[3] * t2**4)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(r > 1e-12, theta_d / r, 1.0)
        return np.stack([x * scale, y * scale], axis=-1)
    k1, k2, p1, p2, k3, k4, k5, k6 = d
    r2 = x * x + y * y
    radial = (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([xd, yd], axis=-1)


def camera_from_rvec(name: str, image_size: tuple[int, int], matrix: FloatArray, dist: FloatArray,
                     rvec: FloatArray, tvec: FloatArray, model: str = "pinhole") -> Camera:
    """Build a :class:`Camera` from a Rodrigues rotation vector ``(3,)`` and translation ``(3,)``."""
    return Camera(name, image_size, matrix, dist, rodrigues_to_matrix(np.asarray(rvec, float).ravel()),
                  np.asarray(tvec, float).ravel(), model)
