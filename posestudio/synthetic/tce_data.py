"""Rendered training samples for the TCE video pose network (``posestudio train tce``).

:class:`RenderedSource` is a ``sample_source(rng, batch)`` for
:func:`posestudio.models.tce.train.train_tce`: three-frame crops (``t - 1, t, t + 1``) of a moving
person rendered by :func:`~.body_render.render_training_batch` directly at the network's input
size, with exact labels. The crops come in the three kinds the :class:`~posestudio.models.tce.detector.TCEDetector`
feeds its network (drawn per sample):

* ``tracked`` - a tracker's box: side ``boxes.scale`` x the person's 2D extent, centre jittered;
* ``wide`` - a box a few times larger (``boxes.wide_scale``; a tracker that lost part of the body, a
  box being re-centred);
* ``search`` - the whole-frame search: the person small (``search_scale`` x extent: 20-50 pixels tall
  in 128) anywhere in the crop, and, with ``letterbox_prob``, the black bars of a 16:9 or 9:16
  frame letterboxed into the square (labels on the bars are dropped).

(``boxes``: :class:`~posestudio.models.tce.crops.CropBoxOptions`, default :data:`RENDERED_BOXES`.)

Because the sources already crop, the trainer must not crop again (``AugmentConfig.crop = False``);
its flips, colour jitter, occluder patches, per-frame blur, noise and dropped neighbours still apply.
Occluded joints keep their labels (weight ``occluded_weight``): the network must place joints it
cannot see, which is where the neighbouring frames help.

Motions: the Bandai motion-capture clips, every ``holdout_every``-th clip held out (the convention of
:func:`posestudio.models.factorization.data.split_clips`, so benchmark clips are never trained on),
or, where ``../shared/data/bandai_mocap_1`` is absent, procedural walks (:mod:`.body_motion`).

:func:`mix_sources` draws each batch from two sources (e.g. this one and a studio session's real
frames, :mod:`posestudio.reconstruction.tce_sessions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from posestudio.core.arrays import FloatArray
from posestudio.core.errors import InputError
from posestudio.models.datasets.bandai import DEFAULT_BANDAI_DIR, load_bandai
from posestudio.models.tce.crops import CropBoxOptions

from .body_motion import walking_body
from .body_render import render_training_batch
from .render_augment import RenderOptions

__all__ = ["RENDERED_BOXES", "RenderedSource", "RenderedSourceOptions", "bandai_split", "mix_sources",
           "training_motions", "walking_motions"]

SampleSource = Callable[[np.random.Generator, int], dict[str, Any]]

#: The rendered crops' boxes: tracked 1.1-1.5 x the extent, 10 % wide (1.5-3 x), 15 % whole-frame search views.
RENDERED_BOXES = CropBoxOptions(scale=(1.1, 1.5), jitter=0.08, wide_share=0.1, wide_scale=(1.5, 3.0),
                                search_share=0.15)

#: Aspect ratios (width / height) of the frames a whole-frame search letterboxes, and their weights.
LETTERBOX_ASPECTS = ((16 / 9, 0.6), (9 / 16, 0.3), (4 / 3, 0.1))


def bandai_split(clips: Sequence[tuple[str, FloatArray]], holdout_every: int = 5
                 ) -> tuple[list[tuple[str, FloatArray]], list[tuple[str, FloatArray]]]:
    """``(training clips, held-out clips)``: clip ``i`` is held out when ``i % holdout_every == holdout_every - 1``.

    The rule of :func:`posestudio.models.factorization.data.split_clips` (clips in ``load_bandai``'s
    order: sorted by file name), kept as clip lists instead of concatenated poses.
    """
    if holdout_every < 2:
        raise InputError(f"holdout_every = {holdout_every}: expected >= 2")
    train = [c for i, c in enumerate(clips) if i % holdout_every != holdout_every - 1]
    test = [c for i, c in enumerate(clips) if i % holdout_every == holdout_every - 1]
    return train, test


def walking_motions(n: int = 12, frames: int = 90, fps: float = 30.0, seed: int = 0) -> list[FloatArray]:
    """``n`` procedural walks ``(frames, 17, 3)`` (metres, Z up) with varied speed, cadence and heading."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7CE]))
    return [walking_body(frames, fps, float(rng.uniform(0.3, 1.6)), (0.0, 0.0), float(rng.uniform(0, 360)),
                         float(rng.uniform(0.6, 1.3)), float(rng.uniform(0.85, 1.0))) for _ in range(n)]


def training_motions(bandai_dir: str | Path | None = None, holdout_every: int = 5, frame_stride: int = 1
                     ) -> tuple[list[FloatArray], str]:
    """The motions TCE trains on and where they came from.

    Args:
        bandai_dir: folder of Bandai BVH clips (default :data:`DEFAULT_BANDAI_DIR`).
        holdout_every: every ``holdout_every``-th clip is held out (see :func:`bandai_split`).
        frame_stride: keep every ``frame_stride``-th frame (the clips are 30 fps).
    Returns:
        ``([(F, 17, 3) metres, ...], description)``; procedural walks when the folder is absent or empty.
    """
    root = Path(bandai_dir) if bandai_dir is not None else DEFAULT_BANDAI_DIR
    if root.is_dir() and any(root.glob("*.bvh")):
        clips = load_bandai(root, frame_stride=frame_stride)
        train, test = bandai_split(clips, holdout_every)
        return ([c for _, c in train],
                f"Bandai {root.name}: {len(train)} training clips ({sum(len(c) for _, c in train)} frames at "
                f"{30 / frame_stride:g} fps), {len(test)} held out (every {holdout_every}th)")
    walks = walking_motions()
    return walks, f"procedural walks ({len(walks)} x {len(walks[0])} frames; {root} absent)"


@dataclass
class RenderedSourceOptions:
    """How :class:`RenderedSource` frames its crops (shares are probabilities per sample).

    Attributes:
        input_size: crop side, pixels (the network's input).
        boxes: :class:`~posestudio.models.tce.crops.CropBoxOptions` (default :data:`RENDERED_BOXES`):
            ``scale`` and ``jitter`` (below 0.5) of the tracker-like boxes (the wide ones jitter
            alike), the shares of wide boxes and of whole-frame-search crops (together at most 1;
            the rest are tracked).
        search_scale: the search crops' scale (the person is ``input_size / scale`` pixels tall or wide).
        search_jitter: their centre jitter, fraction of the crop side (+-, below 0.5).
        letterbox_prob: a search crop gets the black bars of a letterboxed non-square frame.
        occluded_weight: label weight of joints hidden (by an occluder, another person or the body itself).
        render: the renderer's options (its ``crop_scale`` and ``crop_jitter`` are set per kind).
    """

    input_size: int = 128
    boxes: CropBoxOptions = RENDERED_BOXES
    search_scale: tuple[float, float] = (2.5, 8.0)
    search_jitter: float = 0.25
    letterbox_prob: float = 0.7
    occluded_weight: float = 1.0
    render: RenderOptions = field(default_factory=RenderOptions)

    def check(self) -> RenderedSourceOptions:
        """Raise :class:`InputError` naming the first setting out of range; returns self."""
        if self.input_size < 16:
            raise InputError(f"rendered source input_size = {self.input_size}: expected >= 16 pixels")
        b = self.boxes.check("rendered source")
        if b.wide_share + b.search_share > 1.0:
            raise InputError("rendered source boxes.wide_share + boxes.search_share = "
                             f"{b.wide_share + b.search_share}: expected <= 1")
        for name in ("letterbox_prob", "occluded_weight"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise InputError(f"rendered source {name} = {v}: expected a value in [0, 1]")
        lo, hi = self.search_scale
        if not 0 < lo <= hi:
            raise InputError(f"rendered source search_scale = {(lo, hi)}: expected 0 < low <= high")
        for name, v in (("boxes.jitter", b.jitter), ("search_jitter", self.search_jitter)):
            if not 0.0 <= v < 0.5:
                raise InputError(f"rendered source {name} = {v}: expected a value in [0, 0.5)")
        self.render.check()
        return self


def bgr_to_rgb_float(frames: np.ndarray) -> np.ndarray:
    """uint8 BGR ``(..., H, W, 3)`` -> float32 RGB in [0, 1], channels first ``(..., 3, H, W)``."""
    return np.moveaxis(frames[..., ::-1].astype(np.float32) * (1.0 / 255.0), -1, -3)


def letterbox(frames: np.ndarray, keypoints: FloatArray, aspect: np.ndarray) -> None:
    """Black out, in place, what lies outside a centred band of aspect ``aspect`` (width / height) per sample.

    Args:
        frames: ``(B, T, 3, S, S)`` float; keypoints: ``(B, T, J, 3)`` crop pixels (labels on the
            bars become NaN); aspect: ``(B,)``.
    """
    s = frames.shape[-1]
    u = np.arange(s) + 0.5
    band_w = np.where(aspect >= 1, s, s * aspect)  # (B,)
    band_h = np.where(aspect >= 1, s / aspect, s)
    lo_x, lo_y = (s - band_w) / 2, (s - band_h) / 2
    in_x = (u[None] >= lo_x[:, None]) & (u[None] <= s - lo_x[:, None])  # (B, S)
    in_y = (u[None] >= lo_y[:, None]) & (u[None] <= s - lo_y[:, None])
    mask = in_y[:, :, None] & in_x[:, None, :]  # (B, S, S)
    frames *= mask[:, None, None].astype(frames.dtype)
    x, y = keypoints[..., 0] + 0.5, keypoints[..., 1] + 0.5
    off = ((x < lo_x[:, None, None]) | (x > s - lo_x[:, None, None]) | (y < lo_y[:, None, None])
           | (y > s - lo_y[:, None, None]))
    keypoints[off] = np.nan


class RenderedSource:
    """``sample_source(rng, batch)`` of rendered three-frame crops (see the module docstring).

    Args:
        motions: ``(F, 17, 3)`` H36M17 world joints per clip, metres, Z up.
        options: :class:`RenderedSourceOptions`.
    Returns (when called):
        ``{"frames": float32 (B, 3, 3, S, S)`` RGB in [0, 1] (time t-1, t, t+1),
        ``"keypoints": (B, 3, 17, 3)`` crop pixels and label weight (1 visible, ``occluded_weight``
        hidden; NaN rows outside the crop)``, "kind": (B,)`` 0 tracked / 1 wide / 2 search``}``.
    """

    def __init__(self, motions: Sequence[FloatArray], options: RenderedSourceOptions | None = None) -> None:
        self.options = (options or RenderedSourceOptions()).check()
        self.motions = [np.asarray(m, np.float64) for m in motions]
        if not self.motions:
            raise InputError("rendered source: no motions to render")
        o, b = self.options, self.options.boxes
        self._render = [replace(o.render, crop_scale=b.scale, crop_jitter=b.jitter),
                        replace(o.render, crop_scale=b.wide_scale, crop_jitter=b.jitter),
                        replace(o.render, crop_scale=o.search_scale, crop_jitter=o.search_jitter)]

    def __call__(self, rng: np.random.Generator, batch: int) -> dict[str, Any]:
        o = self.options
        s = o.input_size
        b = o.boxes
        shares = np.array([1.0 - b.wide_share - b.search_share, b.wide_share, b.search_share])
        kind = rng.choice(3, size=batch, p=shares / shares.sum())
        frames = np.empty((batch, 3, 3, s, s), np.float32)
        kp = np.empty((batch, 3, 17, 3))
        for k in range(3):
            idx = np.flatnonzero(kind == k)
            if len(idx) == 0:
                continue
            got = render_training_batch(self.motions, rng, len(idx), (s, s), self._render[k])
            frames[idx] = bgr_to_rgb_float(got["frames"])
            lab = got["keypoints"]
            lab[..., 2] = np.where(lab[..., 2] > 0, 1.0, o.occluded_weight)
            kp[idx] = lab
        search = np.flatnonzero((kind == 2) & (rng.random(batch) < o.letterbox_prob))
        if len(search):
            aspects, weights = np.array(LETTERBOX_ASPECTS).T
            aspect = rng.choice(aspects, size=len(search), p=weights / weights.sum())
            sub_f, sub_k = frames[search], kp[search]
            letterbox(sub_f, sub_k, aspect)
            frames[search], kp[search] = sub_f, sub_k
        return {"frames": frames, "keypoints": kp, "kind": kind}


def mix_sources(first: SampleSource, second: SampleSource, second_share: float) -> SampleSource:
    """A source drawing ``Binomial(batch, second_share)`` samples from ``second``, the rest from ``first``.

    Both must yield ``frames (b, 3, 3, S, S)`` of the same ``S`` and keypoints ``(b, J, 3)`` or
    ``(b, 3, J, 3)`` (frame ``t``'s are kept); the result has keypoints ``(B, J, 3)`` and
    ``"source": (B,)`` 0 / 1.
    """
    if not 0.0 <= second_share <= 1.0:
        raise InputError(f"second_share = {second_share}: expected a share in [0, 1]")

    def centre(k: Any) -> np.ndarray:
        k = np.asarray(k, np.float64)
        return k[:, 1] if k.ndim == 4 else k

    def source(rng: np.random.Generator, batch: int) -> dict[str, Any]:
        n2 = int(rng.binomial(batch, second_share))
        parts = [(first(rng, batch - n2), 0)] if n2 < batch else []
        if n2:
            parts.append((second(rng, n2), 1))
        frames = np.concatenate([np.asarray(p["frames"], np.float32) for p, _ in parts])
        kp = np.concatenate([centre(p["keypoints"]) for p, _ in parts])
        which = np.concatenate([np.full(len(p["frames"]), i) for p, i in parts])
        return {"frames": frames, "keypoints": kp, "source": which}

    return source
