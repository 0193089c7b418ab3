"""Noise2Score (Kim & Ye, NeurIPS 2021): Gaussian, Poisson and Gamma noise.

An amortised residual denoising auto-encoder (AR-DAE) learns the score of the
*noisy* marginal, l'(y) = grad log p(y); Tweedie's formula then gives the
posterior mean x_hat = y + sigma^2 * l'(y).

AR-DAE loss, per pixel, with ``sigma_a = a * sigma``:

    u ~ N(0, I),  y_a = y + sigma_a*u,  L = || u + sigma_a * R(y_a) ||^2

Its minimiser is the score of the *smoothed* marginal p_y * N(0, sigma_a^2),
which for Gaussian noise is the score of the clean image blurred by noise of
std ``level = sqrt(sigma^2 + sigma_a^2)``.  Two ways to use that:

* ``conditioning="sigma"`` -- the paper's: the network does not know sigma_a,
  which is annealed towards 0 (here geometrically, ``ratio_max`` ->
  ``ratio_min`` over the whole run, not restarted per epoch as in the official
  code's quirk).  The score is biased by sigma_a and the gradient's
  signal-to-noise ratio falls like sigma_a as it shrinks.
* ``conditioning="level"`` (default) -- the original AR-DAE's idea made exact:
  the network is told ``level``; since the optimum depends only on ``level``,
  every ``(sigma, a)`` pair teaches the same function and no annealing is
  needed: ``a`` is drawn log-uniformly in ``[a_min, a_max]`` per patch and can
  be large (low gradient noise) without bias.  Inference evaluates the score
  at ``level = sigma`` (sigma_a = 0), a level the network has seen as long as
  ``sigma >= level_min``.

Parametrisation: ``R(z; level) = (net(z, level) - z) / level^2``, so
``net(y, sigma) = y + sigma^2 * R(y; sigma)`` *is* the Tweedie estimate and
inference is one forward pass.  ``weighting`` rescales the per-patch loss
without moving its minimiser: ``"ardae"`` (the paper's, as above),
``"mse"`` (``level^4 / sigma_a^2`` times it, i.e. ``|net - t|^2`` with
``t = y - (sigma^2 / sigma_a) u``: Recorrupted-to-Recorrupted's target, which
this loss reduces to) or ``"snr"`` (``|net - t|^2 / level^2``).

Poisson (``y = zeta * Poisson(x / zeta)``) and Gamma (``y = x * Gamma(k, 1/k)``)
noise (``noise=`` "poisson" / "gamma"): the smoothed marginal is no longer of
the same family, so the network is conditioned on two planes, the noise
parameter and ``a = sigma_a / ell`` (``ell`` the noise std at mid-grey:
``sqrt(zeta/2)`` or ``1/(2 sqrt(k))``), ``a`` log-uniform in
``[a_min, a_max]`` during training and ``a = 0`` at inference (the AR-DAE's
limit, reached by the network's continuity in ``a`` rather than by
annealing).  ``R = (net - y_a) / (ell^2 + sigma_a^2)``; the Tweedie maps are
:meth:`restore.noise.Poisson.tweedie` (score on the count image, ``zeta * R``)
and :meth:`restore.noise.Gamma.tweedie`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from restore.nets import CompactUNet
from restore.noise import Gamma, Poisson

from .base import Method, register

NOISES = ("gaussian", "poisson", "gamma")


@register("n2s")
@dataclass
class Noise2Score(Method):
    conditioning: str = "level"  # "level" (exact, default) | "sigma" (paper)
    a_min: float = 0.5  # sigma_a / sigma, log-uniform per patch ("level")
    a_max: float = 2.0
    weighting: str = "snr"  # "ardae" | "mse" | "snr" (measured best: snr)
    ratio_max: float = 0.5  # annealed sigma_a / sigma ("sigma" conditioning)
    ratio_min: float = 0.05
    level_min: float = 0.0  # smallest trained level, [0, 1] units (set by prepare)
    noise: str = "gaussian"  # "gaussian" | "poisson" | "gamma"
    level_range: tuple = ()  # trained zeta / k range (set by prepare)

    def __post_init__(self):
        if self.noise not in NOISES:
            raise ValueError(f"noise must be one of {', '.join(NOISES)}, got {self.noise!r}")
        if self.conditioning not in ("level", "sigma"):
            raise ValueError(f"conditioning must be 'level' or 'sigma', got {self.conditioning!r}")
        if self.weighting not in ("ardae", "mse", "snr"):
            raise ValueError(f"weighting must be 'ardae', 'mse' or 'snr', got {self.weighting!r}")
        if not 0 < self.a_min <= self.a_max:
            raise ValueError(f"need 0 < a_min <= a_max, got {self.a_min}, {self.a_max}")

    def params(self) -> dict:
        return {"conditioning": self.conditioning, "a_min": self.a_min, "a_max": self.a_max,
                "weighting": self.weighting, "ratio_max": self.ratio_max,
                "ratio_min": self.ratio_min, "level_min": self.level_min, "noise": self.noise,
                "level_range": list(self.level_range)}

    def build_net(self, channels: int):
        cfg = dict(self.net_config)
        if self.noise != "gaussian":
            cfg["cond_dim"] = 2
        return CompactUNet(channels=channels, **cfg)

    def prepare(self, dataset) -> None:
        noise = getattr(dataset, "noise", "gaussian")
        if noise != self.noise:
            raise ValueError(f"the method is set up for {self.noise} noise but the data has {noise} noise; "
                             f"set method_params.noise: {noise}")
        if self.noise != "gaussian":
            self.level_range = tuple(float(v) for v in dataset.level_range)
            return
        a = self.a_min if self.conditioning == "level" else 0.0
        self.level_min = float(dataset.sigma_min) * math.sqrt(1 + a**2)

    def check_level(self, sigma: float) -> str | None:
        if self.noise != "gaussian":
            if self.level_range and not 0.8 * self.level_range[0] <= sigma <= 1.25 * self.level_range[1]:
                name = "zeta" if self.noise == "poisson" else "k"
                return (f"{name}={sigma:g} is outside the range this model was trained on "
                        f"({self.level_range[0]:g}..{self.level_range[1]:g}); the result may be poor")
            return None
        if self.level_min and sigma < 0.9 * self.level_min:
            return (f"noise level {sigma * 255:.1f}/255 is below the smallest level this model "
                    f"was trained on ({self.level_min * 255:.1f}/255); the result may be poor")
        return None

    def sigma_a_ratio(self, progress: float) -> float:
        """Annealed ``sigma_a / sigma`` for ``conditioning="sigma"``."""
        p = min(max(progress, 0.0), 1.0)
        return self.ratio_max * (self.ratio_min / self.ratio_max) ** p

    def _ratio(self, n: int, progress: float, like: torch.Tensor, generator) -> torch.Tensor:
        if self.conditioning == "sigma":
            return torch.full((n,), self.sigma_a_ratio(progress), dtype=like.dtype, device=like.device)
        r = torch.rand(n, generator=generator, dtype=like.dtype, device=like.device)
        lo, hi = math.log(self.a_min), math.log(self.a_max)
        return torch.exp(lo + (hi - lo) * r)

    # ------------------------------------------------------------------ Poisson / Gamma
    def ell(self, level: torch.Tensor) -> torch.Tensor:
        """Noise std at mid-grey (x = 1/2) for the parameter ``level`` (zeta or k), (B,)."""
        return torch.sqrt(level / 2) if self.noise == "poisson" else 0.5 / torch.sqrt(level)

    def cond(self, level: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The two conditioning planes (B, 2): sqrt(zeta) or 1/sqrt(k), and a / 10."""
        feat = torch.sqrt(level) if self.noise == "poisson" else torch.rsqrt(level)
        return torch.stack([feat, a / 10], dim=1)

    def local_var(self, z: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """The scale of the network's residual: the family's noise variance at mid-grey,
        ``ell^2``, (N, 1, 1, 1).  (Using the variance at the pixel's own intensity
        measured worse: tests/test_families.py settings, -1.3 dB Poisson, -0.6 dB Gamma.)"""
        return self.ell(level.reshape(-1)).reshape(-1, 1, 1, 1) ** 2

    def score(self, net, y: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """``R(y) ~ d/dy log p(y)`` at ``a = 0``; ``y`` (N, C, H, W), ``level`` (N,)."""
        level = level.reshape(-1).to(y.dtype).expand(y.shape[0])
        return (net(y, self.cond(level, torch.zeros_like(level))) - y) / self.local_var(y, level)

    def restore(self, net, y, sigma):
        if self.noise == "gaussian":
            return net(y, sigma)
        level = sigma.reshape(-1).to(y.dtype).expand(y.shape[0])
        R = self.score(net, y, level)
        lv = level.reshape(-1, 1, 1, 1)
        if self.noise == "poisson":
            # score on the count image z = y / zeta is zeta * R; clamp keeps exp finite
            return Poisson(lv).tweedie(y.clamp(min=0), torch.clamp(lv * R, max=10.0))
        denom = (lv - 1) - y * R
        x = Gamma(lv).tweedie(y, R)
        return torch.where(denom > 0.05 * lv, x, y)  # no finite estimate: keep y

    def _family_loss(self, net, batch, generator):
        y, level = batch["noisy"], batch["level"].to(batch["noisy"].dtype)
        r = torch.rand(y.shape[0], generator=generator, dtype=y.dtype, device=y.device)
        lo, hi = math.log(self.a_min), math.log(self.a_max)
        a = torch.exp(lo + (hi - lo) * r)
        b = lambda t: t.reshape(-1, 1, 1, 1)  # noqa: E731
        sigma_a = b(a * self.ell(level))
        u = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        y_a = y + sigma_a * u
        v = self.local_var(y_a, level) + sigma_a**2
        residual = u + sigma_a * (net(y_a, self.cond(level, a)) - y_a) / v
        w = {"ardae": torch.ones_like(v), "mse": v**2 / sigma_a**2, "snr": v / sigma_a**2}[self.weighting]
        return torch.mean(w * residual**2)

    def loss(self, net, batch, *, progress=0.0, generator=None):
        if self.noise != "gaussian":
            return self._family_loss(net, batch, generator)
        y, sigma = batch["noisy"], batch["sigma"].to(batch["noisy"].dtype)
        a = self._ratio(y.shape[0], progress, y, generator)
        sigma_a = a * sigma
        level = torch.sqrt(sigma**2 + sigma_a**2) if self.conditioning == "level" else sigma
        u = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        b = lambda t: t.reshape(-1, 1, 1, 1)  # noqa: E731
        y_a = y + b(sigma_a) * u
        score = (net(y_a, level) - y_a) / b(level) ** 2  # R(y_a; level)
        residual = u + b(sigma_a) * score  # AR-DAE residual
        if self.weighting == "ardae":
            w = torch.ones_like(level)
        elif self.weighting == "mse":
            w = level**4 / sigma_a**2
        else:  # snr
            w = level**2 / sigma_a**2
        return torch.mean(b(w) * residual**2)
