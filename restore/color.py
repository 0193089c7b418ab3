"""An orthonormal opponent colour transform for denoising RGB with a grey model.

White Gaussian noise of std sigma on each RGB channel stays white Gaussian
with the same std under an orthonormal transform, and the three opponent
channels are far less correlated than R, G and B (the luminance carries the
structure, the two chroma channels are smooth).  CBM3D uses the same idea.

Each channel is then mapped affinely into [0, 1] (so a grey model trained on
[0, 1] images applies); channel k's noise std becomes ``sigma / SCALE[k]``.
Shapes: ``(3, H, W)`` tensors, values in [0, 1].
"""
from __future__ import annotations

import math

import torch

_S3, _S2, _S6 = math.sqrt(3), math.sqrt(2), math.sqrt(6)
#: Rows: luminance (R+G+B)/sqrt3, red-blue (R-B)/sqrt2, green-magenta (R-2G+B)/sqrt6.
OPPONENT = torch.tensor([[1 / _S3, 1 / _S3, 1 / _S3], [1 / _S2, 0.0, -1 / _S2], [1 / _S6, -2 / _S6, 1 / _S6]])
#: Per-channel ranges of OPPONENT @ rgb for rgb in [0, 1]^3: (offset, scale) map them onto [0, 1].
OFFSET = torch.tensor([0.0, 1 / _S2, 1 / _S6 * 2])
SCALE = torch.tensor([_S3, _S2, 4 / _S6])


def orthonormal_forward(x: torch.Tensor, matrix, offset, scale) -> torch.Tensor:
    """``(C, H, W)`` -> ``(K, H, W)``: ``(matrix @ x + offset) / scale`` per pixel (channel k
    mapped affinely into [0, 1]; its noise std becomes ``sigma / scale[k]``)."""
    o = torch.einsum("kc,chw->khw", matrix.type_as(x), x)
    return (o + offset.type_as(x)[:, None, None]) / scale.type_as(x)[:, None, None]


def orthonormal_inverse(z: torch.Tensor, matrix, offset, scale) -> torch.Tensor:
    """Inverse of :func:`orthonormal_forward` for an orthonormal ``matrix`` (its transpose)."""
    o = z * scale.type_as(z)[:, None, None] - offset.type_as(z)[:, None, None]
    return torch.einsum("kc,khw->chw", matrix.type_as(z), o)


def rgb_to_opponent(x: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` RGB in [0, 1] -> ``(3, H, W)`` opponent channels in [0, 1]."""
    return orthonormal_forward(x, OPPONENT, OFFSET, SCALE)


def opponent_to_rgb(z: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_opponent` (the matrix is orthonormal: its transpose)."""
    return orthonormal_inverse(z, OPPONENT, OFFSET, SCALE)


def opponent_sigmas(sigma) -> list[float]:
    """Noise std of each opponent channel for white RGB noise of std ``sigma``, or of
    stds ``(sigma_R, sigma_G, sigma_B)``: the diagonal of ``O diag(sigma^2) O^T`` (the
    small cross-channel correlation that unequal stds create is ignored, as CBM3D does)."""
    s2 = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1) ** 2
    if s2.numel() not in (1, 3):
        raise ValueError(f"one sigma or three (R, G, B) are needed, got {s2.numel()}")
    var = (OPPONENT.double() ** 2) @ s2.expand(3)
    return [float(v) for v in var.sqrt() / SCALE.double()]

