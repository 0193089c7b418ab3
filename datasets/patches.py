"""Patch datasets for self-supervised training.

Two sources, both yielding only *noisy* images to the method:

* :class:`NoisyFolder` — a folder of noisy images (the real use case): random
  patches with flips and 90-degree rotations; the noise level is unknown
  unless given.
* :class:`SyntheticNoisy` — for experiments and shipped-weight recipes: a
  folder of clean images is corrupted on the fly with Gaussian noise of a
  random level drawn per patch (log-uniform in ``sigma_range``).  The clean
  patch never leaves the dataset; a batch holds ``noisy`` and ``sigma`` only.

Batches are dicts ``{"noisy": (B, C, P, P) float32, "sigma": (B,) float32}``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from restore.io import list_images, read_image


def load_folder(path, channels: int, *, max_images: int | None = None) -> list[np.ndarray]:
    """Read every image under ``path`` (a folder or a list of folders) as float32
    ``(C, H, W)`` with ``channels`` channels."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    files = [p for p in list_images([str(p) for p in paths]) if p.is_file()]
    if max_images:
        files = files[:max_images]
    images = []
    for f in files:
        img = read_image(f).data  # (H, W, C) in [0, 1]
        if channels == 1 and img.shape[2] == 3:
            img = (img @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        elif channels == 3 and img.shape[2] == 1:
            img = np.repeat(img, 3, axis=2)
        images.append(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))
    if not images:
        raise ValueError(f"{path}: no images found — give a folder of PNG/JPEG/TIFF/.npy files")
    return images


def random_patches(
    images: list[np.ndarray], n: int, patch: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` random ``(C, patch, patch)`` crops with random flips/rotations, stacked."""
    out = []
    for _ in range(n):
        img = images[rng.integers(len(images))]
        _, h, w = img.shape
        if h < patch or w < patch:
            raise ValueError(f"training image of size {h}x{w} is smaller than the patch size {patch}")
        i = rng.integers(h - patch + 1)
        j = rng.integers(w - patch + 1)
        p = img[:, i : i + patch, j : j + patch]
        p = np.rot90(p, k=int(rng.integers(4)), axes=(1, 2))
        if rng.integers(2):
            p = p[:, :, ::-1]
        out.append(np.ascontiguousarray(p))
    return np.stack(out)


class NoisyFolder:
    """Random patches from a folder of noisy images (no clean image anywhere).

    Args:
        path: folder of noisy images.
        channels: 1 (grey) or 3 (colour).
        patch: patch side in pixels.
        batch_size: patches per batch.
        sigma: the known Gaussian noise level in [0, 1] units, or None to
            estimate it per image once at load time.
    """

    def __init__(self, path, channels: int, patch: int, batch_size: int, sigma: float | None = None):
        self.images = load_folder(path, channels)
        self.patch, self.batch_size = patch, batch_size
        if sigma is None:
            from restore.noise import estimate_sigma

            self.sigmas = np.array(
                [float(estimate_sigma(torch.from_numpy(im)[None])[0]) for im in self.images], np.float32
            )
        else:
            self.sigmas = np.full(len(self.images), sigma, np.float32)

    def batch(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        idx = rng.integers(len(self.images), size=self.batch_size)
        noisy = np.concatenate([random_patches([self.images[i]], 1, self.patch, rng) for i in idx])
        return {"noisy": torch.from_numpy(noisy), "sigma": torch.from_numpy(self.sigmas[idx])}


class SyntheticNoisy:
    """Clean folder + on-the-fly Gaussian noise; yields noisy patches only.

    Args:
        path: folder of clean images.
        channels: 1 or 3.
        patch, batch_size: as in :class:`NoisyFolder`.
        sigma_range: ``(lo, hi)`` in [0, 1] units; levels are log-uniform.
    """

    def __init__(self, path, channels: int, patch: int, batch_size: int, sigma_range=(5 / 255, 50 / 255)):
        self.images = load_folder(path, channels)
        self.patch, self.batch_size = patch, batch_size
        self.log_lo, self.log_hi = math.log(sigma_range[0]), math.log(sigma_range[1])

    def batch(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        clean = random_patches(self.images, self.batch_size, self.patch, rng)
        sigma = np.exp(rng.uniform(self.log_lo, self.log_hi, self.batch_size)).astype(np.float32)
        noise = rng.standard_normal(clean.shape, dtype=np.float32)
        noisy = clean + sigma[:, None, None, None] * noise
        return {"noisy": torch.from_numpy(noisy), "sigma": torch.from_numpy(sigma)}


def make_dataset(cfg: dict):
    """Build a dataset from a recipe's ``data`` section."""
    kind = cfg.get("kind", "noisy")
    common = dict(channels=int(cfg.get("channels", 1)), patch=int(cfg.get("patch", 96)),
                  batch_size=int(cfg.get("batch_size", 8)))
    if kind == "synthetic":
        lo, hi = cfg.get("sigma_range", [5, 50])
        scale = 255.0 if hi > 1 else 1.0
        return SyntheticNoisy(cfg["path"], sigma_range=(lo / scale, hi / scale), **common)
    if kind == "noisy":
        sigma = cfg.get("sigma")
        if sigma is not None and sigma > 1:
            sigma = sigma / 255.0
        return NoisyFolder(cfg["path"], sigma=sigma, **common)
    raise ValueError(f"unknown dataset kind {kind!r}; use 'noisy' or 'synthetic'")
