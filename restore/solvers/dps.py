"""DPS, diffusion posterior sampling (Chung et al., ICLR 2023), the sampling baseline.

Ancestral DDPM steps (strided when ``steps < T``); at each, the measurement
norm ``||y_z - A x0_hat(x_t)||`` (prior units: twice the [0, 1] residual) is
differentiated with respect to ``x_t`` *through the network*, and
``x_{t_prev} = sample - zeta * grad``.  ``zeta = 1`` is the paper's step for
Gaussian noise.  One network forward and backward per step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Solver, from_prior, image_shape, posterior_step, randn_like, register_solver, reject_blind, residual


@register_solver("dps")
@dataclass
class DPS(Solver):
    """DPS.

    Args:
        steps: reverse steps (1000 = the paper's).
        zeta: step size on the measurement norm (prior units).
    """

    steps: int = 1000
    zeta: float = 1.0

    def __call__(self, y, A, prior, *, sigma=0.0, generator=None):
        self.validate()
        reject_blind(A, "dps")
        shape = image_shape(A, y)
        ts = prior.schedule.timesteps(self.steps)
        x = randn_like(torch.empty(shape, dtype=y.dtype, device=y.device), generator)
        for i, t in enumerate(ts):
            t_prev = ts[i + 1] if i + 1 < len(ts) else -1
            x = x.detach().requires_grad_(True)
            x0 = prior.x0(x, t)
            norms = (2 * residual(A, x0, y)).flatten(1).norm(dim=1)
            (grad,) = torch.autograd.grad(norms.sum(), x)
            with torch.no_grad():
                mu, std = posterior_step(prior, x, x0.clamp(-1, 1), t, t_prev)
                x = mu - self.zeta * grad
                if t_prev >= 0:
                    x = x + std * randn_like(x, generator)
        return from_prior(x.detach()).clamp(0, 1)
