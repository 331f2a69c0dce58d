"""Synthetic studio design: a ring of cameras with realistic, random intrinsics and lenses.

World frame: right-handed, Z up, metres; the capture volume is centred near ``(0, 0, 1)``.
Cameras follow OpenCV's convention (x right, y down, z forward) and the rig stores the
world-to-camera pose ``X_cam = R @ X_world + t``.
"""

from __future__ import annotations

import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.camera import Camera
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import rodrigues_to_matrix

DISTORTION_LEVELS = ("strong", "mild", "none")
#: Camera layouts of :func:`make_studio_rig`: one ring, or a ring whose every other camera hangs
#: overhead (higher, closer in, looking down steeply).
LAYOUTS = ("ring", "overhead")
#: Height range of the overhead cameras, metres, and their radius as a fraction of the ring's.
OVERHEAD_HEIGHT = (3.0, 3.5)
OVERHEAD_RADIUS_SCALE = 0.7
WORLD_FRAME = "synthetic studio: right-handed, Z up, metres; volume centre near (0, 0, 1)"


def look_at(center: FloatArray, target: FloatArray, up: FloatArray = np.array([0.0, 0.0, 1.0])) -> FloatArray:
    """World-to-camera rotation of a camera at ``center`` looking at ``target`` (no roll).

    Args:
        center: ``(3,)`` camera centre, metres (world).
        target: ``(3,)`` point on the optical axis, metres (world).
        up: ``(3,)`` world up direction; the image's y axis (down) points against it.
    Returns:
        ``(3, 3)`` rotation whose rows are the camera x (right), y (down), z (forward) axes
        expressed in the world frame.
    """
    z = np.asarray(target, float) - np.asarray(center, float)
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


def _corner_radius(image_size: tuple[int, int], matrix: FloatArray) -> float:
    """Largest distorted normalised radius over the image corners."""
    w, h = image_size
    corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [-0.5, h - 0.5], [w - 0.5, h - 0.5]])
    xy = (corners - matrix[:2, 2]) / np.array([matrix[0, 0], matrix[1, 1]])
    return float(np.linalg.norm(xy, axis=1).max())


def distortion_is_valid(dist: FloatArray, model: str, image_size: tuple[int, int], matrix: FloatArray,
                        margin: float = 1.15) -> bool:
    """Whether the radial distortion is monotonic over the whole image (with a margin).

    The distorted radius must grow strictly with the ideal radius (angle for fisheye) from the
    centre out to ``margin`` times the ideal radius that reaches the farthest image corner, so
    every pixel has exactly one ray and undistortion converges.

    Args:
        dist: distortion coefficients (OpenCV order).
        model: ``"pinhole"`` or ``"fisheye"``.
        image_size: ``(width, height)`` pixels.
        matrix: ``(3, 3)`` intrinsics.
        margin: safety factor on the corner's ideal radius.
    """
    rd_corner = _corner_radius(image_size, matrix)
    d = np.zeros(8)
    d[: len(dist)] = dist
    if model == "fisheye":
        theta = np.linspace(0.0, np.radians(85.0), 4000)  # must stay well below 90 deg
        t2 = theta**2
        rd = theta * (1 + d[0] * t2 + d[1] * t2**2 + d[2] * t2**3 + d[3] * t2**4)
    else:
        r = np.linspace(0.0, 4.0, 8000)
        r2 = r**2
        rd = r * (1 + d[0] * r2 + d[1] * r2**2 + d[4] * r2**3)
    grows = np.diff(rd) > 0
    bad = np.flatnonzero(~grows)
    limit = len(grows) if bad.size == 0 else bad[0]  # monotonic on [0, limit]
    reach = np.flatnonzero(rd[: limit + 1] >= rd_corner)
    if reach.size == 0:
        return False  # the corners are beyond the lens' monotonic range (or beyond 85 deg)
    needed = reach[0] * margin
    return bool(needed <= limit)


def _sample_distortion(rng: np.random.Generator, level: str, fisheye: bool) -> FloatArray:
    if fisheye:
        if level == "none":
            return np.zeros(4)
        s = 1.0 if level == "strong" else 0.3
        return np.array([rng.uniform(-0.06, 0.04) * s, rng.uniform(-0.02, 0.02) * s,
                         rng.uniform(-0.01, 0.01) * s, rng.uniform(-0.004, 0.004) * s])
    if level == "none":
        return np.zeros(5)
    if level == "mild":
        return np.array([rng.uniform(-0.12, -0.04), rng.uniform(0.0, 0.05), rng.uniform(-5e-4, 5e-4),
                         rng.uniform(-5e-4, 5e-4), 0.0])
    return np.array([rng.uniform(-0.35, -0.2), rng.uniform(0.05, 0.14), rng.uniform(-1.5e-3, 1.5e-3),
                     rng.uniform(-1.5e-3, 1.5e-3), rng.uniform(-0.03, 0.0)])


def make_studio_rig(n_cameras: int = 4, image_size: tuple[int, int] = (1920, 1080),
                    radius: tuple[float, float] = (3.0, 4.0), height: tuple[float, float] = (1.5, 2.5),
                    target: tuple[float, float, float] = (0.0, 0.0, 1.0), seed: int = 0,
                    distortion: str = "strong", fisheye: bool = False,
                    focal_range: tuple[float, float] | None = None, perturb_deg: float = 3.0,
                    layout: str = "ring") -> CameraRig:
    """A seeded, deterministic ring of cameras around a capture volume.

    Cameras stand at evenly spread azimuths (jittered by up to a quarter of the spacing), at
    ``radius`` metres from the volume's vertical axis and ``height`` metres high, looking at
    ``target`` perturbed by small random yaw/pitch (``perturb_deg``) and roll (``1.5 * perturb_deg``).
    With ``layout="overhead"`` every odd-numbered camera hangs overhead instead: at
    :data:`OVERHEAD_HEIGHT` metres and :data:`OVERHEAD_RADIUS_SCALE` times its ring radius, so it
    looks down at about 40 degrees (same random draws: the even cameras are those of the ring).

    Intrinsics vary per camera: focal length ``focal_range`` x image width (default 0.7-1.0 for
    pinhole lenses, 0.45-0.6 for fisheye), ``fy`` within 0.3 % of ``fx``, principal point off
    centre by up to 3 % of the image size. Lenses (OpenCV order):

    - ``"strong"``: k1 in [-0.35, -0.2], k2 in [0.05, 0.14], k3 in [-0.03, 0], |p1|, |p2| <= 1.5e-3
      (wide webcams / action cameras);
    - ``"mild"``: k1 in [-0.12, -0.04], k2 in [0, 0.05], |p| <= 5e-4;
    - ``"none"``: zeros.

    Every lens is redrawn until its radial distortion is monotonic over the image
    (:func:`distortion_is_valid`).

    Args:
        n_cameras: number of cameras, named ``cam0 .. cam{n-1}``.
        image_size: ``(width, height)`` pixels.
        radius: ``(min, max)`` horizontal distance from the volume axis, metres.
        height: ``(min, max)`` camera height, metres.
        target: ``(3,)`` point the cameras aim at, metres.
        seed: random seed.
        distortion: ``"strong"``, ``"mild"`` or ``"none"``.
        fisheye: equidistant fisheye lenses (``cv2.fisheye`` model, 4 coefficients).
        focal_range: focal length range as a fraction of the image width.
        perturb_deg: size of the random aiming errors, degrees.
        layout: one of :data:`LAYOUTS`.
    Returns:
        The ground-truth :class:`CameraRig` (``time_offset`` 0; see the session writer).
    """
    if distortion not in DISTORTION_LEVELS:
        raise ValueError(f"distortion must be one of {DISTORTION_LEVELS}, got {distortion!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if n_cameras < 1:
        raise ValueError(f"n_cameras must be >= 1, got {n_cameras}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5CE7E]))
    w, h = int(image_size[0]), int(image_size[1])
    focal_range = focal_range or ((0.45, 0.6) if fisheye else (0.7, 1.0))
    model = "fisheye" if fisheye else "pinhole"
    spacing = 2 * np.pi / n_cameras
    az0 = rng.uniform(0, 2 * np.pi)
    target = np.asarray(target, float)
    cameras = []
    for i in range(n_cameras):
        az = az0 + i * spacing + rng.uniform(-0.25, 0.25) * spacing
        rad = rng.uniform(*radius)
        z = rng.uniform(*height)
        if layout == "overhead" and i % 2 == 1:  # same draws, mapped onto the overhead band
            rad *= OVERHEAD_RADIUS_SCALE
            z = OVERHEAD_HEIGHT[0] + (z - height[0]) / max(height[1] - height[0], 1e-9) * (
                OVERHEAD_HEIGHT[1] - OVERHEAD_HEIGHT[0])
        center = np.array([rad * np.cos(az), rad * np.sin(az), z])
        rot = look_at(center, target)
        yaw, pitch, roll = np.radians(rng.uniform(-1, 1, 3) * perturb_deg * np.array([1.0, 1.0, 1.5]))
        # Perturbations about the camera's own axes: pitch about x, yaw about y, roll about z.
        pert = (rodrigues_to_matrix(np.array([0.0, 0.0, roll])) @ rodrigues_to_matrix(np.array([pitch, 0.0, 0.0]))
                @ rodrigues_to_matrix(np.array([0.0, yaw, 0.0])))
        rot = pert @ rot
        for _ in range(1000):
            fx = rng.uniform(*focal_range) * w
            fy = fx * (1 + rng.uniform(-0.003, 0.003))
            cx = (w - 1) / 2 + rng.uniform(-0.03, 0.03) * w
            cy = (h - 1) / 2 + rng.uniform(-0.03, 0.03) * h
            k = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
            dist = _sample_distortion(rng, distortion, fisheye)
            if distortion_is_valid(dist, model, (w, h), k):
                break
        else:  # pragma: no cover - the ranges above always admit valid lenses
            raise ValueError("could not draw a monotonic lens for this image size and focal range")
        cameras.append(Camera(f"cam{i}", (w, h), k, dist, rot, -rot @ center, model))
    meta = {"world_frame": WORLD_FRAME, "generator": "posestudio.synthetic.make_studio_rig",
            "seed": int(seed), "distortion": distortion, "fisheye": bool(fisheye), "layout": layout}
    return CameraRig(cameras, meta)


def ring_rig(n: int = 4, radius: float = 3.5, seed: int = 1, dist: tuple[float, ...] = (-0.3, 0.12, 0.001, -0.001, -0.02),
             size: tuple[int, int] = (1920, 1080)) -> CameraRig:
    """A small seeded ring: ``n`` pinhole cameras ``radius`` metres out, 2 m high, aimed at (0, 0, 1).

    Focal lengths are drawn from 1100-1500 px and principal points within 30 px of the centre;
    every camera has the same distortion ``dist`` (OpenCV order). For solver and geometry tests
    (:func:`make_studio_rig` gives a realistic studio).
    """
    rng = np.random.default_rng(seed)
    cams = []
    for i in range(n):
        a = 2 * np.pi * i / n + 0.3
        centre = np.array([radius * np.cos(a), radius * np.sin(a), 2.0])
        rot = look_at(centre, np.array([0.0, 0.0, 1.0]))
        f = rng.uniform(1100, 1500)
        k = np.array([[f, 0, size[0] / 2 + rng.uniform(-30, 30)], [0, f * 1.001, size[1] / 2 + rng.uniform(-20, 20)],
                      [0, 0, 1]])
        cams.append(Camera(f"cam{i}", size, k, np.asarray(dist, float), rot, -rot @ centre))
    return CameraRig(cams)
