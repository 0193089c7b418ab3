"""Variance-stabilising transforms: the generalised Anscombe transform (GAT).

Model (image units): ``y = gain * p + n`` with ``p ~ Poisson(x / gain)`` and
``n ~ N(mu, sigma^2)``, so ``E[y] = x + mu`` and ``Var[y] = gain*x + sigma^2``.

* :func:`gat` maps ``y`` to ``f`` whose noise std is ~1 (Starck & Murtagh;
  Makitalo & Foi 2013):
  ``f = (2/gain) * sqrt(max(gain*y + 3/8 gain^2 + sigma^2 - gain*mu, 0))``.
* :func:`gat_inverse` is the closed-form approximation of the *exact unbiased*
  inverse (Makitalo & Foi, IEEE TIP 2011 and 2013): with ``D`` the denoised
  ``f`` (an estimate of ``E[f | x]``) and ``s = sigma / gain``,
  ``I(D) = D^2/4 + sqrt(3/2)/4 D^-1 - 11/8 D^-2 + 5/8 sqrt(3/2) D^-3 - 1/8 - s^2``,
  clipped at 0, then ``x = gain * I + mu``.  The algebraic inverse
  (``exact=False``, ``D^2/4 - 3/8 - s^2``) is biased at low counts.

For a Gaussian denoiser trained on [0, 1] images, :func:`to_unit_domain`
rescales ``f`` by ``sqrt(gain)/2`` (so a pure-Poisson image maps to
``~sqrt(y)`` in [0, 1]) and returns the noise std there, ``sqrt(gain)/2``.
All functions are element-wise on tensors of any shape; ``gain``, ``sigma``,
``mu`` are floats or tensors broadcastable to ``y``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

_C = math.sqrt(1.5)


def gat(y: Tensor, gain, sigma=0.0, mu=0.0) -> Tensor:
    """Generalised Anscombe transform of ``y``; output noise std ~= 1."""
    arg = gain * y + 0.375 * gain**2 + sigma**2 - gain * mu
    return (2.0 / gain) * torch.sqrt(torch.clamp(arg, min=0.0))


def gat_inverse(D: Tensor, gain, sigma=0.0, mu=0.0, *, exact: bool = True) -> Tensor:
    """Inverse of :func:`gat` applied to a denoised ``D``; ``exact`` selects the
    closed-form exact unbiased inverse (default) over the algebraic one."""
    s2 = (sigma / gain) ** 2
    if exact:
        # The closed form is accurate for D >= ~0.8 (counts >= ~0); below, the
        # exact inverse is ~0 and the series diverges, so D is floored there.
        d = torch.clamp(D, min=0.8)
        inv = 0.25 * d**2 + 0.25 * _C / d - 1.375 / d**2 + 0.625 * _C / d**3 - 0.125 - s2
        inv = torch.where(D < 0.8, torch.zeros_like(inv), inv)
    else:
        inv = 0.25 * D**2 - 0.375 - s2
    return gain * torch.clamp(inv, min=0.0) + mu


def to_unit_domain(f: Tensor, gain) -> tuple[Tensor, float | Tensor]:
    """``(t, sigma_t)``: ``f`` scaled by ``sqrt(gain)/2`` into ~[0, 1] and its noise std."""
    scale = (gain**0.5 if isinstance(gain, Tensor) else math.sqrt(gain)) / 2.0
    return f * scale, scale


def from_unit_domain(t: Tensor, gain) -> Tensor:
    """Inverse of :func:`to_unit_domain`."""
    scale = (gain**0.5 if isinstance(gain, Tensor) else math.sqrt(gain)) / 2.0
    return t / scale


def through_gat(denoise_fn, y: Tensor, gain: float, sigma: float = 0.0) -> Tensor:
    """Denoise Poisson(-Gaussian) ``y`` with a Gaussian denoiser: GAT, :func:`to_unit_domain`,
    ``denoise_fn(t, sigma_t)`` (white Gaussian noise of std ``sigma_t`` on ~[0, 1] data),
    back, and the exact unbiased inverse.  Returns the estimate in ``y``'s units (not clipped)."""
    t, s_t = to_unit_domain(gat(y, gain, sigma), gain)
    return gat_inverse(from_unit_domain(denoise_fn(t, s_t), gain), gain, sigma)


def gat_expected(x: Tensor, gain, sigma=0.0, mu=0.0, *, iters: int = 60) -> Tensor:
    """The ``D`` that :func:`gat_inverse` (exact) maps to ``x``: ``E[gat(y) | x]`` as the closed-form
    exact unbiased inverse models it.  Solved by bisection (the inverse is increasing in ``D``);
    a denoiser trained to output this from ``gat(y)`` is matched to the exact inverse."""
    x = torch.as_tensor(x, dtype=torch.float64)
    lo = torch.full_like(x, 0.8)
    hi = torch.full_like(x, 0.0) + gat(x.clamp(min=0), gain, sigma, mu).max() + 4.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        below = gat_inverse(mid, gain, sigma, mu) <= x  # where the inverse clips at 0: the top of that range
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return 0.5 * (lo + hi)
