"""Noise2Void (Krull, Buchholz & Jug, CVPR 2019): blind-spot masking.

A random ``mask_ratio`` of the pixels of each patch is replaced by a random
neighbour from the surrounding ``radius``-window (the centre excluded: N2V's
``uniform_withCP`` without the centre), and the network is trained to predict
the *original noisy* values there, loss on the masked pixels only.  For noise
that is pixel-wise independent and zero-mean given the signal, the minimiser
is E[x | neighbourhood].  Needs no noise model or level (the network is not
conditioned: ``cond: false``), so it serves any family as a baseline.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from restore.nets import CompactUNet

from .base import Method, register


@register("n2v")
@dataclass
class Noise2Void(Method):
    mask_ratio: float = 0.02
    radius: int = 2
    noise: str = "any"
    net_config: dict = field(default_factory=lambda: {"widths": [32, 64, 128, 256], "depth": 2, "cond": False})

    def params(self) -> dict:
        return {"mask_ratio": self.mask_ratio, "radius": self.radius, "noise": self.noise}

    def build_net(self, channels: int):
        return CompactUNet(channels=channels, **{**self.net_config, "cond": False})

    def prepare(self, dataset) -> None:
        self.noise = getattr(dataset, "noise", "gaussian")

    def restore(self, net, y, sigma):
        return net(y, None)

    def mask(self, y: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y_masked, mask)``: ``mask`` (N, 1, H, W) bool of replaced pixels."""
        n, c, h, w = y.shape
        kw = dict(generator=generator, device=y.device)
        m = torch.rand(n, 1, h, w, **kw) < self.mask_ratio
        r = self.radius
        dy = torch.randint(-r, r + 1, (n, 1, h, w), **kw)
        dx = torch.randint(-r, r + 1, (n, 1, h, w), **kw)
        centre = (dy == 0) & (dx == 0)
        dx = torch.where(centre, torch.ones_like(dx), dx)  # never the pixel itself
        ii = (torch.arange(h, device=y.device).view(1, 1, h, 1) + dy).clamp(0, h - 1)
        jj = (torch.arange(w, device=y.device).view(1, 1, 1, w) + dx).clamp(0, w - 1)
        flat = (ii * w + jj).expand(n, c, h, w).reshape(n, c, -1)
        neighbour = torch.gather(y.reshape(n, c, -1), 2, flat).reshape(n, c, h, w)
        return torch.where(m, neighbour, y), m

    def loss(self, net, batch, *, progress=0.0, generator=None):
        y = batch["noisy"]
        y_in, m = self.mask(y, generator)
        err = (net(y_in, None) - y) ** 2 * m
        return err.sum() / (m.sum() * y.shape[1]).clamp(min=1)
