"""Neighbor2Neighbor (Huang et al., CVPR 2021): neighbouring sub-images as input and target.

Every 2x2 cell gives an ordered pair of *adjacent* pixels (one of the 8
horizontal/vertical pairs, uniformly, independently per cell); the first
pixels form ``g1(y)``, the second ``g2(y)`` (each ``H/2 x W/2``).  With noise
independent between neighbours, ``g2(y)`` is a noisy target for the
denoised ``g1(y)``, whatever the noise distribution (no noise model, no
level, no bias from a wrong sigma).  The regulariser keeps the full-image
output consistent with the sub-sampled one:

``L = ||f(g1 y) - g2 y||^2 + gamma ||f(g1 y) - g2 y - (g1 f(y) - g2 f(y))||^2``,
``f(y)`` without gradient, ``gamma = gamma_max * progress`` (the paper: 2).

The network may be noise-level conditioned: ``batch["sigma"]`` is then passed
as a conditioning value only (e.g. the level a later inference will use), so a
shipped Gaussian model can be trained further on data whose noise is not
Gaussian (``restore denoise --fit`` on real photos).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from restore.blindspot import crop_to_multiple, subsample_at
from restore.nets import CompactUNet

from .base import Method, register

#: Ordered pairs of adjacent positions in a 2x2 cell (0 TL, 1 TR, 2 BL, 3 BR): no diagonals.
PAIRS = torch.tensor([[0, 1], [0, 2], [1, 3], [2, 3], [1, 0], [2, 0], [3, 1], [3, 2]])


def neighbour_pair(shape, generator: torch.Generator | None = None, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell positions ``(idx1, idx2)``, each ``(N, 1, H/2, W/2)`` int64, of a random adjacent pair
    per 2x2 cell (use with :func:`restore.blindspot.subsample_at`)."""
    n, _, h, w = shape
    k = torch.randint(0, len(PAIRS), (n, 1, h // 2, w // 2), generator=generator, device=device)
    pairs = PAIRS.to(device)[k]
    return pairs[..., 0], pairs[..., 1]


@register("nb2nb")
@dataclass
class Neighbor2Neighbor(Method):
    gamma_max: float = 2.0
    noise: str = "any"
    net_config: dict = field(default_factory=lambda: {"widths": [32, 64, 128, 256], "depth": 2, "cond": False})

    def params(self) -> dict:
        return {"gamma_max": self.gamma_max, "noise": self.noise}

    def build_net(self, channels: int):
        return CompactUNet(channels=channels, **self.net_config)

    def prepare(self, dataset) -> None:
        self.noise = getattr(dataset, "noise", "any")  # how the trained model is to be used (api routes)

    def _f(self, net, y, sigma):
        return net(y, sigma) if getattr(net, "cond", False) else net(y, None)

    def restore(self, net, y, sigma):
        return self._f(net, y, sigma)

    def loss(self, net, batch, *, progress=0.0, generator=None):
        mult = 2 * int(getattr(net, "multiple", 1))
        y = crop_to_multiple(batch["noisy"], mult)
        sigma = batch.get("sigma")
        i1, i2 = neighbour_pair(y.shape, generator, y.device)
        g1, g2 = subsample_at(y, i1, 2), subsample_at(y, i2, 2)
        out = self._f(net, g1, sigma)
        with torch.no_grad():
            fy = self._f(net, y, sigma)
            gap = subsample_at(fy, i1, 2) - subsample_at(fy, i2, 2)
        gamma = self.gamma_max * progress
        return ((out - g2) ** 2).mean() + gamma * ((out - g2 - gap) ** 2).mean()
