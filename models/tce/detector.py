"""TCEDetector: the TCE network as a top-down, one-person-per-view :class:`Detector2D`.

Per view it tracks one person. The crop box for instant ``t`` comes from the keypoints found at
``t - 1`` (confident joints, with a margin); the same box crops frames ``t - 1, t, t + 1`` (frame
``t`` repeated where a neighbour is outside the take), so the person's motion stays visible to the
temporal module. A view without a box (first frame, person lost) is searched by running the network
on the whole frame letterboxed to the input size; the box from that coarse pass is then refined on
crops. All views are one batch per pass. A view whose best joint confidence (heatmap peak) stays
below ``person_threshold`` reports nobody and loses its box.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from posestudio.core.arrays import FloatArray
from posestudio.models.detectors.base import Detector2D, FrameWindow, Image
from posestudio.models.keypoints import H36M17

from .crops import bgr_to_tensor_layout, box_from_keypoints, frame_box, keypoints_from_crop, warp_crops
from .heatmaps import decode_heatmaps
from .network import TCENet
from .train import load_tce, resolve_device

#: The shipped checkpoint (``posestudio train tce``; how it was made: ``CHECKPOINT.md`` beside it).
DEFAULT_CHECKPOINT = Path(__file__).with_name("checkpoint.pt")


class TCEDetector(Detector2D):
    """One person per view, H36M17 keypoints in full-frame pixels, confidence = heatmap peak.

    Args:
        model: a trained :class:`TCENet` (17 joints); ``context`` is 1 if it is temporal, else 0.
        input_size: crop side the network was trained on, pixels.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` ...
        margin: box side = ``margin`` x the extent of the confident joints.
        person_threshold: a view reports a person only if some joint's confidence reaches this.
        box_min_confidence: joints above this confidence place the next frame's box.
        min_box_joints: fewer such joints -> the box is kept from the previous frame.
        refine_passes: crop passes after a whole-frame search (each re-centres the box).
        max_shrink: the box side shrinks at most to this fraction of the previous one per frame
            (a few missed limbs must not shrink the crop onto the trunk).
    """

    name = "tce"
    layout = H36M17

    def __init__(self, model: TCENet, input_size: int = 128, device: str | torch.device | None = "auto",
                 margin: float = 1.25, person_threshold: float = 0.3, box_min_confidence: float = 0.3,
                 min_box_joints: int = 4, refine_passes: int = 2, max_shrink: float = 0.85) -> None:
        if model.n_joints != H36M17.n_joints:
            raise ValueError(f"TCEDetector: the network has {model.n_joints} joints; expected "
                             f"{H36M17.n_joints} ({H36M17.name})")
        if input_size % 16:
            raise ValueError(f"TCEDetector input_size = {input_size}: expected a multiple of 16")
        self.device = resolve_device(device)
        self.model: TCENet | None = model.to(self.device).eval()
        self.context = 1 if model.temporal else 0
        self.input_size = int(input_size)
        self.margin = margin
        self.person_threshold = person_threshold
        self.box_min_confidence = box_min_confidence
        self.min_box_joints = min_box_joints
        self.refine_passes = max(1, int(refine_passes))
        self.max_shrink = max_shrink
        self._boxes: list[FloatArray | None] = []

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device | None = "auto", **kwargs) -> TCEDetector:
        """Load a ``posestudio.tce/1`` checkpoint (its ``input_size`` unless given in ``kwargs``)."""
        model, ck = load_tce(path, device)
        kwargs.setdefault("input_size", int(ck.get("input_size") or 128))
        return cls(model, device=device, **kwargs)

    def reset(self, n_views: int) -> None:
        self._boxes = [None] * int(n_views)

    def set_boxes(self, view: int, box: FloatArray | None) -> None:
        """Give view ``view`` a box ``(cx, cy, size)`` (full-frame pixels) to start from, or None to search."""
        if not 0 <= view < len(self._boxes):
            raise IndexError(f"view {view}: this take has {len(self._boxes)} views (call reset(n_views) first)")
        if box is None:
            self._boxes[view] = None
            return
        b = np.asarray(box, dtype=np.float64).reshape(-1)
        if b.shape != (3,) or not np.isfinite(b).all() or b[2] <= 0:
            raise ValueError(f"box for view {view}: expected finite (cx, cy, size > 0), got {box}")
        self._boxes[view] = b

    def boxes(self) -> list[FloatArray | None]:
        """Each view's current box ``(cx, cy, size)`` in full-frame pixels (None: searching)."""
        return [None if b is None else b.copy() for b in self._boxes]

    def _frames(self, window: FrameWindow, view: int) -> list[Image]:
        """The frames the network reads for ``view``: ``[t-1, t, t+1]`` (or ``[t]``), ``t`` for missing ones."""
        centre = window.centre(view)
        if self.context == 0:
            return [centre]
        out = []
        for k in (-1, 0, 1):
            i = window.context + k
            f = window.frames[view][i] if 0 <= i < len(window.frames[view]) else None
            out.append(centre if f is None else f)
        return out

    @torch.no_grad()
    def _infer(self, window: FrameWindow, views: list[int], boxes: list[FloatArray]) -> FloatArray:
        """One batched pass: ``(len(views), 17, 3)`` keypoints in full-frame pixels (NaN outside the frame)."""
        s = self.input_size
        crops = np.stack([warp_crops(self._frames(window, v), b, s) for v, b in zip(views, boxes)])  # (V,T,S,S,3)
        x = torch.from_numpy(np.ascontiguousarray(bgr_to_tensor_layout(crops))).to(self.device)
        if self.context == 0:
            x = x[:, 0]
        kp = decode_heatmaps(self.model(x), TCENet.stride).double().cpu().numpy()  # (V, J, 3) crop pixels
        full = keypoints_from_crop(kp, np.stack(boxes), s)
        for i, v in enumerate(views):
            h, w = window.centre(v).shape[:2]
            out = ~((full[i, :, 0] >= -0.5) & (full[i, :, 0] <= w - 0.5) & (full[i, :, 1] >= -0.5)
                    & (full[i, :, 1] <= h - 0.5))
            full[i, out] = np.nan
        return full

    def _next_box(self, kp: FloatArray, old: FloatArray | None) -> FloatArray | None:
        box = box_from_keypoints(kp, self.margin, self.box_min_confidence, self.min_box_joints)
        if not np.isfinite(box).all():
            return old
        if old is not None:
            box[2] = max(box[2], self.max_shrink * old[2])
        return box

    def detect(self, window: FrameWindow) -> list[FloatArray]:
        if self.model is None:
            raise RuntimeError("TCEDetector: closed")
        n = window.n_views
        if len(self._boxes) != n:
            self.reset(n)
        empty = np.zeros((0, H36M17.n_joints, 3))
        results: list[FloatArray] = [empty] * n
        # whole-frame search for the views without a box
        search = [v for v in range(n) if self._boxes[v] is None]
        passes = {v: 1 for v in range(n)}
        if search:
            fb = [frame_box(window.centre(v).shape[1], window.centre(v).shape[0]) for v in search]
            coarse = self._infer(window, search, fb)
            for i, v in enumerate(search):
                if np.nanmax(np.nan_to_num(coarse[i, :, 2], nan=0.0)) >= self.person_threshold:
                    self._boxes[v] = self._next_box(coarse[i], None)
                    passes[v] = self.refine_passes
        # crop passes (all tracked views in one batch; newly found ones re-centred up to refine_passes times)
        for p in range(max(passes.values())):
            views = [v for v in range(n) if self._boxes[v] is not None and passes[v] > p]
            if not views:
                break
            kp = self._infer(window, views, [self._boxes[v] for v in views])
            for i, v in enumerate(views):
                conf = np.nan_to_num(kp[i, :, 2], nan=0.0)
                if conf.max() < self.person_threshold:
                    self._boxes[v] = None
                    results[v] = empty
                    passes[v] = 0
                    continue
                results[v] = kp[i][None]
                self._boxes[v] = self._next_box(kp[i], self._boxes[v])
        return results

    def close(self) -> None:
        self.model = None
