"""The body the renderer draws: tapered elliptic capsules on H36M17 joints (metres, Z up), their looks.

Every part is a tapered capsule between two anchor points (joints, or points derived from them:
hips block, abdomen, chest, neck, head, hair, thighs, shins, feet, upper arms, forearms, hands).
Its cross-section is an ellipse (lateral x depth semi-axes per end: circles for limbs, wide
ellipses for the torso, an ellipsoid-like head of about 0.08-0.1 m radius), so the silhouette
half-width at each end is the ellipse's support along the direction perpendicular to the part and
the view ray. End centres and silhouette edge points go through the camera's full model
(:func:`~.render_augment.safe_project`, distortion included), so widths follow depth and lens.

:func:`layout` turns poses into image-space polygons, vectorised over frames and people: per part
``B`` nested bands (Lambert shading across the width under a :class:`Light`, the inner bands
shifted towards the lit side), body-attached stripes, a depth for the painter's algorithm and a
contact shadow per person. :mod:`.body_render` draws them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.camera import Camera
from posestudio.models.keypoints import H36M17

from .render_augment import SHIFT, RenderOptions, fixed, random_colour, safe_project, uniform

_J = {name: i for i, name in enumerate(H36M17.joints)}
_EXTRA = ("hips_a", "hips_b", "abdomen_a", "chest_b", "head_a", "head_b", "hair_a", "hair_b",
          "r_toe", "l_toe", "r_hand", "l_hand")
_ANCHOR = {**_J, **{n: 17 + i for i, n in enumerate(_EXTRA)}}


def _side(s: str) -> list[tuple]:
    return [(f"{s}_thigh", f"{s}_hip", f"{s}_knee", (0.075, 0.075), (0.056, 0.056), 1.0, "trousers", 0,
             (f"{s}_hip", f"{s}_knee", "pelvis")),
            (f"{s}_shin", f"{s}_knee", f"{s}_ankle", (0.052, 0.052), (0.04, 0.04), 1.0, "shins", 0,
             (f"{s}_knee", f"{s}_ankle")),
            (f"{s}_foot", f"{s}_ankle", f"{s}_toe", (0.045, 0.045), (0.035, 0.035), 1.0, "shoes", 0, (f"{s}_ankle",)),
            (f"{s}_upper_arm", f"{s}_shoulder", f"{s}_elbow", (0.048, 0.048), (0.04, 0.04), 1.0, "shirt", 1,
             (f"{s}_shoulder", f"{s}_elbow", "thorax")),
            (f"{s}_forearm", f"{s}_elbow", f"{s}_wrist", (0.038, 0.038), (0.03, 0.03), 1.0, "forearms", 1,
             (f"{s}_elbow", f"{s}_wrist")),
            (f"{s}_hand", f"{s}_wrist", f"{s}_hand", (0.033, 0.033), (0.026, 0.026), 1.0, "skin", 1, (f"{s}_wrist",))]


#: name, start anchor, end anchor, (lateral, depth) semi-axes at start and end (metres), cap length over
#: half-width, material, lateral frame (0 hips, 1 shoulders), joints the part counts as its own for
#: visibility: those it contains and those of the adjacent body surface (a thigh's top shows the pelvis,
#: the hair the upper neck, an upper arm's top the base of the neck), so only non-adjacent parts
#: (a crossing arm, the other leg, the torso in front of a far elbow) self-occlude a joint.
PARTS: tuple[tuple, ...] = (
    ("hips", "hips_a", "hips_b", (0.165, 0.11), (0.16, 0.105), 0.55, "trousers", 0, ("pelvis", "r_hip", "l_hip")),
    ("abdomen", "abdomen_a", "spine", (0.15, 0.10), (0.15, 0.10), 0.5, "shirt", 0,
     ("pelvis", "r_hip", "l_hip", "spine")),
    ("chest", "spine", "chest_b", (0.155, 0.105), (0.17, 0.11), 0.45, "shirt", 1,
     ("spine", "thorax", "l_shoulder", "r_shoulder")),
    ("neck", "thorax", "neck", (0.05, 0.05), (0.045, 0.045), 1.0, "skin", 1, ("thorax", "neck")),
    ("head", "head_a", "head_b", (0.078, 0.095), (0.078, 0.095), 1.0, "skin", 1, ("thorax", "neck", "head")),
    ("hair", "hair_a", "hair_b", (0.083, 0.092), (0.083, 0.092), 1.0, "hair", 1, ("thorax", "neck", "head")),
    *_side("r"), *_side("l"),
)
N_PARTS = len(PARTS)
PART_NAMES = tuple(p[0] for p in PARTS)
_PA = np.array([_ANCHOR[p[1]] for p in PARTS])
_PB = np.array([_ANCHOR[p[2]] for p in PARTS])
_SEMI = np.array([[p[3], p[4]] for p in PARTS], float)  # (S, 2 ends, 2 lateral/depth)
_CAP = np.array([p[5] for p in PARTS], float)
_FRAME = np.array([p[7] for p in PARTS])
_TORSO = np.isin(PART_NAMES, ("hips", "abdomen", "chest"))
_NECK, _HEAD, _HAIR = (PART_NAMES.index(n) for n in ("neck", "head", "hair"))
#: ``(S, 17)`` whether part s contains joint j (a joint is visible where its pixel shows such a part).
OWNS = np.zeros((N_PARTS, 17), bool)
for _s, _p in enumerate(PARTS):
    OWNS[_s, [_J[j] for j in _p[8]]] = True
_K = 12  # points per cap ellipse
_ANG = np.linspace(0, 2 * np.pi, _K, endpoint=False)
_COS, _SIN = np.cos(_ANG), np.sin(_ANG)
_MAX_STRIPES = 10
_SKIN = np.array([[200, 215, 240], [150, 180, 225], [105, 145, 195], [70, 105, 160], [45, 70, 110], [30, 45, 75]],
                 float)  # BGR, light to dark
_HAIR_TONES = np.array([[20, 20, 25], [30, 45, 75], [60, 100, 150], [100, 170, 210], [160, 160, 165], [40, 60, 140]],
                       float)
_Z = np.array([0.0, 0.0, 1.0])


@dataclass
class Appearance:
    """How one person looks.

    Attributes:
        colours: ``(S, 3)`` BGR albedo (0-255) per part of :data:`PARTS`.
        semi: ``(S, 2, 2)`` lateral and depth semi-axes at each end of each part, metres.
        stripes: ``(S,)`` bool, parts that carry stripes; stripe_colour: ``(3,)`` BGR.
        stripe_period_m, stripe_width_m: stripe spacing and width along a part, metres.
        stripe_phase_m: ``(S,)`` offset of the first stripe from each part's start, metres.
    """

    colours: FloatArray
    semi: FloatArray
    stripes: np.ndarray
    stripe_colour: FloatArray
    stripe_period_m: float
    stripe_width_m: float
    stripe_phase_m: FloatArray


def random_appearance(rng: np.random.Generator) -> Appearance:
    """A random person: skin tone, hair, shirt, trousers and shoes, sleeves, shorts, build, stripes."""
    t = rng.uniform(0, len(_SKIN) - 1)
    i = int(t)
    skin = _SKIN[i] + (t - i) * (_SKIN[min(i + 1, len(_SKIN) - 1)] - _SKIN[i]) + rng.uniform(-8, 8, 3)
    hair = (skin * 0.85 if rng.random() < 0.08  # bald
            else _HAIR_TONES[int(rng.integers(len(_HAIR_TONES)))] * rng.uniform(0.8, 1.2))
    shirt = random_colour(rng, (0.0, 0.9), (0.12, 0.95))
    k = rng.random()
    trousers = (np.array([120.0, 75, 40]) if k < 0.3 else np.array([35.0, 35, 38]) if k < 0.5
                else np.array([95.0, 140, 165]) if k < 0.6 else random_colour(rng, (0, 0.7), (0.1, 0.7)))
    trousers = trousers * rng.uniform(0.8, 1.2)
    shoes = random_colour(rng, (0, 0.5), (0.05, 0.3)) if rng.random() < 0.7 else random_colour(rng, (0, 0.2), (0.8, 1))
    shorts, short_sleeves = rng.random() < 0.15, rng.random() < 0.5
    material = {"skin": skin, "hair": hair, "shirt": shirt, "trousers": trousers, "shoes": shoes,
                "shins": skin if shorts else trousers, "forearms": skin if short_sleeves else shirt}
    colours = np.stack([material[p[6]] for p in PARTS]) * rng.uniform(0.93, 1.07, (N_PARTS, 1))
    semi = _SEMI * uniform(rng, (0.88, 1.15))
    semi[_TORSO, :, 0] *= uniform(rng, (0.9, 1.12))
    semi[[_HEAD, _HAIR]] = _SEMI[[_HEAD, _HAIR]] * uniform(rng, (0.95, 1.08))
    kind = np.array([p[6] for p in PARTS])
    shirt_parts = (kind == "shirt") | ((kind == "forearms") & (not short_sleeves))
    pattern = rng.random()
    stripes = shirt_parts if pattern < 0.4 else shirt_parts & _TORSO if pattern < 0.55 else np.zeros(N_PARTS, bool)
    if rng.random() < 0.1:
        stripes = stripes | (kind == "trousers") | ((kind == "shins") & (not shorts))
    period = uniform(rng, (0.04, 0.16)) if pattern < 0.4 else uniform(rng, (0.5, 1.0))
    width = period * uniform(rng, (0.25, 0.55)) if pattern < 0.4 else uniform(rng, (0.05, 0.14))
    stripe_colour = random_colour(rng, (0, 1), (0.1, 1)) if rng.random() < 0.6 else shirt * uniform(rng, (0.4, 0.7))
    return Appearance(np.clip(colours, 0, 255), semi, stripes, stripe_colour, period, width,
                      rng.uniform(0, period, N_PARTS))


@dataclass
class Light:
    """A distant light: ``direction`` ``(3,)`` unit vector towards it (world); ``ambient`` share 0-1."""

    direction: FloatArray
    ambient: float = 0.45


def random_light(rng: np.random.Generator, options: RenderOptions) -> Light:
    """A light from above (elevation at least about 12 degrees) with the options' ambient share."""
    d = rng.normal(size=3) + np.array([0.0, 0.0, 1.3])
    d[2] = max(d[2], 0.2)
    return Light(d / np.linalg.norm(d), uniform(rng, options.ambient))


# --------------------------------------------------------------------------- geometry
def _unit(v: FloatArray, fallback: FloatArray | None = None) -> FloatArray:
    """Unit vectors along the last axis; ``fallback`` where a vector is (nearly) zero or NaN."""
    n = np.sqrt((v * v).sum(-1, keepdims=True))
    out = v / np.maximum(n, 1e-12)
    return out if fallback is None else np.where(n > 1e-9, out, fallback)


def _cross(a: FloatArray, b: FloatArray) -> FloatArray:
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], -1)


def body_anchors(joints: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Anchor points of the parts and the body's axes.

    Args:
        joints: ``(..., 17, 3)`` H36M17 world positions, metres (Z up).
    Returns:
        ``anchors (..., 29, 3)`` (the 17 joints, then hips block, abdomen, chest top, head, hair,
        toes and hand tips), ``lateral (..., 2, 3)`` unit left vectors of the hips and the shoulders,
        ``forward (..., 3)`` unit facing direction of the chest.
    """
    j = np.asarray(joints, np.float64)
    pel, thx, neck, head = j[..., 0, :], j[..., 8, :], j[..., 9, :], j[..., 10, :]
    up = _unit(thx - pel, _Z)
    left_h = _unit(j[..., 4, :] - j[..., 1, :], np.array([0.0, 1.0, 0.0]))
    left_s = _unit(j[..., 11, :] - j[..., 14, :], left_h)
    fwd_h = _unit(_cross(left_h, up), np.array([1.0, 0.0, 0.0]))
    fwd_s = _unit(_cross(left_s, up), fwd_h)
    ground = _unit(fwd_h * np.array([1.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]))
    hu = _unit(head - neck, up)
    head_a, head_b = neck + 0.04 * hu + 0.015 * fwd_s, head - 0.075 * hu + 0.01 * fwd_s
    extra = [pel - 0.05 * up, pel + 0.07 * up, pel + 0.05 * up, thx - 0.03 * up, head_a, head_b,
             0.5 * (head_a + head_b) + 0.01 * hu - 0.03 * fwd_s, head - 0.071 * hu - 0.02 * fwd_s,
             j[..., 3, :] + 0.12 * ground - 0.06 * _Z, j[..., 6, :] + 0.12 * ground - 0.06 * _Z]
    for wrist, elbow in ((16, 15), (13, 12)):
        extra.append(j[..., wrist, :] + 0.08 * _unit(j[..., wrist, :] - j[..., elbow, :], -up))
    return np.concatenate([j, np.stack(extra, -2)], -2), np.stack([left_h, left_s], -2), fwd_s


@dataclass
class Geometry:
    """Image-space parts of P people in one camera at one instant (fixed-point pixels, :data:`SHIFT` bits).

    Attributes:
        polys: ``(P, S, B, 2K, 2)`` band outlines (points of two cap ellipses; their convex hull is the band).
        colours: nested lists ``[P][S][B]`` of BGR fill colours.
        stripes: ``(P, S, M, 4, 2)`` stripe quads; stripe_ok: ``(P, S, M)``; stripe_colours: ``[P][S]`` BGR.
        depth: ``(P, S)`` camera depth of each part (painter's order), metres; valid: ``(P, S)`` drawable.
        shadows: per person a ``(K, 2)`` floor-shadow polygon or None.
    """

    polys: np.ndarray
    colours: list
    stripes: np.ndarray
    stripe_ok: np.ndarray
    stripe_colours: list
    depth: FloatArray
    valid: np.ndarray
    shadows: list


def layout(camera: Camera, bodies: FloatArray, appearances: Sequence[Appearance], light: Light, bands: int = 3,
           shadows: bool = True) -> list[Geometry]:
    """Project bodies into ``camera`` as shaded part polygons, vectorised over instants and people.

    Args:
        camera: the camera.
        bodies: ``(T, P, 17, 3)`` world positions, metres (T instants of the same P people).
        appearances: per person.
        light: the light; bands: shading bands per part (1-4); shadows: floor shadows (``z = 0``).
    Returns:
        One :class:`Geometry` per instant.
    """
    bodies = np.asarray(bodies, np.float64)
    T, P = bodies.shape[:2]
    flat = bodies.reshape(T * P, 17, 3)
    anchors, lateral, fwd = body_anchors(flat)  # (N, 29, 3)
    a, b = anchors[:, _PA], anchors[:, _PB]  # (N, S, 3)
    ax = _unit(b - a, _unit(anchors[:, [8]] - anchors[:, [0]], _Z))
    lat = lateral[:, _FRAME]
    u = _unit(lat - (lat * ax).sum(-1, keepdims=True) * ax, np.array([1.0, 0.0, 0.0]))
    v = _cross(ax, u)
    ends = np.stack([a, b], 2)  # (N, S, 2, 3)
    centre = camera.center
    toc = _unit(centre - ends)
    e = _unit(_cross(ax[:, :, None], toc), u[:, :, None])
    semi = np.tile(np.stack([ap.semi for ap in appearances]), (T, 1, 1, 1))  # (N, S, 2, 2)
    h = np.hypot(semi[..., 0] * (u[:, :, None] * e).sum(-1), semi[..., 1] * (v[:, :, None] * e).sum(-1))
    pix, ok = safe_project(camera, np.stack([ends, ends + h[..., None] * e, ends - h[..., None] * e], -2))
    valid = ok.all((-1, -2))
    cen = pix[..., 0, :]
    ed = pix[..., 1, :] - pix[..., 2, :]
    w = np.sqrt((ed * ed).sum(-1)) / 2  # (N, S, 2)
    valid &= np.isfinite(w).all(-1) & (w > 1e-3).all(-1)
    w = np.where(valid[..., None], w, 1.0)
    n = ed / (2 * w[..., None])
    uimg = np.stack([-n[..., 1], n[..., 0]], -1)
    # Lambert across the width: normal(s) = sqrt(1 - s^2) * (towards camera) + s * e, s in [-1, 1].
    mid = 0.5 * (a + b)
    tc = _unit(centre - mid)
    tperp = _unit(tc - (tc * ax).sum(-1, keepdims=True) * ax, tc)
    em = _unit(_cross(ax, tc), u)
    ca, cb = (tperp @ light.direction)[..., None], (em @ light.direction)[..., None]  # (N, S, 1)
    s_star = np.sin(np.clip(np.arctan2(cb, ca), -np.pi / 2, np.pi / 2))
    frac = np.linspace(1.0, 0.35, bands) if bands > 1 else np.ones(1)
    off = s_star * (1 - frac)  # (N, S, B)
    samples = np.concatenate([np.full_like(s_star, -0.8), np.full_like(s_star, 0.8), off[..., 1:]], -1) \
        if bands > 1 else off
    lit = light.ambient + (1 - light.ambient) * np.maximum(0.0, np.sqrt(1 - samples**2) * ca + samples * cb)
    inten = np.concatenate([0.5 * (lit[..., :1] + lit[..., 1:2]), lit[..., 2:]], -1) if bands > 1 else lit
    albedo = np.tile(np.stack([ap.colours for ap in appearances]), (T, 1, 1))  # (N, S, 3)
    colours = np.clip(albedo[:, :, None] * inten[..., None], 0, 255)
    # Band outlines: per end an ellipse frac * w across and cap * frac * w along, shifted off * w across.
    ring = _COS[:, None] * uimg[..., None, :] * _CAP[:, None, None, None] + _SIN[:, None] * n[..., None, :]
    wb = w[:, :, None, :, None, None]  # (N, S, 1, 2, 1, 1)
    polys = (cen[:, :, None, :, None] + off[..., None, None, None] * wb * n[:, :, None, :, None]
             + frac[:, None, None, None] * wb * ring[:, :, None])  # (N, S, B, 2, K, 2)
    polys = fixed(np.where(valid[..., None, None, None, None], polys, 0.0).reshape(T, P, N_PARTS, len(frac), 2 * _K, 2))
    depth = (mid @ camera.rotation.T + camera.translation)[..., 2]
    facing = (fwd * _unit(centre - anchors[:, _ANCHOR["head_a"]])).sum(-1)
    depth[:, _HAIR] = depth[:, _HEAD] + np.where(facing > 0.2, 1e-3, -1e-3)  # behind the face, or over it
    depth[:, _NECK] = np.maximum(depth[:, _NECK], depth[:, [_HEAD, _HAIR]].max(1) + 2e-3)  # always under the head
    stripes, stripe_ok, stripe_col = _stripes(appearances, T, a, b, cen, n, w, valid, inten[..., -1:])
    shadow = _shadows(camera, flat, semi, light) if shadows else [None] * (T * P)
    colour_list = colours.reshape(T, P, N_PARTS, len(frac), 3).tolist()
    stripe_list = stripe_col.reshape(T, P, N_PARTS, 3).tolist()
    shape = (T, P, N_PARTS)
    return [Geometry(polys[t], colour_list[t], stripes.reshape(shape + stripes.shape[2:])[t],
                     stripe_ok.reshape(shape + (-1,))[t], stripe_list[t], depth.reshape(shape)[t],
                     valid.reshape(shape)[t], shadow[t * P:(t + 1) * P]) for t in range(T)]


def _stripes(appearances: Sequence[Appearance], T: int, a: FloatArray, b: FloatArray, cen: FloatArray,
             n: FloatArray, w: FloatArray, valid: np.ndarray, inten: FloatArray
             ) -> tuple[np.ndarray, np.ndarray, FloatArray]:
    """Stripe quads across striped parts at fixed distances along them (a body-attached texture)."""
    length = np.sqrt(((b - a) ** 2).sum(-1))[..., None]  # (N, S, 1)
    period = np.tile([ap.stripe_period_m for ap in appearances], T)[:, None, None]
    width = np.tile([ap.stripe_width_m for ap in appearances], T)[:, None, None]
    phase = np.tile(np.stack([ap.stripe_phase_m for ap in appearances]), (T, 1))[..., None]
    start = phase + period * np.arange(_MAX_STRIPES)  # (N, S, M)
    u0, u1 = start / np.maximum(length, 1e-9), (start + width) / np.maximum(length, 1e-9)
    has = np.tile(np.stack([ap.stripes for ap in appearances]), (T, 1))[..., None]
    ok = has & valid[..., None] & (length > 0.05) & (u1 <= 1.0)
    u0, u1 = np.where(ok, u0, 0.0), np.where(ok, u1, 0.0)

    def at(t: FloatArray) -> tuple[FloatArray, FloatArray]:
        c = cen[:, :, None, 0] + t[..., None] * (cen[:, :, None, 1] - cen[:, :, None, 0])
        nn = n[:, :, None, 0] + t[..., None] * (n[:, :, None, 1] - n[:, :, None, 0])
        ww = 0.97 * (w[:, :, None, 0] + t * (w[:, :, None, 1] - w[:, :, None, 0]))[..., None]
        return c, nn * ww

    (c0, d0), (c1, d1) = at(u0), at(u1)
    quads = fixed(np.stack([c0 + d0, c1 + d1, c1 - d1, c0 - d0], -2))
    colour = np.tile(np.stack([ap.stripe_colour for ap in appearances]), (T, 1))[:, None, :] * inten
    return quads, ok, np.clip(colour, 0, 255)


def _shadows(camera: Camera, bodies: FloatArray, semi: FloatArray, light: Light) -> list:
    """Per body ``(N, 17, 3)`` a fixed-point floor polygon (``z = 0``) under the feet, stretched away from the
    light, or None (feet off the floor, or the polygon not wholly in front of the camera)."""
    away = -light.direction[:2] / max(light.direction[2], 0.5) * 0.15  # metres, at most about 0.26
    length = float(np.hypot(*away))
    along = away / length if length > 1e-6 else np.array([1.0, 0.0])
    radius = 0.28 * semi[:, 0, 0, 0] / _SEMI[0, 0, 0]  # scales with the hips' width
    ring = (_COS[:, None] * along * (1 + length / 0.28) + _SIN[:, None] * np.array([-along[1], along[0]]))
    feet = 0.5 * (bodies[:, 3, :2] + bodies[:, 6, :2]) + away
    pts = feet[:, None] + ring[None] * radius[:, None, None]
    pix, ok = safe_project(camera, np.concatenate([pts, np.zeros(pts.shape[:2] + (1,))], -1))
    grounded = np.fmin(bodies[:, 3, 2], bodies[:, 6, 2]) < 0.4
    polys = fixed(pix)
    return [polys[i] if ok[i].all() and grounded[i] else None for i in range(len(bodies))]


def bounds(geoms: Sequence[Geometry], size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Pixel box ``(x0, y0, x1, y1)`` (end exclusive) around every valid part and shadow, clipped to the image."""
    pts = [g.polys[g.valid][:, 0].reshape(-1, 2) for g in geoms]
    pts += [s for g in geoms for s in g.shadows if s is not None]
    pts = np.concatenate(pts) if pts else np.zeros((0, 2), np.int32)
    if len(pts) == 0:
        return None
    lo = np.floor(pts.min(0) / (1 << SHIFT)).astype(int) - 2
    hi = np.ceil(pts.max(0) / (1 << SHIFT)).astype(int) + 3
    x0, y0, x1, y1 = max(lo[0], 0), max(lo[1], 0), min(hi[0], size[0]), min(hi[1], size[1])
    return (int(x0), int(y0), int(x1), int(y1)) if x1 > x0 and y1 > y0 else None
