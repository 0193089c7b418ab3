"""Reading and writing images: PNG, JPEG, TIFF and .npy.

:func:`read_image` gives float32 (H, W, C) data plus the untouched alpha;
:func:`write_image` stores results back in the source's storage type
(``like=``), atomically.  Every reading problem is an :class:`ImageReadError`
with a one-line message naming the file and saying what to do.
"""
from __future__ import annotations

import io
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .atomic import IMAGE_EXTENSIONS, atomic_write, atomic_write_bytes

PathLike = Union[str, "os.PathLike[str]"]

MIN_SIZE = 8
_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff", ".npy": "npy"}
_INT_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_FLOATS = {np.dtype(t) for t in (np.float16, np.float32, np.float64)}
_CAN_STORE = {"jpeg": {np.dtype(np.uint8)}, "png": set(_INT_MAX), "tiff": set(_INT_MAX) | _FLOATS,
              "npy": set(_INT_MAX) | _FLOATS}

__all__ = ["Image", "ImageReadError", "IMAGE_EXTENSIONS", "read_image", "write_image",
           "to_tensor", "to_numpy"]


class ImageReadError(ValueError):
    """An input file could not be used as an image; ``str()`` is one line."""

    def __init__(self, path: PathLike, reason: str):
        self.path = Path(os.fspath(path))
        self.reason = " ".join(str(reason).split())  # one line, whatever the reason text
        super().__init__(f"{os.fspath(path)}: {self.reason}")


@dataclass
class Image:
    """A decoded image.

    ``data``: float32 (H, W, C), C = ``channels`` (1 grey or 3 RGB), in [0, 1]
    for 8/16-bit sources, raw values for float sources.  ``alpha``: (H, W) in
    the file's own dtype, or None.  ``dtype``: the storage dtype of the file
    (uint8, uint16, float16/32/64).  ``format``: 'png', 'jpeg', 'tiff', 'npy'.
    """

    data: np.ndarray
    alpha: Optional[np.ndarray]
    dtype: np.dtype
    channels: int
    path: Optional[Path] = None
    format: str = ""

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])


def read_image(path: PathLike, *, min_size: int = MIN_SIZE) -> Image:
    """Read a PNG, JPEG, TIFF or .npy file (see :class:`Image`).

    EXIF orientation is applied (JPEG, PNG; TIFF's Orientation tag too).
    Raises :class:`ImageReadError` for a missing, empty, unsupported, corrupt,
    oddly shaped, non-finite or too small (< ``min_size`` px a side) image.
    """
    p = Path(os.fspath(path))
    if not p.exists():
        raise ImageReadError(path, "no such file")
    if p.is_dir():
        raise ImageReadError(path, "is a folder, not an image file — pass the image files (or use list_images)")
    fmt = _FORMATS.get(p.suffix.lower())
    if fmt is None:
        what = f"unsupported extension '{p.suffix}'" if p.suffix else "no file extension"
        raise ImageReadError(path, f"{what} — use PNG, JPEG, TIFF or .npy")
    try:
        if p.stat().st_size == 0:
            raise ImageReadError(path, "file is empty (0 bytes) — re-export the image")
        arr = {"png": _read_cv2, "jpeg": _read_cv2, "tiff": _read_tiff, "npy": _read_npy}[fmt](p, path, fmt)
    except (ImageReadError, MemoryError):
        raise
    except PermissionError:
        raise ImageReadError(path, "cannot be read (permission denied) — check the file permissions") from None
    except Exception as exc:  # decoder-specific errors: corrupt data
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise ImageReadError(path, f"not a decodable image (corrupt or truncated {_LABEL[fmt]}: {detail}) "
                                   "— re-export it") from None
    return _finish(arr, path, p, fmt, min_size)


_LABEL = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "npy": ".npy file"}


def _cv2():
    """OpenCV, with its own console logging silenced (our errors are one line each)."""
    import cv2

    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # builds without the logging module
        pass
    return cv2


def _read_cv2(p: Path, path: PathLike, fmt: str) -> np.ndarray:
    cv2 = _cv2()

    raw = np.fromfile(p, dtype=np.uint8)  # also works for non-ASCII paths, unlike cv2.imread
    buf = raw.tobytes()
    if fmt == "jpeg" and _jpeg_truncated(buf):
        raise ImageReadError(path, "not a decodable image (truncated JPEG: no end-of-image marker) — re-export it")
    img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)  # keeps 16 bit and alpha, ignores EXIF orientation
    if img is None:
        raise ImageReadError(path, f"not a decodable image (corrupt or truncated {_LABEL[fmt]}) — re-export it")
    if img.ndim == 3 and img.shape[2] == 3:
        img = img[..., ::-1]  # BGR -> RGB
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[..., [2, 1, 0, 3]]  # BGRA -> RGBA
        if fmt == "png" and len(buf) > 25 and buf[25] == 4:  # IHDR colour type 4: grey + alpha
            img = img[..., [0, 3]]
    return _orient(img, _exif_orientation(buf, fmt))


def _jpeg_truncated(buf: bytes) -> bool:
    """No end-of-image marker after the last start-of-scan (neither occurs in
    entropy-coded data).  Old OpenCV decodes truncated JPEGs into half-grey
    images instead of failing, hence this explicit check."""
    sos = buf.rfind(b"\xff\xda")
    return sos < 0 or buf.find(b"\xff\xd9", sos) < 0


def _exif_orientation(buf: bytes, fmt: str) -> int:
    """EXIF orientation 1..8 (1 if none): via pillow for JPEG when installed,
    else a small built-in parser (also used for PNG, where pillow would decode
    the whole image to find an eXIf chunk)."""
    if fmt == "jpeg":
        try:
            from PIL import Image as PILImage

            with PILImage.open(io.BytesIO(buf)) as im:
                value = im.getexif().get(0x0112, 1)
            return int(value) if int(value) in range(1, 9) else 1
        except Exception:  # no pillow, or it cannot parse the EXIF block: use our parser
            pass
    try:
        tiff = _find_exif_block(buf, fmt)
        return _tiff_orientation(tiff) if tiff else 1
    except (struct.error, IndexError, ValueError):
        return 1


def _find_exif_block(buf: bytes, fmt: str) -> Optional[bytes]:
    if fmt == "png":  # chunks: length, type, data, crc
        pos = 8
        while pos + 8 <= len(buf):
            length, ctype = struct.unpack(">I4s", buf[pos:pos + 8])
            if ctype == b"eXIf":
                return buf[pos + 8:pos + 8 + length]
            if ctype == b"IEND":
                return None
            pos += 12 + length
        return None
    pos = 2  # JPEG: walk the marker segments after SOI until the first scan
    while pos + 4 <= len(buf) and buf[pos] == 0xFF:
        marker = buf[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0xDA:
            return None
        (length,) = struct.unpack(">H", buf[pos + 2:pos + 4])
        seg = buf[pos + 4:pos + 2 + length]
        if marker == 0xE1 and seg[:6] == b"Exif\x00\x00":
            return seg[6:]
        pos += 2 + length
    return None


def _tiff_orientation(tiff: bytes) -> int:
    """Orientation tag (0x0112) of IFD0 of a TIFF-structured EXIF block."""
    order = {b"II": "<", b"MM": ">"}[tiff[:2]]
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
    for i in range(count):
        entry = tiff[ifd + 2 + 12 * i:ifd + 14 + 12 * i]
        tag, typ, _n = struct.unpack(order + "HHI", entry[:8])
        if tag == 0x0112:
            value = struct.unpack(order + ("H" if typ == 3 else "I"), entry[8:10] if typ == 3 else entry[8:12])[0]
            return value if value in range(1, 9) else 1
    return 1


_ORIENT = {  # EXIF orientation -> transform of an (H, W[, C]) array (same as PIL's exif_transpose)
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1], 8: lambda a: np.rot90(a, 1),
}


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    return _ORIENT.get(orientation, lambda a: a)(arr)


def _read_tiff(p: Path, path: PathLike, fmt: str) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(p) as tif:
        series = tif.series[0]
        page = tif.pages[0]
        arr = series.asarray()
        axes = series.axes
        photometric = int(page.photometric)
        orientation = int(page.tags[274].value) if 274 in page.tags else 1
        colormap = page.colormap if photometric == 3 else None
    # drop singleton axes other than Y/X/S; an ImageJ channel axis acts as samples
    keep = [i for i, a in enumerate(axes) if a in "YXS" or arr.shape[i] != 1]
    arr, axes = arr.reshape([arr.shape[i] for i in keep]), "".join(axes[i] for i in keep)
    if "C" in axes and "S" not in axes and arr.shape[axes.index("C")] <= 4:
        axes = axes.replace("C", "S")
    if axes == "SYX":
        arr, axes = np.moveaxis(arr, 0, -1), "YXS"
    if axes not in ("YX", "YXS"):
        raise ImageReadError(path, f"TIFF holds a stack of shape {tuple(arr.shape)} (axes {axes}); "
                                   "only single 2-D images are supported — save one image per file")
    if photometric == 5:
        raise ImageReadError(path, "CMYK TIFF is not supported — convert it to RGB")
    if colormap is not None and axes == "YX":  # palette: look colours up (16-bit colour map)
        arr = np.moveaxis(np.asarray(colormap)[:, arr], 0, -1).astype(np.uint16)
    elif photometric == 0 and arr.dtype.kind in "ub":  # min-is-white
        arr = np.iinfo(arr.dtype).max - arr if arr.dtype.kind == "u" else ~arr
    return _orient(arr, orientation)


def _read_npy(p: Path, path: PathLike, fmt: str) -> np.ndarray:
    try:
        return np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise ImageReadError(path, "holds Python objects, not numbers — save a numeric (H,W) or (H,W,C) "
                                       "array") from None
        raise


def _finish(arr, path, p: Path, fmt: str, min_size: int) -> Image:
    arr = np.asarray(arr)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * np.uint8(255)
    dtype = arr.dtype
    if dtype not in _INT_MAX and dtype not in _FLOATS:
        raise ImageReadError(path, f"unsupported pixel type {dtype} — save as 8/16-bit unsigned integer or float32")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        chw = arr.ndim == 3 and arr.shape[0] in (1, 2, 3, 4)
        hint = " (looks channels-first: transpose it to (H,W,C))" if chw else ""
        raise ImageReadError(path, f"unsupported array shape {tuple(arr.shape)}{hint} — "
                                   "expected (H,W) or (H,W,C) with 1 to 4 channels")
    h, w, c = arr.shape
    if h < min_size or w < min_size:
        raise ImageReadError(path, f"image is {w}x{h} pixels; at least {min_size}x{min_size} is needed")
    alpha = np.ascontiguousarray(arr[..., c - 1]) if c in (2, 4) else None
    colour = arr[..., : (1 if c <= 2 else 3)]
    if dtype in _INT_MAX:
        data = colour.astype(np.float32)
        data /= np.float32(_INT_MAX[dtype])
    else:
        data = np.ascontiguousarray(colour, dtype=np.float32)
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise ImageReadError(path, f"contains {bad} NaN or infinite values — replace them "
                                       "(e.g. numpy.nan_to_num) and re-save")
    return Image(data=data, alpha=alpha, dtype=dtype, channels=data.shape[2], path=p, format=fmt)


def write_image(path: PathLike, data: np.ndarray, *, like: Optional[Image] = None, dtype=None,
                alpha: Optional[np.ndarray] = None, overwrite: bool = True, quality: int = 95) -> Path:
    """Write float ``data`` ((H, W) or (H, W, C), C in {1, 3}) to ``path``.

    The format comes from the extension.  Storage dtype: ``dtype`` if given
    (ValueError if the format cannot hold it), else ``like.dtype`` adapted to
    the format (JPEG: uint8; PNG: uint16 for float sources), else uint8 for
    PNG/JPEG and float32 for TIFF/.npy.  Integer output is ``round(clip(x,
    0, 1) * max)``; float output is written as is.  Alpha: ``alpha`` if
    given, else ``like.alpha``, re-attached untouched when its dtype equals
    the output dtype (rescaled otherwise).  JPEG has no alpha: an inherited
    one is dropped with a warning.  Grey + alpha is stored as RGBA in PNG.
    The write is atomic; ``overwrite=False`` raises FileExistsError if
    ``path`` exists.  Missing parent folders are created.  Returns the path.
    """
    p = Path(os.fspath(path))
    fmt = _FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ValueError(f"{p}: cannot write extension '{p.suffix}' — use .png, .jpg, .tif or .npy")
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise ValueError(f"{p}: data must be (H,W) or (H,W,C) with C 1 or 3, got shape {arr.shape} "
                         "(pass alpha separately)")
    if not np.isfinite(arr).all():
        raise ValueError(f"{p}: data contains NaN or infinite values")
    out_dtype = _output_dtype(p, fmt, like, dtype)

    if alpha is None and like is not None and like.alpha is not None:
        alpha = like.alpha
        if fmt == "jpeg":
            warnings.warn(f"{p}: JPEG cannot store an alpha channel; it is dropped", stacklevel=2)
            alpha = None
    elif alpha is not None and fmt == "jpeg":
        raise ValueError(f"{p}: JPEG cannot store an alpha channel — write PNG or TIFF")
    if alpha is not None:
        alpha = np.asarray(alpha)
        if alpha.shape != arr.shape[:2]:
            raise ValueError(f"{p}: alpha shape {alpha.shape} does not match the image {arr.shape[:2]}")

    if out_dtype in _INT_MAX:
        out = np.rint(np.clip(arr, 0.0, 1.0) * _INT_MAX[out_dtype]).astype(out_dtype)
    else:
        out = arr.astype(out_dtype)
    if alpha is not None:
        out = np.concatenate([out, _convert_alpha(alpha, out_dtype)[..., None]], axis=2)
    p.parent.mkdir(parents=True, exist_ok=True)

    if fmt in ("png", "jpeg"):
        cv2 = _cv2()

        if out.shape[2] == 2:  # no grey+alpha in OpenCV's PNG writer
            out = out[..., [0, 0, 0, 1]]
        bgr = {1: lambda a: a[..., 0], 3: lambda a: a[..., ::-1], 4: lambda a: a[..., [2, 1, 0, 3]]}
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else []
        ok, enc = cv2.imencode(p.suffix.lower(), np.ascontiguousarray(bgr[out.shape[2]](out)), params)
        if not ok:
            raise ValueError(f"{p}: OpenCV could not encode the image")
        return atomic_write_bytes(p, enc.tobytes(), overwrite=overwrite)
    if fmt == "tiff":
        import tifffile

        colour = out.shape[2] - (alpha is not None)
        kwargs = dict(photometric="rgb" if colour == 3 else "minisblack", metadata=None)
        if alpha is not None:
            kwargs.update(extrasamples=("unassalpha",), planarconfig="contig")
        tiff_arr = out[..., 0] if out.shape[2] == 1 else out
        return atomic_write(p, lambda tmp: tifffile.imwrite(tmp, tiff_arr, **kwargs), overwrite=overwrite)

    def _save_npy(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, out[..., 0] if out.shape[2] == 1 else out)

    return atomic_write(p, _save_npy, overwrite=overwrite)


def _output_dtype(p: Path, fmt: str, like: Optional[Image], dtype) -> np.dtype:
    if dtype is not None:
        dt = np.dtype(dtype)
        if dt not in _CAN_STORE[fmt]:
            names = ", ".join(sorted(str(d) for d in _CAN_STORE[fmt]))
            raise ValueError(f"{p}: {fmt.upper()} cannot store {dt} — use one of: {names}")
        return dt
    if like is not None:
        dt = np.dtype(like.dtype)
        if dt in _CAN_STORE[fmt]:
            return dt
        return np.dtype(np.uint8) if fmt == "jpeg" else np.dtype(np.uint16)
    return np.dtype(np.uint8) if fmt in ("png", "jpeg") else np.dtype(np.float32)


def _convert_alpha(alpha: np.ndarray, dt: np.dtype) -> np.ndarray:
    if alpha.dtype == dt:
        return alpha  # the usual case: re-attached bit for bit
    unit = alpha.astype(np.float64)
    if alpha.dtype.kind in "ui":
        unit /= np.iinfo(alpha.dtype).max
    if dt in _INT_MAX:
        return np.rint(np.clip(unit, 0.0, 1.0) * _INT_MAX[dt]).astype(dt)
    return unit.astype(dt)


def to_tensor(img_hwc) -> "torch.Tensor":  # noqa: F821
    """(H, W) or (H, W, C) array (or an :class:`Image`) -> float32 torch (C, H, W)."""
    import torch

    arr = img_hwc.data if isinstance(img_hwc, Image) else np.asarray(img_hwc)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"to_tensor expects (H,W) or (H,W,C), got shape {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32))


def to_numpy(tensor_chw) -> np.ndarray:
    """torch (C, H, W) (or (1, C, H, W)) -> float32 numpy (H, W, C)."""
    t = tensor_chw.detach().to("cpu") if hasattr(tensor_chw, "detach") else tensor_chw
    if getattr(t, "ndim", 0) == 4 and t.shape[0] == 1:
        t = t[0]
    if getattr(t, "ndim", 0) != 3:
        raise ValueError(f"to_numpy expects (C,H,W) or (1,C,H,W), got shape {tuple(t.shape)}")
    t = t.float().numpy() if hasattr(t, "float") else t
    return np.ascontiguousarray(np.asarray(t, dtype=np.float32).transpose(1, 2, 0))
