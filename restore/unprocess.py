"""Un-processing sRGB images to linear Bayer RAW planes (after Brooks et al., "Unprocessing
Images for Learned Raw Denoising", CVPR 2019), for synthetic RAW training data and benchmarks.

sRGB in [0, 1] -> inverse sRGB transfer curve (linear light) -> inverse colour matrix
(linear sRGB -> camera RGB) -> divide by white-balance gains -> RGGB planes (R, G1,
G2, B), float (4, H/2, W/2) in [0, 1] (1 = white level).  With ``generator`` the
white-balance gains are drawn as in the paper (red 1.9-2.4, blue 1.5-1.9), otherwise
fixed mid values.  A fixed camera matrix (a typical CMOS sensor: sRGB -> camera) keeps
the benchmark deterministic.  The inverse tone curve of the paper is left out (the
sRGB curve alone is what display-referred test sets carry).
"""
from __future__ import annotations

import torch

__all__ = ["srgb_to_linear", "unprocess", "RGB_TO_CAM"]

#: linear sRGB -> camera RGB (rows sum to 1: grey stays grey before white balance).
RGB_TO_CAM = torch.tensor([[0.80, 0.16, 0.04], [0.10, 0.80, 0.10], [0.03, 0.22, 0.75]])


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """Inverse of the sRGB transfer curve (IEC 61966-2-1), elementwise on [0, 1]."""
    x = x.clamp(0, 1)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def unprocess(rgb: torch.Tensor, *, generator: torch.Generator | None = None,
              wb: tuple[float, float] | None = None) -> torch.Tensor:
    """(3, H, W) sRGB in [0, 1] (grey (1, H, W) is repeated) -> (4, H//2, W//2) RGGB planes."""
    if rgb.shape[0] == 1:
        rgb = rgb.expand(3, -1, -1)
    h, w = (s - s % 2 for s in rgb.shape[1:])
    lin = srgb_to_linear(rgb[:, :h, :w].float())
    cam = torch.einsum("kc,chw->khw", RGB_TO_CAM.type_as(lin), lin)
    if wb is None:
        if generator is not None:
            u = torch.rand(2, generator=generator)
            wb = (1.9 + 0.5 * float(u[0]), 1.5 + 0.4 * float(u[1]))
        else:
            wb = (2.15, 1.7)
    cam = cam / torch.tensor([wb[0], 1.0, wb[1]], dtype=cam.dtype)[:, None, None]
    return torch.stack([cam[0, 0::2, 0::2], cam[1, 0::2, 1::2], cam[1, 1::2, 0::2], cam[2, 1::2, 1::2]]).clamp(0, 1)
