"""Tiles over all three axes of a hyperspectral cube (bands, rows, columns), blended, batched.

:func:`tiled_apply_cube` runs ``fn(batch)`` with ``batch`` (n, b, h, w) (n tiles
of b bands x h x w pixels) over a (B, H, W) cube read lazily (NumPy array,
memmap, zarr array or anything with basic slicing) and writes the blended
result tile by tile into ``out`` (array, memmap or zarr), so memory is bounded
by the tile and batch size, never by the cube.  Each axis is planned as in
:mod:`restore.tiling` (starts on a ``multiple`` grid, last tile flush with the
border, cubes shorter than a tile padded on the far side and cropped back) and
weighted per axis (``crop``: each voxel from the tile where it is farthest from
an interior edge; ``hann``/``linear``: ramps over the overlaps), the weights
normalised per axis, so the 3-D weight of every voxel sums to one and results
accumulate into ``out`` in one pass.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from restore.tiling import WINDOWS, _axis_plan, _blend_weights, _check_int, _crop_bounds, _round_up

__all__ = ["tiled_apply_cube", "cube_tile_plan"]


def _axis_weights(length: int, tile: int, overlap: int, multiple: int, window: str):
    """Plan one axis on the ``multiple`` grid: the axis is planned as if padded to a multiple of
    ``multiple`` (the far side, as a whole-cube run pads it), so every tile starts on the grid and
    the last one reaches past the end by less than ``multiple`` (read, then padded by reflection)."""
    padded_len = _round_up(length, multiple)
    t, _, starts = _axis_plan(padded_len, tile, overlap, multiple)
    plan = []
    if window == "crop":
        for s, (lo, hi) in zip(starts, _crop_bounds(starts, t, padded_len)):
            w = np.zeros(min(t, length - s))
            w[lo - s:min(hi, length) - s] = 1.0
            plan.append((s, s + len(w), w))
    else:
        for s, hi, w in _blend_weights(starts, t, padded_len, window):
            e = min(hi, length)
            plan.append((s, e, w[:e - s]))
    return t, padded_len, plan


def cube_tile_plan(shape: Sequence[int], tile: Sequence[int], overlap: Sequence[int],
                   multiple: Sequence[int] = (1, 1, 1), window: str = "hann"):
    """Per axis ``(tile_eff, [(start, stop, weights)])`` for a (B, H, W) cube."""
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
    if not (len(shape) == len(tile) == len(overlap) == len(multiple) == 3):
        raise ValueError("shape, tile, overlap and multiple need 3 entries (bands, rows, columns)")
    out = []
    for n, t, o, m in zip(shape, tile, overlap, multiple):
        te, _, plan = _axis_weights(int(n), _check_int("tile", t, 1), _check_int("overlap", o, 0),
                                    _check_int("multiple", m, 1), window)
        out.append((te, plan))
    return out


def tiled_apply_cube(fn: Callable[[torch.Tensor], torch.Tensor], cube: Any, *, tile: Sequence[int] = (32, 128, 128),
                     overlap: Sequence[int] = (8, 16, 16), multiple: Sequence[int] = (1, 1, 1), window: str = "hann",
                     batch_size: int = 4, out: Any = None, device: str | torch.device = "cpu",
                     with_origins: bool = False) -> Any:
    """Apply ``fn`` to a (B, H, W) cube in 3-D tiles and blend them into ``out``.

    Args:
        fn: float32 (n, b, h, w) -> (n, b, h, w), called under ``torch.inference_mode()`` with
            ``n <= batch_size`` and b, h, w the (padded) tile sizes.
        cube: (B, H, W) array-like with basic slicing; read one tile at a time.
        tile, overlap, multiple: per axis (bands, rows, columns), in voxels; for exact results
            with ``window="crop"`` make each overlap at least twice the receptive-field radius.
        window: ``"crop"``, ``"hann"`` or ``"linear"``.
        out: (B, H, W) float array-like to write into (zeroed first), e.g. a zarr array or a
            memmap; default a new float32 NumPy array.
        with_origins: call ``fn(batch, origins)`` with ``origins`` the (band, row, column) start of
            each tile in the cube (for per-band parameters such as noise levels).
    Returns ``out``.
    """
    shape = tuple(int(s) for s in cube.shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"cube must be (bands, rows, columns), got shape {shape}")
    batch_size = _check_int("batch_size", batch_size, 1)
    plan = cube_tile_plan(shape, tile, overlap, multiple, window)
    if out is None:
        out = np.zeros(shape, np.float32)
    else:
        if tuple(out.shape) != shape:
            raise ValueError(f"out has shape {tuple(out.shape)}, the cube {shape}")
        if window != "crop":  # crop regions partition the cube: written once, no accumulation
            for b0 in range(shape[0]):  # zeroed in slabs: bounded memory for any size
                for r0 in range(0, shape[1], 64):
                    out[b0, r0:r0 + 64] = 0
    sizes = [te for te, _ in plan]
    tiles = list(itertools.product(*(p for _, p in plan)))

    def run(group):
        batch = []
        for axes in group:
            sl = tuple(slice(a, b) for a, b, _ in axes)
            t = torch.from_numpy(np.array(cube[sl], dtype=np.float32))  # a writable copy
            pad = [sz - (b - a) for (a, b, _), sz in zip(axes, sizes)]
            if any(pad):
                mode = "reflect" if all(p < (b - a) for p, (a, b, _) in zip(pad, axes)) else "replicate"
                t = F.pad(t[None, None], (0, pad[2], 0, pad[1], 0, pad[0]), mode=mode)[0, 0]
            batch.append(t)
        with torch.inference_mode():
            x = torch.stack(batch).to(device)
            origins = [tuple(a for a, _, _ in axes) for axes in group]
            res = (fn(x, origins) if with_origins else fn(x)).float().cpu().numpy()
        for axes, r in zip(group, res):
            if window == "crop":  # write the tile's own region only (weights are 1 there, 0 elsewhere)
                nz = [np.flatnonzero(w) for _, _, w in axes]
                if any(len(i) == 0 for i in nz):
                    continue
                src = tuple(slice(int(i[0]), int(i[-1]) + 1) for i in nz)
                dst = tuple(slice(a + s.start, a + s.stop) for (a, _, _), s in zip(axes, src))
                out[dst] = r[src].astype(np.float32)
                continue
            (a0, b0, w0), (a1, b1, w1), (a2, b2, w2) = axes
            w = w0[:, None, None] * w1[None, :, None] * w2[None, None, :]
            region = (slice(a0, b0), slice(a1, b1), slice(a2, b2))
            out[region] = np.asarray(out[region]) + (w * r[:b0 - a0, :b1 - a1, :b2 - a2]).astype(np.float32)

    for k in range(0, len(tiles), batch_size):
        run(tiles[k:k + batch_size])
    return out
