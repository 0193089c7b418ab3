"""A diffusion prior: an epsilon predictor plus its schedule, in one object.

Every solver talks to a :class:`DiffusionPrior`: ``eps(x_t, t)`` with images
(N, C, H, W) in [-1, 1] and integer timesteps, and ``x0(x_t, t)`` (Tweedie's
posterior mean ``(x_t - sqrt(1 - abar) eps) / sqrt(abar)``).  Our own
:class:`restore.nets.EpsUNet`, a diffusers ``UNet2DModel``, a guided-diffusion
(ADM) UNet or any callable ``eps(x_t, t)`` (a closed-form score, in tests)
are wrapped the same way.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .schedule import DDPMSchedule

__all__ = ["DiffusionPrior"]


class DiffusionPrior(nn.Module):
    """An epsilon-prediction prior.

    Args:
        eps_fn: ``(x_t (N, C, H, W), t (N,) int64) -> eps_hat`` of ``x_t``'s shape.
        channels: image channels the prior models.
        schedule: its DDPM schedule (default: linear, T = 1000).
        image_size: the side it was trained at, or None when any size is fine.
        multiple: H and W must be multiples of this.
        source: where it came from (a path or a description; for reports).
        patch: run the network on overlapping ``patch`` x ``patch`` tiles of larger images and
            average the predictions (GDP's patch method; default ``image_size`` when known).
        stride: tile stride (default ``patch // 2``); the last tile is flush with the border.
        tile_batch: tiles per network call (bounds memory).
        window: ``"hann"`` (default): each tile's prediction is weighted by ``sin^2(pi (i + 0.5) / p)``
            per axis, so a pixel near a tile's edge takes its value from the tile where it is central
            (uniform averaging, GDP's ``"uniform"``, leaves visible seams: the network's prediction is
            worst at a tile edge, and with stride p/2 that edge weighs half).
    """

    def __init__(self, eps_fn: Callable[[Tensor, Tensor], Tensor], *, channels: int,
                 schedule: DDPMSchedule | None = None, image_size: int | None = None,
                 multiple: int = 1, source: str = "", patch: int | None = None, stride: int | None = None,
                 tile_batch: int = 16, window: str = "hann"):
        super().__init__()
        self.eps_fn = eps_fn
        if isinstance(eps_fn, nn.Module):
            self.net = eps_fn  # registered, so .to(device) and .eval() reach it
            eps_fn.requires_grad_(False)  # solvers differentiate images, never the weights
        self.channels, self.image_size, self.multiple, self.source = int(channels), image_size, int(multiple), source
        self.schedule = schedule or DDPMSchedule()
        self.patch = patch or image_size
        if stride is not None and self.patch and not 0 < stride <= self.patch:
            raise ValueError(f"tile stride must be in (0, patch={self.patch}], got {stride}")
        self.stride = stride
        self.tile_batch = int(tile_batch)
        if window not in ("hann", "uniform"):
            raise ValueError(f"window must be 'hann' or 'uniform', got {window!r}")
        self.window = window

    @property
    def T(self) -> int:
        return self.schedule.T

    def _t(self, x_t: Tensor, t: int | Tensor) -> Tensor:
        return torch.as_tensor(t, device=x_t.device, dtype=torch.long).reshape(-1).expand(x_t.shape[0])

    def eps(self, x_t: Tensor, t: int | Tensor) -> Tensor:
        """Predicted noise ``eps_hat(x_t, t)``, shape of ``x_t`` (differentiable).

        Images larger than ``patch`` go through overlapping tiles whose predictions are
        averaged uniformly (every pixel: the mean over the tiles that hold it); sizes that are
        not a multiple of ``multiple`` are reflect-padded and cropped back.
        """
        h, w = x_t.shape[-2:]
        p = self.patch
        if p and (h > p or w > p):
            return self._tiled_eps(x_t, self._t(x_t, t), p)
        return self._padded_eps(x_t, self._t(x_t, t))

    def _padded_eps(self, x: Tensor, t: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        m = self.multiple
        ph, pw = -h % m, -w % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return self.eps_fn(x, t)[..., :h, :w]

    def tile_origins(self, h: int, w: int, p: int) -> list[tuple[int, int]]:
        """Top-left corners of the tiles covering an (h, w) image (stride, last tile flush)."""
        stride = self.stride or max(1, p // 2)

        def axis(n):
            if n <= p:
                return [0]
            out = list(range(0, n - p + 1, stride))
            return out if out[-1] == n - p else out + [n - p]

        return [(i, j) for i in axis(h) for j in axis(w)]

    def _tiled_eps(self, x: Tensor, t: Tensor, p: int) -> Tensor:
        n, _, h, w = x.shape
        ph, pw = min(p, h), min(p, w)
        corners = self.tile_origins(h, w, p)
        out = torch.zeros_like(x)
        count = x.new_zeros(1, 1, h, w)
        wh, ww = self._window(ph, x), self._window(pw, x)
        wt = wh[:, None] * ww[None, :]
        for k in range(0, len(corners), self.tile_batch):  # tile_batch tiles (x N images) per call
            chunk = corners[k:k + self.tile_batch]
            pred = self._padded_eps(torch.cat([x[..., i:i + ph, j:j + pw] for i, j in chunk]), t.repeat(len(chunk)))
            for q, (i, j) in enumerate(chunk):
                out = out + F.pad(wt * pred[q * n:(q + 1) * n], (j, w - j - pw, i, h - i - ph))
                count[..., i:i + ph, j:j + pw] += wt
        return out / count

    def _window(self, n: int, like: Tensor) -> Tensor:
        """Per-axis tile weights (n,): sin^2 bump (strictly positive) or ones."""
        if self.window == "uniform":
            return like.new_ones(n)
        i = torch.arange(n, dtype=like.dtype, device=like.device)
        return torch.sin(torch.pi * (i + 0.5) / n) ** 2

    def x0_from_eps(self, x_t: Tensor, t: int, eps: Tensor) -> Tensor:
        """``(x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``."""
        a = self.schedule.abar(t)
        return (x_t - (1 - a) ** 0.5 * eps) / a**0.5

    def x0(self, x_t: Tensor, t: int) -> Tensor:
        """Tweedie's estimate of the clean image from ``x_t``."""
        return self.x0_from_eps(x_t, t, self.eps(x_t, t))

    def forward(self, x_t: Tensor, t: int | Tensor) -> Tensor:  # noqa: D102
        return self.eps(x_t, t)
