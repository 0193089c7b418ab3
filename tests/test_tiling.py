"""Tests for restore.tiling (tiled executor)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from restore.tiling import auto_tile_size, tile_grid, tiled_apply
from restore.tiling import _axis_plan, _crop_bounds


# --------------------------------------------------------------------------
# small test models
# --------------------------------------------------------------------------
class ConvNet(nn.Module):
    """3 conv3x3 layers with zero padding: receptive radius 3."""

    def __init__(self, cin: int, cout: int | None = None, feat: int = 6):
        super().__init__()
        cout = cin if cout is None else cout
        self.c1 = nn.Conv2d(cin, feat, 3, padding=1)
        self.c2 = nn.Conv2d(feat, feat, 3, padding=1)
        self.c3 = nn.Conv2d(feat, cout, 3, padding=1)

    def forward(self, x):
        return self.c3(torch.tanh(self.c2(torch.tanh(self.c1(x)))))


class PoolNet(nn.Module):
    """conv -> avgpool 2 -> conv -> nearest x2 -> conv: needs multiple=2, radius 5."""

    def __init__(self, cin: int, feat: int = 6):
        super().__init__()
        self.c1 = nn.Conv2d(cin, feat, 3, padding=1)
        self.c2 = nn.Conv2d(feat, feat, 3, padding=1)
        self.c3 = nn.Conv2d(feat, cin, 3, padding=1)

    def forward(self, x):
        assert x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0, x.shape
        h = torch.tanh(self.c1(x))
        h = torch.tanh(self.c2(F.avg_pool2d(h, 2)))
        return self.c3(F.interpolate(h, scale_factor=2, mode="nearest"))


def _net(cls, *args, seed=0, **kw):
    torch.manual_seed(seed)
    return cls(*args, **kw).eval()


def _whole(fn, x):
    """Whole-image reference for a (C,H,W) or (N,C,H,W) tensor."""
    with torch.no_grad():
        return fn(x[None])[0] if x.ndim == 3 else fn(x)


def _pad_to(x, mult):
    """Reflect-pad (N,C,H,W) at the far side to a multiple of mult."""
    ph = -x.shape[-2] % mult
    pw = -x.shape[-1] % mult
    return F.pad(x, (0, pw, 0, ph), mode="reflect")


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


# --------------------------------------------------------------------------
# tile_grid
# --------------------------------------------------------------------------
@pytest.mark.parametrize("length", [1, 7, 64, 65, 100, 129, 389, 517, 1000])
@pytest.mark.parametrize("tile,overlap,multiple", [(64, 8, 1), (64, 16, 8), (100, 30, 8), (37, 5, 1),
                                                    (16, 0, 4), (96, 50, 16)])
def test_tile_grid_covers(length, tile, overlap, multiple):
    starts = tile_grid(length, tile, overlap, multiple)
    T = max(multiple, tile // multiple * multiple)
    assert starts == sorted(set(starts)) and starts[0] == 0
    if length < T:
        assert starts == [0]
        t_eff, padded, _ = _axis_plan(length, tile, overlap, multiple)
        assert t_eff == padded and t_eff % multiple == 0 and length <= t_eff <= T
        return
    assert starts[-1] + T == length
    covered = np.zeros(length, bool)
    for a, b in zip(starts[:-1], starts[1:]):
        assert a + T - b >= overlap  # real overlap never below the request
    for s in starts:
        assert 0 <= s and s + T <= length
        covered[s:s + T] = True
    assert covered.all()
    assert all(s % multiple == 0 for s in starts[:-1])
    if length % multiple == 0:
        assert starts[-1] % multiple == 0


def test_tile_grid_examples_and_errors():
    assert tile_grid(100, 64, 16, 1) == [0, 36]
    assert tile_grid(200, 64, 16, 1) == [0, 48, 96, 136]
    assert tile_grid(200, 64, 20, 8) == [0, 40, 80, 120, 136]  # stride 44 -> 40
    assert tile_grid(64, 64, 16, 8) == [0]
    assert tile_grid(30, 64, 16, 8) == [0]
    with pytest.raises(ValueError):
        tile_grid(200, 64, 64, 1)
    with pytest.raises(ValueError):
        tile_grid(200, 64, 60, 8)  # stride 4 < multiple
    with pytest.raises(ValueError):
        tile_grid(0, 64, 16, 1)


def test_crop_bounds_farthest_from_border():
    """Each pixel goes to a tile where it is farthest from an interior tile edge."""
    for length, tile, ov in [(517, 64, 8), (389, 40, 25), (100, 64, 16), (300, 32, 20)]:
        starts = tile_grid(length, tile, ov, 1)
        bounds = _crop_bounds(starts, tile, length)
        owner = np.full(length, -1)
        for k, (lo, hi) in enumerate(bounds):
            assert starts[k] <= lo < hi <= starts[k] + tile
            owner[lo:hi] = k
        assert (owner >= 0).all() and (np.diff(owner) >= 0).all()

        def dist(p, s):
            left = p - s if s > 0 else np.inf
            right = s + tile - 1 - p if s + tile < length else np.inf
            return min(left, right)

        for p in range(length):
            best = max(dist(p, s) for s in starts if s <= p < s + tile)
            assert dist(p, starts[owner[p]]) == best


# --------------------------------------------------------------------------
# crop window: exact equality with whole-image output
# --------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 517, 389), (3, 517, 389), (2, 3, 389, 517)])
@pytest.mark.parametrize("tile,overlap,multiple", [(64, 6, 1), (96, 12, 8)])
def test_crop_exact_convnet(shape, tile, overlap, multiple):
    C = shape[-3]
    net = _net(ConvNet, C)
    x = torch.rand(shape)
    ref = _whole(net, x)
    calls = []
    y = tiled_apply(net, x, tile=tile, overlap=overlap, multiple=multiple, batch_size=5,
                    progress=lambda d, t: calls.append((d, t)))
    assert y.shape == ref.shape and y.dtype == torch.float32
    assert not y.is_inference()
    assert (y - ref).abs().max().item() < 1e-5
    n_img = shape[0] if len(shape) == 4 else 1
    n_tiles = n_img * len(tile_grid(shape[-2], tile, overlap, multiple)) \
        * len(tile_grid(shape[-1], tile, overlap, multiple))
    assert n_tiles > 20
    assert calls[-1] == (n_tiles, n_tiles)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_crop_overlap_too_small_is_detected():
    """Sanity check that the equality test above has teeth."""
    net = _net(ConvNet, 1)
    x = torch.rand(1, 200, 150)
    y = tiled_apply(net, x, tile=64, overlap=2, window="crop")
    assert (y - _whole(net, x)).abs().max().item() > 1e-4


@pytest.mark.parametrize("shape", [(1, 518, 390), (3, 518, 390), (2, 1, 390, 518)])
def test_crop_exact_poolnet_aligned(shape):
    net = _net(PoolNet, shape[-3])
    x = torch.rand(shape)
    ref = _whole(net, x)
    y = tiled_apply(net, x, tile=64, overlap=12, multiple=2, batch_size=8)
    assert (y - ref).abs().max().item() < 1e-5
    # same with multiple=8 tiles on the 8-grid (last tile on the 2-grid)
    y8 = tiled_apply(net, x, tile=70, overlap=12, multiple=8, batch_size=8)
    assert (y8 - ref).abs().max().item() < 1e-5


def test_crop_poolnet_odd_size():
    """Odd sizes: pixels from on-grid tiles match the padded whole-image run;
    the flush (off-grid) last tile only affects the far strips."""
    net = _net(PoolNet, 1)
    x = torch.rand(1, 517, 389)
    ref = _whole(net, _pad_to(x[None], 2))[0, :, :517, :389]
    tile, ov = 64, 12
    y = tiled_apply(net, x, tile=tile, overlap=ov, multiple=2)
    assert y.shape == x.shape and torch.isfinite(y).all()
    rb = _crop_bounds(tile_grid(517, tile, ov, 2), tile, 517)[-1][0]
    cb = _crop_bounds(tile_grid(389, tile, ov, 2), tile, 389)[-1][0]
    assert (y[:, :rb, :cb] - ref[:, :rb, :cb]).abs().max().item() < 1e-5
    assert (y - ref).abs().max().item() > 1e-5  # the off-grid tile does differ


def test_crop_whole_image_is_single_call():
    net = _net(ConvNet, 3)
    x = torch.rand(3, 40, 48)
    seen = []

    def fn(b):
        seen.append(tuple(b.shape))
        return net(b)

    y = tiled_apply(fn, x, tile=64, overlap=16, multiple=8)
    assert seen == [(1, 3, 40, 48)]
    assert (y - _whole(net, x)).abs().max().item() < 1e-6


# --------------------------------------------------------------------------
# blending windows
# --------------------------------------------------------------------------
@pytest.mark.parametrize("window", ["hann", "linear"])
@pytest.mark.parametrize("tile,overlap,multiple", [(64, 16, 1), (48, 30, 8), (40, 8, 4)])
def test_blend_identity_exact(window, tile, overlap, multiple):
    x = torch.rand(2, 3, 157, 131) * 2 - 0.5
    y = tiled_apply(lambda b: b, x, tile=tile, overlap=overlap, window=window,
                    multiple=multiple)
    assert torch.isfinite(y).all()
    assert (y - x).abs().max().item() < 1e-6
    # image borders included
    assert torch.allclose(y[..., 0, :], x[..., 0, :], atol=1e-6, rtol=0)
    assert torch.allclose(y[..., :, -1], x[..., :, -1], atol=1e-6, rtol=0)


@pytest.mark.parametrize("window", ["hann", "linear"])
def test_blend_convnet_small_error(window):
    net = _net(ConvNet, 3)
    x = torch.rand(3, 259, 197)
    ref = _whole(net, x)
    y = tiled_apply(net, x, tile=64, overlap=16, window=window)
    err = (y - ref).abs()
    # compare with hard seams (no overlap): blending must remove most of it
    seam = (tiled_apply(net, x, tile=64, overlap=0, window="crop") - ref).abs()
    assert seam.max().item() > 0.05
    assert err.max().item() < 0.15 * seam.max().item()
    assert err.mean().item() < 0.2 * seam.mean().item()
    # a one-tile-wide image border strip away from seams equals the reference
    assert (err[:, :8, :40]).max().item() < 1e-5


def test_blend_weights_shape():
    """Two-tile overlaps use complementary ramps that sum to one; tiles have
    weight 1 away from shared edges, including at the image border."""
    from restore.tiling import _blend_weights

    length, tile, ov = 200, 64, 16
    starts = tile_grid(length, tile, ov)  # [0, 48, 96, 136]: overlaps 16, 16, 24
    for kind in ("hann", "linear"):
        parts = _blend_weights(starts, tile, length, kind)
        lo0, hi0, w0 = parts[0]
        lo1, hi1, w1 = parts[1]
        assert (lo0, hi0, lo1, hi1) == (0, 64, 48, 112)
        np.testing.assert_array_equal(w0[:48], 1.0)  # incl. image border pixel 0
        t = np.arange(1, ov + 1) / (ov + 1)
        up = np.sin(0.5 * np.pi * t) ** 2 if kind == "hann" else t
        np.testing.assert_allclose(w1[:ov], up, atol=1e-12)
        np.testing.assert_allclose(w0[48:], up[::-1], atol=1e-12)
        assert (w1[:ov] > 0).all() and (w0[48:] > 0).all()
        lo3, hi3, w3 = parts[-1]
        assert hi3 == length and w3[-1] == 1.0  # far image border
        acc = np.zeros(length)
        for lo, hi, w in parts:
            acc[lo:hi] += w
        np.testing.assert_allclose(acc, 1.0, atol=1e-12)


def test_blend_numpy_out_accumulates_from_zero(tmp_path):
    x = np.random.rand(1, 100, 90).astype(np.float32)
    out = np.full((1, 100, 90), 7.0, dtype=np.float32)  # garbage must be cleared
    res = tiled_apply(lambda b: b, x, tile=32, overlap=8, window="hann", out=out)
    assert res is out
    np.testing.assert_allclose(out, x, atol=1e-6, rtol=0)


# --------------------------------------------------------------------------
# small images / padding
# --------------------------------------------------------------------------
def test_small_image_reflect_pad():
    net = _net(ConvNet, 2)
    x = torch.rand(2, 37, 23)
    seen = []

    def fn(b):
        seen.append(tuple(b.shape))
        return net(b)

    y = tiled_apply(fn, x, tile=64, overlap=16, multiple=8)
    assert seen == [(1, 2, 40, 24)]
    assert y.shape == x.shape
    ref = _whole(net, F.pad(x[None], (0, 1, 0, 3), mode="reflect"))[0, :, :37, :23]
    assert (y - ref).abs().max().item() < 1e-6
    for window in ("hann", "linear"):
        yw = tiled_apply(net, x, tile=64, overlap=16, multiple=8, window=window)
        assert (yw - ref).abs().max().item() < 1e-6


def test_small_image_replicate_when_reflect_impossible():
    x = torch.rand(1, 3, 5)
    seen = []

    def fn(b):
        seen.append(b.clone())
        return b * 2

    y = tiled_apply(fn, x, tile=64, overlap=16, multiple=8)
    assert y.shape == x.shape
    assert torch.allclose(y, 2 * x, atol=1e-6, rtol=0)
    (b,) = seen
    assert b.shape == (1, 1, 8, 8)
    exp = F.pad(F.pad(x[None], (0, 0, 0, 5), mode="replicate"), (0, 3, 0, 0), mode="reflect")
    assert torch.equal(b, exp)


def test_one_small_axis_one_tiled_axis():
    net = _net(ConvNet, 1)
    x = torch.rand(1, 30, 300)
    y = tiled_apply(net, x, tile=64, overlap=8, multiple=8)
    ref = _whole(net, F.pad(x[None], (0, 0, 0, 2), mode="reflect"))[0, :, :30]
    assert (y - ref).abs().max().item() < 1e-5


# --------------------------------------------------------------------------
# numpy / memmap / out
# --------------------------------------------------------------------------
def test_numpy_and_memmap(tmp_path):
    net = _net(ConvNet, 3, 6)
    xt = torch.rand(2, 3, 133, 171)
    ref_t = tiled_apply(net, xt, tile=48, overlap=8, multiple=4)
    assert (ref_t - _whole(net, xt)).abs().max().item() < 1e-5

    xn = xt.numpy().copy()
    yn = tiled_apply(net, xn, tile=48, overlap=8, multiple=4)
    assert isinstance(yn, np.ndarray) and yn.dtype == np.float32 and yn.shape == (2, 6, 133, 171)
    np.testing.assert_allclose(yn, ref_t.numpy(), atol=1e-6, rtol=0)

    mx = np.memmap(tmp_path / "x.dat", dtype=np.float32, mode="w+", shape=xn.shape)
    mx[:] = xn
    mx.flush()
    mx = np.memmap(tmp_path / "x.dat", dtype=np.float32, mode="r", shape=xn.shape)
    mo = np.memmap(tmp_path / "y.dat", dtype=np.float32, mode="w+", shape=(2, 6, 133, 171))
    res = tiled_apply(net, mx, tile=48, overlap=8, multiple=4, out=mo)
    assert res is mo
    mo.flush()
    back = np.fromfile(tmp_path / "y.dat", dtype=np.float32).reshape(2, 6, 133, 171)
    np.testing.assert_allclose(back, ref_t.numpy(), atol=1e-6, rtol=0)

    # 3-D memmap in, 3-D memmap out, blending window
    mo3 = np.memmap(tmp_path / "y3.dat", dtype=np.float32, mode="w+", shape=(6, 133, 171))
    tiled_apply(net, mx[1], tile=48, overlap=8, window="linear", out=mo3)
    ref3 = tiled_apply(net, xt[1], tile=48, overlap=8, window="linear")
    np.testing.assert_allclose(np.asarray(mo3), ref3.numpy(), atol=1e-6, rtol=0)


class _SpyArray:
    """Array-like that records every slice read (to check lazy reading)."""

    def __init__(self, a):
        self.a, self.shape, self.dtype, self.reads = a, a.shape, a.dtype, []

    def __getitem__(self, idx):
        r = self.a[idx]
        self.reads.append(r.size)
        return r


def test_lazy_reads_are_tile_sized():
    a = (np.random.rand(2, 1, 200, 150) * 255).astype(np.uint8)
    spy = _SpyArray(a)
    y = tiled_apply(lambda b: b + 1, spy, tile=32, overlap=8)
    assert max(spy.reads) <= 32 * 32
    assert len(spy.reads) == 2 * len(tile_grid(200, 32, 8)) * len(tile_grid(150, 32, 8))
    np.testing.assert_array_equal(y, a.astype(np.float32) + 1)


def test_out_channels_and_tensor_out():
    net = _net(ConvNet, 3, 6)  # C -> 2C
    x = torch.rand(3, 150, 121)
    ref = _whole(net, x)
    y = tiled_apply(net, x, tile=48, overlap=8, out_channels=6)
    assert y.shape == (6, 150, 121)
    assert (y - ref).abs().max().item() < 1e-5
    out = torch.empty(6, 150, 121)
    res = tiled_apply(net, x, tile=48, overlap=8, out=out, window="hann")
    assert res is out
    with pytest.raises(ValueError):
        tiled_apply(net, x, tile=48, overlap=8, out_channels=3)
    with pytest.raises(ValueError):
        tiled_apply(net, x, tile=48, overlap=8, out=torch.empty(3, 150, 121))


def test_bad_fn_and_args():
    x = torch.rand(1, 50, 50)
    with pytest.raises(ValueError):
        tiled_apply(lambda b: b[..., :-1, :], x, tile=32, overlap=8)
    with pytest.raises(ValueError):
        tiled_apply(lambda b: b, x, tile=32, overlap=8, window="gauss")
    with pytest.raises(ValueError):
        tiled_apply(lambda b: b, torch.rand(50, 50), tile=32, overlap=8)


# --------------------------------------------------------------------------
# auto tile size
# --------------------------------------------------------------------------
@pytest.mark.parametrize("channels,budget,multiple,overhead,bs",
                         [(1, 2**30, 1, 128, 1), (3, 2**28, 8, 64, 4), (3, 10**9, 16, 200, 2)])
def test_auto_tile_size(channels, budget, multiple, overhead, bs):
    t = auto_tile_size(channels, budget, multiple=multiple, overhead=overhead, batch_size=bs)

    def est(s):
        return overhead * channels * s * s * 4 * bs

    assert t % multiple == 0 and t >= multiple
    assert est(t) <= budget < est(t + multiple)


def test_auto_tile_size_tiny_budget_and_auto_mode():
    assert auto_tile_size(3, 10, multiple=8) == 8
    x = torch.rand(1, 70, 90)
    y = tiled_apply(lambda b: b * 3, x, tile="auto", overlap=8, multiple=8)
    assert torch.allclose(y, 3 * x, atol=1e-6, rtol=0)
    y = tiled_apply(lambda b: b * 3, x, tile=None, overlap=8)
    assert torch.allclose(y, 3 * x, atol=1e-6, rtol=0)
