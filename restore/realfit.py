"""Fitting a grey model to a folder's own correlated camera noise at full resolution
(``restore denoise DIR --fit`` on real photos).

Recorrupted-to-Recorrupted (Pang et al. 2021) needs recorruption noise ``z`` with the
*same distribution* as the image's noise ``n`` and independent of it: then
``y + a z`` and ``y - z / a`` carry uncorrelated noises (``Cov = Sigma - Sigma = 0``),
so ``E[y - z/a | y + a z] = E[x | y + a z]`` and the MSE between the network's output
on the first and the second needs no clean image.  Camera sRGB noise is spatially
correlated (unknown ``Sigma``), so ``z`` is drawn from a *bank of the images' own noise
residuals*: ``y - route(y)``, where the route is the shipped model through pixel-shuffle
down-sampling (:func:`restore.realnoise.pd_gaussian`), taken at another place (and
another image), rotated, and scaled to the patch's noise level.  The residuals carry the
noise's correlation (they are ~89 % noise by power on sidd12: route 33.6 dB vs 23.0 input).

Inference (:func:`fitted_real`) averages the fitted model at full resolution (level: the
residual std of each opponent channel) with the route: on sidd12, 10 min of fitting gives
33.41 dB alone and 33.88 averaged, against 33.60 for the route and 28.04 for the
unfitted model at full resolution (averaged with the route: 31.61).

Shapes: images ``(C, H, W)`` in [0, 1], C = 3 (opponent channels, :mod:`restore.color`)
or 1; channels are processed as grey images.
"""
from __future__ import annotations

import numpy as np
import torch

from restore.color import opponent_to_rgb, rgb_to_opponent

__all__ = ["to_channels", "from_channels", "route_residuals", "mad_std", "fitted_real", "FIT_WEIGHT"]

#: weight of the fitted full-resolution estimate in the average with the route (measured: 0.5).
FIT_WEIGHT = 0.5


def to_channels(y: torch.Tensor) -> torch.Tensor:
    return rgb_to_opponent(y) if y.shape[0] == 3 else y


def from_channels(z: torch.Tensor) -> torch.Tensor:
    return opponent_to_rgb(z) if z.shape[0] == 3 else z


def mad_std(r: torch.Tensor) -> float:
    """Robust std (1.4826 x median absolute deviation) of a residual."""
    return float(1.4826 * (r - r.median()).abs().median())


def route_residuals(y: torch.Tensor, route) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """``(x_route, residual channels (C, H, W), per-channel residual std)`` for one image;
    ``route(y) -> x`` is the shipped real-noise route."""
    x = torch.as_tensor(route(y)).float()
    r = to_channels(y) - to_channels(x)
    return x, r, [mad_std(r[k]) for k in range(r.shape[0])]


def fitted_real(y: torch.Tensor, route, run_grey, *, weight: float = FIT_WEIGHT) -> tuple[torch.Tensor, list[float]]:
    """Average of the route and the fitted model at full resolution; ``run_grey(t (1, H, W), sigma)``
    runs the fitted model.  Returns ``(x_hat, per-channel levels used)``."""
    x_route, r, s = route_residuals(y, route)
    z = to_channels(y)
    x_fit = from_channels(torch.cat([torch.as_tensor(run_grey(z[k : k + 1], s[k])) for k in range(z.shape[0])]))
    return (1 - weight) * x_route + weight * x_fit, s
