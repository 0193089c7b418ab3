"""Denoising cubes and single-channel images larger than memory, file to file.

:func:`open_lazy` opens an input without reading it (zarr, .npy memmap, TIFF
through tifffile's zarr view; .mat/ENVI cubes are read through
:func:`restore.io.hsi.read_cube`); 2-D images become one-band cubes.
:func:`denoise_file` runs a method's tile function (:mod:`restore.hsi.tilefns`)
with the local or the Dask engine (:mod:`restore.hsi.engine`) and streams the
result into ``.zarr``, ``.tif`` or ``.npy`` (float32; written under a temporary
name and renamed when complete; an existing output or the input itself is never
overwritten); small outputs in other cube formats (.mat, .hdr) are written
through :func:`restore.io.hsi.write_cube`.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from .engine import ENGINES, run_dask, run_local

__all__ = ["open_lazy", "denoise_file", "METHODS", "STREAM_EXTENSIONS"]

METHODS = ("bandwise", "bandwindow", "subspace")
STREAM_EXTENSIONS = (".zarr", ".tif", ".tiff", ".npy")
#: Cubes up to this many voxels may use the (in-memory) subspace method.
SUBSPACE_MAX_VOXELS = 200_000_000


class Bands:
    """A (1, H, W) view of a 2-D array-like (read and write), so images run as one-band cubes."""

    def __init__(self, a: Any):
        self.a = a
        self.shape = (1, *a.shape)
        self.dtype = np.dtype(a.dtype)
        self.ndim = 3

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (3 - len(key))
        return np.asarray(self.a[key[1], key[2]])[None][key[0]]

    def __setitem__(self, key, value):
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (3 - len(key))
        self.a[key[1], key[2]] = np.asarray(value)[0]


def open_lazy(path: str | Path) -> tuple[Any, dict]:
    """``(cube (B, H, W) array-like, info)`` without reading the data where the format allows.

    ``info``: ``{"image": True}`` for 2-D inputs, ``wavelengths``, ``meta``."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    ext = p.suffix.lower()
    a: Any
    if ext == ".zarr":
        import zarr

        a = zarr.open_array(str(p), mode="r")
        attrs = dict(a.attrs)
        info = {"wavelengths": attrs.get("wavelengths"), "meta": attrs.get("meta", {})}
    elif ext == ".npy":
        a, info = np.load(p, mmap_mode="r"), {}
    elif ext in (".tif", ".tiff"):
        import tifffile
        import zarr

        from restore.io.hsi import read_cube

        with tifffile.TiffFile(p) as tf:
            small = tf.series[0].size * tf.series[0].dtype.itemsize < 256 * 2**20
            flat = len(tf.series[0].shape) == 2
        if small and flat:
            a, info = tifffile.imread(p), {}
        elif small:  # small files: the full reader (band axis and wavelengths from the description)
            c = read_cube(p)
            a, info = c.data, {"wavelengths": c.wavelengths, "meta": c.meta}
        else:
            a, info = zarr.open(tifffile.imread(p, aszarr=True), mode="r"), {}
    else:
        from restore.io.hsi import read_cube

        c = read_cube(p)
        a, info = c.data, {"wavelengths": c.wavelengths, "meta": c.meta}
    if a.ndim == 2:
        return Bands(a), {**info, "image": True}
    if a.ndim != 3:
        raise ValueError(f"{p}: expected an image (H, W) or a cube (bands, H, W), got shape {tuple(a.shape)}")
    return a, {**info, "image": False}


def _new_output(path: Path, shape, image: bool, chunks):
    """A temporary output array for ``path``: (zarr array or memmap, tmp path)."""
    ext = path.suffix.lower()
    tmp = path.with_name(f".{path.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    arr_shape = tuple(shape[1:]) if image else tuple(shape)
    if ext == ".npy":
        return np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=arr_shape), tmp
    import zarr

    ch = tuple(chunks[1:]) if image else tuple(chunks)
    return zarr.open_array(str(tmp), mode="w", shape=arr_shape, dtype=np.float32, chunks=ch, fill_value=0.0), tmp


def _zarr_to_tiff(src: Path, dst_tmp: Path, image: bool, tile: int = 256) -> None:
    import tifffile
    import zarr

    z = zarr.open_array(str(src), mode="r")
    shape = z.shape

    def tiles():
        planes = [None] if image else range(shape[0])
        H, W = shape[-2:]
        for b in planes:
            for i in range(0, H, tile):
                for j in range(0, W, tile):
                    block = np.asarray(z[i:i + tile, j:j + tile] if b is None else z[b, i:i + tile, j:j + tile])
                    full = np.zeros((tile, tile), np.float32)
                    full[:block.shape[0], :block.shape[1]] = block
                    yield full

    tifffile.imwrite(dst_tmp, tiles(), shape=shape, dtype=np.float32, tile=(tile, tile),
                     photometric="minisblack", planarconfig=None if image else "separate", bigtiff=True)


def denoise_file(src: str | Path, dst: str | Path, *, method: str = "bandwise", sigma=None, model=None,
                 engine: str = "local", workers: int = 0, address: str | None = None,
                 tile: tuple[int, int, int] = (32, 512, 512), halo: int | None = None,
                 device: str = "cpu", log=print) -> dict:
    """Denoise ``src`` (cube or 2-D image, any size) into ``dst``; returns a summary dict.

    Args:
        method: ``bandwise`` (the 2-D grey model on each band), ``bandwindow`` (a model from
            ``restore cube train`` given as ``model``), ``subspace`` (in memory; cubes up to
            :data:`SUBSPACE_MAX_VOXELS`).
        sigma: noise std per band (B,) or one number in the data's units; None = per-band estimate
            on a central 1024x1024 window.
        engine: ``local`` or ``dask`` (``workers`` local processes or a scheduler ``address``).
        tile: (bands, rows, columns) tile size; ``halo``: pixel halo (default: the method's).
    """
    from .bandwindow import regression_weights
    from .fit import cube_sigmas, load_bandwindow
    from .tilefns import PIXEL_HALO, bandwindow_fn, bandwise_fn

    src, dst = Path(src), Path(dst)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if dst.exists():
        raise FileExistsError(f"{dst}: exists; outputs are never overwritten (remove it or pick another name)")
    if dst.resolve() == src.resolve():
        raise ValueError(f"{dst}: is the input; outputs are never written over inputs")
    cube, info = open_lazy(src)
    B, H, W = (int(s) for s in cube.shape)
    t0 = time.perf_counter()
    sig = cube_sigmas(cube) if sigma is None else np.broadcast_to(np.asarray(sigma, np.float64), (B,)).copy()
    t_sigma = time.perf_counter() - t0
    ext = dst.suffix.lower()
    dst.parent.mkdir(parents=True, exist_ok=True)
    summary = {"input": str(src), "output": str(dst), "shape": [B, H, W], "method": method, "engine": engine,
               "sigma_mean": float(np.mean(sig)), "sigma_seconds": t_sigma}
    t1 = time.perf_counter()
    if method == "subspace":
        if B * H * W > SUBSPACE_MAX_VOXELS:
            raise ValueError(f"{src}: {B}x{H}x{W} is too large for the in-memory subspace method; "
                             f"use --method bandwindow (restore cube train) or bandwise")
        from restore.io.hsi import HSICube, write_cube

        from .subspace import subspace_denoise

        res = subspace_denoise(np.asarray(cube[...], np.float32), sigma=sig, device=device)
        tmp = dst.with_name(f".{dst.name}.partial{dst.suffix}")
        write_cube(tmp, HSICube(res[0] if info.get("image") else res, info.get("wavelengths"), {}))
        os.replace(tmp, dst)
    else:
        if method == "bandwise":
            fn, reach, mult = bandwise_fn(sig, model=model, device=device, halo=PIXEL_HALO if halo is None else halo)
        else:
            if model is None:
                raise ValueError("--method bandwindow needs --model M.safetensors (train one with 'restore cube train')")
            net = load_bandwindow(model)
            beta = regression_weights(cube) if net.regression else None
            fn, reach, mult = bandwindow_fn(net, sig, beta=beta, device=device)
            if halo is not None:
                reach = (reach[0], halo, halo)
            if net.regression:
                tile = (B, *tile[1:])  # whole spectra
        t = (min(B, max(tile[0], 4 * reach[0] + 1)), tile[1], tile[2])
        chunks = (min(B, 16), min(H, 512), min(W, 512))
        image = bool(info.get("image"))
        if ext not in STREAM_EXTENSIONS:
            raise ValueError(f"{dst}: stream large results to .zarr, .tif or .npy (got {ext!r})")
        if engine == "dask" and ext == ".npy":
            raise ValueError(f"{dst}: the dask engine writes .zarr or .tif, not .npy")
        stage = dst if ext == ".zarr" else dst.with_name(f".{dst.name}.zarr")
        if engine == "local":
            out, tmp = _new_output(dst if ext == ".npy" else stage, (B, H, W), image, chunks)
            run_local(fn, cube, Bands(out) if image else out, tile=t, halo=reach, multiple=mult)
            if isinstance(out, np.memmap):
                out.flush()
                del out
        else:
            tmp = stage.with_name(f".{stage.name}.partial")
            if tmp.exists():
                shutil.rmtree(tmp)
            run_dask(fn, cube, str(tmp), tile=t, halo=reach, multiple=mult, workers=workers, address=address, squeeze_band=image)
        if ext == ".zarr":
            import zarr

            zarr.open_array(str(tmp), mode="r+").attrs.update(
                {"band_axis": 0, "wavelengths": None if info.get("wavelengths") is None
                 else [float(w) for w in info["wavelengths"]], "meta": {"denoised": summary}})
            os.replace(tmp, dst)
        elif ext == ".npy":
            os.replace(tmp, dst)
        else:  # TIFF: stream the staged zarr into tiles, then rename
            ttmp = dst.with_name(f".{dst.name}.partial.tif")
            _zarr_to_tiff(tmp, ttmp, image)
            os.replace(ttmp, dst)
            shutil.rmtree(tmp)
    summary["seconds"] = time.perf_counter() - t1
    summary["s_per_megavoxel"] = summary["seconds"] / (B * H * W / 1e6)
    log(f"{src} -> {dst}  {B}x{H}x{W}  {method}/{engine}  {summary['seconds']:.1f} s "
        f"({summary['s_per_megavoxel']:.3f} s per megavoxel)")
    return summary
