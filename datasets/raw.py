"""Synthetic RAW training data: clean sRGB images un-processed to RGGB planes, camera
sensor noise from a profile, then what :func:`restore.rawdenoise.denoise_planes` feeds the
grey model (:func:`restore.rawdenoise.gat_unit`: the GAT with the noise's Poisson-Gaussian
equivalent, [f(0), f(1)] onto [0, 1]; then the Bayer-opponent transform), one channel per
patch; the dark-frame stretch of inference is not applied (training crops span the range).

Batches: ``noisy`` (B, 1, P, P), ``sigma`` (B,) (the channel's noise std there) and, with
``pairs=True`` (the ELD recipe, supervised), ``clean`` (B, 1, P, P): the same map applied to
``E[gat(y) | x]`` (:func:`restore.noise.vst.gat_expected`), so that the exact unbiased
inverse after the network returns the clean planes.  Without ``pairs`` the clean patch
never leaves the dataset (self-supervised training on noisy RAW only).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .patches import load_folder

__all__ = ["RawSynthetic"]


class RawSynthetic:
    """Args: ``path`` folder(s) of clean sRGB images; ``patch`` (plane pixels); ``batch_size``;
    ``profile`` (name or JSON); ``iso_range`` (lo, hi), log-uniform; ``ratio_range`` (lo, hi)
    exposure amplification, log-uniform; ``pairs``: also return the clean target."""

    noise = "gaussian"

    def __init__(self, path, patch: int, batch_size: int, profile: str = "SonyA7S2", iso_range=(800, 12800),
                 ratio_range=(10, 100), pairs: bool = False, max_images: int | None = None):
        from restore.noise.sensor import load_profile
        from restore.unprocess import unprocess

        self.profile = load_profile(profile)
        rgb, _ = load_folder(path, 3, min_size=2 * patch, max_images=max_images)
        g = torch.Generator().manual_seed(0)
        self.planes = [unprocess(torch.from_numpy(im), generator=g).numpy() for im in rgb]
        self.patch, self.batch_size, self.pairs = patch, batch_size, pairs
        self.log_iso = tuple(math.log(v) for v in iso_range)
        self.log_ratio = tuple(math.log(v) for v in ratio_range)
        self.sigma_min = 0.0
        self.level_range = None

    def _case(self, rng: np.random.Generator):
        from restore.noise.sensor import SensorNoise, sample_params
        from restore.noise.vst import gat_expected
        from restore.rawdenoise import _SCALE, bayer_to_opponent, gat_unit

        img = self.planes[rng.integers(len(self.planes))]
        _, h, w = img.shape
        i, j = rng.integers(h - self.patch + 1), rng.integers(w - self.patch + 1)
        x = torch.from_numpy(np.ascontiguousarray(img[:, i:i + self.patch, j:j + self.patch])).double()
        g = torch.Generator().manual_seed(int(rng.integers(2**62)))
        iso = math.exp(rng.uniform(*self.log_iso))
        ratio = math.exp(rng.uniform(*self.log_ratio))
        noise = SensorNoise.from_params(sample_params(self.profile, iso=iso, generator=g),
                                        scale=self.profile.white - self.profile.black, ratio=ratio)
        y = noise.sample(x[None], generator=g)[0]
        a, s = (float(v) for v in noise.poisson_gaussian())
        t, (f0, f1) = gat_unit(y, a, s)
        k = int(rng.integers(4))
        t = bayer_to_opponent(t.float())[k : k + 1]
        sigma = 1.0 / (f1 - f0) / float(_SCALE[k])
        c = None
        if self.pairs:  # E[gat(y) | x] on a grid of x, interpolated (the map is smooth and increasing)
            grid = torch.linspace(0.0, 1.0, 2049, dtype=torch.float64)
            D = np.interp(x.numpy(), grid.numpy(), gat_expected(grid, a, s).numpy())
            c = bayer_to_opponent(((torch.from_numpy(D) - f0) / (f1 - f0)).float())[k : k + 1]
        return t, sigma, c

    def batch(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        cases = [self._case(rng) for _ in range(self.batch_size)]
        out = {"noisy": torch.stack([c[0] for c in cases]),
               "sigma": torch.tensor([c[1] for c in cases], dtype=torch.float32)}
        if self.pairs:
            out["clean"] = torch.stack([c[2] for c in cases])
        return out
