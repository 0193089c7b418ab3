"""Noise models (sampling, likelihood, Tweedie / Noise2Score) and noise-level estimation.

>>> from restore.noise import make_noise, estimate_sigma
>>> noise = make_noise("gaussian:25")       # sigma = 25/255
>>> y = noise(x, generator=torch.Generator().manual_seed(0))   # doctest: +SKIP
>>> estimate_sigma(y)                        # (N,) sigma in [0, 1] units  # doctest: +SKIP
"""
from .base import NoiseModel, _as_param, _bcast
from .estimate import (
    default_tv_grid,
    estimate_channel_sigmas,
    estimate_sigma,
    estimate_sigma_mad,
    estimate_sigma_pca,
    estimate_sigma_tv,
)
from .families import Gamma, Gaussian, Poisson, PoissonGaussian, make_noise

__all__ = [
    "NoiseModel",
    "Gaussian",
    "Poisson",
    "PoissonGaussian",
    "Gamma",
    "make_noise",
    "estimate_sigma",
    "estimate_channel_sigmas",
    "estimate_sigma_mad",
    "estimate_sigma_pca",
    "estimate_sigma_tv",
    "default_tv_grid",
]
