"""A calibrated camera rig: the one object a user needs to project, triangulate and save."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .arrays import FloatArray
from .camera import Camera
from .dlt import triangulate_dlt
from .rig_file import RigFileError, read_rig_file, write_rig_file


@dataclass
class CameraRig:
    """An ordered set of calibrated cameras sharing one world frame (metres, Z up).

    Attributes:
        cameras: the cameras, in a fixed order; arrays indexed by camera follow it.
        metadata: free-form provenance (how it was made, reports, world-frame description).
    """

    cameras: list[Camera]
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [c.name for c in self.cameras]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"camera names must be unique in a rig; repeated: {', '.join(dup)}")

    # ----------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self.cameras)

    def __iter__(self) -> Iterator[Camera]:
        return iter(self.cameras)

    def __getitem__(self, key: int | str) -> Camera:
        if isinstance(key, str):
            for cam in self.cameras:
                if cam.name == key:
                    return cam
            raise KeyError(f"no camera named {key!r} in the rig (cameras: {', '.join(self.names)})")
        return self.cameras[key]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    @property
    def rotations(self) -> FloatArray:
        """``(C, 3, 3)`` world-to-camera rotations."""
        return np.stack([c.rotation for c in self.cameras])

    @property
    def translations(self) -> FloatArray:
        """``(C, 3)`` world-to-camera translations, metres."""
        return np.stack([c.translation for c in self.cameras])

    @property
    def centers(self) -> FloatArray:
        """``(C, 3)`` camera centres in the world frame, metres."""
        return np.stack([c.center for c in self.cameras])

    @property
    def focal_x(self) -> FloatArray:
        """``(C,)`` horizontal focal lengths, pixels (turn normalised-coordinate errors into pixels)."""
        return np.array([c.matrix[0, 0] for c in self.cameras])

    def subset(self, names: Iterable[str]) -> "CameraRig":
        """A rig of the named cameras, in the given order."""
        return CameraRig([self[n] for n in names], dict(self.metadata))

    # ----------------------------------------------------------------- geometry
    def project(self, points: FloatArray) -> FloatArray:
        """Project world points into every camera.

        Args:
            points: ``(..., 3)`` world points, metres.
        Returns:
            ``(C, ..., 2)`` distorted pixels (NaN behind a camera).
        """
        return np.stack([cam.project(points) for cam in self.cameras])

    def undistort(self, pixels: FloatArray) -> FloatArray:
        """Per-camera undistortion: ``(C, ..., 2)`` pixels to normalised coordinates."""
        return np.stack([cam.undistort_points(p) for cam, p in zip(self.cameras, pixels)])

    def ray_directions(self, xy: FloatArray) -> FloatArray:
        """World-frame unit directions of the rays through undistorted image points.

        Args:
            xy: ``(C, ..., 2)`` normalised image coordinates (``x/z, y/z``, lens undone), NaN where a
                camera has no detection. The rays start at :attr:`centers`.
        Returns:
            ``(C, ..., 3)`` unit directions (NaN where ``xy`` is).
        """
        rays = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], -1)
        rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
        return np.einsum("c...k,ckl->c...l", rays, self.rotations)

    def triangulate(self, pixels: FloatArray, weights: FloatArray | None = None,
                    min_views: int = 2) -> FloatArray:
        """Weighted DLT triangulation.

        Args:
            pixels: ``(C, ..., 2)`` distorted pixel coordinates per camera, NaN where unseen.
            weights: ``(C, ...)`` confidences, or None.
            min_views: minimum cameras per point.
        Returns:
            ``(..., 3)`` world points, metres (NaN where fewer than ``min_views`` cameras see it).
        """
        pixels = np.asarray(pixels, dtype=np.float64)
        if pixels.shape[0] != len(self.cameras):
            raise ValueError(f"expected pixels for {len(self.cameras)} cameras, got {pixels.shape[0]}")
        lead = pixels.shape[1:-1]
        flat = pixels.reshape(len(self.cameras), -1, 2)
        normed = self.undistort(flat)
        w = None if weights is None else np.asarray(weights, float).reshape(len(self.cameras), -1)
        poses = np.stack([c.projection_matrix for c in self.cameras])
        return triangulate_dlt(poses, normed, w, min_views).reshape(lead + (3,))

    def reprojection_errors(self, points: FloatArray, pixels: FloatArray) -> FloatArray:
        """Pixel distance between observed and reprojected points.

        Args:
            points: ``(..., 3)`` world points.
            pixels: ``(C, ..., 2)`` observations.
        Returns:
            ``(C, ...)`` errors in pixels (NaN where unobserved).
        """
        return np.linalg.norm(self.project(points) - pixels, axis=-1)

    # ----------------------------------------------------------------- files
    def save(self, path: str | Path) -> None:
        """Write PoseStudio's ``rig.toml`` (see :mod:`posestudio.core.rig_file`), atomically."""
        write_rig_file(path, self.cameras, self.metadata)

    @classmethod
    def load(cls, path: str | Path) -> "CameraRig":
        """Read PoseStudio's ``rig.toml``; a bad file raises :class:`~posestudio.core.rig_file.RigFileError`."""
        cameras, metadata = read_rig_file(path)
        try:
            return cls(cameras, metadata)
        except ValueError as exc:  # e.g. a camera name twice
            raise RigFileError(f"{path}: {exc}") from None
