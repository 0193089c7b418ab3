"""Generalised Recorrupted-to-Recorrupted (Monroy, Bacca, Tachella, 2025).

R2R's idea for every noise that can be *split* into two independent, unbiased
copies of the signal.  With ``alpha`` in (0, 1) the split fraction:

* Gaussian ``y = x + sigma*n``: R2R with ``a = sqrt(alpha / (1 - alpha))``
  (input ``y + a sigma z``, target ``y - sigma/a z``); input level
  ``sigma * sqrt(1 + a^2)``.
* Poisson ``y = zeta * n``, ``n ~ Poisson(x / zeta)``: binomial thinning,
  ``w ~ Binomial(n, alpha)``; input ``zeta (n - w) / (1 - alpha)`` is scaled
  Poisson with gain ``zeta / (1 - alpha)``, target ``zeta w / alpha`` (gain
  ``zeta / alpha``); both have mean ``x`` and are independent.
* Gamma ``y = x * Gamma(k, 1/k)``: beta splitting, ``B ~ Beta(k(1-alpha), k alpha)``;
  input ``y B / (1 - alpha)`` is Gamma with shape ``k (1 - alpha)``, target
  ``y (1 - B) / alpha`` with shape ``k alpha``; independent, both mean ``x``.

So ``E[target | input] = E[x | input]`` and the MSE minimiser is the MMSE
denoiser at the *input's* noise parameter, which the network is told (one
conditioning plane: ``sigma``, ``sqrt(zeta)`` or ``1/sqrt(k)``).  Inference
applies it to ``y`` with its own parameter, which must lie inside the trained
input range (``zeta >= zeta_min / (1 - alpha)``, ``k <= k_max (1 - alpha)``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from restore.noise.families import _standard_gamma

from .base import Method, register


@register("gr2r")
@dataclass
class GR2R(Method):
    alpha: float = 0.5
    noise: str = "gaussian"
    level_range: tuple = ()  # trained *input* parameter range (set by prepare)

    def __post_init__(self):
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.noise not in ("gaussian", "poisson", "gamma"):
            raise ValueError(f"noise must be gaussian, poisson or gamma, got {self.noise!r}")

    def params(self) -> dict:
        return {"alpha": self.alpha, "noise": self.noise, "level_range": list(self.level_range)}

    def input_level(self, level: torch.Tensor) -> torch.Tensor:
        """The input copy's noise parameter for data parameter ``level``."""
        if self.noise == "gaussian":
            return level / math.sqrt(1 - self.alpha)  # sigma * sqrt(1 + a^2)
        if self.noise == "poisson":
            return level / (1 - self.alpha)
        return level * (1 - self.alpha)

    def cond(self, level: torch.Tensor) -> torch.Tensor:
        if self.noise == "gaussian":
            return level
        return torch.sqrt(level) if self.noise == "poisson" else torch.rsqrt(level)

    def prepare(self, dataset) -> None:
        noise = getattr(dataset, "noise", "gaussian")
        if noise != self.noise:
            raise ValueError(f"the method is set up for {self.noise} noise but the data has {noise} noise; "
                             f"set method_params.noise: {noise}")
        lo, hi = getattr(dataset, "level_range", (dataset.sigma_min, dataset.sigma_min))
        lo, hi = sorted(float(self.input_level(torch.tensor(v, dtype=torch.float64))) for v in (lo, hi))
        self.level_range = (lo, hi)

    def check_level(self, sigma: float) -> str | None:
        if not self.level_range:
            return None
        lo, hi = self.level_range
        if self.noise == "gaussian" and sigma < 0.9 * lo:
            return (f"noise level {sigma * 255:.1f}/255 is below the smallest level this model was trained on "
                    f"({lo * 255:.1f}/255); the result may be poor")
        if self.noise != "gaussian" and not 0.8 * lo <= sigma <= 1.25 * hi:
            name = "zeta" if self.noise == "poisson" else "k"
            return f"{name}={sigma:g} is outside the trained range {lo:g}..{hi:g}; the result may be poor"
        return None

    def restore(self, net, y, sigma):
        level = sigma.reshape(-1).to(y.dtype).expand(y.shape[0])
        return net(y, self.cond(level))

    def split(self, y: torch.Tensor, level: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input, target)``: two independent, unbiased noisy copies of ``y``'s signal."""
        lv = level.reshape(-1, 1, 1, 1).to(y.dtype)
        al = self.alpha
        if self.noise == "gaussian":
            a = math.sqrt(al / (1 - al))
            z = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
            return y + a * lv * z, y - (lv / a) * z
        if self.noise == "poisson":
            n = torch.round(y / lv).clamp(min=0)
            w = torch.binomial(n, torch.full_like(n, al), generator=generator)
            return lv * (n - w) / (1 - al), lv * w / al
        k = lv.expand_as(y)
        g1 = _standard_gamma(k * (1 - al), generator)
        g2 = _standard_gamma(k * al, generator)
        B = g1 / (g1 + g2)
        return y * B / (1 - al), y * (1 - B) / al

    def loss(self, net, batch, *, progress=0.0, generator=None):
        y = batch["noisy"]
        level = batch.get("level", batch.get("sigma")).to(y.dtype)
        y_in, y_tgt = self.split(y, level, generator)
        return torch.mean((net(y_in, self.cond(self.input_level(level))) - y_tgt) ** 2)
