"""Deformable convolution built on :func:`torch.nn.functional.grid_sample` (no torchvision needed).

A ``k x k`` deformable convolution with dilation ``d`` reads, for output location ``p = (y, x)`` and
kernel tap ``n = (i, j)`` (row-major, the order of a ``Conv2d`` weight's last two axes), the input
at ``p + d * (i - k // 2, j - k // 2) + offset_n(p)``, bilinearly interpolated with zeros outside
the map, and sums ``weight[:, :, i, j] @ sample`` over the taps. Coordinates are feature pixels
with pixel centres at integer positions (the ``align_corners=True`` reading of a grid); with all
offsets zero the layer is exactly ``F.conv2d(x, weight, bias, padding=d * (k // 2), dilation=d)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def tap_positions(kernel_size: int, dilation: int, device: torch.device | None = None) -> torch.Tensor:
    """``(K, 2)`` float ``(dy, dx)`` of the ``K = k * k`` taps of a dilated kernel, row-major."""
    r = (torch.arange(kernel_size, dtype=torch.float32, device=device) - kernel_size // 2) * dilation
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([dy.reshape(-1), dx.reshape(-1)], dim=1)


def deform_sample(x: torch.Tensor, offsets: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Sample ``x`` at every location's taps shifted by per-location offsets.

    Args:
        x: ``(B, C, H, W)`` feature map.
        offsets: ``(B, 2 * K, H, W)``: ``(dy, dx)`` of tap ``n`` in channels ``2n, 2n + 1``, feature
            pixels.
        taps: ``(K, 2)`` tap positions ``(dy, dx)`` relative to the location (:func:`tap_positions`).
    Returns:
        ``(B, C, K, H, W)``: the bilinear samples, zero where a sample falls outside the map.
    """
    b, c, h, w = x.shape
    k = taps.shape[0]
    if offsets.shape != (b, 2 * k, h, w):
        raise ValueError(f"offsets: expected shape {(b, 2 * k, h, w)} for {k} taps on a {h}x{w} map, "
                         f"got {tuple(offsets.shape)}")
    off = offsets.view(b, k, 2, h, w)
    ys = torch.arange(h, dtype=x.dtype, device=x.device).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=x.dtype, device=x.device).view(1, 1, 1, w)
    taps = taps.to(dtype=x.dtype, device=x.device)
    py = ys + taps[:, 0].view(1, k, 1, 1) + off[:, :, 0]  # (B, K, H, W) feature pixels
    px = xs + taps[:, 1].view(1, k, 1, 1) + off[:, :, 1]
    # pixel coordinate -> grid_sample's [-1, 1] (align_corners=False form: also valid for 1-pixel maps)
    grid = torch.stack([(2 * px + 1) / w - 1, (2 * py + 1) / h - 1], dim=-1)  # (B, K, H, W, 2)
    out = F.grid_sample(x, grid.view(b, k * h, w, 2), mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.view(b, c, k, h, w)


class DeformableConv2d(nn.Module):
    """A ``k x k`` deformable convolution (stride 1, "same" output size) with dilation ``d``.

    Weights are laid out as a ``Conv2d``'s (``weight (out_ch, in_ch, k, k)``, ``bias (out_ch,)``).
    ``forward(x, offsets)``: ``x (B, in_ch, H, W)``, ``offsets (B, 2 * k * k, H, W)`` (``dy, dx`` per
    tap, feature pixels) -> ``(B, out_ch, H, W)``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, dilation: int = 1, bias: bool = True) -> None:
        super().__init__()
        for name, value in {"in_ch": in_ch, "out_ch": out_ch, "kernel_size": kernel_size, "dilation": dilation}.items():
            if int(value) < 1:
                raise ValueError(f"DeformableConv2d {name} = {value}: expected a whole number >= 1")
        if kernel_size % 2 == 0:
            raise ValueError(f"DeformableConv2d kernel_size = {kernel_size}: expected an odd size")
        self.in_ch, self.out_ch, self.kernel_size, self.dilation = in_ch, out_ch, kernel_size, dilation
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.register_buffer("taps", tap_positions(kernel_size, dilation), persistent=False)

    @property
    def n_taps(self) -> int:
        """K = k * k."""
        return self.kernel_size * self.kernel_size

    def forward(self, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        samples = deform_sample(x, offsets, self.taps)  # (B, C, K, H, W)
        w = self.weight.view(self.out_ch, self.in_ch, self.n_taps)
        out = torch.einsum("ock,bckhw->bohw", w, samples)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out

    def extra_repr(self) -> str:
        return f"{self.in_ch}, {self.out_ch}, kernel_size={self.kernel_size}, dilation={self.dilation}"
