"""Scene and sensor augmentation for the body renderer (:mod:`.body_render`).

What surrounds the bodies in a synthetic frame, all seeded through a ``numpy`` Generator:

- :class:`RenderOptions` - every knob (noise, blur, occluders, backgrounds, grading, crop camera);
- :func:`random_background` - gradients, low-frequency noise, clutter (rectangles, strokes) and a
  tiled floor projected through the camera (world Z up, metres, floor at ``z = 0``);
- :class:`Occluder` / :func:`random_occluders` - flat convex shapes in front of the bodies, placed
  near joints so they often cover limbs;
- :class:`Grade` - global gain, gamma and white balance as one lookup table;
- :func:`add_noise`, :func:`shake_blur`, :func:`defocus`, :func:`jpeg` - sensor and codec effects;
- :func:`safe_project` - the camera's full lens model with points behind the camera or beyond the
  lens' monotonic range marked invalid (so polynomial distortion never folds a far point back into
  the image).

Images are ``(H, W, 3)`` uint8 BGR; pixel centres are at integer coordinates (OpenCV's convention).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, fields
from functools import lru_cache

import cv2
import numpy as np
from numpy.typing import NDArray

from posestudio.core.arrays import BoolArray, FloatArray
from posestudio.core.camera import Camera, distort_normalized
from posestudio.core.errors import InputError

BACKGROUND_KINDS = ("gradient", "noise", "clutter", "floor")
NEAR_M = 0.02  #: points nearer than this to the camera plane (metres) are not drawn
SHIFT = 4  #: sub-pixel bits of every polygon handed to OpenCV
ONE = 1 << SHIFT
OCCLUDER_ID = 255  #: id of occluders in the renderer's id map
Image = NDArray[np.uint8]
_RANGE_FIELDS = ("noise_sigma", "blur_exposure", "shake_px", "defocus_sigma", "occluder_size", "gain", "gamma",
                 "black_level", "ambient", "jpeg_quality", "crop_scale", "camera_distance", "camera_height", "focal")


@dataclass
class RenderOptions:
    """How synthetic body frames are rendered and spoiled. Ranges are ``(min, max)``, drawn uniformly.

    Attributes:
        noise_sigma: Gaussian sensor noise, grey levels.
        blur_prob: probability that a frame (a camera, in a take) has motion blur.
        blur_exposure: shutter-open time as a fraction of the frame interval (motion-blur length).
        blur_subframes: sub-frame renders averaged for motion blur (>= 2).
        shake_prob: probability of a directional blur kernel (camera shake); shake_px: its length, pixels.
        defocus_prob: probability of a Gaussian defocus; defocus_sigma: its sigma, pixels.
        occluder_prob: probability of occluders in a frame (a camera, in a take); max_occluders: at most this many.
        occluder_size: occluder size as a fraction of the person's height in the image.
        distractor_prob: probability of a second person in a training sample.
        background_kinds: background layers to draw from (:data:`BACKGROUND_KINDS`).
        gain: global exposure gain; gamma: tone curve exponent; white_balance: per-channel gain spread (+-);
        black_level: offset added after the tone curve, grey levels.
        ambient: ambient share of the body shading (the rest is Lambert from a random light).
        jpeg_prob: probability of JPEG compression; jpeg_quality: its quality range.
        shadows: a soft contact shadow on the floor under each person.
        shading_bands: nested bands per body part that approximate the shading across its width (1-4).
        antialias: antialiased polygon edges.
        seed: default seed (used where a function takes ``seed=None``).
        stride_probs: training batches - probabilities of a frame stride of 1, 2, 3 between t-1, t, t+1.
        crop_scale: training batches - crop side over the person's 2D box side at frame t.
        crop_jitter: training batches - crop centre jitter, fraction of the crop side (+-).
        camera_distance: training batches - horizontal camera-to-person distance, metres.
        camera_height: training batches - camera height above the floor, metres.
        focal: training batches - focal length as a fraction of a 1920-pixel-wide image.
        distortion_prob: training batches - probability of lens distortion (k1 in [-0.3, 0]).
    """

    noise_sigma: tuple[float, float] = (0.5, 4.0)
    blur_prob: float = 0.3
    blur_exposure: tuple[float, float] = (0.3, 1.0)
    blur_subframes: int = 3
    shake_prob: float = 0.05
    shake_px: tuple[float, float] = (2.0, 7.0)
    defocus_prob: float = 0.1
    defocus_sigma: tuple[float, float] = (0.4, 1.2)
    occluder_prob: float = 0.3
    max_occluders: int = 2
    occluder_size: tuple[float, float] = (0.12, 0.45)
    distractor_prob: float = 0.3
    background_kinds: tuple[str, ...] = BACKGROUND_KINDS
    gain: tuple[float, float] = (0.6, 1.4)
    gamma: tuple[float, float] = (0.8, 1.25)
    white_balance: float = 0.12
    black_level: tuple[float, float] = (0.0, 8.0)
    ambient: tuple[float, float] = (0.3, 0.6)
    jpeg_prob: float = 0.2
    jpeg_quality: tuple[int, int] = (35, 90)
    shadows: bool = True
    shading_bands: int = 3
    antialias: bool = True
    seed: int = 0
    stride_probs: tuple[float, float, float] = (0.6, 0.25, 0.15)
    crop_scale: tuple[float, float] = (1.15, 1.4)
    crop_jitter: float = 0.10
    camera_distance: tuple[float, float] = (2.5, 6.0)
    camera_height: tuple[float, float] = (0.5, 2.5)
    focal: tuple[float, float] = (0.6, 1.6)
    distortion_prob: float = 0.3

    def check(self) -> "RenderOptions":
        """Raise :class:`InputError` naming the first field whose value cannot be used; returns self."""
        for f in fields(self):
            if f.name.endswith("_prob") and not 0.0 <= getattr(self, f.name) <= 1.0:
                raise InputError(f"RenderOptions.{f.name} must be a probability in [0, 1], got {getattr(self, f.name)}")
        for name in _RANGE_FIELDS:
            v = getattr(self, name)
            if len(v) != 2 or not (np.isfinite(v).all() and 0 <= v[0] <= v[1]):
                raise InputError(f"RenderOptions.{name} must be a (min, max) range with 0 <= min <= max, got {v}")
        checks = [
            ("blur_subframes", self.blur_subframes >= 2, "at least 2"),
            ("max_occluders", self.max_occluders >= 1, "at least 1"),
            ("shading_bands", 1 <= self.shading_bands <= 4, "1 to 4"),
            ("white_balance", 0 <= self.white_balance < 0.5, "in [0, 0.5)"),
            ("ambient", self.ambient[1] <= 1.0, "at most 1"),
            ("jpeg_quality", 1 <= self.jpeg_quality[0] and self.jpeg_quality[1] <= 100, "within 1-100"),
            ("crop_scale", self.crop_scale[0] > 0, "positive"),
            ("crop_jitter", 0 <= self.crop_jitter < 0.5, "in [0, 0.5)"),
            ("camera_distance", self.camera_distance[0] >= 0.5, "at least 0.5 m"),
            ("focal", self.focal[0] > 0.05, "above 0.05"),
            ("gain", self.gain[0] > 0, "positive"),
            ("gamma", self.gamma[0] > 0, "positive"),
            ("stride_probs", len(self.stride_probs) == 3 and min(self.stride_probs) >= 0
             and sum(self.stride_probs) > 0, "three non-negative weights, not all zero"),
            ("background_kinds", len(self.background_kinds) > 0
             and set(self.background_kinds) <= set(BACKGROUND_KINDS), f"a non-empty subset of {BACKGROUND_KINDS}"),
        ]
        for name, ok, what in checks:
            if not ok:
                raise InputError(f"RenderOptions.{name} must be {what}, got {getattr(self, name)!r}")
        return self


def uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    """One uniform draw from a ``(min, max)`` range."""
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def random_colour(rng: np.random.Generator, sat: tuple[float, float] = (0.0, 1.0),
                  val: tuple[float, float] = (0.1, 1.0)) -> FloatArray:
    """``(3,)`` BGR colour, 0-255, from a random hue and the given saturation / value ranges."""
    r, g, b = colorsys.hsv_to_rgb(rng.random(), uniform(rng, sat), uniform(rng, val))
    return np.array([b, g, r]) * 255.0


# --------------------------------------------------------------------------- projection
@lru_cache(maxsize=512)
def _fold_radius(model: str, dist: tuple[float, ...]) -> float:
    """Largest ideal normalised radius up to which the lens' distorted radius still grows."""
    d = np.zeros(8)
    d[: len(dist)] = dist
    if not np.any(d):
        return np.inf
    if model == "fisheye":
        theta = np.linspace(0.0, np.radians(89.0), 4000)
        t2 = theta**2
        rd = theta * (1 + d[0] * t2 + d[1] * t2**2 + d[2] * t2**3 + d[3] * t2**4)
        bad = np.flatnonzero(np.diff(rd) <= 0)
        return float(np.tan(theta[bad[0]] if bad.size else theta[-1]))
    r = np.linspace(0.0, 20.0, 20000)
    xy = np.stack([r, np.zeros_like(r)], -1)
    rd = distort_normalized(xy, d, "pinhole")[:, 0]
    bad = np.flatnonzero(np.diff(rd) <= 0)
    return float(r[bad[0]]) if bad.size else np.inf


def safe_project(camera: Camera, points: FloatArray) -> tuple[FloatArray, BoolArray]:
    """Project world points with the camera's full model, refusing those it cannot image.

    Args:
        camera: the camera (pinhole or fisheye, with its distortion).
        points: ``(..., 3)`` world points, metres.
    Returns:
        ``pixels (..., 2)`` (NaN where invalid) and ``ok (...)``: in front of the camera (depth above
        :data:`NEAR_M`), finite, and within the lens' monotonic range (checked on the ideal radius).
    """
    pc = np.asarray(points, np.float64) @ camera.rotation.T + camera.translation
    z = pc[..., 2]
    with np.errstate(invalid="ignore"):
        ok = z > NEAR_M
    xy = pc[..., :2] / np.where(ok, z, 1.0)[..., None]
    rmax = _fold_radius(camera.model, tuple(float(v) for v in camera.dist))
    with np.errstate(invalid="ignore"):
        ok &= (xy * xy).sum(-1) < min(rmax, 50.0) ** 2
    xy = np.where(ok[..., None], xy, 0.0)
    xd = distort_normalized(xy, camera.dist, camera.model)
    k = camera.matrix
    pix = np.stack([k[0, 0] * xd[..., 0] + k[0, 1] * xd[..., 1] + k[0, 2], k[1, 1] * xd[..., 1] + k[1, 2]], -1)
    pix[~ok] = np.nan
    return pix, ok


def fixed(points: FloatArray) -> NDArray[np.int32]:
    """Pixels ``(..., 2)`` to OpenCV fixed point (:data:`SHIFT` fractional bits), clamped to +-16384 px."""
    return np.round(np.clip(np.nan_to_num(points), -16384.0, 16384.0) * ONE).astype(np.int32)


# --------------------------------------------------------------------------- backgrounds
def _lowfreq(rng: np.random.Generator, size: tuple[int, int], cells: int, lo: FloatArray, hi: FloatArray) -> Image:
    """``(H, W, C)`` uint8 smooth random blend of colours ``lo`` and ``hi`` (``(C,)``), ``cells`` blobs across."""
    w, h = size
    gw, gh = max(2, int(cells * w / max(w, h)) + 1), max(2, int(cells * h / max(w, h)) + 1)
    t = rng.random((gh, gw, 1))
    small = np.clip(lo * (1 - t) + hi * t, 0, 255).astype(np.uint8)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, -1)


def _floor(img: Image, rng: np.random.Generator, camera: Camera, centre: tuple[float, float]) -> None:
    """Draw a tiled floor (``z = 0``, metres) around ``centre`` into ``img`` through ``camera``."""
    h, w = img.shape[:2]
    tile = uniform(rng, (0.4, 1.2))
    n = int(np.ceil(16.0 / tile))
    g = (np.arange(n + 1) - n / 2) * tile
    gx, gy = np.meshgrid(g + centre[0], g + centre[1], indexing="ij")
    pix, ok = safe_project(camera, np.stack([gx, gy, np.zeros_like(gx)], -1))
    quads = np.stack([pix[:-1, :-1], pix[1:, :-1], pix[1:, 1:], pix[:-1, 1:]], 2).reshape(-1, 4, 2)
    qok = np.stack([ok[:-1, :-1], ok[1:, :-1], ok[1:, 1:], ok[:-1, 1:]], 2).reshape(-1, 4).all(1)
    with np.errstate(invalid="ignore"):
        lo, hi = quads.min(1), quads.max(1)
        qok &= (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < w) & (lo[:, 1] < h)
    idx = np.flatnonzero(qok)
    if idx.size == 0:
        return
    base = random_colour(rng, (0.0, 0.5), (0.2, 0.8))
    second = base * uniform(rng, (0.55, 0.85)) if rng.random() < 0.5 else base
    checker = ((np.arange(n)[:, None] + np.arange(n)[None, :]) % 2).ravel()
    tone = rng.uniform(0.92, 1.08, n * n)
    pts = fixed(quads)
    for i in idx:
        colour = (second if checker[i] else base) * tone[i]
        cv2.fillConvexPoly(img, pts[i], colour.tolist(), cv2.LINE_AA, SHIFT)


def _clutter(img: Image, rng: np.random.Generator) -> None:
    """Random rectangles, ellipses and thick strokes (limb-like distractors) into ``img``."""
    h, w = img.shape[:2]
    s = max(w, h)
    for _ in range(int(rng.integers(3, 12))):
        colour = random_colour(rng).tolist()
        kind = rng.random()
        cx, cy = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
        if kind < 0.45:
            hw, hh = rng.uniform(0.03, 0.3, 2) * s
            cv2.rectangle(img, (int(cx - hw), int(cy - hh)), (int(cx + hw), int(cy + hh)), colour, -1)
        elif kind < 0.7:
            axes = (int(rng.uniform(0.02, 0.2) * s), int(rng.uniform(0.02, 0.2) * s))
            cv2.ellipse(img, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0, 360, colour, -1, cv2.LINE_AA)
        else:
            a = rng.uniform(0, np.pi)
            length = rng.uniform(0.05, 0.4) * s
            d = np.array([np.cos(a), np.sin(a)]) * length / 2
            p0, p1 = (int(cx - d[0]), int(cy - d[1])), (int(cx + d[0]), int(cy + d[1]))
            cv2.line(img, p0, p1, colour, max(1, int(rng.uniform(0.005, 0.04) * s)), cv2.LINE_AA)


def random_background(rng: np.random.Generator, size: tuple[int, int], kinds: tuple[str, ...] = BACKGROUND_KINDS,
                      camera: Camera | None = None, floor_centre: tuple[float, float] = (0.0, 0.0)) -> Image:
    """A random backdrop: a gradient or smooth-noise base, then maybe clutter, a floor and a texture.

    Args:
        rng: random generator.
        size: ``(width, height)`` pixels.
        kinds: layers to draw from (:data:`BACKGROUND_KINDS`); ``"floor"`` needs ``camera``.
        camera: the camera the floor (``z = 0``, tiles of 0.4-1.2 m) is projected through.
        floor_centre: ``(x, y)`` world point the floor tiles are centred on, metres.
    Returns:
        ``(H, W, 3)`` uint8 BGR.
    """
    w, h = int(size[0]), int(size[1])
    bases = [k for k in kinds if k in ("gradient", "noise")] or ["gradient"]
    c0, c1 = random_colour(rng), random_colour(rng)
    if bases[int(rng.integers(len(bases)))] == "gradient":  # a linear ramp survives linear resizing exactly
        gw, gh = max(2, 32 * w // max(w, h)), max(2, 32 * h // max(w, h))
        t = _ramp(gw, gh, rng.uniform(0, 2 * np.pi))[..., None]
        small = np.clip(c0 * (1 - t) + c1 * t, 0, 255).astype(np.uint8)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        out = _lowfreq(rng, (w, h), int(rng.integers(2, 24)), c0, c1)
    if "clutter" in kinds and rng.random() < 0.7:
        _clutter(out, rng)
    if "floor" in kinds and camera is not None and rng.random() < 0.7:
        _floor(out, rng, camera, floor_centre)
    if "noise" in kinds and rng.random() < 0.6:  # multiplicative texture (x 0.75 .. 1.25) over everything
        tex = _lowfreq(rng, (w, h), int(rng.integers(8, 64)), np.array([96.0]), np.array([160.0]))
        out = cv2.multiply(out, cv2.cvtColor(tex, cv2.COLOR_GRAY2BGR), scale=1 / 128)
    return out


def _ramp(w: int, h: int, angle: float) -> FloatArray:
    """``(H, W)`` linear ramp 0..1 along ``angle`` (radians)."""
    x = np.linspace(0, 1, w)[None, :] * np.cos(angle) * w / max(w, h)
    y = np.linspace(0, 1, h)[:, None] * np.sin(angle) * h / max(w, h)
    t = x + y
    return (t - t.min()) / max(float(t.max() - t.min()), 1e-6)


# --------------------------------------------------------------------------- occluders
@dataclass
class Occluder:
    """A flat convex shape in front of everything.

    Attributes:
        polygon: ``(K, 2)`` convex outline, pixels.
        colour: ``(3,)`` BGR fill, 0-255.
        inner: ``(3,)`` BGR of an inset panel (a simple texture), or None.
    """

    polygon: FloatArray
    colour: FloatArray
    inner: FloatArray | None = None


def random_occluders(rng: np.random.Generator, joints: FloatArray, options: RenderOptions,
                     count: int | None = None) -> list[Occluder]:
    """Occluders near random joints (so they often cover limbs), sized by the person's image height.

    Args:
        rng: random generator.
        joints: ``(P, 17, 2)`` or ``(17, 2)`` pixels of the people they may cover (NaN ignored);
            the first person is the usual target.
        options: :attr:`~RenderOptions.occluder_size`, :attr:`~RenderOptions.max_occluders`.
        count: number of occluders (default: 1 .. ``max_occluders``).
    Returns:
        The occluders (empty when no joint is finite).
    """
    pts = np.asarray(joints, float).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(1)]
    if pts.size == 0:
        return []
    subject = np.asarray(joints, float).reshape(-1, 17, 2)[0]
    subject = subject[np.isfinite(subject).all(1)]
    height = float(np.ptp(subject[:, 1])) if len(subject) else float(np.ptp(pts[:, 1]))
    height = max(height, 20.0)
    n = int(rng.integers(1, options.max_occluders + 1)) if count is None else count
    out = []
    for _ in range(n):
        target = subject[int(rng.integers(len(subject)))] if len(subject) else pts[int(rng.integers(len(pts)))]
        centre = target + rng.uniform(-0.08, 0.08, 2) * height
        size = uniform(rng, options.occluder_size) * height
        kind = rng.random()
        angle = rng.uniform(0, np.pi)
        if kind < 0.4:  # rectangle
            half = np.array([size, size * rng.uniform(0.3, 1.0)]) / 2
            corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
        elif kind < 0.65:  # bar (pole, table edge)
            half = np.array([size * rng.uniform(1.5, 3.0), size * rng.uniform(0.08, 0.2)]) / 2
            corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
        elif kind < 0.85:  # ellipse
            a = np.linspace(0, 2 * np.pi, 24, endpoint=False)
            corners = np.stack([np.cos(a) * size / 2, np.sin(a) * size * rng.uniform(0.25, 0.5)], 1)
        else:  # random convex blob
            a = np.sort(rng.uniform(0, 2 * np.pi, 7))
            corners = np.stack([np.cos(a), np.sin(a)], 1) * size * rng.uniform(0.3, 0.6, (7, 1))
            corners = cv2.convexHull(corners.astype(np.float32)).reshape(-1, 2).astype(float)
        c, s = np.cos(angle), np.sin(angle)
        poly = corners @ np.array([[c, s], [-s, c]]) + centre
        colour = random_colour(rng)
        inner = random_colour(rng) if rng.random() < 0.4 else None
        out.append(Occluder(poly, colour, inner))
    return out


def draw_occluders(img: Image, ids: NDArray[np.uint8] | None, occluders: list[Occluder], origin: tuple[int, int],
                   antialias: bool = True) -> None:
    """Fill occluders into ``img`` (whole image) and into ``ids`` (a window whose top-left pixel is ``origin``)."""
    aa = cv2.LINE_AA if antialias else cv2.LINE_8
    shift = np.array(origin, float)
    for occ in occluders:
        pts = fixed(occ.polygon)
        cv2.fillConvexPoly(img, pts, occ.colour.tolist(), aa, SHIFT)
        if occ.inner is not None:
            centre = occ.polygon.mean(0)
            cv2.fillConvexPoly(img, fixed(centre + 0.6 * (occ.polygon - centre)), occ.inner.tolist(), aa, SHIFT)
        if ids is not None:
            cv2.fillConvexPoly(ids, fixed(occ.polygon - shift), OCCLUDER_ID, cv2.LINE_8, SHIFT)


# --------------------------------------------------------------------------- sensor and codec
@dataclass
class Grade:
    """Global tone of a camera: ``out = 255 * (gain * wb * in / 255) ** gamma + black`` per channel."""

    gain: float = 1.0
    gamma: float = 1.0
    white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    black: float = 0.0

    def lut(self) -> Image:
        """``(256, 1, 3)`` uint8 lookup table for ``cv2.LUT``."""
        x = np.arange(256, dtype=np.float64)[:, None] / 255.0
        y = 255.0 * np.clip(x * self.gain * np.asarray(self.white_balance)[None, :], 0, 1) ** self.gamma + self.black
        return np.clip(np.round(y), 0, 255).astype(np.uint8).reshape(256, 1, 3)

    def apply(self, img: Image) -> Image:
        """The graded image (a new array)."""
        return cv2.LUT(img, self.lut())


def random_grade(rng: np.random.Generator, options: RenderOptions) -> Grade:
    """A random :class:`Grade` within the options' gain, gamma and white-balance ranges."""
    wb = 1.0 + rng.uniform(-options.white_balance, options.white_balance, 3)
    return Grade(uniform(rng, options.gain), uniform(rng, options.gamma), tuple(wb.tolist()),
                 uniform(rng, options.black_level))


@lru_cache(maxsize=4)
def _noise_bank(h: int, w: int) -> NDArray[np.float32]:
    """A fixed ``(h + 64, w + 64, 3)`` unit Gaussian field; frames take randomly offset windows of it."""
    return np.random.default_rng(0x5E150).standard_normal((h + 64, w + 64, 3), dtype=np.float32)


def add_noise(img: Image, sigma: float, rng: np.random.Generator) -> Image:
    """``img`` plus Gaussian noise of ``sigma`` grey levels (saturated), a new array."""
    if sigma <= 0:
        return img
    h, w = img.shape[:2]
    bank = _noise_bank(-(-h // 64) * 64, -(-w // 64) * 64)
    oy, ox = rng.integers(0, 64, 2)
    return cv2.addWeighted(img, 1.0, bank[oy:oy + h, ox:ox + w], float(sigma), 0.0, dtype=cv2.CV_8U)


def shake_blur(img: Image, length_px: float, angle: float) -> Image:
    """Directional (linear) blur of ``length_px`` pixels along ``angle`` radians."""
    n = max(3, int(np.ceil(length_px)) | 1)
    k = np.zeros((n, n), np.float32)
    c = n // 2
    d = np.array([np.cos(angle), np.sin(angle)]) * (length_px / 2)
    cv2.line(k, (int(round(c - d[0])), int(round(c - d[1]))), (int(round(c + d[0])), int(round(c + d[1]))), 1.0, 1,
             cv2.LINE_AA)
    return cv2.filter2D(img, -1, k / max(float(k.sum()), 1e-6), borderType=cv2.BORDER_REFLECT)


def defocus(img: Image, sigma: float) -> Image:
    """Gaussian defocus of ``sigma`` pixels."""
    return cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0 else img


def jpeg(img: Image, quality: int) -> Image:
    """``img`` after JPEG compression at ``quality`` (1-100)."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else img
