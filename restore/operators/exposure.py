"""Exposure (low light): ``A x = gain * x + offset``, with learnable parameters for blind restoration.

GDP's low-light degradation ``y = f x + M`` (Fei et al. 2023): a global gain
``f`` and an optional additive map ``M`` of shape (H, W) shared by the
channels.  With ``learnable=True`` both are :class:`torch.nn.Parameter` and a
solver can optimise them while it restores (GDP's blind mode).  Without an
offset the operator is linear (``adjoint = gain * y``, ``pinv = y / gain``).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Operator

__all__ = ["Exposure"]


class Exposure(Operator):
    """``A x = gain * x (+ offset)``; images (N, C, H, W) in [0, 1] units.

    Args:
        gain: the exposure factor ``f`` (> 0; e.g. 0.1 for a 10x underexposed frame).
        offset: None (linear operator) or an (H, W) map ``M`` (``0.0`` gives zeros of the
            input size at the first call when learnable).
        learnable: make ``gain`` (and ``offset``) trainable parameters.
    """

    def __init__(self, gain: float = 1.0, *, offset: Tensor | float | None = None, learnable: bool = False):
        super().__init__()
        if not float(gain) > 0:
            raise ValueError(f"Exposure: gain must be > 0, got {gain}")
        g = torch.tensor(float(gain))
        self.learnable = bool(learnable)
        if learnable:
            self.gain = nn.Parameter(g)
        else:
            self.register_buffer("gain", g)
        if offset is None:
            self.offset = None
        else:
            m = torch.as_tensor(offset, dtype=torch.float32)
            if m.ndim not in (0, 2):
                raise ValueError(f"Exposure: offset must be a scalar or an (H, W) map, got {tuple(m.shape)}")
            self.offset = nn.Parameter(m.clone()) if learnable else nn.Parameter(m.clone(), requires_grad=False)
        self.linear = self.offset is None

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        y = self.gain.type_as(x) * x
        if self.offset is not None:
            m = self.offset.type_as(x)
            if m.ndim == 2 and m.shape != x.shape[-2:]:
                raise ValueError(f"Exposure: offset map {tuple(m.shape)} does not match the image {tuple(x.shape[-2:])}")
            y = y + m
        return y

    def adjoint(self, y: Tensor) -> Tensor:  # noqa: D102
        if not self.linear:
            raise NotImplementedError("Exposure with an offset is affine, not linear; no adjoint")
        return self.gain.type_as(y) * y

    def pinv(self, y: Tensor, **_: object) -> Tensor:  # noqa: D102
        if self.offset is not None:
            return (y - self.offset.type_as(y)) / self.gain.type_as(y)
        return y / self.gain.type_as(y)

    def extra_repr(self) -> str:
        off = "none" if self.offset is None else tuple(self.offset.shape)
        return f"gain={float(self.gain):.4g}, offset={off}, learnable={self.learnable}"
