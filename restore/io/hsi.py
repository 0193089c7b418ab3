"""Hyperspectral cubes: read and write with an explicit band axis and wavelengths kept.

In memory a cube is an :class:`HSICube`: ``data`` (B, H, W) (bands first; a
NumPy array, possibly a read-only memmap or a lazy zarr array for large
files), ``wavelengths`` (B,) in the file's unit or None, and ``meta``.

Formats (by extension): MATLAB ``.mat`` (scipy; v7.3/HDF5 via the optional
``h5py``), ENVI ``.hdr`` + data file (optional ``spectral``), multi-band
TIFF (tifffile), ``.npy`` (memory-mapped) and ``.zarr`` (optional ``zarr``,
lazy).  ``band_axis`` says where the bands are in the file when it cannot be
read from the file itself (``.npy``, ``.tif``, ``.mat``); our writers store
bands first and record it.  Unmixing benchmarks store ``Y`` as (B, H*W)
column-major with ``nRow``/``nCol`` (or ``lines``/``cols``): such ``.mat``
files are reshaped to (B, H, W) as MATLAB does.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_write

__all__ = ["HSICube", "read_cube", "write_cube", "HSI_EXTENSIONS"]

HSI_EXTENSIONS = (".mat", ".hdr", ".tif", ".tiff", ".npy", ".zarr")


@dataclass
class HSICube:
    """A hyperspectral cube: ``data`` (B, H, W), ``wavelengths`` (B,) or None, free-form ``meta``."""

    data: np.ndarray
    wavelengths: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def bands(self) -> int:
        return int(self.data.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.data.shape)  # type: ignore[return-value]


def _bands_first(a, band_axis: int | None, default: int):
    if a.ndim == 2:
        return a[None]
    if a.ndim != 3:
        raise ValueError(f"a cube needs 2 or 3 dimensions, got shape {tuple(a.shape)}")
    axis = default if band_axis is None else band_axis
    return np.moveaxis(a, axis, 0) if axis % 3 else a


def _scalar(v) -> int | None:
    try:
        return int(np.asarray(v).ravel()[0])
    except (TypeError, ValueError, IndexError):
        return None


def _read_mat(p: Path, key: str | None, band_axis: int | None) -> HSICube:
    with open(p, "rb") as f:
        head = f.read(512)
    if b"\x89HDF" in head[:8] or head[512 - 8:].startswith(b"\x89HDF") or b"MATLAB 7.3" in head:
        try:
            import h5py
        except ImportError:
            raise ValueError(f"{p}: a MATLAB v7.3 (HDF5) file needs the optional 'h5py' (pip install h5py)") from None
        with h5py.File(p, "r") as f:
            arrays = {k: np.asarray(f[k]).T for k in f.keys() if isinstance(f[k], h5py.Dataset)}  # MATLAB order
    else:
        import scipy.io

        try:
            arrays = {k: v for k, v in scipy.io.loadmat(p).items() if not k.startswith("__")}
        except Exception as e:  # noqa: BLE001 - any parse failure is the same user error
            raise ValueError(f"{p}: not a readable MATLAB file ({e})") from None
    numeric = {k: v for k, v in arrays.items() if isinstance(v, np.ndarray) and v.dtype.kind in "uif" and v.size > 1}
    if key is None:
        key = "Y" if "Y" in numeric else max(numeric, key=lambda k: numeric[k].size, default=None)
    if key not in numeric:
        raise ValueError(f"{p}: no numeric array {key!r}; arrays: {', '.join(sorted(numeric)) or 'none'} (give key=)")
    a = numeric[key]
    meta = {"source": str(p), "key": key}
    if a.ndim == 2:
        rows = _scalar(arrays.get("nRow", arrays.get("lines")))
        cols = _scalar(arrays.get("nCol", arrays.get("cols")))
        if rows and cols and rows * cols == a.shape[1]:  # (B, H*W), pixels column-major
            a = a.reshape(a.shape[0], cols, rows).transpose(0, 2, 1)
            return HSICube(np.ascontiguousarray(a), None, meta)
    data = _bands_first(a, band_axis, default=-1)  # MATLAB cubes are H x W x B
    wl = next((np.asarray(arrays[k], float).ravel() for k in ("wavelength", "wavelengths", "wl")
               if k in arrays and np.asarray(arrays[k]).size == data.shape[0]), None)
    return HSICube(data, wl, meta)


def _read_envi(p: Path) -> HSICube:
    try:
        from spectral import envi
    except ImportError:
        raise ValueError(f"{p}: ENVI files need the optional 'spectral' package (pip install spectral)") from None
    try:
        img = envi.open(str(p))
    except Exception as e:  # noqa: BLE001
        raise ValueError(f"{p}: not a readable ENVI header/data pair ({e})") from None
    mm = img.open_memmap(interleave="bsq")  # (B, H, W) view of the file
    md = dict(img.metadata)
    wl = md.get("wavelength")
    wl = np.asarray(wl, float) if wl is not None and len(wl) == mm.shape[0] else None
    return HSICube(mm, wl, {"source": str(p), "envi": {k: v for k, v in md.items() if k != "wavelength"}})


def _read_tiff(p: Path, band_axis: int | None) -> HSICube:
    import tifffile

    with tifffile.TiffFile(p) as tf:
        desc = tf.pages[0].description
        a = tf.asarray()
    meta, wl, axis = {"source": str(p)}, None, band_axis
    try:
        d = json.loads(desc)
        if isinstance(d, dict) and d.get("format") == "restore-hsi/1":
            axis = 0 if band_axis is None else band_axis
            wl = np.asarray(d["wavelengths"], float) if d.get("wavelengths") else None
            meta.update(d.get("meta", {}))
    except (TypeError, ValueError):
        pass
    return HSICube(_bands_first(a, axis, default=0), wl, meta)


def read_cube(path, *, band_axis: int | None = None, key: str | None = None) -> HSICube:
    """Read a cube (see the module docstring); ``band_axis`` overrides the format's default
    (.mat: last, others: first); ``key`` picks the array of a .mat file (default ``Y`` or the largest)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file")
    ext = p.suffix.lower()
    if ext == ".mat":
        return _read_mat(p, key, band_axis)
    if ext == ".hdr":
        return _read_envi(p)
    if ext in (".tif", ".tiff"):
        return _read_tiff(p, band_axis)
    if ext == ".npy":
        a = np.load(p, mmap_mode="r")
        return HSICube(_bands_first(a, band_axis, default=0), None, {"source": str(p)})
    if ext == ".zarr":
        try:
            import zarr
        except ImportError:
            raise ValueError(f"{p}: zarr stores need the optional 'zarr' package (pip install zarr)") from None
        z = zarr.open_array(str(p), mode="r")
        attrs = dict(z.attrs)
        axis = attrs.get("band_axis", 0) if band_axis is None else band_axis
        data = z if (axis % 3 == 0 and z.ndim == 3) else _bands_first(np.asarray(z), axis, 0)
        wl = np.asarray(attrs["wavelengths"], float) if attrs.get("wavelengths") else None
        return HSICube(data, wl, {"source": str(p), **attrs.get("meta", {})})
    raise ValueError(f"{p}: unknown cube format {ext!r}; use one of {', '.join(HSI_EXTENSIONS)}")


def write_cube(path, cube: HSICube, *, chunks: tuple[int, int, int] | None = None) -> Path:
    """Write ``cube`` (bands first) atomically as .npy, .tif, .mat, .hdr (ENVI) or .zarr (a new store).

    Wavelengths and ``meta`` are kept where the format has room (all but .npy)."""
    p = Path(path)
    ext = p.suffix.lower()
    data = np.asarray(cube.data)
    wl = None if cube.wavelengths is None else [float(w) for w in cube.wavelengths]
    p.parent.mkdir(parents=True, exist_ok=True)
    if ext == ".npy":
        atomic_write(str(p), lambda tmp: np.save(tmp, data))
    elif ext in (".tif", ".tiff"):
        import tifffile

        desc = json.dumps({"format": "restore-hsi/1", "wavelengths": wl, "meta": cube.meta}, default=str)
        atomic_write(str(p), lambda tmp: tifffile.imwrite(tmp, data, description=desc, metadata=None,
                                                         photometric="minisblack", planarconfig="separate"))
    elif ext == ".mat":
        import scipy.io

        payload = {"Y": np.moveaxis(data, 0, -1)}  # MATLAB convention H x W x B
        if wl is not None:
            payload["wavelength"] = np.asarray(wl)
        atomic_write(str(p), lambda tmp: scipy.io.savemat(tmp, payload))
    elif ext == ".hdr":
        from spectral import envi

        md = {"wavelength": wl} if wl is not None else {}
        envi.save_image(str(p), np.moveaxis(data, 0, -1), metadata=md, interleave="bsq", force=True)
    elif ext == ".zarr":
        import zarr

        if p.exists():
            raise FileExistsError(f"{p}: exists; zarr stores are not overwritten")
        z = zarr.open_array(str(p), mode="w", shape=data.shape, dtype=data.dtype,
                            chunks=chunks or (min(16, data.shape[0]), 256, 256))
        z[...] = data
        z.attrs.update({"band_axis": 0, "wavelengths": wl, "meta": cube.meta})
    else:
        raise ValueError(f"{p}: unknown cube format {ext!r}; use one of {', '.join(HSI_EXTENSIONS)}")
    return p
