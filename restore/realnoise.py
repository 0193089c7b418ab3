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
from restore.noise import estimate_channel_sigmas

GaussianDenoiser = Callable[[torch.Tensor, object], torch.Tensor]


def pd_subimages(y: torch.Tensor, stride: int, sigma_scale: float) -> tuple[torch.Tensor, list[list[float]]]:
    """The ``stride^2`` PD sub-images of ``y`` ``(C, H, W)`` (reflect-padded to a multiple), as
    ``(stride^2, C, h, w)``, and each one's per-channel wavelet-MAD sigma x ``sigma_scale``."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    yp, _ = pad_to_multiple(y[None], stride)
    subs = pd_to_batch(yp, stride)
    return subs, [[v * sigma_scale for v in estimate_channel_sigmas(sub)] for sub in subs]


def pd_gaussian(run_gaussian: GaussianDenoiser, y: torch.Tensor, *, stride: int = 2, sigma_scale: float = 1.3,
                enhance: bool = True) -> tuple[torch.Tensor, list[float]]:
    """Denoise correlated noise: PD_stride -> white-Gaussian denoiser per sub-image (its own
    per-channel sigmas x ``sigma_scale``) -> PD^-1 -> optional full-resolution pass at the
    residual noise level.  Returns ``(x_hat, sigma)``: the mean per-channel sigma used on the
    sub-images (``[0, 1]`` units)."""
    c, h, w = y.shape
    subs, used = pd_subimages(y, stride, sigma_scale)
    outs = [run_gaussian(sub, s if c == 3 else s[0]) for sub, s in zip(subs, used)]
    x = pd_from_batch(torch.stack(outs), stride)[0, :, :h, :w]
    if enhance:
        s = estimate_channel_sigmas(x)
        x = run_gaussian(x.contiguous(), s if c == 3 else s[0])
    return x, torch.tensor(used).mean(0).tolist()
