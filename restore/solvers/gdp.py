"""GDP (Fei et al., CVPR 2023): guided DDPM sampling, with blind degradation estimation.

Each reverse step predicts ``x0_hat`` (clipped to [-1, 1]), forms the
posterior mean ``mu`` of ``x_{t_prev}``, and adds a guidance step on the data
fit ``L = 0.5 * ||A((z + 1) / 2) - y||^2`` (``y`` in [0, 1] units), taken
with respect to ``z = x0_hat`` (``mode="x0"``, GDP-x0, the default) or to
``z = x_t`` (``mode="xt"``, GDP-xt); there is no variance factor, as in the
official code::

    mu' = mu - eta_t * grad_z L,      x_{t_prev} = mu' + s_t * noise

The step is ``eta_t = min(scale * stride, 1) / L_z`` with ``L_z = ||A^T A|| / 4``
the gradient's Lipschitz constant: ``scale`` is the fraction of the largest
stable step taken per unit of timestep, so it means the same for every
operator (a 4x box downsampling has ``||A^T A|| = 1/16``; the official code
sidesteps that by guiding with ``A^+ A``), strided sampling multiplies it by
the stride, and a step can never overshoot the data fit: that cap keeps
20-step sampling free of the NaNs users met with the official code (GDP issue
#29).  ``scale = 0.01`` is the official inpainting guidance (4000 on a mean
over 256 x 256 x 3 entries) in these units; their deblurring 0.015, SR 0.005,
low light 0.2.

Blind mode: when ``A`` has trainable parameters (e.g. ``Exposure(learnable=True)``:
gain f and offset map M), each step also takes one Adam step of
``degradation_lr`` on them, minimising the same data fit at the current ``x0_hat``.

Patch method: a prior trained on small images runs on overlapping tiles of the
image at every step (see :meth:`DiffusionPrior.eps`), averaged with a sin^2
window (GDP averages uniformly, which measured a seam ratio of 1.31 on the
256x256 demo against 1.01 with the window; recipes/demo-gdp-patch.yaml), with
one global noise draw per step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import (Solver, data_lipschitz, from_prior, image_shape, posterior_step, randn_like, register_solver,
                   residual)


@register_solver("gdp")
@dataclass
class GDP(Solver):
    """GDP-x0 / GDP-xt.

    Args:
        steps: reverse steps (1000 = full DDPM; fewer = strided).
        scale: guidance step per unit timestep, as a fraction of the largest stable step (0.1
            measured best on training crops for inpainting, SR and deblurring; denoising 0.01).
        mode: ``"x0"`` (guidance on the x0 estimate) or ``"xt"``.
        degradation_lr: Adam step on the operator's trainable parameters (blind mode).
    """

    steps: int = 250
    scale: float = 0.1
    mode: str = "x0"
    degradation_lr: float = 0.01

    def validate(self) -> None:
        super().validate()
        if self.mode not in ("x0", "xt"):
            raise ValueError(f"GDP mode must be 'x0' or 'xt', got {self.mode!r}")

    def __call__(self, y, A, prior, *, sigma=0.0, generator=None):
        self.validate()
        shape = image_shape(A, y)
        theta = [p for p in A.parameters() if p.requires_grad]
        opt = torch.optim.Adam(theta, lr=self.degradation_lr) if theta else None
        L = data_lipschitz(A, shape, y) / 4
        ts = prior.schedule.timesteps(self.steps)
        x = randn_like(torch.empty(shape, dtype=y.dtype, device=y.device), generator)
        for i, t in enumerate(ts):
            t_prev = ts[i + 1] if i + 1 < len(ts) else -1
            with torch.no_grad():
                x0 = prior.x0(x, t).clamp(-1, 1)
                mu, std = posterior_step(prior, x, x0, t, t_prev)
            if theta and i:  # the learned degradation changes the data term's curvature
                L = data_lipschitz(A, shape, y, iters=5) / 4
            eta = min(self.scale * (t - t_prev), 1.0) / max(L, 1e-12)
            z = (x0 if self.mode == "x0" else x).detach().requires_grad_(True)
            loss = 0.5 * residual(A, z, y).pow(2).sum()
            grad_z, *grad_theta = torch.autograd.grad(loss, [z, *theta])
            if opt is not None:
                for p, gp in zip(theta, grad_theta):
                    p.grad = gp
                opt.step()
            x = mu - eta * grad_z
            if t_prev >= 0:
                x = x + std * randn_like(x, generator)
        return from_prior(x.detach()).clamp(0, 1)
