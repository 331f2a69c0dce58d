"""Render textured articulated bodies (H36M17 joints, metres, Z up) into calibrated cameras, with exact 2D labels.

The bodies (:mod:`.body_model`: tapered elliptic capsules, shaded and striped) are drawn far to
near (painter's algorithm) as antialiased convex polygons over a backdrop, then occluders, motion
blur (the average of sub-frame renders spread over the exposure), defocus or shake, tone, sensor
noise and JPEG (:mod:`.render_augment`).

Labels: ``(P, 17, 3)`` per camera and frame: x, y in pixels (the camera's full model) and
visibility: 1 where the joint's pixel shows a part of its own body that contains the joint, 0 where
an occluder, another person or another part of the same body covers it (an id map drawn alongside
the image, without antialiasing, decides). A NaN row where the joint is behind the camera or
outside the image.

- :func:`render_frame` - one camera, one instant;
- :func:`render_take` - a rig over a motion, frame by frame (a generator);
- :func:`render_training_batch` - three-frame crops as a top-down tracker sees them, for 2D pose
  networks, rendered directly at crop resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import cv2
import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.camera import Camera
from posestudio.core.rig import CameraRig
from posestudio.core.rotations import rodrigues_to_matrix

from .body_model import (
    N_PARTS,
    OWNS,
    PARTS,
    Appearance,
    Geometry,
    Light,
    bounds,
    layout,
    random_appearance,
    random_light,
)
from .render_augment import (
    OCCLUDER_ID,
    SHIFT,
    Grade,
    Image,
    Occluder,
    RenderOptions,
    add_noise,
    defocus,
    draw_occluders,
    jpeg,
    random_background,
    random_grade,
    random_occluders,
    safe_project,
    shake_blur,
    uniform,
)
from .studio_rig import look_at

__all__ = ["PARTS", "Appearance", "Light", "Look", "Occluder", "RenderOptions", "crop_camera", "joint_labels",
           "random_appearance", "random_light", "random_look", "render_frame", "render_frames", "render_take",
           "render_training_batch"]

MAX_PEOPLE = (OCCLUDER_ID - 1) // N_PARTS  #: people per frame the id map can tell apart


@dataclass
class Look:
    """What one camera adds around the bodies (fixed over a take).

    Attributes:
        background: ``(H, W, 3)`` uint8 BGR backdrop.
        occluders: shapes in front of everything (pixels).
        grade: global tone; noise_sigma: sensor noise, grey levels.
        exposure: motion blur as a fraction of the frame interval (0: none).
        defocus_sigma: Gaussian defocus, pixels (0: none); jpeg_quality: JPEG quality (0: none).
    """

    background: Image
    occluders: list[Occluder]
    grade: Grade
    noise_sigma: float = 0.0
    exposure: float = 0.0
    defocus_sigma: float = 0.0
    jpeg_quality: int = 0


def random_look(rng: np.random.Generator, camera: Camera, options: RenderOptions, joints2d: FloatArray | None,
                background: Image | None = None, occluders: list[Occluder] | None = None,
                floor_centre: tuple[float, float] = (0.0, 0.0), codec: bool = True) -> Look:
    """Draw a camera's :class:`Look` from the options; a given ``background`` or ``occluders`` is kept.

    Args:
        rng: random generator; camera: the camera (image size, floor projection); options: the options.
        joints2d: ``(P, 17, 2)`` pixels the occluders are placed near (None: no random occluders).
        floor_centre: ``(x, y)`` metres the floor tiles are centred on.
        codec: whether JPEG compression may be drawn.
    """
    if background is None:
        background = random_background(rng, camera.image_size, options.background_kinds, camera, floor_centre)
    if occluders is None:
        occluders = (random_occluders(rng, joints2d, options)
                     if joints2d is not None and rng.random() < options.occluder_prob else [])
    return Look(background, list(occluders), random_grade(rng, options), uniform(rng, options.noise_sigma),
                uniform(rng, options.blur_exposure) if rng.random() < options.blur_prob else 0.0,
                uniform(rng, options.defocus_sigma) if rng.random() < options.defocus_prob else 0.0,
                int(rng.integers(options.jpeg_quality[0], options.jpeg_quality[1] + 1))
                if codec and rng.random() < options.jpeg_prob else 0)


# --------------------------------------------------------------------------- drawing
def _draw(img: Image | None, ids: np.ndarray | None, g: Geometry, origin: tuple[int, int], antialias: bool,
          shadow_alpha: float) -> None:
    """Draw shadows, then parts far to near, into the window ``img`` / ``ids`` whose top-left pixel is ``origin``."""
    aa = cv2.LINE_AA if antialias else cv2.LINE_8
    o = np.array(origin, np.int32) << SHIFT
    if img is not None and shadow_alpha > 0 and any(s is not None for s in g.shadows):
        dark = img.copy()
        for s in g.shadows:
            if s is not None:
                cv2.fillConvexPoly(dark, s - o, (0, 0, 0), aa, SHIFT)
        cv2.addWeighted(img, 1 - shadow_alpha, dark, shadow_alpha, 0.0, dst=img)
    p_idx, s_idx = np.nonzero(g.valid)
    order = np.argsort(-g.depth[p_idx, s_idx], kind="stable")
    polys = g.polys - o
    striped = g.stripe_ok.any(-1)
    stripes = g.stripes - o if img is not None and striped.any() else None
    bands = range(polys.shape[2]) if img is not None else range(1)
    for p, s in zip(p_idx[order].tolist(), s_idx[order].tolist()):
        hull0 = None
        for band in bands:
            hull = cv2.convexHull(polys[p, s, band])
            if band == 0:
                hull0 = hull
            if img is not None:
                cv2.fillConvexPoly(img, hull, g.colours[p][s][band], aa, SHIFT)
        if stripes is not None and striped[p, s]:
            for m in np.flatnonzero(g.stripe_ok[p, s]):
                cv2.fillConvexPoly(img, stripes[p, s, m], g.stripe_colours[p][s], aa, SHIFT)
        if ids is not None:
            cv2.fillConvexPoly(ids, hull0, 1 + p * N_PARTS + s, cv2.LINE_8, SHIFT)


def joint_labels(camera: Camera, bodies: FloatArray) -> FloatArray:
    """``(..., 17, 3)`` pixels of ``(..., 17, 3)`` world joints with visibility 1; NaN rows behind the
    camera, beyond the lens' valid range or outside the image."""
    pix, ok = safe_project(camera, bodies)
    ok &= camera.in_image(pix)
    out = np.concatenate([pix, np.ones(pix.shape[:-1] + (1,))], -1)
    out[~ok] = np.nan
    return out


def _visibility(labels: FloatArray, ids: np.ndarray | None, origin: tuple[int, int]) -> FloatArray:
    """``(P, 17)``: 1 where a joint's pixel in the id map shows a part of its own body that contains it."""
    vis = np.zeros(labels.shape[:2])
    if ids is None:
        return vis
    xy = np.nan_to_num(labels[..., :2], nan=-1e6)
    ix = np.round(xy[..., 0]).astype(int) - origin[0]
    iy = np.round(xy[..., 1]).astype(int) - origin[1]
    inside = (ix >= 0) & (iy >= 0) & (ix < ids.shape[1]) & (iy < ids.shape[0])
    got = np.where(inside, ids[np.clip(iy, 0, ids.shape[0] - 1), np.clip(ix, 0, ids.shape[1] - 1)], 0).astype(int)
    part = got - 1 - np.arange(len(labels))[:, None] * N_PARTS
    mine = (got >= 1) & (got != OCCLUDER_ID) & (part >= 0) & (part < N_PARTS)
    vis[mine] = OWNS[part[mine], np.nonzero(mine)[1]]
    return vis


def render_frames(camera: Camera, bodies: FloatArray, appearances: Sequence[Appearance], look: Look, light: Light,
                  options: RenderOptions, rng: np.random.Generator, motion: FloatArray | None = None
                  ) -> list[tuple[Image, FloatArray]]:
    """Render T instants of the same P people ``(T, P, 17, 3)`` (metres) through one camera and :class:`Look`.

    Args:
        camera, appearances (per person), look, light, options: the scene.
        rng: draws the per-frame randomness (noise offsets, shake).
        motion: ``(T, P, 17, 3)`` joint displacement over one frame interval, metres; with
            ``look.exposure > 0`` each frame averages ``options.blur_subframes`` renders spread over
            ``exposure`` times this displacement, centred on the pose.
    Returns:
        Per instant ``(image (H, W, 3) uint8 BGR, labels (P, 17, 3))``.
    """
    bodies = np.asarray(bodies, np.float64)
    if bodies.ndim != 4 or bodies.shape[2:] != (17, 3):
        raise ValueError(f"bodies: expected (T, P, 17, 3) world joints, got shape {bodies.shape}")
    T, P = bodies.shape[:2]
    if P > MAX_PEOPLE:
        raise ValueError(f"bodies: at most {MAX_PEOPLE} people per frame, got {P}")
    if len(appearances) != P:
        raise ValueError(f"appearances: {len(appearances)} given for {P} people")
    w, h = camera.image_size
    if look.background.shape != (h, w, 3) or look.background.dtype != np.uint8:
        raise ValueError(f"background: expected uint8 ({h}, {w}, 3) for camera {camera.name!r}, "
                         f"got {look.background.dtype} {look.background.shape}")
    blur = look.exposure > 0 and motion is not None
    n_sub = options.blur_subframes if blur else 1
    if blur:
        fr = np.linspace(-0.5, 0.5, n_sub) * look.exposure
        poses = bodies[:, None] + fr[None, :, None, None, None] * np.asarray(motion, float)[:, None]
        poses = poses.reshape(T * n_sub, P, 17, 3)
    else:
        poses = bodies
    geoms = layout(camera, poses, appearances, light, options.shading_bands, options.shadows)
    centres = (geoms[n_sub // 2::n_sub] if n_sub % 2 else layout(camera, bodies, appearances, light, 1, False))
    labels_all = joint_labels(camera, bodies)
    alpha = 0.45 * (1 - light.ambient)
    out = []
    for t in range(T):
        sub = geoms[t * n_sub:(t + 1) * n_sub]
        img = look.background.copy()
        box = bounds(sub, (w, h))
        ids, origin = None, (0, 0)
        if box is not None:
            x0, y0, x1, y1 = box
            origin = (x0, y0)
            ids = np.zeros((y1 - y0, x1 - x0), np.uint8)
            if n_sub == 1:
                _draw(img[y0:y1, x0:x1], ids, sub[0], origin, options.antialias, alpha)
            else:
                base = img[y0:y1, x0:x1].copy()
                acc = np.zeros(base.shape, np.float32)
                for g in sub:
                    roi = base.copy()
                    _draw(roi, None, g, origin, options.antialias, alpha)
                    acc += roi
                img[y0:y1, x0:x1] = (acc * (1.0 / n_sub) + 0.5).astype(np.uint8)
                _draw(None, ids, centres[t], origin, False, 0.0)
        draw_occluders(img, ids, look.occluders, origin, options.antialias)
        labels = labels_all[t].copy()
        labels[..., 2] = np.where(np.isnan(labels[..., 2]), np.nan, _visibility(labels, ids, origin))
        if rng.random() < options.shake_prob:
            img = shake_blur(img, uniform(rng, options.shake_px), rng.uniform(0, np.pi))
        img = add_noise(look.grade.apply(defocus(img, look.defocus_sigma)), look.noise_sigma, rng)
        out.append((jpeg(img, look.jpeg_quality) if look.jpeg_quality else img, labels))
    return out


def render_frame(camera: Camera, bodies: Sequence[FloatArray], appearances: Sequence[Appearance] | None = None,
                 background: Image | None = None, options: RenderOptions | None = None,
                 rng: np.random.Generator | None = None, *, light: Light | None = None,
                 occluders: list[Occluder] | None = None, motion: Sequence[FloatArray] | None = None
                 ) -> tuple[Image, FloatArray]:
    """Render people into one camera image, with exact 2D labels.

    Args:
        camera: the camera (full lens model); ``image_size`` sets the output size.
        bodies: per person ``(17, 3)`` H36M17 world positions, metres (Z up).
        appearances: per person (None: random).
        background: ``(H, W, 3)`` uint8 BGR (None: random, see :func:`~.render_augment.random_background`).
        options: rendering options (None: defaults).
        rng: random generator (None: seeded from ``options.seed``).
        light: the light (None: random); occluders: shapes in front (None: random per
            ``options.occluder_prob``, ``[]``: none).
        motion: per person ``(17, 3)`` displacement over one frame interval, metres (motion blur, with
            probability ``options.blur_prob``).
    Returns:
        ``image (H, W, 3)`` uint8 BGR, ``labels (P, 17, 3)``: x, y pixels, visibility 1/0; NaN rows
        where a joint is behind the camera or outside the image.
    """
    options = (options or RenderOptions()).check()
    rng = rng if rng is not None else np.random.default_rng(options.seed)
    arr = np.asarray(bodies, np.float64).reshape(-1, 17, 3)
    appearances = list(appearances) if appearances is not None else [random_appearance(rng) for _ in arr]
    light = light or random_light(rng, options)
    floor = tuple(np.nanmean(arr[:, 0, :2], 0).tolist()) if np.isfinite(arr[:, 0, :2]).any() else (0.0, 0.0)
    look = random_look(rng, camera, options, safe_project(camera, arr)[0], background, occluders, floor)
    mot = None if motion is None else np.asarray(motion, float).reshape(1, -1, 17, 3)
    return render_frames(camera, arr[None], appearances, look, light, options, rng, mot)[0]


def _per_frame_motion(motion: FloatArray, f: int) -> FloatArray:
    """``(P, 17, 3)`` central-difference displacement per frame at frame ``f`` of ``(P, F, 17, 3)``."""
    n = motion.shape[1]
    lo, hi = max(f - 1, 0), min(f + 1, n - 1)
    return (motion[:, hi] - motion[:, lo]) / max(hi - lo, 1)


def render_take(rig: CameraRig, bodies: Sequence[FloatArray], options: RenderOptions | None = None,
                seed: int | None = None, *, appearances: Sequence[Appearance] | None = None
                ) -> Iterator[tuple[int, list[Image], FloatArray]]:
    """Render every camera of a rig over a motion, one frame at a time (never all frames in memory).

    Per camera the background, occluders, tone, noise level, motion blur and defocus are fixed over
    the take (no JPEG: a video codec compresses anyway); the light and the people's appearances are
    shared by all cameras. Same seed, same frames.

    Args:
        rig: the cameras.
        bodies: per person ``(F, 17, 3)`` world positions, metres; person 0 is the subject (occluders
            are placed near its median projected pose).
        options: rendering options (None: defaults); seed: seeds everything (None: ``options.seed``).
        appearances: per person (None: random).
    Yields:
        ``(frame index, [image (H, W, 3) uint8 BGR per camera], labels (P, C, 17, 3))``.
    """
    options = (options or RenderOptions()).check()
    seed = options.seed if seed is None else int(seed)
    arr = [np.asarray(b, np.float64) for b in bodies]
    if not arr or any(b.ndim != 3 or b.shape[1:] != (17, 3) for b in arr):
        raise ValueError("bodies: expected a non-empty list of (F, 17, 3) arrays")
    n_frames = arr[0].shape[0]
    if any(b.shape[0] != n_frames for b in arr):
        raise ValueError(f"bodies: every person needs the same number of frames, got {[b.shape[0] for b in arr]}")
    motion = np.stack(arr)  # (P, F, 17, 3)
    scene = np.random.default_rng(np.random.SeedSequence([seed, 0xB0D7]))
    appearances = list(appearances) if appearances is not None else [random_appearance(scene) for _ in arr]
    light = random_light(scene, options)
    looks = []
    with np.errstate(all="ignore"):
        typical = np.nanmedian(motion, axis=1)  # (P, 17, 3)
    for c, cam in enumerate(rig.cameras):
        crng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA, c]))
        looks.append(random_look(crng, cam, options, safe_project(cam, typical[:1])[0], codec=False))
    for f in range(n_frames):
        now, vel = motion[None, :, f], _per_frame_motion(motion, f)[None]
        images, labels = [], np.empty((len(arr), len(rig), 17, 3))
        for c, cam in enumerate(rig.cameras):
            frng = np.random.default_rng(np.random.SeedSequence([seed, 0xF4, c, f]))
            img, lab = render_frames(cam, now, appearances, looks[c], light, options, frng, vel)[0]
            images.append(img)
            labels[:, c] = lab
        yield f, images, labels


# --------------------------------------------------------------------------- training crops
def _virtual_camera(rng: np.random.Generator, target: FloatArray, options: RenderOptions) -> Camera:
    """A random 1920 x 1080 camera ``camera_distance`` (horizontal) from ``target`` (metres), aimed near it."""
    d, height = uniform(rng, options.camera_distance), uniform(rng, options.camera_height)
    yaw = rng.uniform(0, 2 * np.pi)
    centre = np.array([target[0] + d * np.cos(yaw), target[1] + d * np.sin(yaw), height])
    rot = look_at(centre, target + np.array([0.0, 0.0, rng.uniform(-0.3, 0.3)]))
    pitch, yaw_off, roll = np.radians(rng.uniform(-1, 1, 3) * np.array([12.0, 20.0, 6.0]))  # person off-centre
    rot = (rodrigues_to_matrix(np.array([0.0, 0.0, roll])) @ rodrigues_to_matrix(np.array([pitch, 0.0, 0.0]))
           @ rodrigues_to_matrix(np.array([0.0, yaw_off, 0.0])) @ rot)
    f = uniform(rng, options.focal) * 1920
    k = np.array([[f, 0.0, 959.5 + rng.uniform(-30, 30)],
                  [0.0, f * (1 + rng.uniform(-3e-3, 3e-3)), 539.5 + rng.uniform(-20, 20)], [0.0, 0.0, 1.0]])
    dist = np.zeros(5)
    if rng.random() < options.distortion_prob:
        dist[:2] = rng.uniform(-0.3, 0.0), rng.uniform(0.0, 0.08)
    return Camera("virtual", (1920, 1080), k, dist, rot, -rot @ centre)


def crop_camera(camera: Camera, box: FloatArray, size: tuple[int, int]) -> Camera:
    """``camera`` showing only the pixel box ``(x, y, width, height)`` (outer edges, in ``camera``'s pixels)
    at ``size`` ``(width, height)``: the intrinsics are moved and scaled, the lens and pose kept."""
    sx, sy = size[0] / box[2], size[1] / box[3]
    k = camera.matrix.copy()
    k[0] *= sx
    k[1] *= sy
    k[0, 2] = sx * (camera.matrix[0, 2] - box[0]) - 0.5
    k[1, 2] = sy * (camera.matrix[1, 2] - box[1]) - 0.5
    return Camera(f"{camera.name}-crop", size, k, camera.dist, camera.rotation, camera.translation, camera.model)


def _frames_at(clip: FloatArray, t: int, stride: int) -> tuple[FloatArray, FloatArray]:
    """Poses at ``t - stride, t, t + stride`` ``(3, 17, 3)`` and their motion per sampled frame ``(3, 17, 3)``."""
    n = len(clip)
    idx = np.clip(np.array([t - stride, t, t + stride]), 0, n - 1)
    nxt, prv = np.clip(idx + 1, 0, n - 1), np.clip(idx - 1, 0, n - 1)
    step = np.maximum(nxt - prv, 1)[:, None, None]
    return clip[idx].astype(np.float64), (clip[nxt] - clip[prv]).astype(np.float64) / step * stride


def _distractor(rng: np.random.Generator, clips: Sequence[FloatArray], stride: int, pelvis: FloatArray,
                camera_xy: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Another person's three frames ``(3, 17, 3)`` and motion, turned at random and put 0.7-2.5 m from ``pelvis``."""
    other = clips[int(rng.integers(len(clips)))]
    poses, motion = _frames_at(other, int(rng.integers(len(other))), stride)
    yaw, away = rng.uniform(0, 2 * np.pi, 2)
    rz = np.array([[np.cos(yaw), -np.sin(yaw), 0.0], [np.sin(yaw), np.cos(yaw), 0.0], [0.0, 0.0, 1.0]])
    spot = pelvis[:2] + rng.uniform(0.7, 2.5) * np.array([np.cos(away), np.sin(away)])
    if np.linalg.norm(spot - camera_xy) < 1.0:  # not on top of the camera
        spot = 2 * pelvis[:2] - spot
    pivot = np.array([*poses[1, 0, :2], 0.0])
    return (poses - pivot) @ rz.T + np.array([*spot, 0.0]), motion @ rz.T


def render_training_batch(clips: Sequence[FloatArray], rng: np.random.Generator, batch: int,
                          size: tuple[int, int] = (128, 128), options: RenderOptions | None = None) -> dict:
    """Three-frame crops of a person as a top-down tracker sees them, with exact 2D labels.

    Each sample picks a clip, a frame stride (1-3, ``options.stride_probs``) and a time t, and a
    random camera (``camera_distance`` horizontally from the person, ``camera_height`` high, random
    yaw, focal, lens and aiming) looking near the person. One crop box for all three frames, as a
    tracker makes it: around frame t's 2D joints, its side ``crop_scale`` times the joints' extent,
    its centre jittered by up to ``crop_jitter`` of the side. Frames are rendered directly at crop
    resolution (intrinsics moved and scaled to the box). Background, occluders, a distractor person
    (``distractor_prob``), blur, grading and JPEG are shared by the three frames of a sample.

    Args:
        clips: motions, each ``(F, 17, 3)`` H36M17 world positions, metres (Z up, floor at ``z = 0``).
        rng: random generator (the same state gives the same batch).
        batch: number of samples B.
        size: crop ``(width, height)`` in pixels.
        options: rendering options (None: defaults).
    Returns:
        ``{"frames": uint8 (B, 3, H, W, 3) BGR (frames t-1, t, t+1), "keypoints": float64 (B, 3, 17, 3)}``
        with x, y in crop pixels and visibility 1/0 of the subject (NaN rows outside the crop).
    """
    options = (options or RenderOptions()).check()
    clips = [np.asarray(c) for c in clips]
    if not clips or any(c.ndim != 3 or c.shape[1:] != (17, 3) or len(c) == 0 for c in clips):
        raise ValueError("clips: expected a non-empty list of (F, 17, 3) arrays, each with at least one frame")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    w, h = int(size[0]), int(size[1])
    if w < 8 or h < 8:
        raise ValueError(f"size must be at least 8 x 8 pixels, got {size}")
    probs = np.asarray(options.stride_probs, float) / sum(options.stride_probs)
    frames = np.empty((batch, 3, h, w, 3), np.uint8)
    keypoints = np.empty((batch, 3, 17, 3))
    b = attempts = 0
    while b < batch:
        attempts += 1
        if attempts > 100 * batch:
            raise ValueError("clips: no usable pose found (pelvis or joints not finite)")
        clip = clips[int(rng.integers(len(clips)))]
        stride = min(int(rng.choice(3, p=probs)) + 1, max(1, (len(clip) - 1) // 2))
        t = int(rng.integers(stride, len(clip) - stride)) if len(clip) > 2 * stride else len(clip) // 2
        poses, motion = _frames_at(clip, t, stride)
        pelvis = poses[1, 0]
        if not np.isfinite(pelvis).all():
            continue
        cam = _virtual_camera(rng, pelvis, options)
        pix = safe_project(cam, poses[1])[0]
        pix = pix[np.isfinite(pix).all(1)]
        if len(pix) < 2:
            continue
        lo, hi = pix.min(0), pix.max(0)
        bw = max(hi[0] - lo[0], (hi[1] - lo[1]) * w / h, 4.0) * uniform(rng, options.crop_scale)
        bh = bw * h / w
        centre = 0.5 * (lo + hi) + rng.uniform(-1, 1, 2) * options.crop_jitter * np.array([bw, bh])
        crop = crop_camera(cam, np.array([centre[0] - bw / 2, centre[1] - bh / 2, bw, bh]), (w, h))
        people, moves = [poses], [motion]
        if rng.random() < options.distractor_prob:
            other, other_motion = _distractor(rng, clips, stride, pelvis, cam.center[:2])
            people.append(other)
            moves.append(other_motion)
        apps = [random_appearance(rng) for _ in people]
        look = random_look(rng, crop, options, safe_project(crop, poses[1])[0][None],
                           floor_centre=(float(pelvis[0]), float(pelvis[1])))
        rendered = render_frames(crop, np.stack(people, 1), apps, look, random_light(rng, options), options, rng,
                                 np.stack(moves, 1))
        for k, (img, lab) in enumerate(rendered):
            frames[b, k] = img
            keypoints[b, k] = lab[0]
        b += 1
    return {"frames": frames, "keypoints": keypoints}
