"""Hyperspectral denoising: per-band noise levels and a subspace (FastHyDe-style) denoiser."""
from .subspace import band_sigmas, signal_rank, subspace_denoise

__all__ = ["band_sigmas", "signal_rank", "subspace_denoise"]
