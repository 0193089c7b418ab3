"""Synthetic noisy images and cubes of any size, written chunk by chunk into zarr (bounded memory).

The clean signal is a sum of smooth ramps and sinusoids with sharp-edged discs (images) times a
few smooth spectra (cubes); the noise is Gaussian with std ``sigma``; each chunk has its own seed,
so a store is reproducible and never needs the whole array in memory.

    python -m datasets.synthetic_large image 20000 20000 OUT.zarr [--sigma 0.1]
    python -m datasets.synthetic_large cube 200 2000 2000 OUT.zarr
"""
from __future__ import annotations

import argparse

import numpy as np


def _clean(i0: int, j0: int, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[i0:i0 + h, j0:j0 + w].astype(np.float32)
    v = 0.5 + 0.2 * np.sin(xx / 37.0) * np.cos(yy / 53.0) + 0.1 * np.sin((xx + yy) / 11.0)
    disc = ((xx % 256 - 128) ** 2 + (yy % 256 - 128) ** 2) < 60 ** 2
    return (v + 0.2 * disc).astype(np.float32) / 1.2


def write_image(path: str, H: int, W: int, *, sigma: float = 0.1, chunk: int = 1024, seed: int = 0) -> None:
    import zarr

    z = zarr.open_array(path, mode="w-", shape=(H, W), chunks=(chunk, chunk), dtype="f4")
    for i in range(0, H, chunk):
        for j in range(0, W, chunk):
            h, w = min(chunk, H - i), min(chunk, W - j)
            rng = np.random.default_rng([seed, i, j])
            z[i:i + h, j:j + w] = _clean(i, j, h, w) + sigma * rng.standard_normal((h, w), np.float32)


def write_cube(path: str, B: int, H: int, W: int, *, sigma: float = 0.1, chunk: int = 512, seed: int = 0) -> None:
    import zarr

    z = zarr.open_array(path, mode="w-", shape=(B, H, W), chunks=(min(B, 16), chunk, chunk), dtype="f4")
    t = np.linspace(0, 1, B, dtype=np.float32)
    spectra = np.stack([0.6 + 0.3 * np.sin(3 * t), 0.4 + 0.4 * t, 0.5 + 0.2 * np.cos(7 * t)])  # (3, B)
    for i in range(0, H, chunk):
        for j in range(0, W, chunk):
            h, w = min(chunk, H - i), min(chunk, W - j)
            c = _clean(i, j, h, w)
            maps = np.stack([c, c[::-1], 1 - c])  # three abundance-like maps (3, h, w)
            x = np.einsum("kb,khw->bhw", spectra, maps) / 1.5
            rng = np.random.default_rng([seed, i, j])
            z[:, i:i + h, j:j + w] = x + sigma * rng.standard_normal((B, h, w), np.float32)
    z.attrs.update({"band_axis": 0, "wavelengths": [float(400 + 2 * b) for b in range(B)]})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["image", "cube"])
    ap.add_argument("dims", nargs="+", type=int, help="H W (image) or B H W (cube)")
    ap.add_argument("out")
    ap.add_argument("--sigma", type=float, default=0.1)
    a = ap.parse_args(argv)
    if a.kind == "image":
        write_image(a.out, *a.dims, sigma=a.sigma)
    else:
        write_cube(a.out, *a.dims, sigma=a.sigma)


if __name__ == "__main__":
    main()
