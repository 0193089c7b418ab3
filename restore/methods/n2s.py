"""Noise2Score (Kim & Ye, NeurIPS 2021) for Gaussian noise.

An amortised residual denoising auto-encoder (AR-DAE) learns the score of the
*noisy* marginal, l'(y) = grad log p(y); Tweedie's formula then gives the
posterior mean x_hat = y + sigma^2 * l'(y).

Parametrisation: the network's residual head r(y, sigma) is read as
l'(y) = -r / sigma^2, so ``net(y, sigma) = y - r`` *is* the Tweedie estimate
and inference is one forward pass.  AR-DAE loss, per pixel:

    u ~ N(0, I),  y_a = y + sigma_a*u,  L = || u + sigma_a * l'(y_a) ||^2

with sigma_a = ratio * sigma and ``ratio`` annealed geometrically from
``ratio_max`` to ``ratio_min`` over the whole run (globally, not restarted
per epoch as in the official code's quirk).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Method, register


@register("n2s")
@dataclass
class Noise2Score(Method):
    ratio_max: float = 0.5
    ratio_min: float = 0.05

    def params(self) -> dict:
        return {"ratio_max": self.ratio_max, "ratio_min": self.ratio_min}

    def sigma_a_ratio(self, progress: float) -> float:
        p = min(max(progress, 0.0), 1.0)
        return self.ratio_max * (self.ratio_min / self.ratio_max) ** p

    def loss(self, net, batch, *, progress=0.0, generator=None):
        y, sigma = batch["noisy"], batch["sigma"]
        s = sigma.reshape(-1, 1, 1, 1)
        sigma_a = self.sigma_a_ratio(progress) * s
        u = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        y_a = y + sigma_a * u
        score = -(y_a - net(y_a, sigma)) / s**2  # l'(y_a) = -r / sigma^2
        return torch.mean((u + sigma_a * score) ** 2)
