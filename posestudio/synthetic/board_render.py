"""Ray-traced rendering of a planar calibration board into a distorted camera.

For each camera the undistorted normalised ray ``(x, y, 1)`` of every pixel (and of every
supersampling tap inside it) is computed once. A board pose turns into a homography from those
normalised coordinates to board texels, so a frame is ``cv2.perspectiveTransform`` +
``cv2.remap`` over the board's bounding box only; the camera's lens model enters exactly
through the ray grid, so the rendered corners agree with :meth:`Camera.project` to the
accuracy of the texture sampling.

Antialiasing: the board is drawn once at 256 texels per square and reduced into a mip pyramid
(exact 2 x 2 box averages); each frame samples the level whose texels are about the size of a
supersampling tap, at ``supersample x supersample`` taps per pixel, bilinearly. Motion blur
averages sub-exposures spread evenly over the exposure (interleaved with the taps).

Image values are float32 grey levels (0-255) until the final 8-bit quantisation. Pixel centres are
at integer coordinates (OpenCV's convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from posestudio.calibration.board import BoardSpec
from posestudio.core.arrays import FloatArray
from posestudio.core.camera import Camera, distort_normalized

PoseFn = Callable[[float], tuple[FloatArray, FloatArray]]

_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-9)


# --------------------------------------------------------------------------- board texture
@dataclass
class BoardTexture:
    """A board drawn as a mip pyramid of reflectance with an alpha (paper) channel.

    Attributes:
        front: per level ``(H_L, W_L, 2)`` float32: premultiplied reflectance (0-1) and alpha.
        back: same for the unprinted back of the board (uniform reflectance).
        ppm0: texels per metre at level 0.
        origin0: level-0 texel coordinate of board point (0, 0) plus 0.5 (margin + padding).
        margin_m: white (paper) border around the pattern, metres.
        size_m: ``(width, height)`` of the paper including the margin, metres; the paper spans
            board coordinates ``[-margin_m, size_m[0] - margin_m]`` in x (likewise y).
    """

    front: list[NDArray[np.float32]]
    back: list[NDArray[np.float32]]
    ppm0: float
    origin0: float
    margin_m: float
    size_m: tuple[float, float]

    @property
    def n_levels(self) -> int:
        return len(self.front)

    def texel_matrix(self, level: int) -> FloatArray:
        """``(3, 3)`` map from board coordinates ``(x, y, 1)`` (metres) to level-``level`` texels."""
        s = 2.0**level
        ppm, off = self.ppm0 / s, self.origin0 / s - 0.5
        return np.array([[ppm, 0.0, off], [0.0, ppm, off], [0.0, 0.0, 1.0]])


def make_board_texture(board: BoardSpec, square_px: int = 256, n_levels: int = 7, margin_m: float | None = None,
                       ink: float = 0.06, paper: float = 0.88, back: float = 0.55) -> BoardTexture:
    """Draw ``board`` (polarity included) on paper with a quiet margin, as a mip pyramid.

    Args:
        board: the board.
        square_px: texels per square at level 0 (a multiple of ``2**(n_levels-1)`` keeps every
            level exactly aligned).
        n_levels: pyramid levels (level L has ``square_px / 2**L`` texels per square).
        margin_m: paper border around the pattern, metres (default half a square for ChArUco,
            one square for checkerboards), rounded to whole coarsest-level texels.
        ink, paper: reflectance of black print and of white paper (0-1).
        back: reflectance of the board's back.
    """
    step = 2 ** (n_levels - 1)
    if square_px % step:
        raise ValueError(f"square_px={square_px} must be a multiple of 2**(n_levels-1)={step}")
    ppm0 = square_px / board.square_length
    if margin_m is None:
        margin_m = (0.5 if board.type == "charuco" else 1.0) * board.square_length
    margin_px = max(step, int(round(margin_m * ppm0 / step)) * step)
    img = board.render(ppm0, margin_px).astype(np.float32) / 255.0
    refl = ink + (paper - ink) * img
    pad = step
    alpha = np.pad(np.ones_like(refl), pad)
    refl = np.pad(refl, pad)
    front = [np.dstack([refl * alpha, alpha])]
    backs = [np.dstack([back * alpha, alpha])]
    for _ in range(1, n_levels):
        front.append(cv2.resize(front[-1], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
        backs.append(cv2.resize(backs[-1], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    margin = margin_px / ppm0
    return BoardTexture(front, backs, ppm0, float(margin_px + pad), margin,
                        (board.size_m[0] + 2 * margin, board.size_m[1] + 2 * margin))


# --------------------------------------------------------------------------- camera rays
def pixel_rays(camera: Camera, pixels: FloatArray) -> NDArray[np.float32]:
    """Undistorted normalised coordinates of distorted pixels, verified by re-distortion.

    Args:
        camera: the camera.
        pixels: ``(..., 2)`` pixel coordinates.
    Returns:
        ``(..., 2)`` float32 ``(x/z, y/z)``.
    Raises:
        ValueError: when the lens cannot be inverted to 1e-3 px (non-monotonic distortion).
    """
    pixels = np.asarray(pixels, np.float64)
    src = pixels.reshape(-1, 1, 2)
    if camera.model == "fisheye":
        und = cv2.fisheye.undistortPoints(src, camera.matrix, camera.dist, criteria=_UNDISTORT_CRITERIA)
    else:
        und = cv2.undistortPoints(src, camera.matrix, camera.dist, criteria=_UNDISTORT_CRITERIA)
    und = und.reshape(pixels.shape)
    flat_und, flat_px = und.reshape(-1, 2), pixels.reshape(-1, 2)
    check = slice(None, None, max(1, len(flat_px) // 200_000))  # a spread-out subsample
    back = distort_normalized(flat_und[check], camera.dist, camera.model)
    k = camera.matrix
    reproj = np.stack([k[0, 0] * back[:, 0] + k[0, 1] * back[:, 1] + k[0, 2],
                       k[1, 1] * back[:, 1] + k[1, 2]], axis=-1)
    err = np.nanmax(np.abs(reproj - flat_px[check]))
    if not err < 1e-3:
        raise ValueError(f"camera {camera.name!r}: lens distortion cannot be inverted over the image "
                         f"(re-distortion error {err:.3g} px); is it monotonic?")
    return und.astype(np.float32)


class CameraRays:
    """Per-pixel ray grids of one camera.

    Attributes:
        taps: ``(S*S,)`` list of ``(H, W, 2)`` float32 normalised coordinates of pixel centres
            shifted by the tap offsets ``offsets[i]`` (pixels).
        offsets: ``(S*S, 2)`` tap offsets ``(dx, dy)`` in pixels, inside ``(-0.5, 0.5)``.
        coarse: ``(h, w, 2)`` float32 rays on a grid of every ``coarse_step`` pixels (bounding boxes).
        coarse_step: spacing of the coarse grid, pixels.
    """

    def __init__(self, camera: Camera, supersample: int = 2, coarse_step: int = 8) -> None:
        w, h = camera.image_size
        s = int(supersample)
        if s < 1:
            raise ValueError(f"supersample must be >= 1, got {supersample}")
        # Exact rays on the pixel-centre grid extended by one pixel all round; the taps'
        # sub-pixel shifts are bilinear interpolations of it (the ray field is smooth at the
        # pixel scale: interpolation error < 1e-4 px).
        ext = pixel_rays(camera, np.stack(np.meshgrid(np.arange(-1, w + 1, dtype=np.float64),
                                                      np.arange(-1, h + 1, dtype=np.float64)), axis=-1))
        off1 = (np.arange(s) + 0.5) / s - 0.5
        offsets = np.array([(dx, dy) for dy in off1 for dx in off1])
        # Interleave taps so consecutive sub-exposures use well-spread offsets.
        order = np.argsort([(i * 0.618034) % 1.0 for i in range(len(offsets))])
        self.offsets = offsets[order]
        base = np.stack(np.meshgrid(np.arange(1, w + 1, dtype=np.float32), np.arange(1, h + 1, dtype=np.float32)),
                        axis=-1)
        self.taps = []
        for dx, dy in self.offsets:
            if dx == 0 and dy == 0:
                self.taps.append(np.ascontiguousarray(ext[1:-1, 1:-1]))
            else:
                shifted = base + np.array([dx, dy], np.float32)
                self.taps.append(cv2.remap(ext, shifted, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        self.coarse_step = int(coarse_step)
        cx = np.unique(np.r_[np.arange(0, w, coarse_step), w - 1]).astype(np.float64)
        cy = np.unique(np.r_[np.arange(0, h, coarse_step), h - 1]).astype(np.float64)
        self.coarse_x, self.coarse_y = cx, cy
        self.coarse = pixel_rays(camera, np.stack(np.meshgrid(cx, cy), axis=-1))


# --------------------------------------------------------------------------- background
def make_background(image_size: tuple[int, int], rng: np.random.Generator, clutter: int = 30) -> NDArray[np.float32]:
    """A static, textured studio background: gradient + low-frequency noise + blurred clutter.

    Args:
        image_size: ``(width, height)`` pixels.
        rng: random generator.
        clutter: number of random rectangles, discs and bars.
    Returns:
        ``(H, W)`` float32 grey levels, roughly 30-220.
    """
    w, h = image_size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = (rng.uniform(90, 140) + rng.uniform(-45, 45) * (xx / w - 0.5)
           + rng.uniform(-45, 45) * (yy / h - 0.5)).astype(np.float32)
    for cells, amp in ((5, 18.0), (24, 7.0)):
        small = rng.normal(0, 1, (cells, max(2, cells * w // h))).astype(np.float32)
        img += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    layer = img.copy()
    scale = min(w, h)
    for _ in range(clutter):
        kind = rng.integers(3)
        val = float(np.clip(rng.normal(120, 50), 15, 235))
        x, y = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        size = int(rng.uniform(0.03, 0.25) * scale)
        if kind == 0:
            cv2.rectangle(layer, (x, y), (x + size, y + int(size * rng.uniform(0.3, 2.5))), val, -1)
        elif kind == 1:
            cv2.circle(layer, (x, y), size // 2, val, -1)
        else:
            ang = rng.uniform(0, np.pi)
            cv2.line(layer, (x, y), (int(x + 2 * size * np.cos(ang)), int(y + 2 * size * np.sin(ang))), val,
                     max(2, size // 12))
    img = cv2.GaussianBlur(layer, (0, 0), 1.2)
    img += cv2.GaussianBlur(rng.normal(0, 4, (h, w)).astype(np.float32), (0, 0), 0.8)
    return np.clip(img, 5, 250)


def make_vignette(camera: Camera, strength: float) -> NDArray[np.float32]:
    """``(H, W)`` float32 gain, 1 at the principal point down to ``1 - strength`` at the farthest corner."""
    w, h = camera.image_size
    cx, cy = camera.principal_point
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = (xx - cx) ** 2 + (yy - cy) ** 2
    return (1.0 - strength * r2 / r2.max()).astype(np.float32)


# --------------------------------------------------------------------------- renderer
@dataclass
class FrameInfo:
    """What went into one rendered frame.

    Attributes:
        bbox: ``(x0, y0, x1, y1)`` processed pixel box (exclusive end), or None when the board
            is not in view.
        level: texture mip level used (-1 when not rendered).
        n_samples: sub-exposure x tap samples averaged.
        faces_camera: whether the printed face is towards the camera at mid-exposure.
    """

    bbox: tuple[int, int, int, int] | None
    level: int
    n_samples: int
    faces_camera: bool


class CameraRenderer:
    """Renders the board into one camera's images (grey, uint8).

    Args:
        camera: the camera (pinhole + Brown or fisheye).
        board: the board.
        texture: a prepared :class:`BoardTexture` (shared between cameras), or None to make one.
        seed: seeds the background, lighting and exposure gain of this camera.
        supersample: taps per pixel along each axis (1 = one sample at the pixel centre).
        background: ``(H, W)`` grey levels, a uniform level (float), or None for a random studio.
        vignetting: relative darkening at the far image corner (0 = none).
        light: ``(3,)`` unit direction towards the light (world), or None for a random one above.
        ambient: share of the board brightness that does not depend on its orientation.
    """

    def __init__(self, camera: Camera, board: BoardSpec, texture: BoardTexture | None = None, seed: int = 0,
                 supersample: int = 2, background: NDArray | float | None = None, vignetting: float = 0.25,
                 light: FloatArray | None = None, ambient: float = 0.6) -> None:
        self.camera = camera
        self.board = board
        self.texture = texture or make_board_texture(board)
        self.rays = CameraRays(camera, supersample)
        w, h = camera.image_size
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xB6]))
        if background is None:
            bg = make_background((w, h), rng)
        elif np.isscalar(background):
            bg = np.full((h, w), float(background), np.float32)
        else:
            bg = np.asarray(background, np.float32)
            if bg.shape != (h, w):
                raise ValueError(f"background must be ({h}, {w}), got {bg.shape}")
        self.background = bg
        self.vignette = make_vignette(camera, vignetting) if vignetting else np.ones((h, w), np.float32)
        self.base_image = (bg * self.vignette).astype(np.float32)
        if light is None:
            light = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), 1.0])
        self.light = np.asarray(light, float) / np.linalg.norm(light)
        self.ambient = float(ambient)
        self.exposure_gain = float(rng.uniform(0.9, 1.1)) if background is None else 1.0

    # ----------------------------------------------------------------- geometry per pose
    def _board_in_camera(self, rot: FloatArray, trans: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Board-to-camera ``(R (3, 3), t (3,))`` from a board-to-world pose."""
        cam = self.camera
        return cam.rotation @ rot, cam.rotation @ trans + cam.translation

    def _paper_corners(self) -> FloatArray:
        m = self.texture.margin_m
        pw, ph = self.texture.size_m
        return np.array([[-m, -m, 0], [pw - m, -m, 0], [pw - m, ph - m, 0], [-m, ph - m, 0]], float)

    def _shade(self, rot: FloatArray, front: bool) -> float:
        normal = -rot[:, 2] if front else rot[:, 2]  # world normal of the visible side
        return self.exposure_gain * (self.ambient + (1 - self.ambient) * max(0.0, float(normal @ self.light)))

    def _choose_level(self, r_cb: FloatArray, t_cb: FloatArray) -> int | None:
        """Mip level whose texels match a supersampling tap where the board is most compressed."""
        pw, ph = self.texture.size_m
        m = self.texture.margin_m
        gx, gy = np.meshgrid(np.linspace(-m, pw - m, 6), np.linspace(-m, ph - m, 6))
        pts = np.stack([gx, gy, np.zeros_like(gx)], axis=-1) @ r_cb.T + t_cb
        cam = self.camera
        px = Camera(cam.name, cam.image_size, cam.matrix, cam.dist, model=cam.model).project(pts)  # (6, 6, 2)
        inside = cam.in_image(px, margin=-50.0)
        step_x, step_y = (pw / 5) * self.texture.ppm0, (ph / 5) * self.texture.ppm0
        dx = np.linalg.norm(np.diff(px, axis=1), axis=-1)
        dy = np.linalg.norm(np.diff(px, axis=0), axis=-1)
        ok_x = inside[:, 1:] & inside[:, :-1] & np.isfinite(dx)
        ok_y = inside[1:, :] & inside[:-1, :] & np.isfinite(dy)
        ratios = np.r_[step_x / dx[ok_x], step_y / dy[ok_y]]
        if ratios.size == 0:
            return None
        s = np.sqrt(len(self.rays.offsets))
        level = int(np.round(np.log2(max(ratios.max() / s, 1e-9))))
        return int(np.clip(level, 0, self.texture.n_levels - 1))

    def _bbox(self, homs: Sequence[FloatArray]) -> tuple[int, int, int, int] | None:
        """Pixel box covering the paper for every board homography (normalised -> board metres)."""
        w, h = self.camera.image_size
        rays = self.rays.coarse
        m = self.texture.margin_m
        pw, ph = self.texture.size_m
        mask = np.zeros(rays.shape[:2], bool)
        xy1 = np.concatenate([rays, np.ones(rays.shape[:2] + (1,), np.float32)], axis=-1).astype(np.float64)
        for hom in homs:
            abc = xy1 @ hom.T
            c = abc[..., 2]
            with np.errstate(divide="ignore", invalid="ignore"):
                bx, by = abc[..., 0] / c, abc[..., 1] / c
            mask |= (c > 0) & (bx >= -m) & (bx <= pw - m) & (by >= -m) & (by <= ph - m)
        if not mask.any():
            return None
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        cx, cy = self.rays.coarse_x, self.rays.coarse_y
        pad = self.rays.coarse_step + 2
        x0 = int(max(0, cx[max(cols[0] - 1, 0)] - 2))
        x1 = int(min(w, cx[min(cols[-1] + 1, len(cx) - 1)] + pad))
        y0 = int(max(0, cy[max(rows[0] - 1, 0)] - 2))
        y1 = int(min(h, cy[min(rows[-1] + 1, len(cy) - 1)] + pad))
        return x0, y0, x1, y1

    # ----------------------------------------------------------------- rendering
    def board_layer(self, poses: Sequence[tuple[FloatArray, FloatArray]]
                    ) -> tuple[NDArray[np.float32] | None, FrameInfo]:
        """Average board coverage over sub-exposure poses.

        Args:
            poses: board-to-world ``(R (3, 3), t (3,))`` at evenly spread times in the exposure
                (one pose: no motion blur).
        Returns:
            ``(layer, info)``: ``layer`` is ``(h, w, 2)`` float32 over ``info.bbox``: premultiplied
            brightness (0-255, shading included) and coverage (0-1); None when not in view.
        """
        mid = poses[len(poses) // 2]
        corners = self._paper_corners()
        homs, texs, gains = [], [], []
        faces_mid = False
        for i, (rot, trans) in enumerate(poses):
            r_cb, t_cb = self._board_in_camera(rot, trans)
            if ((corners @ r_cb.T + t_cb)[:, 2] < 0.05).any():
                return None, FrameInfo(None, -1, 0, False)  # paper at or behind the camera plane
            front = bool(r_cb[:, 2] @ t_cb > 0)
            if i == len(poses) // 2:
                faces_mid = front
            homs.append(np.linalg.inv(np.column_stack([r_cb[:, 0], r_cb[:, 1], t_cb])))
            texs.append(front)
            gains.append(255.0 * self._shade(rot, front))
        r_mid, t_mid = self._board_in_camera(*mid)
        level = self._choose_level(r_mid, t_mid)
        bbox = self._bbox(homs) if level is not None else None
        if bbox is None:
            return None, FrameInfo(None, -1, 0, faces_mid)
        x0, y0, x1, y1 = bbox
        tmat = self.texture.texel_matrix(level)
        n_taps = len(self.rays.taps)
        if len(poses) == 1:
            samples = [(0, k) for k in range(n_taps)]
        else:
            samples = [(i, i % n_taps) for i in range(len(poses))]
        acc = np.zeros((y1 - y0, x1 - x0, 2), np.float32)
        for pi, tap in samples:
            src = self.texture.front[level] if texs[pi] else self.texture.back[level]
            grid = self.rays.taps[tap][y0:y1, x0:x1]
            mapping = cv2.perspectiveTransform(grid, tmat @ homs[pi])
            val = cv2.remap(src, mapping, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            acc += val * np.array([gains[pi], 1.0], np.float32)
        acc /= len(samples)
        return acc, FrameInfo(bbox, level, len(samples), faces_mid)

    def render_poses(self, poses: Sequence[tuple[FloatArray, FloatArray]], noise_sigma: float = 0.0,
                     rng: np.random.Generator | None = None) -> tuple[NDArray[np.uint8], FrameInfo]:
        """One grey frame from sub-exposure board poses.

        Args:
            poses: board-to-world poses spread over the exposure (see :meth:`board_layer`).
            noise_sigma: Gaussian sensor noise, grey levels (needs ``rng`` when > 0).
            rng: random generator for the noise.
        Returns:
            ``((H, W) uint8 image, FrameInfo)``.
        """
        layer, info = self.board_layer(poses)
        img = self.base_image.copy()
        if layer is not None:
            x0, y0, x1, y1 = info.bbox
            bg = self.background[y0:y1, x0:x1]
            img[y0:y1, x0:x1] = (bg * (1.0 - layer[..., 1]) + layer[..., 0]) * self.vignette[y0:y1, x0:x1]
        if noise_sigma > 0:
            if rng is None:
                raise ValueError("noise_sigma > 0 needs an rng")
            img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise_sigma)
        np.rint(img, out=img)
        np.clip(img, 0, 255, out=img)
        return img.astype(np.uint8), info

    def exposure_poses(self, trajectory: PoseFn, t_mid: float, exposure_s: float, max_blur_step_px: float = 1.0,
                       max_sub: int = 16) -> list[tuple[FloatArray, FloatArray]]:
        """Board poses at sub-exposure times, as many as the board's image motion needs.

        The count is ``ceil(motion / max_blur_step_px)`` (motion: largest pixel displacement of
        the paper corners between exposure start and end), capped at ``max_sub``, then rounded
        up to a multiple of the taps per pixel; times are centred in equal slices of
        ``[t_mid - exposure_s/2, t_mid + exposure_s/2]`` seconds.
        """
        if exposure_s <= 0:
            return [trajectory(t_mid)]
        corners = self._paper_corners()
        ends = []
        for t in (t_mid - exposure_s / 2, t_mid + exposure_s / 2):
            rot, trans = trajectory(t)
            ends.append(self.camera.project(corners @ rot.T + trans))
        motion = np.nanmax(np.linalg.norm(ends[1] - ends[0], axis=-1), initial=0.0)
        n = int(np.clip(np.ceil(motion / max_blur_step_px), 1, max_sub))
        if n > 1:
            taps = len(self.rays.taps)
            n = int(np.ceil(n / taps) * taps)
        times = t_mid + exposure_s * ((np.arange(n) + 0.5) / n - 0.5)
        return [trajectory(float(t)) for t in times]

    def render(self, trajectory: PoseFn, t_mid: float, exposure_s: float = 0.0, noise_sigma: float = 0.0,
               rng: np.random.Generator | None = None) -> tuple[NDArray[np.uint8], FrameInfo]:
        """A frame exposed around ``t_mid`` seconds for ``exposure_s`` seconds (0: no blur)."""
        return self.render_poses(self.exposure_poses(trajectory, t_mid, exposure_s), noise_sigma, rng)


def render_board_image(camera: Camera, board: BoardSpec, rotation: FloatArray, translation: FloatArray,
                       background: float | NDArray | None = 128.0, supersample: int = 2,
                       vignetting: float = 0.0, noise_sigma: float = 0.0, seed: int = 0) -> NDArray[np.uint8]:
    """A single still image of the board at a given board-to-world pose (no blur).

    Args:
        camera: the camera.
        board: the board.
        rotation, translation: board-to-world ``(3, 3)``, ``(3,)`` metres.
        background: uniform grey level, an ``(H, W)`` image, or None for a random studio.
        supersample, vignetting: see :class:`CameraRenderer`.
        noise_sigma: Gaussian noise, grey levels.
        seed: seeds background and noise.
    Returns:
        ``(H, W)`` uint8.
    """
    renderer = CameraRenderer(camera, board, seed=seed, supersample=supersample, background=background,
                              vignetting=vignetting, light=np.array([0.0, 0.0, 1.0]), ambient=1.0)
    rng = np.random.default_rng(seed)
    return renderer.render_poses([(np.asarray(rotation, float), np.asarray(translation, float))], noise_sigma, rng)[0]
