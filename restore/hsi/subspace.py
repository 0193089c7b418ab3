"""Subspace denoising of hyperspectral cubes (the FastHyDe recipe, with our 2-D denoiser).

A cube's spectra live near a low-dimensional subspace.  With per-band noise
levels ``sigma_b`` (estimated by wavelet MAD when not given; band-varying
noise is the rule in real sensors), the cube is whitened band by band, its
principal subspace is found by SVD, the ``k`` eigen-images (k from the
Marchenko-Pastur edge of the whitened noise, unless given) are denoised one by
one with the shipped grey model (their noise is white with unit std after
whitening), and the cube is reconstructed and un-whitened.  Cubes are (B, H, W)
float arrays; values in any units (noise levels in the same units).
"""
from __future__ import annotations

import numpy as np

__all__ = ["band_sigmas", "signal_rank", "subspace_denoise"]


def band_sigmas(cube) -> np.ndarray:
    """Per-band Gaussian noise std (B,), wavelet MAD on the finest diagonal detail of each band."""
    import torch

    from restore.noise.estimate import estimate_sigma_mad

    c = np.array(cube, np.float32)  # a writable copy (memmaps are read-only)
    return estimate_sigma_mad(torch.from_numpy(c)[:, None]).flatten().numpy().astype(np.float64)


def signal_rank(eigenvalues: np.ndarray, n_pixels: int, *, margin: float = 1.1) -> int:
    """Number of eigenvalues of the whitened covariance above ``margin`` x the Marchenko-Pastur edge
    ``(1 + sqrt(B / N))^2`` (the largest eigenvalue pure unit noise produces), at least 1."""
    b = len(eigenvalues)
    edge = (1 + np.sqrt(b / max(n_pixels, 1))) ** 2
    return max(1, int(np.sum(np.asarray(eigenvalues) > margin * edge)))


def subspace_denoise(cube, *, sigma=None, rank: int | None = None, model=None, device: str = "cpu",
                     return_info: bool = False):
    """Denoise a (B, H, W) cube in its signal subspace.

    Args:
        cube: (B, H, W) array.
        sigma: noise std per band (B,) or one number; None = estimated per band (:func:`band_sigmas`).
        rank: subspace dimension k; None = chosen by :func:`signal_rank`.
        model: a grey model file for the eigen-images (default: the shipped one).
    Returns the denoised cube (float32), and with ``return_info`` also ``{"rank", "sigmas"}``.
    """
    from restore.api import denoise

    y = np.asarray(cube, np.float64)
    if y.ndim != 3:
        raise ValueError(f"cube must be (bands, rows, columns), got shape {y.shape}")
    B, H, W = y.shape
    s = band_sigmas(y) if sigma is None else np.broadcast_to(np.asarray(sigma, np.float64), (B,)).copy()
    s = np.maximum(s, 1e-12)
    yw = (y / s[:, None, None]).reshape(B, -1)
    mean = yw.mean(axis=1, keepdims=True)
    U, S, _ = np.linalg.svd(yw - mean, full_matrices=False)
    ev = S**2 / yw.shape[1]
    k = min(B, int(rank)) if rank else signal_rank(ev, yw.shape[1])
    E = U[:, :k]  # (B, k) orthonormal: the eigen-images keep unit white noise
    Z = (E.T @ (yw - mean)).reshape(k, H, W)
    Zd = np.empty_like(Z)
    for i in range(k):
        lo, hi = float(Z[i].min()), float(Z[i].max())
        span = max(hi - lo, 1e-12)
        zi = ((Z[i] - lo) / span).astype(np.float32)
        Zd[i] = denoise(zi, noise=1.0 / span, model=model, device=device).astype(np.float64) * span + lo
    out = ((E @ Zd.reshape(k, -1) + mean) * s[:, None]).reshape(B, H, W).astype(np.float32)
    return (out, {"rank": k, "sigmas": s}) if return_info else out
