"""Laine, Karras, Lehtinen & Aila (NeurIPS 2019): blind-spot network + Bayesian posterior mean.

The blind-spot network (:class:`restore.nets.laine19.BlindSpotUNet`) sees every
pixel but the one it predicts, and outputs per pixel a Gaussian *prior* for the
clean value given its neighbourhood: mean ``mu_x`` (C values) and covariance
``Sigma_x = A A^T`` with ``A`` upper-triangular (``C(C+1)/2`` values, filled
row by row: ``a00, a01, .., a0C, a11, ..``; grey: ``sigma_x^2 = a^2``).  With
noise covariance ``Sigma_n`` (diagonal) the noisy centre pixel is
``y ~ N(mu_x, Sigma_x + Sigma_n)``; training minimises that negative
log-likelihood, and inference returns the posterior mean, which uses the
noisy centre pixel itself::

    x_hat = (Sigma_x^-1 + Sigma_n^-1)^-1 (Sigma_x^-1 mu_x + Sigma_n^-1 y)
          = mu_x + Sigma_x (Sigma_x + Sigma_n)^-1 (y - mu_x)     (computed this way)
    grey:  x_hat = (y sigma_x^2 + mu_x sigma^2) / (sigma_x^2 + sigma^2)

Noise models (``noise``), all in ``[0, 1]`` image units:

* ``"gaussian"``: ``Sigma_n = sigma^2 I``; ``sigma = max(sigma, min_std)``.
* ``"poisson"`` (``y = zeta Poisson(x / zeta)``): Gaussian approximation
  ``Sigma_n = diag(zeta * max(mu_x, min_std))`` (per channel).

``sigma_mode``: ``"known"`` reads the level from the batch (``sigma`` or
``level`` = zeta) and from ``restore``'s ``sigma``; ``"global"`` learns one
scalar ``v`` for the whole data set (``net.noise_param``, saved with the
weights; the paper's ``noise_params='global'``): ``sigma = softplus(v - 4) +
1e-3`` (Gaussian) or ``zeta = softplus(v - 4) + 1e-3`` (Poisson), the loss
gains ``- global_reg * mean(noise std)`` (the paper's balance term, 0.1 on its
grey loss, which is twice the NLL used here, hence 0.05), and ``restore``
ignores its ``sigma``.  Not implemented: the paper's per-image noise network
and impulse noise.  The loss and the posterior mean are computed in float64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from restore.nets.laine19 import BlindSpotUNet

from .base import Method, register

_LOG_2PI = math.log(2.0 * math.pi)


def n_cov(channels: int) -> int:
    """Number of covariance-factor components: ``C (C + 1) / 2``."""
    return channels * (channels + 1) // 2


def prior_covariance(a: torch.Tensor, channels: int) -> torch.Tensor:
    """``Sigma_x = A A^T`` (..., C, C) from the upper-triangular components ``a`` (..., C(C+1)/2)."""
    idx = torch.triu_indices(channels, channels, device=a.device)
    A = a.new_zeros(*a.shape[:-1], channels, channels)
    A[..., idx[0], idx[1]] = a
    return A @ A.transpose(-1, -2)


def gaussian_nll(y: torch.Tensor, mu: torch.Tensor, cov_x: torch.Tensor, noise_var: torch.Tensor) -> torch.Tensor:
    """Per-pixel ``-log N(y; mu, Sigma_x + diag(noise_var))`` in nats, shape ``(...)``.

    ``y``, ``mu``: ``(..., C)``; ``cov_x``: ``(..., C, C)``; ``noise_var``:
    broadcastable to ``(..., C)`` (the diagonal of ``Sigma_n``, > 0).
    """
    c = y.shape[-1]
    d = y - mu
    noise_var = torch.broadcast_to(noise_var, d.shape)
    if c == 1:
        v = cov_x[..., 0, 0] + noise_var[..., 0]
        return 0.5 * (d[..., 0] ** 2 / v + torch.log(v) + _LOG_2PI)
    L = torch.linalg.cholesky(cov_x + torch.diag_embed(noise_var))
    z = torch.linalg.solve_triangular(L, d.unsqueeze(-1), upper=False)
    logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (z.squeeze(-1).pow(2).sum(-1) + logdet + c * _LOG_2PI)


def posterior_mean(y: torch.Tensor, mu: torch.Tensor, cov_x: torch.Tensor, noise_var: torch.Tensor) -> torch.Tensor:
    """``E[x | y]`` for ``x ~ N(mu, Sigma_x)``, ``y | x ~ N(x, diag(noise_var))``, shape ``(..., C)``.

    Shapes as in :func:`gaussian_nll`.  Computed as
    ``mu + Sigma_x (Sigma_x + Sigma_n)^-1 (y - mu)``, which equals the
    information form and stays defined when ``Sigma_x`` is singular.
    """
    d = y - mu
    noise_var = torch.broadcast_to(noise_var, d.shape)
    if y.shape[-1] == 1:
        vx = cov_x[..., 0]
        return (y * vx + mu * noise_var) / (vx + noise_var)
    L = torch.linalg.cholesky(cov_x + torch.diag_embed(noise_var))
    return mu + (cov_x @ torch.cholesky_solve(d.unsqueeze(-1), L)).squeeze(-1)


@register("laine19")
@dataclass
class Laine19(Method):
    noise: str = "gaussian"  # "gaussian" | "poisson"
    sigma_mode: str = "known"  # "known" | "global"
    global_reg: float = 0.05  # weight of -mean(noise std) in "global" mode
    min_std: float = 1e-3  # floor of the Gaussian sigma and of mu_x in the Poisson variance
    level_range: tuple = ()  # trained sigma / zeta range (set by prepare, for check_level)
    net_config: dict = field(default_factory=lambda: {"width": 32, "levels": 3})  # paper: 48, 5

    def __post_init__(self):
        if self.noise not in ("gaussian", "poisson"):
            raise ValueError(f"laine19 supports noise 'gaussian' or 'poisson', got {self.noise!r}")
        if self.sigma_mode not in ("known", "global"):
            raise ValueError(f"sigma_mode must be 'known' or 'global', got {self.sigma_mode!r}")

    def params(self) -> dict:
        return {"noise": self.noise, "sigma_mode": self.sigma_mode, "global_reg": self.global_reg,
                "min_std": self.min_std, "level_range": list(self.level_range)}

    def build_net(self, channels: int) -> BlindSpotUNet:
        cfg = {k: v for k, v in self.net_config.items() if k not in ("arch", "channels", "out_channels", "noise_param")}
        return BlindSpotUNet(channels=channels, out_channels=channels + n_cov(channels),
                             noise_param=self.sigma_mode == "global", **cfg)

    def prepare(self, dataset) -> None:
        noise = getattr(dataset, "noise", "gaussian")
        if noise != self.noise:
            raise ValueError(f"the method is set up for {self.noise} noise but the data has {noise} noise; "
                             f"set method_params.noise: {noise}")
        if getattr(dataset, "level_range", None):
            self.level_range = tuple(float(v) for v in dataset.level_range)

    def check_level(self, sigma: float) -> str | None:
        if self.sigma_mode == "global":  # the level is learned; restore ignores the given one
            return None
        if self.level_range and not 0.8 * self.level_range[0] <= sigma <= 1.25 * self.level_range[1]:
            return (f"noise level {sigma:g} is outside the range this model was trained on "
                    f"({self.level_range[0]:g}..{self.level_range[1]:g}); the result may be poor")
        return None

    # ------------------------------------------------------------------ pieces
    def prior(self, net, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prior ``(mu_x (N, H, W, C), Sigma_x (N, H, W, C, C))`` in float64 from ``y`` (N, C, H, W)."""
        c = y.shape[1]
        out = net(y).double().permute(0, 2, 3, 1)  # (N, H, W, C + C(C+1)/2)
        return out[..., :c], prior_covariance(out[..., c:], c)

    def learned_level(self, net) -> torch.Tensor:
        """The "global" noise parameter (Gaussian sigma or Poisson zeta), 0-dim float64."""
        if getattr(net, "noise_param", None) is None:
            raise ValueError("sigma_mode='global' needs a network built with noise_param=True")
        return F.softplus(net.noise_param.double()[0] - 4.0) + 1e-3

    def noise_var(self, net, mu: torch.Tensor, level: torch.Tensor | None) -> torch.Tensor:
        """Diagonal of ``Sigma_n``, broadcastable to ``mu`` (N, H, W, C), float64.

        ``level``: (N,) sigma or zeta for ``sigma_mode="known"`` (ignored for "global").
        """
        if self.sigma_mode == "global":
            p = self.learned_level(net)
        else:
            if level is None:
                raise ValueError("sigma_mode='known' needs the noise level")
            p = level.double().reshape(-1, 1, 1, 1).expand(mu.shape[0], 1, 1, 1)
        if self.noise == "gaussian":
            return torch.clamp(p, min=self.min_std) ** 2
        return p * torch.clamp(mu, min=self.min_std)

    # ------------------------------------------------------------------ protocol
    def loss(self, net, batch, *, progress=0.0, generator=None):
        """Per-value NLL of the noisy pixels (mean over pixels, divided by C)."""
        y = batch["noisy"]
        level = batch.get("sigma" if self.noise == "gaussian" else "level")
        mu, cov_x = self.prior(net, y)
        y64 = y.double().permute(0, 2, 3, 1)
        var_n = self.noise_var(net, mu, level)
        loss = gaussian_nll(y64, mu, cov_x, var_n).mean() / y.shape[1]
        if self.sigma_mode == "global":
            loss = loss - self.global_reg * torch.sqrt(torch.broadcast_to(var_n, mu.shape)).mean()
        return loss.to(y.dtype)

    def restore(self, net, y, sigma):
        """Posterior mean ``(N, C, H, W)`` (dtype of ``y``); ``sigma`` (N,) is the Gaussian
        std or Poisson zeta in [0, 1] units (ignored with ``sigma_mode="global"``)."""
        mu, cov_x = self.prior(net, y)
        var_n = self.noise_var(net, mu, sigma)
        x = posterior_mean(y.double().permute(0, 2, 3, 1), mu, cov_x, var_n)
        return x.permute(0, 3, 1, 2).to(y.dtype)
