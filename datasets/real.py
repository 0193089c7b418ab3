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
