"""A studio session as training data for the TCE 2D pose network (multi-view bootstrapping).

A session is what ``posestudio reconstruct --videos`` wrote: ``keypoints2d.npz`` (the detector's
2D), ``points3d.npz`` (the reconstruction) and, when frame sizes needed adjusting, ``rig.toml``.
:func:`~.pseudo_labels.pseudo_labels` turns the 3D into 2D labels in every camera where the cameras
agree; :class:`SessionSource` cuts the matching real frames ``t - 1, t, t + 1`` with one box per
labelled (camera, frame), each recording decoded once, and keeps those crops in memory (at most
``max_memory_mb``; beyond, (camera, frame) pairs are subsampled evenly). Called as a
``sample_source(rng, batch)`` of :func:`posestudio.models.tce.train.train_tce`, it cuts random
tracker-like boxes out of the stored crops at the network's input size, or (``boxes.search_share``) hands
the whole frames letterboxed, as the detector's first-frame search sees them.

``frames = (A, B)`` restricts everything to frames ``A <= f < B``: labels of other frames are not
used and no frame outside the range is cropped (a neighbour outside it is replaced by frame ``t``,
as at the ends of a take), so frames outside can be held out for evaluation. (The session's 3D
itself may have been smoothed over the range boundary; use a reconstruction of the range alone
for a strict split.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from posestudio.calibration.rig_formats import import_rig
from posestudio.core.errors import InputError
from posestudio.core.keypoints_file import Keypoints2D, Points3D, read_keypoints2d, read_points3d
from posestudio.core.rig import CameraRig
from posestudio.models.tce.crops import (
    CropBoxOptions,
    box_from_keypoints,
    frame_box,
    keypoints_to_crop,
    warp_crop,
    warp_crops,
)

from .pseudo_labels import PseudoLabelOptions, pseudo_labels
from .videos import match_videos

__all__ = ["SESSION_BOXES", "SessionOptions", "SessionSource", "concat_sessions"]

#: A session's training boxes: tracked 1.1-1.5 x the labels' extent, 10 % wide (1.5-2 x, within the
#: stored context), 15 % whole frames letterboxed.
SESSION_BOXES = CropBoxOptions(scale=(1.1, 1.5), jitter=0.08, wide_share=0.1, wide_scale=(1.5, 2.0), search_share=0.15)


@dataclass
class SessionOptions:
    """How a session's frames become training crops.

    Attributes:
        input_size: side of the crops handed to the network, pixels.
        store_scale: stored crops are ``store_scale x input_size`` pixels square ...
        context_scale: ... covering ``context_scale`` x the extent of the (camera, frame)'s labels.
        boxes: the training boxes (:class:`~posestudio.models.tce.crops.CropBoxOptions`, default
            :data:`SESSION_BOXES`): side ``U(scale)`` x the labels' extent, centre shifted by
            ``U(+-jitter)`` x side per axis; with probability ``wide_share`` ``U(wide_scale)`` x the
            extent (beyond ``context_scale`` the crop is black); with probability ``search_share``
            (drawn on its own, replacing the box) the whole frame letterboxed to the input size, as
            the detector's first-frame search sees it (so the network learns to pick this studio's
            subject, not a bystander, from the whole view).
        min_labels: (camera, frame) pairs with fewer labelled joints are not used.
        max_memory_mb: bound on the stored crops, MiB.
        pseudo: which reprojected joints become labels.
    """

    input_size: int = 128
    store_scale: float = 1.5
    context_scale: float = 2.0
    boxes: CropBoxOptions = SESSION_BOXES
    min_labels: int = 8
    max_memory_mb: float = 512.0
    pseudo: PseudoLabelOptions = field(default_factory=PseudoLabelOptions)

    def check(self) -> SessionOptions:
        """Raise :class:`InputError` naming the first setting out of range; returns self."""
        if self.input_size < 16:
            raise InputError(f"session input_size = {self.input_size}: expected >= 16 pixels")
        if not self.store_scale >= 1.0:
            raise InputError(f"session store_scale = {self.store_scale}: expected >= 1")
        self.boxes.check("session")
        if not self.context_scale >= self.boxes.scale[1]:
            raise InputError(f"session context_scale = {self.context_scale}: expected >= boxes.scale's high end "
                             f"{self.boxes.scale[1]}")
        if not 1 <= self.min_labels <= 17:
            raise InputError(f"session min_labels = {self.min_labels}: expected 1..17")
        if not self.max_memory_mb > 0:
            raise InputError(f"session max_memory_mb = {self.max_memory_mb}: expected > 0")
        return self

    @property
    def store_size(self) -> int:
        """Side of the stored crops, pixels."""
        return int(round(self.store_scale * self.input_size))


class SessionSource:
    """Real three-frame crops of a session with multi-view pseudo-labels (see the module docstring).

    Args:
        rig: the rig the session was reconstructed with (sized for the recordings' frames).
        videos: one recording per camera, named after it; cameras without a recording are skipped.
        detections: the session's 2D (``keypoints2d.npz``); points: its 3D (``points3d.npz``).
        frames: ``(A, B)``: use frames ``A <= f < B`` only (None: all).
        options: :class:`SessionOptions`.
        name: what to call the session in messages.
    Attributes (after loading):
        crops: ``(N, 3, M, M, 3)`` uint8 BGR, frames ``t - 1, t, t + 1`` of each sample (``M`` = store size).
        labels: ``(N, 17, 3)`` frame ``t``'s labels in stored-crop pixels, third column 1 (NaN: none).
        whole, whole_labels: the same three frames letterboxed whole to ``(N, 3, S, S, 3)`` (the
            detector's search view, ``S`` = input size) and the labels in its pixels.
        index: ``(N, 2)`` (camera index, frame) of each sample; boxes: ``(N, 3)`` their boxes
            ``(cx, cy, side)`` in full-frame pixels; camera_names: the cameras used.
    Returns (when called as ``source(rng, batch)``):
        ``{"frames": float32 (B, 3, 3, S, S)`` RGB in [0, 1], ``"keypoints": (B, 17, 3)`` crop pixels
        and 1 (NaN where no label or outside the crop)``, "index": (B, 2)``}``.
    """

    def __init__(self, rig: CameraRig, videos: Sequence[str | Path], detections: Keypoints2D, points: Points3D,
                 frames: tuple[int, int] | None = None, options: SessionOptions | None = None,
                 name: str = "session") -> None:
        self.options = o = (options or SessionOptions()).check()
        self.name = name
        pl = pseudo_labels(rig, detections, points, o.pseudo)
        labels = pl.keypoints  # (C, F, 17, 3)
        n_frames = labels.shape[1]
        lo, hi = (0, n_frames) if frames is None else (int(frames[0]), int(min(frames[1], n_frames)))
        if not 0 <= lo < hi:
            raise InputError(f"{name}: frames {frames[0]}:{frames[1]} select nothing; the session has "
                             f"{n_frames} frames (0:{n_frames})")
        self.frames = (lo, hi)
        sources = match_videos(rig, videos)
        by_name = {s.name: s for s in sources}
        cams = [i for i, c in enumerate(pl.camera_names) if c in by_name]
        if not cams:
            raise InputError(f"{name}: none of the recordings ({', '.join(by_name)}) is a camera of the session "
                             f"({', '.join(pl.camera_names)})")
        counts = np.isfinite(labels[..., 0]).sum(-1)  # (C, F)
        usable = np.zeros_like(counts, dtype=bool)
        usable[cams, lo:hi] = counts[cams, lo:hi] >= o.min_labels
        pairs = np.argwhere(usable)  # (n, 2) camera, frame, sorted
        m = o.store_size
        per_sample = 3 * 3 * (m * m + o.input_size ** 2)  # tracked-view and whole-frame crops, bytes
        cap = max(1, int(o.max_memory_mb * 2 ** 20 // per_sample))
        self.n_candidates = len(pairs)
        if len(pairs) > cap:
            pairs = pairs[np.unique(np.linspace(0, len(pairs) - 1, cap).round().astype(int))]
        if len(pairs) == 0:
            raise InputError(f"{name}: no (camera, frame) in frames {lo}:{hi} has {o.min_labels} or more "
                             "pseudo-labelled joints (the cameras do not agree on the 3D there)")
        kp_t = labels[pairs[:, 0], pairs[:, 1]]  # (N, 17, 3)
        boxes = box_from_keypoints(kp_t, o.context_scale, 0.0, 2)
        self.index = pairs
        self.boxes = boxes
        self.camera_names = [pl.camera_names[i] for i in sorted(set(pairs[:, 0].tolist()))]
        self.labels = keypoints_to_crop(kp_t, boxes, m)
        self.crops = np.zeros((len(pairs), 3, m, m, 3), np.uint8)
        self.whole = np.zeros((len(pairs), 3, o.input_size, o.input_size, 3), np.uint8)
        self._full = kp_t
        self.whole_labels = np.full_like(kp_t, np.nan)
        for c in sorted(set(pairs[:, 0].tolist())):
            cam = pl.camera_names[c]
            rows = np.flatnonzero(pairs[:, 0] == c)
            self._cut(by_name[cam], rig[cam].image_size if cam in rig.names else None, rows, pairs[rows, 1])

    def _cut(self, source: Any, size: tuple[int, int] | None, rows: np.ndarray, times: np.ndarray) -> None:
        """Decode ``source`` once, cropping frames ``t - 1, t, t + 1`` of every sample ``rows`` (at ``times``)."""
        lo, hi = self.frames
        m = self.options.store_size
        filled = np.zeros((len(rows), 3), bool)
        s = self.options.input_size
        whole_box = None
        slot_of = {int(t): i for i, t in enumerate(times)}
        last = -1
        for f, img in source.frames(gray=False):
            if size is not None and (img.shape[1], img.shape[0]) != tuple(size):
                raise InputError(f"{source.path}: frames are {img.shape[1]}x{img.shape[0]} but the session's rig "
                                 f"says {size[0]}x{size[1]} (use the session's own rig.toml)")
            last = f
            if whole_box is None:
                whole_box = frame_box(img.shape[1], img.shape[0])
                self.whole_labels[rows] = keypoints_to_crop(self._full[rows], whole_box, s)
            if f >= hi or f > times.max() + 1:
                break
            if f < lo or f < times.min() - 1:
                continue
            for k, t in ((0, f + 1), (1, f), (2, f - 1)):
                i = slot_of.get(t)
                if i is not None:
                    self.crops[rows[i], k] = warp_crop(img, self.boxes[rows[i]], m)
                    self.whole[rows[i], k] = warp_crop(img, whole_box, s)
                    filled[i, k] = True
        if last < times.max():
            raise InputError(f"{source.path}: ends after frame {last} but the session has labels up to frame "
                             f"{int(times.max())}")
        for k in (0, 2):  # neighbours outside the range or the recording: frame t, as at a take's ends
            miss = ~filled[:, k]
            self.crops[rows[miss], k] = self.crops[rows[miss], 1]
            self.whole[rows[miss], k] = self.whole[rows[miss], 1]

    @classmethod
    def from_folder(cls, folder: str | Path, videos: Sequence[str | Path], calibration: str | Path | None = None,
                    frames: tuple[int, int] | None = None, options: SessionOptions | None = None) -> SessionSource:
        """A session from a ``posestudio reconstruct --videos`` output folder.

        The rig is the folder's ``rig.toml`` when there is one (the rig adjusted to the recordings'
        frame sizes), else ``calibration`` (any format ``posestudio rig convert`` reads).
        Raises:
            InputError: a missing file or rig, naming it.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"--session {folder}: no such folder (expected a 'posestudio reconstruct --videos' "
                             "output)")
        for f in ("keypoints2d.npz", "points3d.npz"):
            if not (folder / f).is_file():
                raise InputError(f"--session {folder}: no {f} in it (expected a 'posestudio reconstruct --videos' "
                                 "output)")
        own = folder / "rig.toml"
        if own.is_file():
            rig = CameraRig.load(own)
        elif calibration is not None:
            rig = import_rig(calibration)
        else:
            raise InputError(f"--session {folder}: no rig.toml in it; give --calibration (the rig it was "
                             "reconstructed with)")
        return cls(rig, videos, read_keypoints2d(folder / "keypoints2d.npz"), read_points3d(folder / "points3d.npz"),
                   frames, options, name=f"session {folder}")

    def __len__(self) -> int:
        return len(self.index)

    def describe(self) -> str:
        """One line: samples, cameras, frames, labels per sample, memory."""
        lab = np.isfinite(self.labels[..., 0]).sum(-1)
        sub = "" if len(self) == self.n_candidates else f" (of {self.n_candidates}, memory-bounded)"
        return (f"{len(self)} (camera, frame) samples{sub} from cameras {', '.join(self.camera_names)}, frames "
                f"{self.frames[0]}:{self.frames[1]}; {lab.mean():.1f} labelled joints each; "
                f"{(self.crops.nbytes + self.whole.nbytes) / 2 ** 20:.0f} MiB of crops")

    def __call__(self, rng: np.random.Generator, batch: int) -> dict[str, Any]:
        o, b = self.options, self.options.boxes
        s = o.input_size
        pick = rng.integers(0, len(self), batch)
        lab = self.labels[pick]  # (B, 17, 3) stored-crop pixels
        ok = np.isfinite(lab[..., :2]).all(-1)
        xy = np.where(ok[..., None], lab[..., :2], np.nan)
        lo, hi = np.nanmin(xy, 1), np.nanmax(xy, 1)
        extent = np.maximum((hi - lo).max(1), 8.0)
        wide = rng.random(batch) < b.wide_share
        scale = np.where(wide, rng.uniform(*b.wide_scale, batch), rng.uniform(*b.scale, batch))
        side = scale * extent
        centre = 0.5 * (lo + hi) + rng.uniform(-b.jitter, b.jitter, (batch, 2)) * side[:, None]
        boxes = np.concatenate([centre, side[:, None]], 1)
        crops = np.stack([warp_crops(list(self.crops[p]), b, s) for p, b in zip(pick, boxes)])  # (B, 3, S, S, 3)
        kp = keypoints_to_crop(lab, boxes, s)
        whole = rng.random(batch) < b.search_share
        crops[whole] = self.whole[pick[whole]]
        kp[whole] = self.whole_labels[pick[whole]]
        inside = ((kp[..., :2] >= -0.5) & (kp[..., :2] <= s - 0.5)).all(-1)
        kp[~inside] = np.nan
        frames = np.moveaxis(crops[..., ::-1].astype(np.float32) * (1.0 / 255.0), -1, -3)
        return {"frames": frames, "keypoints": kp, "index": self.index[pick]}


def concat_sessions(sources: Sequence[SessionSource]) -> Any:
    """One ``sample_source(rng, batch)`` over several sessions, each drawn in proportion to its samples."""
    if not sources:
        raise InputError("no sessions to draw from")
    if len(sources) == 1:
        return sources[0]
    weights = np.array([len(s) for s in sources], float)
    weights /= weights.sum()

    def source(rng: np.random.Generator, batch: int) -> dict[str, Any]:
        counts = rng.multinomial(batch, weights)
        parts = [s(rng, int(n)) for s, n in zip(sources, counts) if n]
        return {"frames": np.concatenate([p["frames"] for p in parts]),
                "keypoints": np.concatenate([p["keypoints"] for p in parts]),
                "session": np.concatenate([np.full(int(n), i) for i, n in enumerate(counts) if n])}

    return source

