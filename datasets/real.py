"""Real camera noise made (nearly) white by pixel-shuffle down-sampling, as grey training data.

Each noisy photo is split into its ``stride^2`` PD sub-images
(:func:`restore.blindspot.pd_to_batch`), where the demosaicking/ISP
correlation of the noise is mostly gone; each sub-image gets its own
per-channel wavelet-MAD sigma times ``sigma_scale`` (the same rule inference
uses, :func:`restore.realnoise.pd_gaussian`).  RGB sub-images are turned into
their three opponent channels (:mod:`restore.color`), each a grey image with
its own sigma, so a grey Gaussian model (the shipped default) can be trained
further on them with Noise2Score / R2R.  Only noisy images are ever used.

Batches: ``{"noisy": (B, 1, P, P), "sigma": (B,), "level": (B,)}``.
"""
from __future__ import annotations

import numpy as np
import torch

from restore.color import opponent_sigmas, rgb_to_opponent

from .patches import NoisyFolder, load_folder


def pd_training_images(images: list[np.ndarray], stride: int, sigma_scale: float
                       ) -> tuple[list[np.ndarray], list[float]]:
    """Grey ``(1, h, w)`` training images and their sigmas from noisy ``(C, H, W)`` photos."""
    from restore.realnoise import pd_subimages

    out, sigmas = [], []
    for im in images:
        subs, used = pd_subimages(torch.from_numpy(im), stride, sigma_scale)
        for sub, s in zip(subs, used):
            if sub.shape[0] == 3:
                z = rgb_to_opponent(sub)
                out += [z[k : k + 1].numpy() for k in range(3)]
                sigmas += opponent_sigmas(s)
            else:
                out.append(sub.numpy())
                sigmas.append(s[0])
    return out, sigmas


class PDSubimages(NoisyFolder):
    """Random patches of the PD sub-images (opponent channels for RGB) of a folder of real
    noisy photos, each with its estimated sigma (see the module docstring); batches as
    :class:`NoisyFolder`'s Gaussian ones."""

    def __init__(self, path, patch: int, batch_size: int, stride: int = 2, sigma_scale: float = 1.6):
        photos, _ = load_folder(path, 3, min_size=patch * stride)
        self.images, sig = pd_training_images(photos, stride, sigma_scale)
        self.patch, self.batch_size = patch, batch_size
        self._set_levels(sig, "gaussian")


class ResidualBank:
    """R2R pairs for correlated real noise (:mod:`restore.realfit`): patches ``p`` of the photos'
    channels (opponent for RGB), ``z`` a patch of some photo's noise residual (same channel,
    random place, rotated, scaled by the ratio of the two photos' residual stds), and
    ``a`` log-uniform in [``a_min``, ``a_max``].

    Batches: ``{"noisy": p + a z, "target": p - z / a, "sigma": s sqrt(1 + a^2)}``
    (``s``: the patch photo's residual std in that channel).  Only noisy photos are used.
    ``route``: the real-noise route ``y (C, H, W) -> x`` whose residuals fill the bank.
    """

    noise = "gaussian"
    recorrupted = True

    def __init__(self, path, patch: int, batch_size: int, route=None, a_min: float = 0.5, a_max: float = 2.0):
        from restore.realfit import route_residuals, to_channels

        if route is None:
            from restore.api import _run_real, select_model

            base = select_model(3, device="cpu", noise="real")

            def route(y):
                return _run_real(base, y, "gaussian", {"tile": 512, "overlap": 64, "progress": None})[0]

        photos, _ = load_folder(path, 3, min_size=patch)
        self.images, self.residuals, self.stds = [], [], []
        for im in photos:
            y = torch.from_numpy(im)
            _, r, s = route_residuals(y, route)
            self.images.append(to_channels(y))
            self.residuals.append(r)
            self.stds.append(s)
        self.patch, self.batch_size = patch, batch_size
        self.log_a = (float(np.log(a_min)), float(np.log(a_max)))
        self.sigma_min = float(min(min(s) for s in self.stds)) * float(np.sqrt(1 + a_min**2))
        self.level_range = None

    def _crop(self, img: torch.Tensor, k: int, rng) -> torch.Tensor:
        _, h, w = img.shape
        i, j = rng.integers(h - self.patch + 1), rng.integers(w - self.patch + 1)
        return img[k, i : i + self.patch, j : j + self.patch]

    def batch(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        ins, tgts, sig = [], [], []
        n = len(self.images)
        for _ in range(self.batch_size):
            i, j = int(rng.integers(n)), int(rng.integers(n))
            k = int(rng.integers(self.images[i].shape[0]))
            p = self._crop(self.images[i], k, rng)
            z = torch.rot90(self._crop(self.residuals[j], k, rng), int(rng.integers(4)), (0, 1))
            z = z * (self.stds[i][k] / max(self.stds[j][k], 1e-6))
            a = float(np.exp(rng.uniform(*self.log_a)))
            ins.append((p + a * z)[None])
            tgts.append((p - z / a)[None])
            sig.append(self.stds[i][k] * float(np.sqrt(1 + a * a)))
        return {"noisy": torch.stack(ins), "target": torch.stack(tgts), "sigma": torch.tensor(sig, dtype=torch.float32)}
