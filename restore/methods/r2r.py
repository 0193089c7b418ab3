"""Recorrupted-to-Recorrupted (Pang et al., CVPR 2021), Gaussian noise.

For y = x + sigma*n and an independent z ~ N(0, I):

    input  y_in  = y + a*sigma*z        noise std sigma*sqrt(1 + a^2)
    target y_tgt = y - (sigma/a)*z      noise independent of the input's

so E[y_tgt | y_in] = E[x | y_in]: minimising MSE(f(y_in), y_tgt) learns the
MMSE denoiser at level sigma_in = sigma*sqrt(1 + a^2) without a clean image.
The network is conditioned on sigma_in, so at inference it is applied to y
itself with its own sigma (no recorruption averaging needed).
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

    def params(self) -> dict:
        return {"a": self.a}

    def loss(self, net, batch, *, progress=0.0, generator=None):
        y, sigma = batch["noisy"], batch["sigma"]
        s = sigma.reshape(-1, 1, 1, 1)
        z = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        y_in = y + self.a * s * z
        y_tgt = y - (s / self.a) * z
        return torch.mean((net(y_in, sigma * math.sqrt(1 + self.a**2)) - y_tgt) ** 2)
