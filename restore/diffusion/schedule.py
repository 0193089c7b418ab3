"""The DDPM noise schedule and the timestep grids the solvers walk.

``abar_t`` (alpha-bar) for t = 0..T-1 from a linear beta schedule (Ho et al.
2020: 1e-4 .. 0.02, T = 1000).  Images are in [-1, 1];
``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``.
"""
from __future__ import annotations

import torch

from restore.nets.eps_unet import linear_alpha_bar

__all__ = ["DDPMSchedule", "linear_alpha_bar"]


class DDPMSchedule:
    """``abar`` (T,) float64 plus helpers.

    Args:
        alpha_bar: the cumulative products, decreasing, in (0, 1]; or None for the linear
            schedule with ``T``, ``beta_start``, ``beta_end``.
    """

    def __init__(self, alpha_bar: torch.Tensor | None = None, *, T: int = 1000,
                 beta_start: float = 1e-4, beta_end: float = 0.02):
        ab = linear_alpha_bar(T, beta_start, beta_end) if alpha_bar is None else torch.as_tensor(alpha_bar)
        ab = ab.double().flatten()
        if ab.numel() < 2 or not bool(((ab > 0) & (ab <= 1)).all()) or not bool((ab[1:] <= ab[:-1]).all()):
            raise ValueError("alpha_bar must be a decreasing sequence in (0, 1] with at least 2 entries")
        self.alpha_bar = ab

    @property
    def T(self) -> int:
        return self.alpha_bar.numel()

    def abar(self, t: int) -> float:
        """``abar_t``; ``t = -1`` gives 1 (the clean image)."""
        return 1.0 if t < 0 else float(self.alpha_bar[t])

    def sigma_ve(self, t: int) -> float:
        """Noise-to-signal ratio ``sqrt((1 - abar_t) / abar_t)`` (the variance-exploding sigma)."""
        a = self.abar(t)
        return ((1 - a) / a) ** 0.5

    def timesteps(self, n: int, *, start: int | None = None) -> list[int]:
        """``n`` timesteps descending from ``start`` (default T-1) to 0, evenly spaced."""
        start = self.T - 1 if start is None else int(start)
        if not 1 <= n <= start + 1:
            raise ValueError(f"need 1 <= steps <= {start + 1}, got {n}")
        if n == 1:
            return [start]
        grid = torch.linspace(start, 0, n, dtype=torch.float64).round().long().tolist()
        out: list[int] = []
        for t in grid:  # strictly descending even after rounding
            if not out or t < out[-1]:
                out.append(t)
        return out
