"""Self-supervised spectral-spatial denoiser: each band predicted from a window of its neighbours.

Noise is independent from band to band, so a network that sees the ``2k``
neighbouring bands ``b-k..b-1, b+1..b+k`` of band ``b`` -- but not band ``b``
itself -- and is trained to output the *noisy* band ``b`` learns
``E[x_b | neighbours]``: the noisy target's noise cannot be predicted, so it
averages out of the loss (Noise2Self's J-invariance, with the band as the
hidden set).  No clean cube is needed; the model trains on the noisy cube
itself or on a folder of cubes.

The prediction ``f`` ignores band ``b``'s own measurement.  It can be put back
(``blend=True``; off by default, see :func:`denoise_bands`) by a local
linear-MMSE (Wiener) blend: with the residual ``r = y_b - f`` (prediction
error plus noise of variance ``sigma_b^2``), ``v = max(box(r^2) - sigma_b^2, 0)``
estimates the prediction error power in a 7x7 window and
``x_hat = f + v / (v + sigma_b^2) * r``; where the neighbours predict the band
well (most of a smooth spectrum) ``x_hat ~ f``, where they do not (absorption
lines, the ends of the spectrum) the band keeps its own data.

Band-varying noise: the per-band stds ``sigma_b`` (estimated per band when
not given) enter the network as constant planes, one per input band.

Shapes: cubes are (B, H, W) float in [0, 1]-like units; ``sigma`` in the same
units.  The model is local in all three axes (bands: ``k``; pixels: the
receptive field), so :func:`restore.tiling_cube.tiled_apply_cube` tiles it
exactly with ``window="crop"``, band overlap >= 2k and pixel overlap >= 2 x the
receptive-field radius.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from restore.nets.registry import register_arch
from restore.nets.unet import _Block, unet_trunk
from restore.tiling import pad_to_multiple

__all__ = ["BandWindowNet", "neighbour_index", "band_window_inputs", "wiener_blend", "denoise_bands"]


def neighbour_index(n_bands: int, k: int) -> torch.Tensor:
    """(B, 2k) long: the bands ``b-k..b-1, b+1..b+k`` of each band ``b``; a neighbour beyond the
    cube's ends is replaced by its mirror image about ``b`` (``b - o`` for ``b + o``), so the window
    never holds ``b`` itself.  Needs ``B >= 2k + 1``."""
    if n_bands < 2 * k + 1:
        raise ValueError(f"a band window of k={k} needs at least {2 * k + 1} bands, the cube has {n_bands}; "
                         f"use a smaller k or the subspace/band-wise method")
    b = torch.arange(n_bands)[:, None]
    off = torch.tensor([o for o in range(-k, k + 1) if o != 0])[None, :]
    i = b + off
    return torch.where((i < 0) | (i > n_bands - 1), b - off, i)


def regression_weights(cube, *, lam: float = 1.0, max_pixels: int = 2_000_000) -> np.ndarray:
    """(2, B, B) leave-one-band-out ridge regressions, cross-fitted on the two row parities.

    Row ``b`` of ``beta[p]`` predicts band ``b`` from all the other bands (zero diagonal),
    ``beta_b = -P[b, -b] / P[b, b]`` with ``P = (G + lam * tr(G)/B * I)^-1`` and ``G`` the band
    Gram matrix of the rows of parity ``p`` (HySime's multiple regression, ridge-regularised;
    lam=1 measured best of 1e-3..30 on samson and jasper).  A pixel on an even row is predicted with
    the weights fitted on the odd rows and vice versa, so no pixel's own noise enters the weights
    that predict it (exact J-invariance).  ``G`` is accumulated over 64x1024 blocks (on a subsampled
    row grid for cubes above ``max_pixels`` pixels): bounded memory for any cube size."""
    B, H, W = (int(v) for v in cube.shape)
    step = max(1, int(np.ceil(H * W / max_pixels)))
    step += step % 2 == 0 and step > 1  # odd stride: the subsample keeps both parities
    rows = np.arange(0, H, step)
    G, n = np.zeros((2, B, B)), np.zeros(2)
    for k in range(0, len(rows), 64):
        r = rows[k:k + 64]
        for c0 in range(0, W, 1024):
            blk = np.asarray(cube[:, int(r[0]):int(r[-1]) + 1, c0:c0 + 1024], np.float64)[:, r - r[0]]
            for p in (0, 1):
                Y = blk[:, (r % 2) == p].reshape(B, -1)
                G[p] += Y @ Y.T
                n[p] += Y.shape[1]
    beta = np.empty((2, B, B))
    for p in (0, 1):
        g = G[p] / max(n[p], 1) if n[p] else G[1 - p] / max(n[1 - p], 1)
        P = np.linalg.inv(g + lam * np.trace(g) / B * np.eye(B))
        beta[p] = -P / np.diag(P)[:, None]
        np.fill_diagonal(beta[p], 0.0)
    return beta


def band_window_inputs(cube: torch.Tensor, sigma: torch.Tensor, k: int,
                       bands: torch.Tensor | None = None, beta: torch.Tensor | None = None,
                       row0: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Network inputs for ``bands`` of a cube batch.

    Args:
        cube: (N, B, H, W); sigma: (N, B) per-band noise std; bands: (M,) band indices (default all).
        beta: (2, B, B) :func:`regression_weights`; adds a last channel, band ``b`` predicted from
            all the other bands (rows of parity p with ``beta[1 - p]``), with noise std
            ``sqrt(sum_j beta_bj^2 sigma_j^2)``.
        row0: the cube row of the batch's first row (its parity picks the weights).
    Returns ``(neigh, s)``: (N*M, 2k [+1], H, W) inputs and (N*M, 2k [+1]) their stds, ordered
    cube-major (all bands of cube 0 first).
    """
    n, B, h, w = cube.shape
    idx = neighbour_index(B, k).to(cube.device)
    if bands is not None:
        idx = idx[bands.to(cube.device)]
    m = idx.shape[0]
    neigh = cube[:, idx.reshape(-1)].reshape(n * m, 2 * k, h, w)
    s = sigma[:, idx.reshape(-1)].reshape(n * m, 2 * k)
    if beta is not None:
        bt = beta.to(cube) if bands is None else beta.to(cube)[:, bands.to(cube.device)]  # (2, M, B)
        even = ((torch.arange(h, device=cube.device) + row0) % 2 == 0)[:, None]
        reg = torch.where(even, torch.einsum("mb,nbhw->nmhw", bt[1], cube), torch.einsum("mb,nbhw->nmhw", bt[0], cube))
        reg = reg.reshape(n * m, 1, h, w)
        s_reg = torch.sqrt(0.5 * torch.einsum("pmb,nb->nm", bt**2, sigma.to(bt) ** 2)).reshape(n * m, 1)
        neigh, s = torch.cat([neigh, reg], 1), torch.cat([s, s_reg.to(s)], 1)
    return neigh, s


@register_arch
class BandWindowNet(nn.Module):
    """(N, 2k [+1], H, W) inputs + (N, 2k [+1]) their stds -> (N, 1, H, W) the centre band.

    A pixel-unshuffle UNet (as :class:`restore.nets.CompactUNet`) predicting a correction to the
    mean of the two adjacent bands, or with ``regression=True`` to the last input channel (the band
    predicted from all the other bands, :func:`regression_weights`).  H, W must be multiples of
    :attr:`multiple`.
    """

    def __init__(self, k: int = 3, widths: Sequence[int] = (32, 64), depth: int = 2, sigma_scale: float = 10.0,
                 regression: bool = False):
        super().__init__()
        self.k, self.widths, self.depth, self.sigma_scale = int(k), tuple(int(v) for v in widths), int(depth), sigma_scale
        self.regression = bool(regression)
        c_in = 2 * self.k + int(self.regression)
        self.head = _Block(4 * c_in + c_in, self.widths[0], self.depth)
        self.down = nn.ModuleList(nn.Conv2d(a, b, 2, stride=2) for a, b in zip(self.widths[:-1], self.widths[1:]))
        self.enc = nn.ModuleList(_Block(v, v, self.depth) for v in self.widths[1:])
        self.up = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(self.widths[:-1], self.widths[1:]))
        self.dec = nn.ModuleList(_Block(v, v, self.depth) for v in self.widths[:-1])
        self.tail = nn.Conv2d(self.widths[0], 4, 3, padding=1)

    @property
    def multiple(self) -> int:
        return 2 ** len(self.widths)

    @property
    def radius(self) -> int:
        """An upper bound on the receptive-field radius in pixels (measured: 20 for the default
        widths (32, 64), depth 2; this bound gives 23)."""
        L, d = len(self.widths), self.depth
        r = 1 + 2 * (2 * d + 1)  # unshuffle; head, decoder and tail convs at scale 2
        for lvl in range(1, L):
            r += 2 * 2**lvl + d * 2 ** (lvl + 1) * (2 if lvl < L - 1 else 1)
        return r

    def config(self) -> dict:
        return {"arch": "BandWindowNet", "k": self.k, "widths": list(self.widths), "depth": self.depth,
                "sigma_scale": self.sigma_scale, "regression": self.regression}

    def forward(self, neigh: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        z = F.pixel_unshuffle(neigh, 2)
        plane = (sigma * self.sigma_scale)[:, :, None, None].expand(-1, -1, *z.shape[-2:])
        h = unet_trunk(self.head(torch.cat([z, plane.to(z.dtype)], 1)), self.down, self.enc, self.up, self.dec)
        base = (neigh[:, -1:] if self.regression else
                0.5 * (neigh[:, self.k - 1:self.k] + neigh[:, self.k:self.k + 1]))
        return base + F.pixel_shuffle(self.tail(h), 2)


def wiener_blend(f: torch.Tensor, y: torch.Tensor, sigma: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Local linear-MMSE blend of a prediction ``f`` that never saw ``y`` with ``y`` itself.

    f, y: (N, 1, H, W); sigma: (N,) noise std of ``y``.  Returns (N, 1, H, W)."""
    r = y - f
    s2 = (sigma.reshape(-1, 1, 1, 1) ** 2).to(r.dtype)
    p = window // 2
    e2 = F.avg_pool2d(F.pad(r * r, (p, p, p, p), mode="reflect"), window, stride=1)
    v = (e2 - s2).clamp_min(0)
    return f + v / (v + s2 + 1e-12) * r


def denoise_bands(net: BandWindowNet, cube: torch.Tensor, sigma: torch.Tensor, *, blend: bool = False,
                  bands_per_batch: int = 8, beta: torch.Tensor | np.ndarray | None = None,
                  row0: int = 0) -> torch.Tensor:
    """Denoise every band of a cube batch. cube (N, B, H, W), sigma (N, B) -> (N, B, H, W).

    ``blend``: put each band's own data back by :func:`wiener_blend` (off by default: on samson at
    sigma 30/255 the 7x7 blend measured 32.5 dB against 35.0 dB without, a per-band global blend
    +0.08 dB -- the local error-power estimate is too noisy).  ``beta``: (2, B, B) regression
    weights for a ``regression`` network (default: :func:`regression_weights` of each cube of the
    batch, which then holds every band); ``row0``: the cube row of the batch's first row.  H, W are padded (reflect) to the network's multiple and cropped back."""
    n, B, h, w = cube.shape
    x = pad_to_multiple(cube, net.multiple)
    out = torch.empty_like(cube)
    if net.regression and beta is None:
        if n > 1:
            return torch.cat([denoise_bands(net, cube[i:i + 1], sigma[i:i + 1], blend=blend, row0=row0,
                                            bands_per_batch=bands_per_batch) for i in range(n)])
        beta = regression_weights(cube[0].cpu().numpy())
    bt = None if not net.regression else torch.as_tensor(np.asarray(beta), dtype=cube.dtype, device=cube.device)
    for b0 in range(0, B, bands_per_batch):
        bands = torch.arange(b0, min(B, b0 + bands_per_batch))
        neigh, s = band_window_inputs(x, sigma, net.k, bands, bt, row0)
        f = net(neigh.contiguous(memory_format=torch.channels_last), s)[..., :h, :w]
        f = f.reshape(n, len(bands), h, w)
        if blend:
            yb = cube[:, bands].reshape(-1, 1, h, w)
            f = wiener_blend(f.reshape(-1, 1, h, w), yb, sigma[:, bands].reshape(-1)).reshape(n, len(bands), h, w)
        out[:, bands] = f
    return out
