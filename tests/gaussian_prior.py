"""A Gaussian image prior whose diffusion score is exact, and its analytic posterior (test helper).

``x0 ~ N(m, S)`` in the prior's [-1, 1] units on (1, C, H, W) images; then
``x_t ~ N(sqrt(abar) m, abar S + (1 - abar) I)`` and the exact epsilon
predictor is ``sqrt(1 - abar) C_t^{-1} (x_t - sqrt(abar) m)``.  For a linear
``A`` and ``y = A(x) + N(0, sigma^2)`` in [0, 1] units the posterior of ``z``
is Gaussian with mean ``m + S A^T (A S A^T + (2 sigma)^2 I)^{-1} (y_z - A m)``.
"""
from __future__ import annotations

import torch

from restore.diffusion import DDPMSchedule, DiffusionPrior


def gaussian_prior(shape=(1, 4, 4), seed: int = 0):
    """(prior, m (D,), S (D, D)) with a smooth covariance (float64 maths, float32 prior)."""
    g = torch.Generator().manual_seed(seed)
    c, h, w = shape
    d = c * h * w
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pos = torch.stack([yy.flatten(), xx.flatten()], 1).double().repeat(c, 1)
    dist2 = ((pos[:, None] - pos[None]) ** 2).sum(-1)
    S = 0.02 * torch.exp(-dist2 / 4.0) + 0.003 * torch.eye(d, dtype=torch.float64)
    m = 0.15 * torch.randn(d, generator=g, dtype=torch.float64)
    sched = DDPMSchedule()
    ab = sched.alpha_bar
    eye = torch.eye(d, dtype=torch.float64)
    inv = torch.stack([torch.linalg.inv(a * S + (1 - a) * eye) for a in ab])  # (T, D, D)

    def eps(x_t, t):
        flat = x_t.double().reshape(x_t.shape[0], -1)
        a = ab[t].reshape(-1, 1)
        r = flat - a.sqrt() * m
        out = (1 - a).sqrt() * torch.einsum("nij,nj->ni", inv[t], r)
        return out.reshape(x_t.shape).to(x_t.dtype)

    return DiffusionPrior(eps, channels=c, schedule=sched), m, S


def posterior_mean(A, y, sigma, m, S, shape):
    """Analytic posterior mean of ``z`` (D,) given ``y`` (1, ...) in [0, 1] units."""
    d = m.numel()
    cols = torch.eye(d, dtype=torch.float64).reshape(d, *shape)
    Amat = A(cols).reshape(d, -1).T  # (M, D)
    ones = A(torch.ones(1, *shape, dtype=torch.float64)).flatten()
    yz = 2 * y.double().flatten() - ones
    G = Amat @ S @ Amat.T + (2 * sigma) ** 2 * torch.eye(Amat.shape[0], dtype=torch.float64)
    return m + S @ Amat.T @ torch.linalg.solve(G, yz - Amat @ m)
