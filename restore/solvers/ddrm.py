"""DDRM, denoising diffusion restoration models (Kawar et al., NeurIPS 2022), the SVD baseline.

Works in the operator's spectral space (:func:`restore.operators.svd.svd_of`)
on the variance-exploding image ``x = x_t / sqrt(abar_t)`` (noise level
``sigma_t = sqrt((1 - abar) / abar)``), prior units ([-1, 1]); measurement
``y_bar = Ut(y_z) / s`` with noise ``sigma_y / s`` per observed coefficient
(``sigma_y = 2 sigma``).  From ``sigma_t`` to ``sigma' = sigma_{t_prev}``,
with ``x0_bar = Vt(x0_hat)``:

* ``s = 0`` (unobserved): ``x0_bar + sqrt(1 - eta^2) sigma' (x_bar - x0_bar) / sigma_t + eta sigma' z``
* ``sigma' < sigma_y / s``: ``x0_bar + sqrt(1 - eta^2) sigma' (y_bar - x0_bar) / (sigma_y / s) + eta sigma' z``
* ``sigma' >= sigma_y / s``: ``(1 - eta_b) x0_bar + eta_b y_bar + sqrt(sigma'^2 - (sigma_y / s)^2 eta_b^2) z``

started from ``y_bar + sqrt(sigma_T^2 - (sigma_y / s)^2) z`` where observed and
``sigma_T z`` elsewhere.  Linear operators with a known SVD only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from restore.operators.svd import svd_of

from .base import Solver, from_prior, image_shape, linear_measurement, randn_like, register_solver, reject_blind


@register_solver("ddrm")
@dataclass
class DDRM(Solver):
    """DDRM.

    Args:
        steps: reverse steps (the paper uses 20).
        eta, eta_b: the paper's 0.85 and 1.0.
        s_min: singular values at or below it count as unobserved (blur: 3e-2 as in DDRM's code).
    """

    steps: int = 20
    eta: float = 0.85
    eta_b: float = 1.0
    s_min: float = 3e-2

    def __call__(self, y, A, prior, *, sigma=0.0, generator=None):
        if not A.linear:
            raise ValueError("DDRM needs a linear operator with a known SVD; use gdp or reddiff for this one")
        self.validate()
        reject_blind(A, "ddrm")
        shape = image_shape(A, y)
        svd = svd_of(A, tuple(shape), s_min=self.s_min)
        s = svd.s.to(device=y.device, dtype=y.dtype).expand(shape)
        seen = s > 0
        s_safe = torch.where(seen, s, torch.ones_like(s))
        y_bar = torch.where(seen, svd.Ut(linear_measurement(A, y, shape)) / s_safe, torch.zeros_like(s))
        sy = torch.where(seen, 2 * sigma / s_safe, torch.full_like(s, float("inf")))
        ts = prior.schedule.timesteps(self.steps)
        sch = prior.schedule
        sig = sch.sigma_ve(ts[0])
        z = randn_like(s, generator)
        x_bar = torch.where(seen & (sy < sig), y_bar + (sig**2 - sy.clamp(max=sig) ** 2).sqrt() * z, sig * z)
        x = svd.V(x_bar)
        eta, eta_b = self.eta, self.eta_b
        with torch.no_grad():
            for i, t in enumerate(ts):
                t_prev = ts[i + 1] if i + 1 < len(ts) else -1
                sig, sig_p = sch.sigma_ve(t), sch.sigma_ve(t_prev)
                x0 = prior.x0(sch.abar(t) ** 0.5 * x, t).clamp(-1, 1)
                x0_bar = svd.Vt(x0)
                x_bar = svd.Vt(x)
                z = randn_like(s, generator)
                c = (1 - eta**2) ** 0.5 * sig_p
                unseen = x0_bar + c * (x_bar - x0_bar) / sig + eta * sig_p * z
                low = x0_bar + c * (y_bar - x0_bar) / sy.clamp(min=1e-12) + eta * sig_p * z
                high = (1 - eta_b) * x0_bar + eta_b * y_bar + (sig_p**2 - (sy * eta_b).clamp(max=sig_p) ** 2).clamp(min=0).sqrt() * z
                nxt = torch.where(~seen, unseen, torch.where(sig_p < sy, low, high))
                x = svd.V(nxt)
        return from_prior(x).clamp(0, 1)
