"""Blind-spot UNet of Laine, Karras, Lehtinen & Aila (NeurIPS 2019), "High-Quality
Self-Supervised Deep Image Denoising".

Each output pixel is computed from every input pixel *except itself*, so the
network can be trained on noisy images alone (the noisy centre pixel is then
an independent observation; see :mod:`restore.methods.laine19`).

How the blind spot is built:

* **Half-plane branch.**  A UNet whose every layer only looks *up*: a ``k x k``
  conv pads ``k - 1`` rows at the top and none at the bottom (the paper's
  "pad ``k//2`` rows on top, crop ``k//2`` at the bottom" around a 'same'
  conv), and ``k//2`` columns on both sides; every 2x2 max-pool is preceded
  by a 1-row down-shift (pad 1 row at the top, drop the last row); up-sampling
  is nearest x2.  Output row ``i`` then depends on input rows ``<= i`` only.
  A final 1-row down-shift makes it rows ``< i``: the upper half-plane
  without the centre row.
* **Four rotations.**  The input is rotated by 0/90/180/270 degrees, the
  copies share the branch, the results are rotated back (four half-planes:
  above, left, below, right), concatenated on channels and fused by 1x1 convs
  (``nin_a``, ``nin_b``, ``nin_c``).  Their union is everything but the centre.

Shapes: input ``(N, C, H, W)`` with ``H`` and ``W`` multiples of
:attr:`BlindSpotUNet.multiple`; output ``(N, out_channels, H, W)``.  Units are
those of the input (``[0, 1]`` intensity); the network is not told the noise
level.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from .registry import register_arch


def _shift_down(x: torch.Tensor) -> torch.Tensor:
    """Move ``x`` (N, C, H, W) down by one row: zero row on top, last row dropped."""
    return F.pad(x, (0, 0, 1, 0))[..., :-1, :]


class HalfPlaneConv(nn.Conv2d):
    """``k x k`` conv (odd ``k``) whose output row ``i`` sees input rows ``i-k+1 .. i``.

    Zero padding: ``k - 1`` rows on top, ``k // 2`` columns left and right;
    output size = input size.
    """

    def __init__(self, c_in: int, c_out: int, k: int = 3):
        if k % 2 != 1:
            raise ValueError(f"kernel size must be odd, got {k}")
        super().__init__(c_in, c_out, k, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size[0]
        return super().forward(F.pad(x, (k // 2, k // 2, k - 1, 0)))


class _HalfPlaneUNet(nn.Module):
    """The shared branch: Noise2Noise-style UNet with half-plane receptive field.

    Encoder: 2 convs of ``width`` at full resolution, then ``levels`` times
    (shift, max-pool, conv); decoder: ``levels`` times (nearest x2, concat the
    skip, 2 convs of ``dec_width``).  The skips are the input and the pooled
    maps of levels ``1 .. levels-1`` (for ``levels=5``: the paper's
    enc_conv0-6 / dec_conv5a-1b).  Output ``(N, dec_width, H, W)``, *not* yet
    shifted.
    """

    def __init__(self, channels: int, width: int, dec_width: int, levels: int):
        super().__init__()
        self.levels = levels
        self.enc = nn.ModuleList([HalfPlaneConv(channels, width), HalfPlaneConv(width, width)])
        self.enc.extend(HalfPlaneConv(width, width) for _ in range(levels))  # after pools 1..levels
        skip_ch = [channels] + [width] * (levels - 1)  # pool0 (the input) .. pool_{levels-1}
        self.dec = nn.ModuleList()
        c = width
        for lvl in reversed(range(levels)):
            self.dec.append(nn.ModuleList([HalfPlaneConv(c + skip_ch[lvl], dec_width),
                                           HalfPlaneConv(dec_width, dec_width)]))
            c = dec_width
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = self.act
        skips = [x]
        h = act(self.enc[1](act(self.enc[0](x))))
        for lvl in range(1, self.levels + 1):
            h = F.max_pool2d(_shift_down(h), 2)
            if lvl < self.levels:
                skips.append(h)
            h = act(self.enc[lvl + 1](h))
        for conv_a, conv_b in self.dec:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = torch.cat([h, skips.pop()], dim=1)
            h = act(conv_b(act(conv_a(h))))
        return h


@register_arch
class BlindSpotUNet(nn.Module):
    """Four-rotation blind-spot UNet (Laine et al. 2019).

    Args:
        channels: input image channels ``C`` (1 grey, 3 colour).
        out_channels: output components per pixel (default ``C``); the
            Bayesian method uses ``C + C(C+1)/2`` (prior mean and covariance
            factor).
        width: encoder features (paper: 48).
        levels: number of 2x2 poolings (paper: 5); ``H``, ``W`` must be
            multiples of ``2**levels``.
        dec_width: decoder features (default ``2 * width``; paper: 96).  The
            fusion uses ``nin_a``: ``4 dec_width -> 4 dec_width``, ``nin_b``:
            ``4 dec_width -> dec_width``, ``nin_c``: ``dec_width -> out_channels``.
        noise_param: if True the module also holds one free scalar parameter
            ``noise_param`` (shape ``(1,)``, init 0) that ``forward`` never
            reads: the Laine et al. "global" learned noise level, kept here so
            it is saved and loaded with the weights.

    Weights: He-normal (gain sqrt 2) with zero bias; ``nin_c`` gain 1.
    """

    def __init__(self, channels: int = 1, out_channels: int | None = None, width: int = 48, levels: int = 5,
                 dec_width: int | None = None, noise_param: bool = False):
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.channels = int(channels)
        self.out_channels = int(out_channels) if out_channels is not None else self.channels
        self.width = int(width)
        self.levels = int(levels)
        self.dec_width = int(dec_width) if dec_width is not None else 2 * self.width
        self.branch = _HalfPlaneUNet(self.channels, self.width, self.dec_width, self.levels)
        d = self.dec_width
        self.nin_a = nn.Conv2d(4 * d, 4 * d, 1)
        self.nin_b = nn.Conv2d(4 * d, d, 1)
        self.nin_c = nn.Conv2d(d, self.out_channels, 1)
        self.act = nn.LeakyReLU(0.1)
        if noise_param:
            self.noise_param = nn.Parameter(torch.zeros(1))
        else:
            self.noise_param = None
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                gain = 1.0 if m is self.nin_c else math.sqrt(2.0)
                nn.init.normal_(m.weight, 0.0, gain / math.sqrt(fan_in))
                nn.init.zeros_(m.bias)

    @property
    def multiple(self) -> int:
        """Required multiple of ``H`` and ``W``: one factor 2 per pooling."""
        return 2 ** self.levels

    def config(self) -> dict:
        return {"arch": "BlindSpotUNet", "channels": self.channels, "out_channels": self.out_channels,
                "width": self.width, "levels": self.levels, "dec_width": self.dec_width,
                "noise_param": self.noise_param is not None}

    def _branches(self, y: torch.Tensor) -> list[torch.Tensor]:
        """The four half-plane feature maps, rotated back: each ``(N, dec_width, H, W)``."""
        rots = [torch.rot90(y, k, dims=(-2, -1)) for k in range(4)]
        if y.shape[-2] == y.shape[-1]:  # square: one batched pass through the shared branch
            feats = _shift_down(self.branch(torch.cat(rots, dim=0))).chunk(4, dim=0)
        else:  # rotated copies differ in shape: one pass each (same weights, same result)
            feats = [_shift_down(self.branch(r)) for r in rots]
        return [torch.rot90(f, -k, dims=(-2, -1)) for k, f in enumerate(feats)]

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``(N, out_channels, H, W)`` from ``y`` ``(N, channels, H, W)``; output pixel
        ``(i, j)`` does not depend on any channel of input pixel ``(i, j)``."""
        m = self.multiple
        if y.shape[-2] % m or y.shape[-1] % m:
            raise ValueError(f"H and W must be multiples of {m}, got {tuple(y.shape[-2:])}")
        h = torch.cat(self._branches(y), dim=1)
        h = self.act(self.nin_b(self.act(self.nin_a(h))))
        return self.nin_c(h)
