"""Real (spatially correlated) sRGB noise through a white-Gaussian denoiser.

Zhou et al. (AAAI 2019, "When AWGN-based denoiser meets real noises"):
camera noise after demosaicking and the ISP is correlated over a few pixels,
which a denoiser trained for white noise leaves in place.  Pixel-shuffle
down-sampling with stride ``s`` (:func:`restore.blindspot.pd_to_batch`) puts
neighbours ``s`` pixels apart, where the noise is close to white; each of the
``s^2`` sub-images is denoised as white Gaussian noise with its own estimated
sigma, the sub-images are shuffled back, and an optional second pass at full
resolution (SDAP's "enhancement") removes the residual grid artefacts.

``sigma_scale`` multiplies the estimated sigma of each sub-image: real noise is
not Gaussian and is signal dependent, and a wavelet-MAD estimate of the
sub-images' noise under-reports what the denoiser should remove (measured on
sidd12, see recipes/bench-real-sidd12.yaml).

Shapes: ``y`` is ``(C, H, W)`` in [0, 1]; ``run_gaussian(t, sigma)`` denoises a
``(C, h, w)`` image with white Gaussian noise of std ``sigma`` (or one per channel).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from restore.blindspot import pad_to_multiple, pd_from_batch, pd_to_batch
from restore.noise import estimate_sigma

GaussianDenoiser = Callable[[torch.Tensor, object], torch.Tensor]


def channel_sigmas(y: torch.Tensor) -> list[float]:
    """Wavelet-MAD noise std of each channel of ``y`` (C, H, W)."""
    return [float(estimate_sigma(y[k : k + 1][None])[0]) for k in range(y.shape[0])]


def pd_gaussian(run_gaussian: GaussianDenoiser, y: torch.Tensor, *, stride: int = 2, sigma_scale: float = 1.3,
                enhance: bool = True) -> tuple[torch.Tensor, list[float]]:
    """Denoise correlated noise: PD_stride -> white-Gaussian denoiser per sub-image (its own
    per-channel sigmas x ``sigma_scale``) -> PD^-1 -> optional full-resolution pass at the
    residual noise level.  Returns ``(x_hat, sigma)``: the mean per-channel sigma used on the
    sub-images (``[0, 1]`` units)."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    c, h, w = y.shape
    yp, _ = pad_to_multiple(y[None], stride)
    subs = pd_to_batch(yp, stride)
    outs, used = [], []
    for sub in subs:
        s = [v * sigma_scale for v in channel_sigmas(sub)]
        used.append(s)
        outs.append(run_gaussian(sub, s if c == 3 else s[0]))
    x = pd_from_batch(torch.stack(outs), stride)[0, :, :h, :w]
    if enhance:
        x = run_gaussian(x.contiguous(), _residual_sigma(x))
    mean = torch.tensor(used).mean(0).tolist()
    return x, mean


def _residual_sigma(x: torch.Tensor):
    s = channel_sigmas(x)
    return s if x.shape[0] == 3 else s[0]
