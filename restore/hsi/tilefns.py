"""Tile functions for :mod:`restore.hsi.engine`: local denoisers of (b, h, w) blocks of a cube.

Each builder returns ``(fn, halo, multiple)``: ``fn(block (b, h, w) float32, band0) -> block``,
the ``(bands, rows, columns)`` reach beyond which the function does not look (tiles overlap by
twice that), and the pixel grid tiles must start on (the network's down-sampling factor: a
strided UNet is translation-equivariant only by multiples of it).  Noise levels are per band of the whole cube (``sigmas[band0 + i]``), so a block is
denoised exactly as it would be inside the whole cube.
"""
from __future__ import annotations

import numpy as np
import torch

from restore.tiling import pad_to_multiple

__all__ = ["bandwise_fn", "bandwindow_fn", "PIXEL_HALO"]

#: Pixel halo used for the shipped 2-D model (4-level pixel-unshuffle UNet; its receptive-field
#: radius is 92 px but the weights beyond ~40 px are negligible): tiles overlap by twice this.
PIXEL_HALO = 48


def bandwise_fn(sigmas: np.ndarray, *, model=None, device: str = "cpu", batch: int = 8, halo: int = PIXEL_HALO):
    """The 2-D grey model (shipped default or ``model``) on every band independently
    (``halo=92`` makes tiled runs exactly equal to whole-band ones, at ~2x the work of 48)."""
    from restore.api import load

    r = load(model, channels=1, device=device)
    sig = np.asarray(sigmas, np.float32)

    def fn(block: np.ndarray, band0: int) -> np.ndarray:
        b = block.shape[0]
        h, w = block.shape[-2:]
        x = pad_to_multiple(torch.from_numpy(np.ascontiguousarray(block))[:, None], r.multiple)
        out = np.empty_like(block)
        with torch.inference_mode():
            for i in range(0, b, batch):
                s = torch.from_numpy(sig[band0 + i:band0 + min(b, i + batch)])
                out[i:i + len(s)] = r(x[i:i + len(s)].to(r.device), s.to(r.device))[:, 0, :h, :w].float().cpu().numpy()
        return out

    return fn, (0, int(halo), int(halo)), r.multiple


def bandwindow_fn(net, sigmas: np.ndarray, *, beta: np.ndarray | None = None, device: str = "cpu"):
    """A band-window model (:mod:`restore.hsi.bandwindow`): band reach ``k``; a ``regression``
    model reads whole spectra (tiles must hold every band) and needs the cube's ``beta``
    (:func:`restore.hsi.bandwindow.regression_weights`)."""
    from .bandwindow import denoise_bands

    net = net.to(device).eval()
    sig = np.asarray(sigmas, np.float32)
    if net.regression and beta is None:
        raise ValueError("a regression band-window model needs the cube's regression weights (beta)")
    bt = None if beta is None else torch.as_tensor(np.asarray(beta), dtype=torch.float32, device=device)
    halo = (0 if net.regression else net.k, net.radius, net.radius)  # exact: the reach of the network

    def fn(block: np.ndarray, band0: int) -> np.ndarray:
        b = block.shape[0]
        if net.regression and (band0 != 0 or b != len(sig)):
            raise ValueError("a regression band-window model needs tiles holding every band")
        x = torch.from_numpy(np.ascontiguousarray(block))[None].to(device)
        s = torch.from_numpy(sig[band0:band0 + b])[None].to(device)
        with torch.inference_mode():
            return denoise_bands(net, x, s, beta=bt)[0].float().cpu().numpy()

    return fn, halo, net.multiple
