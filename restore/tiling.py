"""Tiled execution of image-to-image functions with bounded memory.

:func:`tiled_apply` runs ``fn(batch) -> batch`` (shape ``(B, C, h, w) ->
(B, C', h, w)``) over a large image in overlapping tiles and blends the
results, so peak memory is set by the tile size and ``batch_size``, not by the
image size.  Images may be torch tensors, numpy arrays, ``np.memmap`` or any
array-like that supports basic slicing (h5py / zarr datasets); such inputs
are read one tile at a time.

Geometry (per axis, all units are pixels)
-----------------------------------------
* The tile size is snapped down to a multiple of ``multiple`` (at least
  ``multiple``).  The stride ``tile - overlap`` is snapped down to a multiple
  of ``multiple`` too, so the real overlap is ``>= overlap``.
* Starts are ``0, stride, 2*stride, ...`` (all multiples of ``multiple``) and a
  final tile flush against the far border, starting at ``length - tile``.
  Nothing is padded.  **Flush last tile:** its start ``length - tile`` is a
  multiple of ``multiple`` exactly when ``length`` is.  Otherwise the last tile
  is still ``tile`` pixels long (a valid input size for the model) but sits off
  the ``multiple`` grid; for models that are not shift-equivariant (strided
  convolutions, pooling) the pixels it contributes can then differ slightly
  from a whole-image run on the image padded to a multiple.  All other tiles
  are on the grid.
* If the image is shorter than the tile along an axis, that axis gets a single
  tile of size ``round_up(length, multiple)``; the image is reflect-padded on
  the far side (replicate-padded if the padding is not smaller than the
  length, where reflection is impossible) and the result cropped back.

Blending
--------
* ``window="crop"``: every output pixel comes from exactly one tile, the one
  in which it lies farthest from a tile edge (edges on the image border do
  not count).  Per axis the boundary between consecutive tiles ``a < b`` is
  the midpoint of their overlap, ``(a + tile + b) // 2``.  A pixel taken from
  a tile is then at least ``floor(overlap / 2)`` pixels from that tile's
  interior edges, so with ``overlap >= 2 * R`` (``R`` = receptive-field radius,
  and tiles on the ``multiple`` grid) the tiled result equals the whole-image
  result up to float rounding.
* ``window="hann"`` / ``"linear"``: weighted average with a separable window.
  Along an edge shared with a neighbouring tile the weight ramps up over the
  overlap with that neighbour (``sin^2`` or linear, strictly positive, the two
  ramps of a pair sum to one); edges on the image border get weight 1.  The
  weights are normalised per axis beforehand (the grid is a Cartesian
  product, so the accumulated 2-D weight is the outer product of the per-axis
  sums), which lets results be streamed into ``out`` without a second pass.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "tiled_apply",
    "tile_grid",
    "auto_tile_size",
    "DEFAULT_OVERHEAD",
    "DEFAULT_BYTES_BUDGET",
    "WINDOWS",
]

WINDOWS = ("crop", "hann", "linear")

#: Default activation-memory factor for :func:`auto_tile_size`: peak bytes of
#: the model's activations per byte of float32 input tile (e.g. ~64 feature
#: channels with a couple of live tensors per input channel).
DEFAULT_OVERHEAD = 128.0

#: Memory budget (bytes) used for ``tile="auto"`` when not running on CUDA.
DEFAULT_BYTES_BUDGET = 512 * 2**20

Array = Union[torch.Tensor, np.ndarray]


def _round_up(v: int, m: int) -> int:
    return -(-int(v) // int(m)) * int(m)


def _snap_down(v: int, m: int) -> int:
    return max(m, (v // m) * m)


def _check_int(name: str, v: Any, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _axis_plan(length: int, tile: int, overlap: int, multiple: int) -> tuple[int, int, list[int]]:
    """Plan one axis.

    Returns ``(tile_eff, padded_length, starts)``: the tile size actually used,
    the length the image is padded to (``== length`` unless the image is
    shorter than the tile) and the tile starts.
    """
    length = _check_int("length", length, 1)
    multiple = _check_int("multiple", multiple, 1)
    tile = _snap_down(_check_int("tile", tile, 1), multiple)
    overlap = _check_int("overlap", overlap, 0)
    if length <= tile:
        t = _round_up(length, multiple)
        return t, t, [0]
    stride = ((tile - overlap) // multiple) * multiple
    if stride < 1:
        raise ValueError(
            f"overlap={overlap} too large for tile={tile} with multiple={multiple}: "
            f"need tile - overlap >= multiple")
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return tile, length, starts


def tile_grid(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Tile start offsets (pixels) along one axis of ``length`` pixels.

    ``tile`` is first snapped down to a multiple of ``multiple`` (at least
    ``multiple``); call it ``T``.  If ``length >= T`` the starts are
    ``0, s, 2s, ...`` with stride ``s = tile - overlap`` snapped down to a
    multiple of ``multiple`` (so consecutive tiles overlap by ``>= overlap``),
    followed by ``length - T`` so that the last tile ends exactly at
    ``length``.  Every start except possibly the last is a multiple of
    ``multiple``; the last one is too iff ``length`` is.  If ``length < T`` the
    result is ``[0]`` (:func:`tiled_apply` then shrinks the tile to
    ``round_up(length, multiple)`` and pads).

    Raises ``ValueError`` if ``tile - overlap < multiple`` (when more than one
    tile is needed).
    """
    return _axis_plan(length, tile, overlap, multiple)[2]


def auto_tile_size(channels: int, bytes_budget: float, *, multiple: int = 1,
                   overhead: float = DEFAULT_OVERHEAD, batch_size: int = 1) -> int:
    """Largest square tile side (pixels, a multiple of ``multiple``) that fits.

    Memory model: one batch of tiles needs about
    ``overhead * channels * tile**2 * 4 * batch_size`` bytes (float32 input
    tiles of ``channels`` channels, times ``overhead`` for the model's
    activations).  Returns the largest multiple of ``multiple`` whose estimate
    is ``<= bytes_budget``, but never less than ``multiple``.
    """
    channels = _check_int("channels", channels, 1)
    multiple = _check_int("multiple", multiple, 1)
    batch_size = _check_int("batch_size", batch_size, 1)
    if not overhead > 0:
        raise ValueError(f"overhead must be > 0, got {overhead!r}")
    per_px = float(overhead) * channels * 4 * batch_size
    side = math.isqrt(max(0, int(float(bytes_budget) // per_px)))
    return max(multiple, (side // multiple) * multiple)


def _default_budget(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free // 2)
    return DEFAULT_BYTES_BUDGET


def _crop_bounds(starts: Sequence[int], tile: int, length: int) -> list[tuple[int, int]]:
    """Per-tile ``[lo, hi)`` output ranges for ``window="crop"`` (image coords)."""
    bounds = [0] + [(a + tile + b) // 2 for a, b in zip(starts[:-1], starts[1:])] + [length]
    return [(bounds[i], bounds[i + 1]) for i in range(len(starts))]


def _ramp(n: int, kind: str) -> np.ndarray:
    t = np.arange(1, n + 1, dtype=np.float64) / (n + 1)
    return np.sin(0.5 * np.pi * t) ** 2 if kind == "hann" else t


def _blend_weights(starts: Sequence[int], tile: int, length: int,
                   kind: str) -> list[tuple[int, int, np.ndarray]]:
    """Per-tile ``(lo, hi, w)``: ``w`` (float64, ``hi - lo`` long) is the tile's
    window on ``[lo, hi)`` divided by the sum of all windows along the axis."""
    n = len(starts)
    wins = []
    for i, s in enumerate(starts):
        w = np.ones(tile, dtype=np.float64)
        if i > 0:  # left edge shared with tile i-1
            ov = min(starts[i - 1] + tile - s, tile)
            w[:ov] *= _ramp(ov, kind)
        if i < n - 1:  # right edge shared with tile i+1
            ov = min(s + tile - starts[i + 1], tile)
            w[tile - ov:] *= _ramp(ov, kind)[::-1]
        wins.append(w)
    total = np.zeros(max(length, starts[-1] + tile), dtype=np.float64)
    for s, w in zip(starts, wins):
        total[s:s + tile] += w
    out = []
    for s, w in zip(starts, wins):
        hi = min(s + tile, length)
        out.append((s, hi, w[:hi - s] / total[s:hi]))
    return out


def pad_to_multiple(x: torch.Tensor, m: int) -> torch.Tensor:
    """``x`` (..., H, W) padded at the far side to multiples of ``m`` in H and W (reflection when both
    pads are shorter than the sides, else replication); crop back with ``[..., :H, :W]``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if not (ph or pw):
        return x
    return F.pad(x, (0, pw, 0, ph), mode="reflect" if (ph < h and pw < w) else "replicate")


def _pad_tile(t: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """Pad a (C, h, w) tile by ``ph`` rows / ``pw`` cols at the far side."""
    t = t[None]
    if ph:
        mode = "reflect" if ph < t.shape[-2] else "replicate"
        t = F.pad(t, (0, 0, 0, ph), mode=mode)
    if pw:
        mode = "reflect" if pw < t.shape[-1] else "replicate"
        t = F.pad(t, (0, pw, 0, 0), mode=mode)
    return t[0]


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: Any,
    *,
    tile: Union[int, tuple[int, int], str, None] = 256,
    overlap: int = 32,
    window: str = "crop",
    batch_size: int = 4,
    multiple: int = 1,
    device: Union[str, torch.device, None] = None,
    out: Optional[Array] = None,
    out_channels: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
    origins: bool = False,
) -> Array:
    """Apply ``fn`` to ``x`` tile by tile and blend the tiles.

    Args:
        fn: maps a float32 batch ``(B, C, h, w)`` to ``(B, C', h, w)`` (same
            batch size and spatial size; ``C'`` may differ from ``C``).  Called
            under ``torch.inference_mode()`` with ``B <= batch_size`` and
            ``h, w`` multiples of ``multiple``.
        x: image ``(C, H, W)`` or batch ``(N, C, H, W)``: torch tensor, numpy
            array / memmap, or an array-like supporting basic slicing.  Values
            are converted to float32 without rescaling.  Non-tensor inputs are
            read one tile at a time.
        tile: tile side in pixels (int, or ``(tile_h, tile_w)``), snapped down
            to a multiple of ``multiple``; ``None`` or ``"auto"`` picks it with
            :func:`auto_tile_size` (budget: half the free CUDA memory, or
            :data:`DEFAULT_BYTES_BUDGET` elsewhere), at least
            ``overlap + multiple``.
        overlap: minimum overlap between neighbouring tiles, pixels.  For exact
            results with ``window="crop"`` use ``>= 2 *`` receptive-field
            radius.
        window: ``"crop"``, ``"hann"`` or ``"linear"`` (see module docstring).
        batch_size: tiles per ``fn`` call (tiles of different images in an
            ``(N, C, H, W)`` input are batched together).
        multiple: spatial size multiple the model requires (e.g. 8 for a UNet
            with three 2x downsamplings).
        device: where ``fn`` runs.  Default: ``x.device`` for tensors, CPU
            otherwise.  Blending happens on the output's device.
        out: optional preallocated output of shape ``(C', H, W)`` /
            ``(N, C', H, W)`` (numpy array, memmap or tensor), written tile by
            tile and returned.  With a blending window it is zeroed first and
            accumulated into (so use a float dtype).
        out_channels: expected ``C'``; checked against ``fn``'s output.
            Default: taken from the first ``fn`` output.
        progress: optional ``callable(done_tiles, total_tiles)`` called after
            each batch.
        origins: if True, ``fn`` is called as ``fn(batch, origins=[(row, col), ...])``
            with the global top-left pixel of each tile (for methods whose
            randomness is a function of image coordinates, so tiled and
            whole-image runs agree).

    Returns:
        ``out`` if given; otherwise a float32 array of shape ``(C', H, W)`` or
        ``(N, C', H, W)`` (same rank as ``x``): a tensor on ``x.device`` if
        ``x`` is a tensor, else a numpy array.
    """
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
    multiple = _check_int("multiple", multiple, 1)
    overlap = _check_int("overlap", overlap, 0)
    batch_size = _check_int("batch_size", batch_size, 1)
    if out_channels is not None:
        out_channels = _check_int("out_channels", out_channels, 1)

    is_torch = isinstance(x, torch.Tensor)
    if not is_torch and not hasattr(x, "shape"):
        x = np.asarray(x)
    ndim = len(x.shape)
    if ndim not in (3, 4):
        raise ValueError(f"x must have shape (C,H,W) or (N,C,H,W), got {tuple(x.shape)}")
    N = int(x.shape[0]) if ndim == 4 else 1
    C, H, W = (int(s) for s in x.shape[-3:])
    if min(N, C, H, W) < 1:
        raise ValueError(f"x has an empty dimension: {tuple(x.shape)}")

    run_dev = torch.device(device) if device is not None else (
        x.device if is_torch else torch.device("cpu"))

    if tile is None or (isinstance(tile, str) and tile == "auto"):
        t = auto_tile_size(C, _default_budget(run_dev), multiple=multiple, batch_size=batch_size)
        tile_h = tile_w = max(t, _round_up(overlap + multiple, multiple))
    elif isinstance(tile, (tuple, list)):
        if len(tile) != 2:
            raise ValueError(f"tile must be an int or a (tile_h, tile_w) pair, got {tile!r}")
        tile_h, tile_w = (_check_int("tile", t, 1) for t in tile)
    else:
        tile_h = tile_w = _check_int("tile", tile, 1)

    th, Hp, rows = _axis_plan(H, tile_h, overlap, multiple)
    tw, Wp, cols = _axis_plan(W, tile_w, overlap, multiple)
    if window == "crop":
        row_parts = [(lo, hi, None) for lo, hi in _crop_bounds(rows, th, H)]
        col_parts = [(lo, hi, None) for lo, hi in _crop_bounds(cols, tw, W)]
    else:
        row_parts = _blend_weights(rows, th, H, window)
        col_parts = _blend_weights(cols, tw, W, window)

    # ---- output handling -------------------------------------------------
    state: dict[str, Any] = {"out4": None}
    out_is_np = (not isinstance(out, torch.Tensor)) if out is not None else (not is_torch)
    out_dev = out.device if isinstance(out, torch.Tensor) else (
        x.device if (is_torch and out is None) else torch.device("cpu"))

    def _setup_out(cout: int) -> None:
        if out_channels is not None and cout != out_channels:
            raise ValueError(f"fn returned {cout} channels, expected out_channels={out_channels}")
        shape4 = (N, cout, H, W)
        if out is None:
            if out_is_np:
                o = (np.empty if window == "crop" else np.zeros)(shape4, dtype=np.float32)
            else:
                o = (torch.empty if window == "crop" else torch.zeros)(
                    shape4, dtype=torch.float32, device=out_dev)
            state["result"] = o if ndim == 4 else o[0]
        else:
            exp = shape4 if ndim == 4 else shape4[1:]
            if tuple(out.shape) != exp:
                raise ValueError(f"out has shape {tuple(out.shape)}, expected {exp}")
            o = out if ndim == 4 else out[None]
            if window != "crop":
                o[...] = 0
            state["result"] = out
        state["out4"] = o

    # per-axis normalised weights as float32 (numpy or tensor on out_dev); the
    # 2-D tile weight is their outer product, formed by broadcasting.
    def _vecs(parts):
        if window == "crop":
            return [None] * len(parts)
        vs = [p[2].astype(np.float32) for p in parts]
        return vs if out_is_np else [torch.from_numpy(v).to(out_dev) for v in vs]

    row_w, col_w = _vecs(row_parts), _vecs(col_parts)

    def _read(n: int, r: int, c: int) -> torch.Tensor:
        rs, cs = slice(r, min(r + th, H)), slice(c, min(c + tw, W))
        sub = x[n, :, rs, cs] if ndim == 4 else x[:, rs, cs]
        if is_torch:
            t = sub.detach().to(device=run_dev, dtype=torch.float32)
        else:
            t = torch.from_numpy(np.array(sub, dtype=np.float32)).to(run_dev)
        ph, pw = th - t.shape[-2], tw - t.shape[-1]
        return _pad_tile(t, ph, pw) if (ph or pw) else t

    def _flush(batch: list[tuple[int, int, int, torch.Tensor]]) -> None:
        inp = torch.stack([b[3] for b in batch])
        with torch.inference_mode():
            y = fn(inp, origins=[(rows[i], cols[j]) for _, i, j, _ in batch]) if origins else fn(inp)
        if not isinstance(y, torch.Tensor) or y.ndim != 4 or y.shape[0] != len(batch) \
                or tuple(y.shape[2:]) != (th, tw):
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"fn must map (B,C,h,w)={tuple(inp.shape)} to (B,C',h,w); got {got}")
        if state["out4"] is None:
            _setup_out(int(y.shape[1]))
        o = state["out4"]
        if o.shape[1] != y.shape[1]:
            raise ValueError(f"fn returned {y.shape[1]} channels, output has {o.shape[1]}")
        y = y.detach().to(device="cpu" if out_is_np else out_dev, dtype=torch.float32)
        if out_is_np:
            y = y.numpy()
        for k, (n, i, j, _) in enumerate(batch):
            r0, r1, _ = row_parts[i]
            c0, c1, _ = col_parts[j]
            dr, dc = rows[i], cols[j]
            piece = y[k, :, r0 - dr:r1 - dr, c0 - dc:c1 - dc]
            if window == "crop":
                o[n, :, r0:r1, c0:c1] = piece
            else:
                o[n, :, r0:r1, c0:c1] += piece * row_w[i][:, None] * col_w[j][None, :]

    total = N * len(rows) * len(cols)
    done = 0
    batch: list[tuple[int, int, int, torch.Tensor]] = []
    with torch.no_grad():
        for n in range(N):
            for i, r in enumerate(rows):
                for j, c in enumerate(cols):
                    batch.append((n, i, j, _read(n, r, c)))
                    if len(batch) == batch_size:
                        _flush(batch)
                        done += len(batch)
                        batch = []
                        if progress is not None:
                            progress(done, total)
        if batch:
            _flush(batch)
            done += len(batch)
            if progress is not None:
                progress(done, total)
    return state["result"]
