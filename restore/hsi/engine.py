"""Running a tile function over a cube larger than memory: the local engine and the Dask engine.

A *tile function* ``fn(tile, band0) -> tile`` maps a float32 (b, h, w) block
whose first band is band ``band0`` of the cube to its denoised block (same
shape); it must be local (each output voxel depends on a neighbourhood of at
most ``halo = (bands, rows, columns)`` voxels).  Two engines run it:

* :func:`run_local` -- :func:`restore.tiling_cube.tiled_apply_cube` with
  crop-and-paste tiles of ``tile`` voxels overlapping by ``2 x halo``, read
  lazily from the input and written tile by tile into the output (a zarr
  array or memmap);
* :func:`run_dask` -- the same function through ``dask.array.map_overlap``
  with chunks of ``tile - 2 x halo`` and ``depth = halo`` (``boundary="none"``:
  blocks at the cube's edges see the edge as the whole-cube run does), on the
  local threaded scheduler, a local cluster of ``workers`` processes, or a
  scheduler ``address``, streamed into a zarr store.

For a function whose reach is within ``halo`` both equal the whole-cube
result (and each other) up to float rounding.  Peak memory is bounded by the
tile (local) or the chunk plus halo per worker thread (Dask), never by the cube.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from restore.tiling import _axis_plan, _round_up
from restore.tiling_cube import tiled_apply_cube

__all__ = ["TileFn", "run_local", "dask_apply", "dask_client", "run_dask", "ENGINES"]

TileFn = Callable[[np.ndarray, int], np.ndarray]
ENGINES = ("local", "dask")


def _tile_sizes(shape, tile, halo, multiple: int = 1):
    m = (1, int(multiple), int(multiple))
    return [min(int(t), _round_up(s, mi)) for t, s, mi in zip(tile, shape, m)], [int(h) for h in halo]


def _balanced_tile(length: int, tile: int, overlap: int, m: int) -> int:
    """The smallest tile (multiple of ``m``, at most ``tile``) that covers ``length`` with as many
    tiles as ``tile`` needs: the tiles share the axis evenly instead of a last tile that mostly
    repeats its neighbour (e.g. 1000 px with 512-px tiles: 3 x 364 px instead of 3 x 512)."""
    L = _round_up(length, m)
    if tile >= L or tile <= overlap:
        return tile
    n = len(_axis_plan(L, tile, overlap, m)[2])
    t = _round_up(-(-(L + (n - 1) * overlap) // n), m)
    while t < tile and len(_axis_plan(L, t, overlap, m)[2]) > n:  # the stride snaps to the grid
        t += m
    return min(tile, t)


def run_local(fn: TileFn, cube: Any, out: Any, *, tile: Sequence[int], halo: Sequence[int], multiple: int = 1,
              batch_size: int = 1, progress=None) -> Any:
    """Run ``fn`` over a (B, H, W) ``cube`` with crop-and-paste tiles into ``out`` (same shape);
    tiles start on a ``multiple`` grid in rows and columns."""
    shape = tuple(int(s) for s in cube.shape)
    t, h = _tile_sizes(shape, tile, halo, multiple)
    for ax, (ti, hi, si) in enumerate(zip(t, h, shape)):
        if ti < si and ti <= 2 * hi:
            raise ValueError(f"tile {ti} on axis {ax} must exceed twice the halo ({hi}); use a larger tile")
    t = [_balanced_tile(si, ti, 2 * hi, mi) if ti < si else ti
         for si, ti, hi, mi in zip(shape, t, h, (1, multiple, multiple))]

    def apply(batch: torch.Tensor, origins) -> torch.Tensor:
        res = [torch.from_numpy(np.ascontiguousarray(fn(b.numpy(), o[0]), np.float32)) for b, o in zip(batch, origins)]
        if progress is not None:
            progress(len(res))
        return torch.stack(res)

    return tiled_apply_cube(apply, cube, tile=t, overlap=[2 * v if ti < si else 0 for v, ti, si in zip(h, t, shape)],
                            multiple=(1, multiple, multiple), window="crop", batch_size=batch_size, out=out,
                            with_origins=True)


def dask_apply(fn: TileFn, cube: Any, *, tile: Sequence[int], halo: Sequence[int], multiple: int = 1):
    """``fn`` over a (B, H, W) array-like as a lazy dask array (chunks ``tile - 2 * halo``,
    ``map_overlap`` with ``depth = halo`` and ``boundary="none"``; in rows and columns the halo and
    the chunks are multiples of ``multiple``, so every block starts on that grid)."""
    try:
        import dask.array as da
    except ImportError:
        raise ValueError("the dask engine needs the optional 'dask' package: pip install 'dask[array,distributed]'") from None
    shape = tuple(int(s) for s in cube.shape)
    m = (1, int(multiple), int(multiple))
    t, h = _tile_sizes(shape, tile, halo, multiple)
    h = [_round_up(hi, mi) for hi, mi in zip(h, m)]
    chunks, depth = [], {}
    for ax, (ti, hi, si, mi) in enumerate(zip(t, h, shape, m)):
        c = max((ti - 2 * hi) // mi * mi, mi, hi if ax else hi + 1)  # bands: a block holds > 2*halo bands
        if ti >= si or c >= si:  # one tile covers the axis, as in the local engine
            chunks.append((si,))
            depth[ax] = 0
            continue
        c = max(_round_up(-(-si // -(-si // c)), mi), mi, hi if ax else hi + 1)  # share the axis evenly
        n, r = divmod(si, c)
        sizes = [c] * n
        if r >= hi and r:  # a remainder smaller than the halo is merged into the last chunk (dask would
            sizes.append(r)  # re-chunk it off the grid otherwise)
        else:
            sizes[-1] += r
        chunks.append(tuple(sizes))
        depth[ax] = hi
    x = da.from_array(cube, chunks=tuple(chunks), asarray=False, fancy=False)
    starts = np.concatenate([[0], np.cumsum(chunks[0])[:-1]])

    def block(b: np.ndarray, block_info=None) -> np.ndarray:
        i = block_info[0]["chunk-location"][0]
        band0 = int(starts[i]) - (depth[0] if i > 0 else 0)
        return np.asarray(fn(np.asarray(b, np.float32), band0), np.float32)

    return da.map_overlap(block, x, depth=depth, boundary="none", dtype=np.float32, trim=True)


@contextmanager
def dask_client(workers: int = 0, address: str | None = None, threads_per_worker: int = 1):
    """Context for dask computations: nothing (threaded scheduler) when ``workers == 0`` and no
    ``address``; else a ``distributed`` client of a new local cluster or of ``address``."""
    if not (address or workers):
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("dask workers or a scheduler address need 'distributed': pip install 'dask[distributed]'") from None
    cluster = None if address else LocalCluster(n_workers=int(workers), threads_per_worker=int(threads_per_worker),
                                                processes=True, dashboard_address=None)
    client = Client(address or cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_dask(fn: TileFn, cube: Any, out_path: str, *, tile: Sequence[int], halo: Sequence[int], multiple: int = 1,
             workers: int = 0, address: str | None = None, threads_per_worker: int = 1,
             squeeze_band: bool = False) -> str:
    """:func:`dask_apply` streamed into a new zarr store ``out_path`` (2-D when ``squeeze_band``).

    ``workers``: 0 = dask's threaded scheduler here; N = a local cluster of N worker processes
    (``threads_per_worker`` threads each); ``address``: an existing scheduler."""
    import dask.array as da

    y = dask_apply(fn, cube, tile=tile, halo=halo, multiple=multiple)
    if squeeze_band:
        y = y[0]
    y = y.rechunk(tuple(max(c) for c in y.chunks))  # regular chunks for zarr
    with dask_client(workers, address, threads_per_worker):
        da.to_zarr(y, out_path, overwrite=False)
    return out_path
