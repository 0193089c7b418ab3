"""Patch datasets for self-supervised training.

Two sources, both yielding only *noisy* images to the method:

* :class:`NoisyFolder` — a folder of noisy images (the real use case): random
  patches with flips and 90-degree rotations; the noise level is unknown
  unless given.
* :class:`SyntheticNoisy` — for experiments and shipped-weight recipes: a
  folder of clean images is corrupted on the fly with Gaussian, Poisson or
  Gamma noise of a random level drawn per patch (log-uniform).  The clean
  patch never leaves the dataset; a batch holds ``noisy`` and ``sigma`` only.

Batches are dicts ``{"noisy": (B, C, P, P) float32, "sigma": (B,) float32}``
(Gaussian) or ``{"noisy", "level": (B,)}`` (Poisson zeta / Gamma k).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from restore.io import list_images, read_image


#: Luma weights used to turn colour training images grey; Gaussian noise of
#: std sigma per channel becomes std sigma * |w| after the conversion.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def load_folder(path, channels: int, *, min_size: int = 0,
                max_images: int | None = None) -> tuple[list[np.ndarray], bool]:
    """Read every image under ``path`` (a folder or a list of folders) as float32
    ``(C, H, W)`` with ``channels`` channels; images smaller than ``min_size``
    on a side are skipped with a warning naming the file.  Returns the images
    and whether any colour image was converted to grey."""
    import warnings

    paths = [path] if isinstance(path, (str, Path)) else list(path)
    files = [p for p in list_images([str(p) for p in paths]) if p.is_file()]
    if max_images:
        files = files[:max_images]
    images, made_grey = [], False
    for f in files:
        img = read_image(f).data  # (H, W, C) in [0, 1]
        if min(img.shape[:2]) < min_size:
            warnings.warn(f"{f}: {img.shape[1]}x{img.shape[0]} is smaller than the {min_size}-pixel training "
                          "patch; skipped", stacklevel=2)
            continue
        if channels == 1 and img.shape[2] == 3:
            img, made_grey = (img @ LUMA)[..., None], True
        elif channels == 3 and img.shape[2] == 1:
            img = np.repeat(img, 3, axis=2)
        images.append(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))
    if not images:
        raise ValueError(f"{path}: no usable images found — give a folder of PNG/JPEG/TIFF/.npy files "
                         f"at least {min_size}x{min_size} pixels")
    return images, made_grey


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
        noise: ``"gaussian"``, ``"poisson"``, ``"gamma"``,
            ``"poisson-gaussian"``, or ``"real"`` (no noise model: for the
            blind-spot methods; batches carry ``level`` 0).  Poisson-Gaussian images are variance-
            stabilised once at load time (generalised Anscombe transform,
            scaled to ~[0, 1]) and then served as Gaussian data with
            ``sigma = sqrt(gain)/2``: a Gaussian model learns them.
        level: the known parameter (zeta, k, or ``(gain, sigma)``), or None to
            estimate it per image (:func:`restore.noise.nlf.fit_noise`).
    """

    def __init__(self, path, channels: int, patch: int, batch_size: int, sigma: float | None = None,
                 noise: str = "gaussian", level=None):
        self.images, made_grey = load_folder(path, channels, min_size=patch)
        self.patch, self.batch_size = patch, batch_size
        if noise == "real":  # model-free methods (blind-spot family): no noise parameter at all
            levels = [0.0] * len(self.images)
        elif noise == "gaussian":
            if sigma is not None and made_grey:
                sigma = sigma * float(np.linalg.norm(LUMA))  # noise std after the grey conversion
            if sigma is None:
                from restore.noise import estimate_sigma

                levels = [float(estimate_sigma(torch.from_numpy(im)[None])[0]) for im in self.images]
            else:
                levels = [sigma] * len(self.images)
        else:
            if made_grey:
                raise ValueError(f"{path}: colour images with {noise} noise: train with --channels 3 "
                                 "(a grey conversion would mix the noise)")
            from restore.noise.nlf import fit_noise

            levels = [level if level is not None else fit_noise(im, noise) for im in self.images]
            if noise == "poisson-gaussian":
                from restore.noise.vst import gat, to_unit_domain

                stabilised = []
                for i, (im, (g, s)) in enumerate(zip(self.images, levels)):
                    t, levels[i] = to_unit_domain(gat(torch.from_numpy(im).double(), g, s), g)
                    stabilised.append(t.float().numpy())
                self.images, noise = stabilised, "gaussian"
        self._set_levels(levels, noise)

    def _set_levels(self, levels, noise: str) -> None:
        """Per-image noise parameters of ``self.images`` and what methods read from them."""
        self.noise = noise
        self.levels = np.array(levels, np.float32)
        self.sigmas = self.levels
        self.sigma_min = float(self.levels.min())
        self.level_range = (float(self.levels.min()), float(self.levels.max()))

    def batch(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        idx = rng.integers(len(self.images), size=self.batch_size)
        noisy = np.concatenate([random_patches([self.images[i]], 1, self.patch, rng) for i in idx])
        out = {"noisy": torch.from_numpy(noisy), "level": torch.from_numpy(self.levels[idx])}
        if self.noise == "gaussian":
            out["sigma"] = out["level"]
        return out


class SyntheticNoisy:
    """Clean folder + on-the-fly noise of a random level; yields noisy patches only.

    Args:
        path: folder of clean images.
        channels: 1 or 3.
        patch, batch_size: as in :class:`NoisyFolder`.
        sigma_range: ``(lo, hi)`` Gaussian std in [0, 1] units (``noise="gaussian"``).
        noise: ``"gaussian"``, ``"poisson"`` (``y = zeta * Poisson(x / zeta)``)
            or ``"gamma"`` (``y = x * Gamma(k, 1/k)``).
        level_range: ``(lo, hi)`` of zeta or k for Poisson / Gamma.

    Levels are log-uniform per patch.  A batch holds ``noisy``, ``level``
    (the parameter, (B,)) and, for Gaussian noise, ``sigma`` (= ``level``).
    """

    def __init__(self, path, channels: int, patch: int, batch_size: int, sigma_range=(5 / 255, 50 / 255),
                 noise: str = "gaussian", level_range=None):
        if noise not in ("gaussian", "poisson", "gamma"):
            raise ValueError(f"unknown noise {noise!r}; use gaussian, poisson or gamma")
        self.images, _ = load_folder(path, channels, min_size=patch)
        self.patch, self.batch_size, self.noise = patch, batch_size, noise
        lo, hi = sigma_range if noise == "gaussian" else level_range
        if not 0 < lo <= hi:
            raise ValueError(f"need 0 < lo <= hi for the noise level range, got {lo}, {hi}")
        self.log_lo, self.log_hi = math.log(lo), math.log(hi)
        self.level_range = (float(lo), float(hi))
        self.sigma_min = float(lo)

    def batch(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        clean = random_patches(self.images, self.batch_size, self.patch, rng)
        level = np.exp(rng.uniform(self.log_lo, self.log_hi, self.batch_size)).astype(np.float32)
        lv = level[:, None, None, None]
        if self.noise == "gaussian":
            noisy = clean + lv * rng.standard_normal(clean.shape, dtype=np.float32)
        elif self.noise == "poisson":
            noisy = lv * rng.poisson(np.clip(clean, 0, None) / lv).astype(np.float32)
        else:
            noisy = clean * rng.gamma(lv, 1.0 / lv, clean.shape).astype(np.float32)
        out = {"noisy": torch.from_numpy(noisy.astype(np.float32)), "level": torch.from_numpy(level)}
        if self.noise == "gaussian":
            out["sigma"] = out["level"]
        return out


class CleanPatches:
    """Random clean patches (with flips and rotations), for training priors: batches ``{"clean": (B, C, P, P)}``.

    Args:
        path: folder (or list of folders) of clean images.
        channels: 1 or 3.
        patch, batch_size: patch side in pixels and patches per batch.
        scales: each image is also kept at these resolutions (area-resampled), so
            patches from large photos cover as much of a scene as patches from small ones.
    """

    def __init__(self, path, channels: int, patch: int, batch_size: int, scales=(1.0,)):
        import cv2

        images, _ = load_folder(path, channels, min_size=patch)
        self.images = []
        for img in images:
            for s in scales:
                if s == 1.0:
                    self.images.append(img)
                    continue
                h, w = round(img.shape[1] * s), round(img.shape[2] * s)
                if min(h, w) >= patch:
                    r = cv2.resize(img.transpose(1, 2, 0), (w, h), interpolation=cv2.INTER_AREA)
                    self.images.append(np.ascontiguousarray(r.reshape(h, w, -1).transpose(2, 0, 1)))
        self.patch, self.batch_size = patch, batch_size

    def batch(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        return {"clean": torch.from_numpy(random_patches(self.images, self.batch_size, self.patch, rng))}


def make_dataset(cfg: dict):
    """Build a dataset from a recipe's ``data`` section (noise levels in 8-bit units)."""
    kind = cfg.get("kind", "noisy")
    common = dict(channels=int(cfg.get("channels", 1)), patch=int(cfg.get("patch", 96)),
                  batch_size=int(cfg.get("batch_size", 8)))
    if kind == "synthetic":
        noise = cfg.get("noise", "gaussian")
        if noise == "gaussian":
            lo, hi = cfg.get("sigma_range", [5, 50])
            return SyntheticNoisy(cfg["path"], sigma_range=(lo / 255.0, hi / 255.0), **common)
        if "level_range" not in cfg:
            raise ValueError(f"data.level_range (zeta or k range) is needed for {noise} noise")
        return SyntheticNoisy(cfg["path"], noise=noise, level_range=tuple(cfg["level_range"]), **common)
    if kind == "noisy":
        noise = cfg.get("noise", "gaussian")
        if noise == "gaussian":
            sigma = cfg.get("sigma")
            return NoisyFolder(cfg["path"], sigma=None if sigma is None else sigma / 255.0, **common)
        return NoisyFolder(cfg["path"], noise=noise, level=cfg.get("level"), **common)
    if kind == "clean":  # clean images as they are (diffusion priors)
        return CleanPatches(cfg["path"], scales=tuple(cfg.get("scales", [1.0])), **common)
    if kind == "real-pd":  # real camera noise, PD sub-images as grey Gaussian data (datasets/real.py)
        from .real import PDSubimages

        return PDSubimages(cfg["path"], patch=common["patch"], batch_size=common["batch_size"],
                           stride=int(cfg.get("stride", 2)), sigma_scale=float(cfg.get("sigma_scale", 1.6)))
    if kind == "real-bank":  # correlated real noise, R2R with recorruption from a residual bank (datasets/real.py)
        from .real import ResidualBank

        return ResidualBank(cfg["path"], patch=common["patch"], batch_size=common["batch_size"])
    if kind == "raw-synthetic":  # clean sRGB -> RAW planes + sensor noise -> GAT domain (datasets/raw.py)
        from .raw import RawSynthetic

        return RawSynthetic(cfg["path"], patch=common["patch"], batch_size=common["batch_size"],
                            profile=cfg.get("profile", "SonyA7S2"), iso_range=tuple(cfg.get("iso_range", (800, 12800))),
                            ratio_range=tuple(cfg.get("ratio_range", (10, 100))), pairs=bool(cfg.get("pairs", False)),
                            max_images=cfg.get("max_images"))
    raise ValueError(f"unknown dataset kind {kind!r}; use 'noisy', 'synthetic', 'clean', 'real-pd', 'real-bank' or 'raw-synthetic'")
