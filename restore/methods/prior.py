"""Training a diffusion prior: DDPM's epsilon loss on clean patches.

``restore train prior --data CLEAN_DIR`` (or a recipe under recipes/prior/)
trains an :class:`restore.nets.EpsUNet` with the "simple" loss of Ho et al.
2020: ``E_{t, eps} ||eps_hat(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t) -
eps||^2`` with t uniform on 0..T-1 and images mapped to [-1, 1].  The prior is
used by the solvers (RED-Diff, GDP, DPS, DDRM), not by ``restore denoise``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from restore.nets import EpsUNet

from .base import Method, register


@register("prior")
@dataclass
class DiffusionPriorTraining(Method):
    """DDPM epsilon-prediction training (linear beta ``beta_start``..``beta_end``, ``T`` steps)."""

    T: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02

    def prepare(self, dataset) -> None:
        self.patch = getattr(dataset, "patch", None)

    def build_net(self, channels: int) -> nn.Module:
        cfg = {k: v for k, v in self.net_config.items() if k in ("widths", "depth", "image_size")}
        if "image_size" not in cfg and getattr(self, "patch", None):
            cfg["image_size"] = int(self.patch)  # the size it learns at is the size it tiles with
        return EpsUNet(channels=channels, T=self.T, beta_start=self.beta_start, beta_end=self.beta_end, **cfg)

    def params(self) -> dict:
        return {"T": self.T, "beta_start": self.beta_start, "beta_end": self.beta_end}

    def loss(self, net, batch, *, progress=0.0, generator=None):
        x0 = batch["clean"] * 2 - 1
        n = x0.shape[0]
        t = torch.randint(0, net.T, (n,), generator=generator, device=x0.device)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        ab = net.alpha_bar[t].type_as(x0).reshape(-1, 1, 1, 1)
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        return torch.mean((net(x_t, t) - eps) ** 2)

    def restore(self, net, y, sigma):
        raise ValueError("a diffusion prior is not a denoiser by itself: use 'restore solve' with --prior")
