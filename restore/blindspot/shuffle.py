"""Pixel-shuffle down-sampling and random sub-samplers of the blind-spot family.

Real sRGB noise is spatially correlated over a few pixels; splitting an image
into the ``s^2`` sub-images of a stride-``s`` grid (pixel-shuffle
down-sampling, PD, Zhou et al. AAAI 2019) puts neighbours far apart, so the
noise of each sub-image is close to pixel-independent.

* :func:`pd_down` / :func:`pd_up`: the *mosaic* form of AP-BSN — the ``s^2``
  sub-images laid out as tiles of one image, ``pad`` zero pixels between
  tiles so that a convolution never mixes two sub-images at a tile edge.
* :func:`pd_to_batch` / :func:`pd_from_batch`: the *batch* form — the
  sub-images stacked along the batch axis (no padding needed).
* :func:`random_subsample`: C-BSN's ``D_2`` — one random pixel per ``s x s``
  cell, chosen independently per cell.
* :func:`random_subsamples`: SDAP's random sub-samples generation (RSG) — a
  random permutation of every ``s x s`` cell, so the ``s^2`` sub-images use
  every pixel exactly once.

Shapes: images are ``(N, C, H, W)`` with ``H`` and ``W`` multiples of ``s``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(x: torch.Tensor, s: int) -> tuple[int, int, int, int]:
    if x.ndim != 4:
        raise ValueError(f"expected an (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    if s < 1 or h % s or w % s:
        raise ValueError(f"image {h}x{w} is not a multiple of the stride {s}; pad it first (pad_to_multiple)")
    return n, c, h, w


def pad_to_multiple(x: torch.Tensor, s: int, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``x`` (N, C, H, W) at the bottom/right to multiples of ``s``; returns it and the original (H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % s, (-w) % s
    if ph or pw:
        mode = mode if (mode != "reflect" or (ph < h and pw < w)) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def crop_to_multiple(x: torch.Tensor, s: int) -> torch.Tensor:
    """The top-left part of ``x`` (N, C, H, W) whose sides are multiples of ``s`` (training
    patches of any size then fit a stride); raises if a side is shorter than ``s``."""
    h, w = x.shape[-2:]
    if h < s or w < s:
        raise ValueError(f"patch {h}x{w} is smaller than the stride {s}")
    return x[..., : h // s * s, : w // s * s]


def pd_down(x: torch.Tensor, s: int, pad: int = 0) -> torch.Tensor:
    """Mosaic PD: ``(N, C, H, W)`` -> ``(N, C, s*(H/s + 2 pad), s*(W/s + 2 pad))``.

    Tile ``(i, j)`` of the mosaic is the sub-image ``x[..., i::s, j::s]``,
    surrounded by ``pad`` zeros."""
    n, c, h, w = _check(x, s)
    hs, ws = h // s, w // s
    sub = F.pixel_unshuffle(x, s).view(n, c * s * s, hs, ws)  # channel index: c * s^2 + i * s + j
    if pad:
        sub = F.pad(sub, (pad, pad, pad, pad))
    hp, wp = hs + 2 * pad, ws + 2 * pad
    return sub.view(n, c, s, s, hp, wp).permute(0, 1, 2, 4, 3, 5).reshape(n, c, s * hp, s * wp)


def pd_up(m: torch.Tensor, s: int, pad: int = 0) -> torch.Tensor:
    """Inverse of :func:`pd_down`: the mosaic back to the ``(N, C, H, W)`` image."""
    n, c, hm, wm = m.shape
    if hm % s or wm % s:
        raise ValueError(f"mosaic {hm}x{wm} is not a multiple of the stride {s}")
    hp, wp = hm // s, wm // s
    sub = m.reshape(n, c, s, hp, s, wp).permute(0, 1, 2, 4, 3, 5)
    if pad:
        sub = sub[..., pad : hp - pad, pad : wp - pad]
    return F.pixel_shuffle(sub.reshape(n, c * s * s, hp - 2 * pad, wp - 2 * pad), s)


def pd_to_batch(x: torch.Tensor, s: int) -> torch.Tensor:
    """Batch PD: ``(N, C, H, W)`` -> ``(N * s^2, C, H/s, W/s)``; sub-image ``k = i*s + j`` of
    image ``n`` is ``x[n, :, i::s, j::s]`` at batch index ``n * s^2 + k``."""
    n, c, h, w = _check(x, s)
    sub = F.pixel_unshuffle(x, s).view(n, c, s * s, h // s, w // s)
    return sub.transpose(1, 2).reshape(n * s * s, c, h // s, w // s)


def pd_from_batch(b: torch.Tensor, s: int) -> torch.Tensor:
    """Inverse of :func:`pd_to_batch`."""
    ns, c, hs, ws = b.shape
    if ns % (s * s):
        raise ValueError(f"batch of {ns} sub-images is not a multiple of {s * s}")
    n = ns // (s * s)
    sub = b.reshape(n, s * s, c, hs, ws).transpose(1, 2).reshape(n, c * s * s, hs, ws)
    return F.pixel_shuffle(sub, s)


def random_subsample(x: torch.Tensor, s: int = 2, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """C-BSN's random sub-sampler ``D_s``: one uniformly random pixel of every ``s x s``
    cell (independently per cell and per image, the same for all channels).

    Returns ``(sub, index)``: ``sub`` ``(N, C, H/s, W/s)`` and ``index`` ``(N, 1, H/s, W/s)``
    int64, the position ``i*s + j`` taken in each cell; :func:`subsample_at` applies the
    same choice to another image of the same size."""
    n, c, h, w = _check(x, s)
    index = torch.randint(0, s * s, (n, 1, h // s, w // s), generator=generator, device=x.device)
    return subsample_at(x, index, s), index


def subsample_at(x: torch.Tensor, index: torch.Tensor, s: int) -> torch.Tensor:
    """The pixels of ``x`` at the cell positions ``index`` (see :func:`random_subsample`)."""
    n, c, h, w = _check(x, s)
    sub = F.pixel_unshuffle(x, s).view(n, c, s * s, h // s, w // s)
    return torch.gather(sub, 2, index[:, None].expand(n, c, 1, h // s, w // s)).squeeze(2)


def random_subsamples(x: torch.Tensor, s: int = 5, generator: torch.Generator | None = None) -> torch.Tensor:
    """SDAP's random sub-samples generation: an independent random permutation of the
    ``s^2`` positions of every ``s x s`` cell; sub-image ``k`` takes the pixel at the cell's
    ``k``-th permuted position.  Returns ``(N, s^2, C, H/s, W/s)``; the ``s^2`` sub-images
    together hold every pixel of ``x`` exactly once."""
    n, c, h, w = _check(x, s)
    sub = F.pixel_unshuffle(x, s).view(n, c, s * s, h // s, w // s)
    keys = torch.rand((n, 1, s * s, h // s, w // s), generator=generator, device=x.device)
    perm = keys.argsort(dim=2)
    return torch.gather(sub, 2, perm.expand(n, c, s * s, h // s, w // s)).transpose(1, 2)
