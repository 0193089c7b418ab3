"""Camera RAW files: reading any Bayer RAW (via rawpy/LibRaw), packing the mosaic
to RGGB planes, writing the denoised mosaic (DNG or 16-bit linear TIFF) and
rendering it to RGB with rawpy's own pipeline.

Units: a :class:`RawFrame` holds the visible mosaic in DN (``mosaic``, uint16
(H, W)) with per-CFA-channel black and white levels; :func:`pack` turns it into
float32 (4, H/2, W/2) planes in the order R, G1, G2, B, black-subtracted and
divided by (white - black), so 0 is black and 1 is clipping (noise may go below 0).
Whatever the camera's CFA phase (RGGB, GRBG, GBRG, BGGR), plane k always holds
the same colour, at the sensor positions given by ``RawFrame.offsets``, and
:func:`unpack` puts values back at exactly those positions (an odd last row or
column is kept as read).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_write, atomic_write_text
from .images import ImageReadError

__all__ = ["RAW_EXTENSIONS", "RawFrame", "is_raw", "read_raw", "pack", "unpack", "write_dng",
           "write_mosaic_tiff", "render_rgb", "write_sidecar"]

#: File extensions (lower case) read as camera RAW.
RAW_EXTENSIONS = frozenset({".dng", ".nef", ".nrw", ".cr2", ".cr3", ".crw", ".arw", ".srf", ".sr2", ".raf",
                            ".orf", ".rw2", ".pef", ".srw", ".kdc", ".dcr", ".k25", ".mrw", ".3fr", ".erf",
                            ".mef", ".mos", ".iiq", ".rwl", ".x3f", ".raw"})
PLANES = ("R", "G1", "G2", "B")


def is_raw(path) -> bool:
    return Path(path).suffix.lower() in RAW_EXTENSIONS


@dataclass
class RawFrame:
    """One RAW exposure's visible Bayer mosaic and what is needed to interpret it.

    ``mosaic``: uint16 (H, W) DN.  ``cfa``: the 2x2 pattern of its top-left
    corner, e.g. ``"GRBG"``.  ``black``/``white``: float64 (4,) DN per plane
    (R, G1, G2, B).  ``meta``: make, model, iso, exposure_s, orientation (LibRaw
    flip code), camera white balance, colour matrix (XYZ -> camera, 3x3).
    """

    mosaic: np.ndarray
    cfa: str
    black: np.ndarray
    white: np.ndarray
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def offsets(self) -> list[tuple[int, int]]:
        """(row, col) of plane R, G1, G2, B inside each 2x2 cell; G1 is the green on R's row."""
        cells = [(0, 0), (0, 1), (1, 0), (1, 1)]
        red = cells[self.cfa.index("R")]
        greens = sorted((c for c, ch in zip(cells, self.cfa) if ch == "G"), key=lambda c: c[0] != red[0])
        return [red, greens[0], greens[1], cells[self.cfa.index("B")]]  # G1: the green on the red row

    @property
    def scale(self) -> np.ndarray:
        """(white - black) per plane, DN: one unit of :func:`pack`'s output."""
        return self.white - self.black


def _fail(path, reason: str):
    raise ImageReadError(path, reason) from None


def read_raw(path) -> RawFrame:
    """Read a Bayer RAW file (DNG, NEF, CR2, ARW, KDC, ...) with rawpy.

    Raises :class:`ImageReadError` (one line: file, reason, fix) for corrupt,
    truncated, unsupported or non-Bayer files.
    """
    import rawpy

    path = Path(os.fspath(path))
    if not path.is_file():
        _fail(path, "no such file")
    try:
        raw = rawpy.imread(str(path))
    except (rawpy.LibRawError, OSError) as e:  # unsupported, truncated, corrupt
        _fail(path, f"not a readable camera RAW file ({type(e).__name__}: {e}); check that the file is complete, "
                    "or convert it to DNG with Adobe DNG Converter")
    with raw:
        try:
            mosaic = np.array(raw.raw_image_visible, dtype=np.uint16, copy=True)
            pattern = raw.raw_pattern
            n_colors = raw.num_colors
            desc = raw.color_desc.decode("ascii", "replace")
            colors = np.array(raw.raw_colors_visible[:2, :2])
            black_idx = list(raw.black_level_per_channel)
            white = [w if w and w > 0 else raw.white_level
                     for w in (raw.camera_white_level_per_channel or [raw.white_level] * 4)]
            meta = {"raw_type": str(raw.raw_type).split(".")[-1], "orientation": int(raw.sizes.flip),
                    "iso": float(raw.other.iso_speed), "exposure_s": float(raw.other.shutter_speed),
                    "camera_wb": [float(v) for v in raw.camera_whitebalance],
                    "color_matrix_xyz_to_cam": np.asarray(raw.rgb_xyz_matrix)[:3].tolist()}
        except RuntimeError:  # rawpy: "RAW image is not flat" (a linear / demosaiced DNG)
            _fail(path, "not a 2x2 Bayer mosaic (linear or demosaiced RAW); denoise the rendered image instead")
        except (rawpy.LibRawError, OSError) as e:
            _fail(path, f"the RAW data could not be decoded ({type(e).__name__}: {e}); the file is probably truncated")
    if pattern is None or pattern.shape != (2, 2) or n_colors not in (3, 4) or mosaic.ndim != 2:
        _fail(path, "not a 2x2 Bayer mosaic (X-Trans, Foveon or linear RAW); denoise the rendered image instead")
    cfa = "".join(desc[int(colors[i, j])] for i in range(2) for j in range(2))
    if sorted(cfa) != ["B", "G", "G", "R"]:
        _fail(path, f"unsupported colour filter pattern {cfa}; only RGGB-type Bayer mosaics are supported")
    if min(mosaic.shape) < 16:
        _fail(path, f"mosaic {mosaic.shape} is too small (at least 16x16)")
    frame = RawFrame(mosaic=mosaic, cfa=cfa, black=np.zeros(4), white=np.zeros(4), meta=meta, path=path)
    for k, (i, j) in enumerate(frame.offsets):
        idx = int(colors[i, j])
        frame.black[k] = black_idx[idx]
        frame.white[k] = white[idx]
    if np.any(frame.white <= frame.black):
        _fail(path, f"white level {frame.white.tolist()} is not above black level {frame.black.tolist()}")
    extra = _tiff_meta(path)
    iso_tiff = extra.pop("iso_tiff", None)
    meta.update(extra)
    if not meta.get("iso") and iso_tiff:
        meta["iso"] = iso_tiff
    return frame


def _tiff_meta(path: Path) -> dict:
    """Make / model (and ISO, exposure when LibRaw gave none) from TIFF-based RAW headers; {} otherwise."""
    import tifffile

    out = {}
    try:
        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            for key, name in (("Make", "make"), ("Model", "model"), ("UniqueCameraModel", "unique_model")):
                if key in tags:
                    out[name] = str(tags[key].value).strip("\x00 ")
            iso = tags.get(34855)  # ISOSpeedRatings (TIFF/EP, as write_dng stores it)
            if iso is not None:
                v = iso.value[0] if isinstance(iso.value, (tuple, list)) else iso.value
                out["iso_tiff"] = float(v)
            if "ColorMatrix1" in tags:
                v = np.asarray(tags["ColorMatrix1"].value, dtype=float).reshape(-1)
                m = v[0::2] / v[1::2] if v.size == 18 else v  # rationals come as (num, den) pairs
                out["color_matrix_xyz_to_cam"] = m.reshape(3, 3).tolist()
    except Exception:  # not TIFF-based (CR3, RAF, ...): LibRaw's values stand
        pass
    return out


def pack(frame: RawFrame) -> np.ndarray:
    """float32 (4, H//2, W//2): planes R, G1, G2, B, (DN - black) / (white - black)."""
    h, w = (s - s % 2 for s in frame.mosaic.shape)
    out = np.empty((4, h // 2, w // 2), np.float32)
    for k, (i, j) in enumerate(frame.offsets):
        out[k] = (frame.mosaic[i:h:2, j:w:2].astype(np.float32) - frame.black[k]) / frame.scale[k]
    return out


def unpack(planes: np.ndarray, frame: RawFrame, *, max_dn: int | None = None) -> np.ndarray:
    """uint16 (H, W) mosaic in DN from :func:`pack`-style planes (rounded, clipped to
    [0, ``max_dn``], default the frame's largest white level); positions outside the
    planes (an odd last row / column) keep ``frame.mosaic``'s values."""
    planes = np.asarray(planes, dtype=np.float64)
    h, w = (s - s % 2 for s in frame.mosaic.shape)
    if planes.shape != (4, h // 2, w // 2):
        raise ValueError(f"planes {planes.shape} do not fit the mosaic {frame.mosaic.shape} (want {(4, h // 2, w // 2)})")
    top = float(max_dn if max_dn is not None else frame.white.max())
    out = frame.mosaic.copy()
    for k, (i, j) in enumerate(frame.offsets):
        out[i:h:2, j:w:2] = np.clip(np.rint(planes[k] * frame.scale[k] + frame.black[k]), 0, top).astype(np.uint16)
    return out


_CFA_CODE = {"R": 0, "G": 1, "B": 2}
#: LibRaw ``sizes.flip`` -> TIFF Orientation (0: none, 3: 180, 5: 90 CCW, 6: 90 CW).
_TIFF_ORIENTATION = {0: 1, 3: 3, 5: 8, 6: 6}
_SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])


def _rationals(values, signed: bool, den: int = 10000) -> tuple:
    out = []
    for v in values:
        out += [int(round(float(v) * den)), den]
    return tuple(out)


def write_dng(path, mosaic: np.ndarray, frame: RawFrame) -> Path:
    """Write ``mosaic`` (uint16 (H, W), DN, ``frame``'s CFA phase, black and white
    levels) as an uncompressed DNG 1.4 that rawpy/LibRaw reads back bit-exactly.
    Keeps make, model, ISO, exposure, colour matrix and white balance.  Atomic."""
    import tifffile

    mosaic = np.ascontiguousarray(mosaic, dtype=np.uint16)
    m = frame.meta
    cm = np.asarray(m.get("color_matrix_xyz_to_cam") or np.zeros((3, 3)), dtype=float)
    if not np.any(cm):
        cm = np.linalg.inv(_SRGB_TO_XYZ)  # unknown: treat the camera as linear sRGB
    wb = np.asarray(m.get("camera_wb") or [1, 1, 1, 1], dtype=float)[:3]
    neutral = wb[1] / wb if np.all(wb > 0) else np.ones(3)
    # black / white per CFA position of the 2x2 repeat (row-major), from the per-plane values
    black_cell, cells = [0.0] * 4, [(0, 0), (0, 1), (1, 0), (1, 1)]
    for k, off in enumerate(frame.offsets):
        black_cell[cells.index(off)] = frame.black[k]
    tags = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, tuple(_CFA_CODE[c] for c in frame.cfa), True),  # CFAPattern
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, m.get("unique_model") or f"{m.get('make', '')} {m.get('model', '')}".strip() or "restore",
         True),
        (50710, "B", 3, (0, 1, 2), True),  # CFAPlaneColor
        (50711, "H", 1, 1, True),  # CFALayout: rectangular
        (50713, "H", 2, (2, 2), True),  # BlackLevelRepeatDim
        (50714, "2I", 4, _rationals(black_cell, False, 1), True),  # BlackLevel (RATIONAL)
        (50717, "I", 1, int(round(frame.white.max())), True),  # WhiteLevel
        (50721, "2i", 9, _rationals(cm.reshape(-1), True), True),  # ColorMatrix1
        (50728, "2I", 3, _rationals(neutral, False), True),  # AsShotNeutral
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
    ]
    orient = _TIFF_ORIENTATION.get(int(m.get("orientation") or 0))
    if orient:
        tags.append((274, "H", 1, orient, True))  # Orientation, from LibRaw's flip code
    if m.get("make"):
        tags.append((271, "s", 0, m["make"], True))
    if m.get("model"):
        tags.append((272, "s", 0, m["model"], True))
    if m.get("iso"):
        tags.append((34855, "H", 1, min(65535, int(round(m["iso"]))), True))  # ISOSpeedRatings (TIFF/EP)
    if m.get("exposure_s"):
        tags.append((33434, "2I", 1, _rationals([m["exposure_s"]], False, 1_000_000), True))  # ExposureTime
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp):
        tifffile.imwrite(tmp, mosaic, photometric=32803, planarconfig="contig", compression=None,
                         subfiletype=0, software="restore", metadata=None, extratags=tags)

    atomic_write(path, write)
    return path


def write_mosaic_tiff(path, mosaic: np.ndarray) -> Path:
    """The mosaic (uint16 (H, W), DN) as a 16-bit single-channel linear TIFF. Atomic."""
    import tifffile

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(Path(path), lambda tmp: tifffile.imwrite(tmp, np.ascontiguousarray(mosaic, np.uint16)))
    return Path(path)


def render_rgb(source, mosaic: np.ndarray, *, bits: int = 16, **postprocess) -> np.ndarray:
    """Render ``mosaic`` (uint16 (H, W), the visible area of ``source``) with rawpy's
    pipeline (camera white balance, AHD demosaic, sRGB, no auto-brightening):
    uint8/uint16 (H', W', 3) in the camera's orientation.  ``source``: the RAW file
    whose metadata render it (the original or a DNG written by :func:`write_dng`)."""
    import rawpy

    opts = {"use_camera_wb": True, "no_auto_bright": True, "output_bps": bits}
    opts.update(postprocess)
    with rawpy.imread(str(source)) as raw:
        if raw.raw_image_visible.shape != mosaic.shape:
            raise ValueError(f"mosaic {mosaic.shape} does not match {source}'s visible area "
                             f"{raw.raw_image_visible.shape}")
        raw.raw_image_visible[:] = mosaic
        return raw.postprocess(**opts)


def write_sidecar(path, frame: RawFrame, **extra) -> Path:
    """JSON sidecar: camera metadata, CFA, black/white levels and ``extra`` (e.g. the noise model)."""
    doc = {"source": str(frame.path) if frame.path else None, "cfa": frame.cfa, "planes": list(PLANES),
           "black": frame.black.tolist(), "white": frame.white.tolist(),
           "shape": list(frame.mosaic.shape), **frame.meta, **extra}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(path), json.dumps(doc, indent=2, default=float) + "\n")
    return Path(path)
