"""TCENet: an encoder-decoder heatmap network with a temporal consistency module (TCM).

Layout (``w`` = ``width``; sizes for a ``S x S`` input, ``S`` a multiple of 16)::

    frame (3, S, S) RGB in [0, 1]
      encoder  conv s2 -> w @ S/2 ; conv s2 -> 2w + res block @ S/4 (skip) ;
               conv s2 -> 4w + res block @ S/8 (skip) ; conv s2 -> 4w + res block @ S/16
      fuse     upsample S/16 -> S/8, 1x1 conv + S/8 skip, 3x3 conv      -> F (4w @ S/8)
      TCM      (temporal only) for each neighbour n in (t-1, t+1):
                 offsets_d = P(concat(F_t, F_n, F_t - F_n))     one (2 * 9)-channel field per dilation d
                 A_{n,d}  = DeformableConv2d_d(F_n, offsets_d)   3x3 taps at dilation d (1, 2, 4, 8)
               F_t <- F_t + fuse(concat(F_t, A_{t-1, d...}, A_{t+1, d...}))
      decoder  upsample S/8 -> S/4, 1x1 conv + S/4 skip, res block, 1x1 head -> J heatmaps @ S/4

The frames share the encoder (one pass over ``3B`` images). The offset predictor ``P`` and the
deformable convolutions are shared by both neighbours; ``P``'s last layer and the fusion's output
layer start at zero, so at initialisation the TCM adds nothing (offsets zero, output = single
frame), and a single-frame checkpoint loads into a temporal net as its starting point.
``temporal=False`` (the ablation) skips the TCM and reads frame ``t`` only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .sampler import DeformableConv2d

#: Per-channel normalisation of RGB input in [0, 1] (ImageNet statistics).
RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TCEConfig:
    """Constructor arguments of :class:`TCENet` (stored in checkpoints as ``net_config``)."""

    n_joints: int = 17
    width: int = 32
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    temporal: bool = True

    def check(self) -> None:
        """Raise ValueError naming the first argument out of range."""
        if self.n_joints < 1:
            raise ValueError(f"TCENet n_joints = {self.n_joints}: expected >= 1")
        if self.width < 4:
            raise ValueError(f"TCENet width = {self.width}: expected >= 4")
        if self.temporal and (not self.dilations or any(int(d) < 1 for d in self.dilations)):
            raise ValueError(f"TCENet dilations = {self.dilations}: expected one or more whole numbers >= 1")


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """Two 3x3 conv + BN layers with an identity shortcut (channels and size unchanged)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_bn(ch, ch), _conv_bn(ch, ch, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class TemporalConsistency(nn.Module):
    """Aligns the neighbours' features to frame ``t`` by deformable sampling at several dilations.

    ``forward(f_t (B, C, h, w), f_nb (B, N, C, h, w))`` -> ``(B, C, h, w)`` refined frame-``t``
    features. Offsets are in feature pixels (``S/8`` grid), ``(dy, dx)`` per tap.
    """

    def __init__(self, ch: int, dilations: tuple[int, ...], aligned_ch: int, hidden: int, n_neighbours: int = 2) -> None:
        super().__init__()
        self.dilations = tuple(int(d) for d in dilations)
        self.n_neighbours = n_neighbours
        n_off = 2 * 9 * len(self.dilations)
        self.offsets = nn.Sequential(
            nn.Conv2d(3 * ch, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, n_off, 3, padding=1),
        )
        nn.init.zeros_(self.offsets[-1].weight)
        nn.init.zeros_(self.offsets[-1].bias)
        self.align = nn.ModuleList(DeformableConv2d(ch, aligned_ch, 3, d) for d in self.dilations)
        n_in = ch + n_neighbours * len(self.dilations) * aligned_ch
        self.fuse = nn.Sequential(nn.Conv2d(n_in, ch, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True),
                                  nn.Conv2d(ch, ch, 1))
        nn.init.zeros_(self.fuse[-1].weight)
        nn.init.zeros_(self.fuse[-1].bias)

    def predict_offsets(self, f_t: torch.Tensor, f_nb: torch.Tensor) -> torch.Tensor:
        """``(B * N, D, 18, h, w)`` offsets per neighbour and dilation (feature pixels)."""
        b, n, c, h, w = f_nb.shape
        ft = f_t.unsqueeze(1).expand(b, n, c, h, w).reshape(b * n, c, h, w)
        fn = f_nb.reshape(b * n, c, h, w)
        return self.offsets(torch.cat([ft, fn, ft - fn], dim=1)).view(b * n, len(self.dilations), 18, h, w)

    def forward(self, f_t: torch.Tensor, f_nb: torch.Tensor) -> torch.Tensor:
        b, n, c, h, w = f_nb.shape
        off = self.predict_offsets(f_t, f_nb)
        fn = f_nb.reshape(b * n, c, h, w)
        aligned = [conv(fn, off[:, i]) for i, conv in enumerate(self.align)]  # D x (B * N, A, h, w)
        aligned_t = torch.stack(aligned, dim=1).view(b, -1, h, w)  # (B, N * D * A, h, w)
        return f_t + self.fuse(torch.cat([f_t, aligned_t], dim=1))


class TCENet(nn.Module):
    """2D pose heatmaps for frame ``t`` of a video, optionally helped by frames ``t - 1`` and ``t + 1``.

    Args:
        n_joints: heatmap channels J.
        width: base channel count ``w`` (see the module docstring); 32 gives about 1.3 M parameters.
        dilations: dilation rates of the TCM's deformable alignment (feature pixels at ``S/8``).
        temporal: False = single-frame ablation (no TCM; same encoder and decoder).

    ``forward(frames)``: ``(B, 3, 3, S, S)`` (time ``t-1, t, t+1``; RGB in [0, 1]) or ``(B, 3, S, S)``
    (frame ``t`` alone; a temporal net then uses it as its own neighbours) -> heatmaps
    ``(B, J, S/4, S/4)``. ``S`` must be a multiple of 16.
    """

    stride = 4

    def __init__(self, n_joints: int = 17, width: int = 32, dilations: tuple[int, ...] = (1, 2, 4, 8),
                 temporal: bool = True) -> None:
        super().__init__()
        self.config = TCEConfig(int(n_joints), int(width), tuple(int(d) for d in dilations), bool(temporal))
        self.config.check()
        w = self.config.width
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(RGB_STD).view(1, 3, 1, 1), persistent=False)
        self.stem = _conv_bn(3, w, stride=2)
        self.enc4 = nn.Sequential(_conv_bn(w, 2 * w, stride=2), ResBlock(2 * w))
        self.enc8 = nn.Sequential(_conv_bn(2 * w, 4 * w, stride=2), ResBlock(4 * w))
        self.enc16 = nn.Sequential(_conv_bn(4 * w, 4 * w, stride=2), ResBlock(4 * w))
        self.lat8 = nn.Conv2d(4 * w, 4 * w, 1)
        self.fuse8 = _conv_bn(4 * w, 4 * w)
        self.tcm = (TemporalConsistency(4 * w, self.config.dilations, aligned_ch=w, hidden=2 * w)
                    if self.config.temporal else None)
        self.up4 = nn.Conv2d(4 * w, 2 * w, 1)
        self.dec4 = ResBlock(2 * w)
        self.head = nn.Conv2d(2 * w, self.config.n_joints, 1)
        nn.init.normal_(self.head.weight, std=1e-3)  # start near the all-zero heatmap
        nn.init.zeros_(self.head.bias)

    @property
    def temporal(self) -> bool:
        return self.config.temporal

    @property
    def n_joints(self) -> int:
        return self.config.n_joints

    def net_config(self) -> dict:
        """Constructor arguments (JSON-able), for checkpoints."""
        d = asdict(self.config)
        d["dilations"] = list(d["dilations"])
        return d

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, 3, S, S)`` RGB in [0, 1] -> (fused features ``(N, 4w, S/8, S/8)``, skip ``(N, 2w, S/4, S/4)``)."""
        x = (x - self.mean) / self.std
        s4 = self.enc4(self.stem(x))
        s8 = self.enc8(s4)
        s16 = self.enc16(s8)
        up = F.interpolate(s16, size=s8.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse8(self.lat8(up) + s8), s4

    def decode(self, f8: torch.Tensor, s4: torch.Tensor) -> torch.Tensor:
        """Features at ``S/8`` and the ``S/4`` skip -> ``(N, J, S/4, S/4)`` heatmaps."""
        up = F.interpolate(self.up4(f8), size=s4.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(self.dec4(up + s4))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() == 4:
            f8, s4 = self.encode(frames)
            if self.temporal:  # the frame is its own neighbour (one encoder pass)
                f8 = self.tcm(f8, f8.unsqueeze(1).expand(-1, 2, -1, -1, -1))
            return self.decode(f8, s4)
        if frames.dim() != 5 or frames.shape[1] != 3 or frames.shape[2] != 3:
            raise ValueError(f"frames: expected (B, 3, 3, S, S) or (B, 3, S, S), got {tuple(frames.shape)}")
        s = frames.shape[-2:]
        if s[0] % 16 or s[1] % 16:
            raise ValueError(f"frames: input size {tuple(s)} must be a multiple of 16")
        if not self.temporal:
            f8, s4 = self.encode(frames[:, 1])
            return self.decode(f8, s4)
        b = frames.shape[0]
        f8, s4 = self.encode(frames.reshape(b * 3, *frames.shape[2:]))
        f8 = f8.view(b, 3, *f8.shape[1:])
        s4 = s4.view(b, 3, *s4.shape[1:])[:, 1]
        return self.decode(self.tcm(f8[:, 1], f8[:, 0::2]), s4)
