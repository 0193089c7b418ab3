"""DBSNl: the dilated blind-spot network of AP-BSN (Lee et al., CVPR 2022), with the
switchable centre mask of C-BSN (Jang et al., ICCV 2023).

Two branches see the input through a *centrally masked* convolution (3x3 and
5x5, centre tap zero), then only through convolutions dilated by 2 and 3:
every offset a branch can reach has a coordinate ``m + d k`` with ``0 < |m| < d``,
never zero, so the output at a pixel does not depend on the input at that
pixel (a blind spot).  With ``masked=False`` the same weights run with the
centre taps on (C-BSN's non-blind inference).

Widths are configurable: the paper's network (``base=128, modules=9``,
3.66 M parameters) costs ~6 GMAC per megapixel-channel on a CPU; ``base=48,
modules=3`` is ~10x cheaper.  The network runs at full resolution and
accepts any ``H, W``.  Shapes: ``(N, C, H, W)`` in, ``(N, out_channels, H, W)`` out.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .registry import register_arch


class CentralMaskedConv2d(nn.Conv2d):
    """A ``k x k`` convolution (odd ``k``, 'same' padding) whose centre tap is zero when
    ``masked``.  The mask is applied to a copy of the weight at each call (the parameter
    itself is never modified)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int):
        if kernel_size % 2 == 0:
            raise ValueError("the centre tap needs an odd kernel size")
        super().__init__(c_in, c_out, kernel_size, padding=kernel_size // 2)
        mask = torch.ones(1, 1, kernel_size, kernel_size)
        mask[..., kernel_size // 2, kernel_size // 2] = 0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor, masked: bool = True) -> torch.Tensor:
        w = self.weight * self.mask if masked else self.weight
        return F.conv2d(x, w, self.bias, padding=self.padding)


class _DC(nn.Module):
    """Residual module: 3x3 conv dilated by ``d`` -> ReLU -> 1x1, plus identity."""

    def __init__(self, c: int, d: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=d, dilation=d), nn.ReLU(inplace=True),
                                  nn.Conv2d(c, c, 1))

    def forward(self, x):
        return x + self.body(x)


class _Branch(nn.Module):
    def __init__(self, c: int, d: int, modules: int):
        super().__init__()
        self.masked_conv = CentralMaskedConv2d(c, c, 2 * d - 1)
        self.body = nn.Sequential(
            nn.ReLU(inplace=True), nn.Conv2d(c, c, 1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 1),
            nn.ReLU(inplace=True), *[_DC(c, d) for _ in range(modules)], nn.Conv2d(c, c, 1), nn.ReLU(inplace=True))

    def forward(self, x, masked: bool):
        return self.body(self.masked_conv(x, masked))


@register_arch
class DBSNl(nn.Module):
    """AP-BSN's DBSNl (``base`` features, ``modules`` dilated residual modules per branch).

    ``forward(y, masked=True)``: blind (AP-BSN, training of C-BSN); ``masked=False``:
    the same weights with the centre taps on (C-BSN inference)."""

    multiple = 1

    def __init__(self, channels: int = 3, out_channels: int | None = None, base: int = 128, modules: int = 9):
        super().__init__()
        self.channels, self.out_channels = channels, out_channels or channels
        self.base, self.modules_per_branch = base, modules
        self.head = nn.Sequential(nn.Conv2d(channels, base, 1), nn.ReLU(inplace=True))
        self.branch2 = _Branch(base, 2, modules)
        self.branch3 = _Branch(base, 3, modules)
        half = base // 2
        self.tail = nn.Sequential(
            nn.Conv2d(2 * base, base, 1), nn.ReLU(inplace=True), nn.Conv2d(base, half, 1), nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 1), nn.ReLU(inplace=True), nn.Conv2d(half, self.out_channels, 1))

    def config(self) -> dict:
        return {"arch": "DBSNl", "channels": self.channels, "out_channels": self.out_channels,
                "base": self.base, "modules": self.modules_per_branch}

    def forward(self, y: torch.Tensor, masked: bool = True) -> torch.Tensor:
        h = self.head(y)
        return self.tail(torch.cat([self.branch2(h, masked), self.branch3(h, masked)], dim=1))
