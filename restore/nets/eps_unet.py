"""An epsilon-prediction diffusion network built on :class:`CompactUNet`.

DDPM convention: images live in [-1, 1]; ``x_t = sqrt(abar_t) x_0 +
sqrt(1 - abar_t) eps`` with the linear beta schedule of
:class:`restore.diffusion.schedule.DDPMSchedule` (1e-4 .. 0.02, T = 1000).
``forward(x_t, t)`` returns ``eps_hat``, the prediction of ``eps``.

Inside, the network is a denoiser of the variance-exploding image
``z = x_t / sqrt(abar_t) = x_0 + sigma eps`` with ``sigma = sqrt((1 - abar) /
abar)``, preconditioned as in Karras et al. 2022 (EDM): the UNet sees
``c_in z`` (unit variance at every level) and ``log(sigma) / 4`` as its
conditioning plane, and ``D = c_skip z + c_out F``.  Then ``eps_hat = (z - D)
/ sigma``.  This is only a parametrisation: the model is trained with the
DDPM epsilon loss and exposes the DDPM epsilon interface.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .registry import register_arch
from .unet import CompactUNet

SIGMA_DATA = 0.5  # std of images in [-1, 1] (EDM's value)


def linear_alpha_bar(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """``abar_t = prod_{s<=t} (1 - beta_s)`` for t = 0..T-1, float64, shape (T,)."""
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


@register_arch
class EpsUNet(nn.Module):
    """``eps_hat = net(x_t, t)`` for (N, C, H, W) ``x_t`` in [-1, 1] units and integer ``t`` (N,).

    Args:
        channels: image channels.
        widths, depth: the :class:`CompactUNet` inside (H and W multiples of ``2 ** len(widths)``).
        T, beta_start, beta_end: the linear DDPM schedule the network is trained for.
        image_size: side of the training patches (informative: the solvers tile larger images with it).
    """

    def __init__(self, channels: int = 3, widths: Sequence[int] = (32, 64, 128, 256), depth: int = 2,
                 T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02, image_size: int = 64):
        super().__init__()
        self.unet = CompactUNet(channels=channels, widths=widths, depth=depth, cond=True, sigma_scale=1.0)
        self.channels, self.T, self.image_size = channels, int(T), int(image_size)
        self.beta_start, self.beta_end = float(beta_start), float(beta_end)
        self.register_buffer("alpha_bar", linear_alpha_bar(self.T, beta_start, beta_end).float(), persistent=False)

    @property
    def multiple(self) -> int:
        return self.unet.multiple

    def config(self) -> dict:
        return {"arch": "EpsUNet", "channels": self.channels, "widths": list(self.unet.widths),
                "depth": self.unet.depth, "T": self.T, "beta_start": self.beta_start,
                "beta_end": self.beta_end, "image_size": self.image_size}

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``eps_hat`` of shape ``x_t.shape``; ``t`` integer timesteps in [0, T), shape (N,) or scalar."""
        t = torch.as_tensor(t, device=x_t.device).long().reshape(-1)
        ab = self.alpha_bar[t].type_as(x_t).expand(x_t.shape[0]).reshape(-1, 1, 1, 1)
        sigma = ((1 - ab) / ab).sqrt()
        z = x_t / ab.sqrt()
        norm = (sigma**2 + SIGMA_DATA**2).sqrt()
        F_out = self.unet.features(z / norm, sigma.log().reshape(-1) / 4)
        # eps = (z - D) / sigma with D = c_skip z + c_out F, c_skip = sd^2/norm^2, c_out = sigma sd / norm
        return sigma * z / norm**2 - (SIGMA_DATA / norm) * F_out
