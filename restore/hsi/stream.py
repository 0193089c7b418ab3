"""Denoising cubes and single-channel images larger than memory, file to file.

:func:`open_lazy` opens an input without reading it (zarr, .npy memmap, TIFF
through tifffile's zarr view; .mat/ENVI cubes are read through
:func:`restore.io.hsi.read_cube`); 2-D images become one-band cubes.
:func:`denoise_file` runs a method's tile function (:mod:`restore.hsi.tilefns`)
with the local or the Dask engine (:mod:`restore.hsi.engine`) and streams the
result into ``.zarr``, ``.tif`` or ``.npy`` (float32; written under a unique
temporary name, removed on failure, renamed when complete; an existing output
or the input itself is never overwritten).  Lazy inputs are :class:`LazyFile`
objects, pickled by path, so dask workers reopen the file.
"""
from __future__ import annotations

import os
import shutil
import time
import uuid
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

    @staticmethod
    def _key3(key) -> tuple:
        key = key if isinstance(key, tuple) else (key,)
        return key + (slice(None),) * (3 - len(key))

    def __getitem__(self, key):
        key = self._key3(key)
        return np.asarray(self.a[key[1], key[2]])[None][key[0]]

    def __setitem__(self, key, value):
        key = self._key3(key)
        self.a[key[1], key[2]] = np.asarray(value)[0]


class LazyFile:
    """An array in a file (zarr store, ``.npy``, large TIFF) opened on first use and read by slices;
    pickled by path, so dask workers reopen the file instead of receiving its data."""

    def __init__(self, path: str | Path, kind: str):
        self.path, self.kind, self._a = str(path), kind, None
        a = self._open()
        self.shape, self.dtype, self.ndim = tuple(int(v) for v in a.shape), np.dtype(a.dtype), len(a.shape)

    def _open(self):
        if self._a is None:
            if self.kind == "zarr":
                import zarr

                self._a = zarr.open_array(self.path, mode="r")
            elif self.kind == "npy":
                self._a = np.load(self.path, mmap_mode="r")
            else:
                import tifffile
                import zarr

                self._a = zarr.open(tifffile.imread(self.path, aszarr=True), mode="r")
        return self._a

    def __getitem__(self, key):
        return np.asarray(self._open()[key])

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_a"} | {"_a": None}


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

        try:
            attrs = dict(zarr.open_array(str(p), mode="r").attrs)
        except Exception as e:  # noqa: BLE001 - any failure is the same user error
            raise ValueError(f"{p}: not a readable zarr array ({type(e).__name__}); give a zarr array store") from None
        a, info = LazyFile(p, "zarr"), {"wavelengths": attrs.get("wavelengths"), "meta": attrs.get("meta", {})}
    elif ext == ".npy":
        try:
            a, info = LazyFile(p, "npy"), {}
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{p}: not a readable .npy file ({type(e).__name__}); save it with numpy.save") from None
    elif ext in (".tif", ".tiff"):
        import tifffile

        from restore.io.hsi import read_cube

        import logging

        quiet = logging.getLogger("tifffile")
        level, quiet.level = quiet.level, logging.CRITICAL
        try:
            with tifffile.TiffFile(p) as tf:
                if not tf.series:
                    raise ValueError("no image data")
                small = tf.series[0].size * tf.series[0].dtype.itemsize < 256 * 2**20
                flat = len(tf.series[0].shape) == 2
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{p}: not a readable TIFF ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        finally:
            quiet.level = level
        if small and flat:
            a, info = tifffile.imread(p), {}
        elif small:  # small files: the full reader (band axis and wavelengths from the description)
            c = read_cube(p)
            a, info = c.data, {"wavelengths": c.wavelengths, "meta": c.meta}
        else:
            a, info = LazyFile(p, "tiff"), {}
    else:
        from restore.io.hsi import read_cube

        c = read_cube(p)
        a, info = c.data, {"wavelengths": c.wavelengths, "meta": c.meta}
    if a.ndim == 2:
        return Bands(a), {**info, "image": True}
    if a.ndim != 3:
        raise ValueError(f"{p}: expected an image (H, W) or a cube (bands, H, W), got shape {tuple(a.shape)}")
    return a, {**info, "image": False}


def _tmp_name(path: Path, suffix: str = "") -> Path:
    """A unique hidden name next to ``path`` (this process, a random tag): never another run's."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial{suffix}")


def _publish(tmp: Path, dst: Path) -> None:
    if dst.exists():
        raise FileExistsError(f"{dst}: appeared while this ran; outputs are never overwritten (result left in {tmp})")
    os.replace(tmp, dst)


def _remove(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists():
        p.unlink()


def _new_output(path: Path, shape, image: bool, chunks):
    """A temporary output array for ``path``: (zarr array or memmap, tmp path)."""
    ext = path.suffix.lower()
    tmp = _tmp_name(path)
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
                 device: str = "cpu", log=print, opened: tuple | None = None) -> dict:
    """Denoise ``src`` (cube or 2-D image, any size) into ``dst``; returns a summary dict.

    Args:
        method: ``bandwise`` (the 2-D grey model on each band), ``bandwindow`` (a model from
            ``restore cube train`` given as ``model``), ``subspace`` (in memory; cubes up to
            :data:`SUBSPACE_MAX_VOXELS`).
        sigma: noise std per band (B,) or one number in the data's units; None = per-band estimate
            on a central 1024x1024 window.
        engine: ``local`` or ``dask`` (``workers`` local processes or a scheduler ``address``).
        tile: (bands, rows, columns) tile size; ``halo``: pixel halo (default: the method's).
        opened: ``open_lazy(src)``'s result when the caller has it already (not opened twice).
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
    cube, info = opened if opened is not None else open_lazy(src)
    B, H, W = (int(s) for s in cube.shape)
    ext = dst.suffix.lower()
    if ext not in STREAM_EXTENSIONS:
        raise ValueError(f"{dst}: write results as .zarr, .tif or .npy (got {ext!r})")
    if engine == "dask" and ext == ".npy":
        raise ValueError(f"{dst}: the dask engine writes .zarr or .tif, not .npy")
    if method == "subspace" and B < 3:
        raise ValueError(f"{src}: the subspace method needs a cube of several bands; use --method bandwise")
    if method == "subspace" and B * H * W > SUBSPACE_MAX_VOXELS:
        raise ValueError(f"{src}: {B}x{H}x{W} is too large for the in-memory subspace method; "
                         f"use --method bandwindow (restore cube train) or bandwise")
    if method == "bandwindow" and model is None:
        raise ValueError("--method bandwindow needs --model M.safetensors (train one with 'restore cube train')")
    t0 = time.perf_counter()
    sig = cube_sigmas(cube) if sigma is None else np.broadcast_to(np.asarray(sigma, np.float64), (B,)).copy()
    t_sigma = time.perf_counter() - t0
    dst.parent.mkdir(parents=True, exist_ok=True)
    summary = {"input": str(src), "output": str(dst), "shape": [B, H, W], "method": method, "engine": engine,
               "sigma_mean": float(np.mean(sig)), "sigma_seconds": t_sigma}
    image = bool(info.get("image"))
    t1 = time.perf_counter()
    temps: list[Path] = []
    try:
        if method == "subspace":
            from restore.io.hsi import HSICube, write_cube

            from .subspace import subspace_denoise

            res = subspace_denoise(np.asarray(cube[:], np.float32), sigma=sig, device=device)
            tmp = _tmp_name(dst, ext)
            temps.append(tmp)
            if ext == ".npy":
                np.save(tmp, res)
            else:
                write_cube(tmp, HSICube(res, info.get("wavelengths"), {}))
            _publish(tmp, dst)
        else:
            if method == "bandwise":
                fn, reach, mult = bandwise_fn(sig, model=model, device=device, halo=PIXEL_HALO if halo is None else halo)
            else:
                net = load_bandwindow(model)
                beta = regression_weights(cube) if net.regression else None
                fn, reach, mult = bandwindow_fn(net, sig, beta=beta, device=device)
                if halo is not None:
                    reach = (reach[0], halo, halo)
                if net.regression:
                    tile = (B, *tile[1:])  # whole spectra
            t = (min(B, max(tile[0], 4 * reach[0] + 1)), tile[1], tile[2])
            chunks = (min(B, 16), min(H, 512), min(W, 512))
            if engine == "local":
                out, tmp = _new_output(dst, (B, H, W), image, chunks)
                temps.append(tmp)
                run_local(fn, cube, Bands(out) if image else out, tile=t, halo=reach, multiple=mult)
                if isinstance(out, np.memmap):
                    out.flush()
                    del out
            else:
                tmp = _tmp_name(dst, ".zarr")
                temps.append(tmp)
                run_dask(fn, cube, str(tmp), tile=t, halo=reach, multiple=mult, workers=workers, address=address,
                         squeeze_band=image)
            if ext == ".zarr":
                import zarr

                zarr.open_array(str(tmp), mode="r+").attrs.update(
                    {"band_axis": 0, "wavelengths": None if info.get("wavelengths") is None
                     else [float(w) for w in info["wavelengths"]], "meta": {"denoised": summary}})
                _publish(tmp, dst)
            elif ext == ".npy":
                _publish(tmp, dst)
            else:  # TIFF: stream the staged zarr into tiles, then rename
                ttmp = _tmp_name(dst, ".tif")
                temps.append(ttmp)
                _zarr_to_tiff(tmp, ttmp, image)
                _publish(ttmp, dst)
    finally:
        for p in temps:
            if p.exists() and p != dst:
                _remove(p)
    summary["seconds"] = time.perf_counter() - t1
    summary["s_per_megavoxel"] = summary["seconds"] / (B * H * W / 1e6)
    log(f"{src} -> {dst}  {B}x{H}x{W}  {method}/{engine}  {summary['seconds']:.1f} s "
        f"({summary['s_per_megavoxel']:.3f} s per megavoxel)")
    return summary
