"""A compact, noise-level-conditioned UNet built for CPU speed.

The input image is folded by a pixel-unshuffle (factor 2) so the first level
already works at half resolution; the noise level enters as one extra
constant input plane (FFDNet style).  The network predicts the residual
(the noise), and returns ``x_hat = y - residual`` in ``mode="image"`` or the
raw head output in ``mode="raw"`` (used for score networks).

Shapes: ``y`` is ``(N, C, H, W)`` float32 with ``H`` and ``W`` multiples of
:attr:`CompactUNet.multiple`; ``sigma`` is ``(N,)`` (or a scalar), in the same
units as ``y`` (``[0, 1]`` intensity for display-referred images).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
import torch.nn.functional as F

from .registry import register_arch


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)


class _Block(nn.Sequential):
    """``depth`` conv3x3 + ReLU layers at one resolution."""

    def __init__(self, c_in: int, c_out: int, depth: int):
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [_conv(c_in if i == 0 else c_out, c_out), nn.ReLU(inplace=True)]
        super().__init__(*layers)


def unet_trunk(h: torch.Tensor, down, enc, up, dec) -> torch.Tensor:
    """Encoder-decoder with additive skips (shared by the pixel-unshuffle UNets): ``h`` is the head's
    output; ``down``/``enc`` go one level down each, ``up``/``dec`` back (same number of levels)."""
    skips = [h]
    for d, e in zip(down, enc):
        h = e(d(h))
        skips.append(h)
    skips.pop()
    for u, c in zip(reversed(up), reversed(dec)):
        h = c(u(h) + skips.pop())
    return h


@register_arch
class CompactUNet(nn.Module):
    """Pixel-unshuffle UNet with additive skips and a noise-level input plane.

    Args:
        channels: image channels ``C`` (1 grey, 3 colour).
        widths: feature widths per level, e.g. ``(32, 64, 128)``; level 0 runs
            at half resolution, each further level halves again.
        depth: conv layers per block.
        cond: if True, a constant plane holding ``sigma`` is appended to the
            input (noise-level conditioning).
        sigma_scale: the plane holds ``sigma * sigma_scale`` (keeps it O(1)).
        cond_dim: number of conditioning planes; with ``cond_dim > 1``,
            ``sigma`` is ``(N, cond_dim)`` (e.g. a noise parameter and the
            AR-DAE perturbation level).
    """

    def __init__(
        self,
        channels: int = 1,
        widths: Sequence[int] = (32, 64, 128),
        depth: int = 2,
        cond: bool = True,
        sigma_scale: float = 10.0,
        cond_dim: int = 1,
    ):
        super().__init__()
        self.channels = channels
        self.widths = tuple(int(w) for w in widths)
        self.depth = depth
        self.cond = cond
        self.sigma_scale = sigma_scale
        self.cond_dim = int(cond_dim) if cond else 0
        c0 = channels * 4 + self.cond_dim
        self.head = _Block(c0, self.widths[0], depth)
        self.down = nn.ModuleList(
            nn.Conv2d(a, b, 2, stride=2) for a, b in zip(self.widths[:-1], self.widths[1:])
        )
        self.enc = nn.ModuleList(_Block(w, w, depth) for w in self.widths[1:])
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(self.widths[:-1], self.widths[1:])
        )
        self.dec = nn.ModuleList(_Block(w, w, depth) for w in self.widths[:-1])
        self.tail = nn.Conv2d(self.widths[0], channels * 4, 3, padding=1)

    @property
    def multiple(self) -> int:
        """Required multiple of H and W: 2 (unshuffle) x 2 per down level."""
        return 2 ** len(self.widths)

    def config(self) -> dict:
        return {
            "arch": "CompactUNet",
            "channels": self.channels,
            "widths": list(self.widths),
            "depth": self.depth,
            "cond": self.cond,
            "sigma_scale": self.sigma_scale,
            **({"cond_dim": self.cond_dim} if self.cond_dim > 1 else {}),
        }

    def features(self, y: torch.Tensor, sigma: torch.Tensor | float | None) -> torch.Tensor:
        """Head output ``(N, C, H, W)`` before the residual connection."""
        z = F.pixel_unshuffle(y, 2)
        if self.cond:
            if sigma is None:
                raise ValueError("this network is noise-level conditioned: pass sigma")
            s = (sigma if isinstance(sigma, torch.Tensor) else y.new_tensor(sigma)).reshape(-1, self.cond_dim, 1, 1)
            plane = (s * self.sigma_scale).expand(y.shape[0], self.cond_dim, *z.shape[-2:])
            z = torch.cat([z, plane], dim=1)
        h = unet_trunk(self.head(z), self.down, self.enc, self.up, self.dec)
        return F.pixel_shuffle(self.tail(h), 2)

    def forward(self, y: torch.Tensor, sigma: torch.Tensor | float | None = None) -> torch.Tensor:
        """Denoised estimate ``y - residual``, shape of ``y``."""
        return y - self.features(y, sigma)
