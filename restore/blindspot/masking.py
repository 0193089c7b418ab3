"""Noise2Void's masker: stratified pixel selection and the value replacement strategies.

Krull et al. (CVPR 2019), and the n2v library (``N2V_DataWrapper``, ``n2v_utils``):
the patch is divided into boxes of side ``round(sqrt(1 / ratio))`` and one
uniformly random pixel per box is masked (stratified: the masked pixels
cover the patch evenly).  Each masked pixel's value is replaced by:

* ``uniform_withCP``: a uniformly random pixel of the ``(2r+1)^2`` window, the
  centre included (n2v's default: the network can then not learn identity only
  on average);
* ``uniform_withoutCP``: the same without the centre (a strict blind spot);
* ``normal_withoutCP``: a pixel at a rounded Gaussian offset (std ``r / 2``,
  n2v uses a fixed 4 px), the centre excluded;
* ``mean`` / ``median``: the mean / median of the window without the centre.

Shapes: ``y`` is ``(N, C, H, W)``; masks are ``(N, 1, H, W)`` bool (the same
pixels in every channel).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

STRATEGIES = ("uniform_withCP", "uniform_withoutCP", "normal_withoutCP", "mean", "median")


def stratified_mask(shape: tuple[int, int, int, int], ratio: float,
                    generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """One random pixel per ``b x b`` box, ``b = max(1, round(sqrt(1 / ratio)))``
    (boxes clipped at the image border).  Returns ``(N, 1, H, W)`` bool."""
    if not 0 < ratio <= 1:
        raise ValueError(f"mask ratio must be in (0, 1], got {ratio}")
    n, _, h, w = shape
    b = max(1, round(math.sqrt(1.0 / ratio)))
    gh, gw = math.ceil(h / b), math.ceil(w / b)
    kw = dict(generator=generator, device=device)
    oy = (torch.rand(n, gh, gw, **kw) * b).long()
    ox = (torch.rand(n, gh, gw, **kw) * b).long()
    yy = torch.arange(gh, device=device).view(1, gh, 1) * b + oy
    xx = torch.arange(gw, device=device).view(1, 1, gw) * b + ox
    keep = (yy < h) & (xx < w)  # boxes cut by the border: drop picks that fall outside
    mask = torch.zeros(n, h * w, dtype=torch.bool, device=device)
    idx = (yy.clamp(max=h - 1) * w + xx.clamp(max=w - 1))
    mask.scatter_(1, idx.reshape(n, -1), keep.reshape(n, -1))
    return mask.view(n, 1, h, w)


def _offsets(shape, radius: int, strategy: str, generator, device) -> tuple[torch.Tensor, torch.Tensor]:
    kw = dict(generator=generator, device=device)
    if strategy == "normal_withoutCP":
        dy = (torch.randn(shape, **kw) * radius / 2).round().long().clamp(-radius, radius)
        dx = (torch.randn(shape, **kw) * radius / 2).round().long().clamp(-radius, radius)
    else:
        dy = torch.randint(-radius, radius + 1, shape, **kw)
        dx = torch.randint(-radius, radius + 1, shape, **kw)
    if strategy != "uniform_withCP":  # the centre is never taken: redraw it as a random 8-neighbour
        centre = (dy == 0) & (dx == 0)
        k = torch.randint(0, 8, shape, **kw)
        ring = torch.tensor([[-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 1], [1, -1], [1, 0], [1, 1]], device=device)
        dy = torch.where(centre, ring[k, 0], dy)
        dx = torch.where(centre, ring[k, 1], dx)
    return dy, dx


def _reflect(i: torch.Tensor, n: int) -> torch.Tensor:
    """Indices mirrored at the border (``-1 -> 1``, ``n -> n - 2``), so a non-zero offset
    never lands back on its own pixel (clamping would)."""
    if n == 1:
        return torch.zeros_like(i)
    i = i.abs()
    return torch.where(i > n - 1, 2 * (n - 1) - i, i).clamp(0, n - 1)


def replace_masked(y: torch.Tensor, mask: torch.Tensor, strategy: str = "uniform_withoutCP", radius: int = 2,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``y`` with the pixels of ``mask`` replaced by ``strategy`` (see the module docstring);
    windows are mirrored at the border (``radius`` below the image size)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown replacement strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    if radius < 1:
        raise ValueError("the replacement window radius must be at least 1")
    n, c, h, w = y.shape
    if strategy in ("mean", "median"):
        k = 2 * radius + 1
        win = F.unfold(F.pad(y, (radius,) * 4, mode="reflect" if min(h, w) > radius else "replicate"), k)
        win = win.view(n, c, k * k, h, w)
        others = torch.cat([win[:, :, : k * k // 2], win[:, :, k * k // 2 + 1:]], dim=2)
        value = others.mean(2) if strategy == "mean" else others.median(2).values
        return torch.where(mask, value, y)
    dy, dx = _offsets((n, 1, h, w), radius, strategy, generator, y.device)
    ii = _reflect(torch.arange(h, device=y.device).view(1, 1, h, 1) + dy, h)
    jj = _reflect(torch.arange(w, device=y.device).view(1, 1, 1, w) + dx, w)
    flat = (ii * w + jj).expand(n, c, h, w).reshape(n, c, -1)
    neighbour = torch.gather(y.reshape(n, c, -1), 2, flat).reshape(n, c, h, w)
    return torch.where(mask, neighbour, y)
