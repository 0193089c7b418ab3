"""Inference of the down-sampling blind-spot networks: asymmetric PD, R^3, enhancement.

* :func:`pd_apply`: run a network on the stride-``b`` pixel-shuffle
  down-sampled image (mosaic or batch form) and shuffle the result back.
* :func:`r3_refine`: AP-BSN's random-replacing refinement: ``T`` times, keep a
  random fraction ``p`` of the noisy pixels and replace the rest by the first
  estimate, run the blind-spot network at full resolution, average.
* :func:`coordinate_uniform`: the random numbers R^3 uses are a hash of the
  *global* pixel coordinates (and the pass index), so a tiled run draws the
  same masks as a whole-image run and the two agree exactly.

Shapes: ``(N, C, H, W)``; ``origins`` lists the global ``(row, col)`` of each
batch item's top-left pixel (tiles), default ``(0, 0)``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .shuffle import pad_to_multiple, pd_down, pd_from_batch, pd_to_batch, pd_up

Net = Callable[[torch.Tensor], torch.Tensor]
_M32 = 0xFFFFFFFF


def pd_apply(net: Net, y: torch.Tensor, s: int, *, pad: int = 2, form: str = "mosaic") -> torch.Tensor:
    """``PD_s^-1(net(PD_s(y)))`` for any ``H, W`` (reflect-padded to multiples of ``s``, cropped
    back).  ``form="mosaic"`` (AP-BSN, ``pad`` zeros between sub-images) or ``"batch"`` (SDAP)."""
    if s == 1:
        return net(y)
    yp, (h, w) = pad_to_multiple(y, s)
    if form == "mosaic":
        out = pd_up(net(pd_down(yp, s, pad)), s, pad)
    elif form == "batch":
        out = pd_from_batch(net(pd_to_batch(yp, s)), s)
    else:
        raise ValueError(f"unknown PD form {form!r}; use 'mosaic' or 'batch'")
    return out[..., :h, :w]


def _mix(v: torch.Tensor) -> torch.Tensor:
    """32-bit integer finaliser (MurmurHash3 fmix32) on int64 tensors holding 32-bit values."""
    v = v ^ (v >> 16)
    v = (v * 0x85EBCA6B) & _M32
    v = v ^ (v >> 13)
    v = (v * 0xC2B2AE35) & _M32
    return v ^ (v >> 16)


def coordinate_uniform(h: int, w: int, origin: tuple[int, int] = (0, 0), *, stream: int = 0,
                       seed: int = 0, device=None) -> torch.Tensor:
    """``(h, w)`` float64 uniforms in [0, 1) that depend only on the global pixel coordinates
    ``(origin[0] + i, origin[1] + j)``, ``stream`` and ``seed`` (a counter-based hash)."""
    ii = torch.arange(h, device=device, dtype=torch.int64) + int(origin[0])
    jj = torch.arange(w, device=device, dtype=torch.int64) + int(origin[1])
    key = _mix((int(seed) * 0x27D4EB2F + int(stream) * 0x165667B1 + 0x9E3779B9) & _M32)
    v = _mix((_mix((ii[:, None] * 0x9E3779B1 + key) & _M32) ^ (jj[None, :] * 0x85EBCA77 & _M32)) & _M32)
    return v.double() / 2.0**32


def r3_refine(net: Net, y: torch.Tensor, x0: torch.Tensor, *, passes: int = 8, p: float = 0.16, pad: int = 2,
              origins: Sequence[tuple[int, int]] | None = None, seed: int = 0) -> torch.Tensor:
    """AP-BSN's R^3: ``mean_t net(M_t * y + (1 - M_t) * x0)`` with ``M_t ~ Bernoulli(p)`` per pixel
    (shared by the channels), each pass reflect-padded by ``pad`` and cropped."""
    n, _, h, w = y.shape
    origins = list(origins) if origins is not None else [(0, 0)] * n
    acc = torch.zeros_like(y)
    for t in range(passes):
        keep = torch.stack([coordinate_uniform(h, w, o, stream=t, seed=seed, device=y.device) < p
                            for o in origins])[:, None]
        mixed = torch.where(keep, y, x0)
        if pad:
            mixed = F.pad(mixed, (pad,) * 4, mode="reflect" if min(h, w) > pad else "replicate")
        out = net(mixed)
        acc += out[..., pad : pad + h, pad : pad + w] if pad else out
    return acc / passes
