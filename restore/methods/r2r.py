"""Recorrupted-to-Recorrupted (Pang et al., CVPR 2021), Gaussian noise.

For y = x + sigma*n and an independent z ~ N(0, I):

    input  y_in  = y + a*sigma*z        noise std sigma*sqrt(1 + a^2)
    target y_tgt = y - (sigma/a)*z      noise independent of the input's

so E[y_tgt | y_in] = E[x | y_in]: minimising MSE(f(y_in), y_tgt) learns the
MMSE denoiser at level sigma_in = sigma*sqrt(1 + a^2) without a clean image.
The network is conditioned on sigma_in, so at inference it is applied to y
itself with its own sigma -- as long as sigma is within the levels it was
trained on (``level_min``, the smallest sigma_in seen).  Below that (e.g. a
model trained on one fixed noise level), inference falls back to the R2R
paper's rule: the mean of f(y + a'*sigma*z_k, level_min) over ``K`` seeded
recorruptions, with a' chosen so the input reaches a trained level.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .base import Method, register


@register("r2r")
@dataclass
class R2R(Method):
    a: float = 1.0
    level_min: float = 0.0  # smallest trained input level sigma_in, [0, 1] units
    K: int = 8  # recorruptions averaged below level_min

    def params(self) -> dict:
        return {"a": self.a, "level_min": self.level_min, "K": self.K}

    def prepare(self, dataset) -> None:
        self.level_min = float(dataset.sigma_min) * math.sqrt(1 + self.a**2)

    def restore(self, net, y, sigma):
        sigma = sigma.reshape(-1)
        if bool((sigma >= 0.9 * self.level_min).all()):
            return net(y, sigma)
        # Below the trained levels: add noise to reach level_min (the recorruption
        # strength a_eff is chosen per image so sigma*sqrt(1 + a_eff^2) = level_min),
        # and average K seeded recorruptions, as the R2R paper's inference does.
        s = sigma.reshape(-1, 1, 1, 1)
        level = torch.maximum(sigma, torch.full_like(sigma, self.level_min))
        a_eff = torch.sqrt(torch.clamp((level / sigma) ** 2 - 1, min=0)).reshape(-1, 1, 1, 1)
        g = torch.Generator(device=y.device).manual_seed(0)
        acc = torch.zeros_like(y)
        for _ in range(self.K):
            z = torch.randn(y.shape, generator=g, dtype=y.dtype, device=y.device)
            acc += net(y + a_eff * s * z, level)
        return acc / self.K

    def loss(self, net, batch, *, progress=0.0, generator=None):
        y, sigma = batch["noisy"], batch["sigma"]
        s = sigma.reshape(-1, 1, 1, 1)
        z = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        y_in = y + self.a * s * z
        y_tgt = y - (s / self.a) * z
        return torch.mean((net(y_in, sigma * math.sqrt(1 + self.a**2)) - y_tgt) ** 2)
