"""Blind-spot primitives: down-sampling round trips, sub-samplers, N2V masker, DBSNl blindness."""
import pytest
import torch

from restore.blindspot import (STRATEGIES, pd_down, pd_from_batch, pd_to_batch, pd_up, random_subsample,
                               random_subsamples, replace_masked, stratified_mask, subsample_at)
from restore.nets import build_net
from restore.nets.dbsn import DBSNl


def _img(n=2, c=3, h=20, w=30, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("s,pad", [(2, 0), (2, 2), (5, 0), (5, 2)])
def test_pd_round_trips_are_the_identity_and_tiles_are_the_sub_images(s, pad):
    x = _img()
    m = pd_down(x, s, pad)
    assert m.shape == (2, 3, s * (20 // s + 2 * pad), s * (30 // s + 2 * pad))
    assert torch.equal(pd_up(m, s, pad), x)
    hp, wp = 20 // s + 2 * pad, 30 // s + 2 * pad
    i, j = s - 1, 1  # tile (i, j) holds x[..., i::s, j::s], surrounded by zeros
    tile = m[..., i * hp : (i + 1) * hp, j * wp : (j + 1) * wp]
    assert torch.equal(tile[..., pad : hp - pad, pad : wp - pad], x[..., i::s, j::s])
    if pad:
        assert float(tile[..., :pad, :].abs().sum()) == 0
    b = pd_to_batch(x, s)
    assert b.shape == (2 * s * s, 3, 20 // s, 30 // s)
    assert torch.equal(b[s * s + i * s + j], x[1, :, i::s, j::s])
    assert torch.equal(pd_from_batch(b, s), x)


def test_pd_rejects_sizes_that_are_not_multiples():
    with pytest.raises(ValueError, match="multiple of the stride 4"):
        pd_down(_img(h=18), 4)


def test_random_subsample_takes_one_pixel_per_cell_and_replays():
    x = _img(h=16, w=16)
    sub, idx = random_subsample(x, 2, torch.Generator().manual_seed(1))
    assert sub.shape == (2, 3, 8, 8) and idx.min() >= 0 and idx.max() <= 3
    assert len(torch.unique(idx)) == 4  # every position gets chosen somewhere
    r, c = 3, 5
    k = int(idx[0, 0, r, c])
    assert torch.equal(sub[0, :, r, c], x[0, :, 2 * r + k // 2, 2 * c + k % 2])
    assert torch.equal(subsample_at(x, idx, 2), sub)


def test_random_subsamples_use_every_pixel_exactly_once():
    x = torch.arange(2 * 1 * 15 * 25, dtype=torch.float32).view(2, 1, 15, 25)  # all values distinct
    subs = random_subsamples(x, 5, torch.Generator().manual_seed(0))
    assert subs.shape == (2, 25, 1, 3, 5)
    for n in range(2):
        assert torch.equal(subs[n].flatten().sort().values, x[n].flatten())
    # each cell's assignment is a random permutation, not the fixed PD grid
    fixed = pd_to_batch(x, 5).view(2, 25, 1, 3, 5)
    assert not torch.equal(subs, fixed)


def test_stratified_mask_has_one_pixel_per_box():
    m = stratified_mask((3, 1, 40, 40), 1 / 16, torch.Generator().manual_seed(0))
    assert m.shape == (3, 1, 40, 40) and m.dtype == torch.bool
    boxes = m.view(3, 10, 4, 10, 4).sum(dim=(2, 4))
    assert torch.equal(boxes, torch.ones_like(boxes))
    cut = stratified_mask((1, 1, 10, 10), 1 / 16, torch.Generator().manual_seed(0))  # border boxes may be empty
    assert 4 <= int(cut.sum()) <= 9


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_replacement_strategies(strategy):
    y = _img(n=2, c=2, h=12, w=12)
    mask = stratified_mask(y.shape, 0.1, torch.Generator().manual_seed(0))
    out = replace_masked(y, mask, strategy, radius=2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out[~mask.expand_as(y)], y[~mask.expand_as(y)])  # only masked pixels change
    changed = (out != y) & mask
    if strategy == "uniform_withCP":
        assert int(changed.sum()) < int(mask.expand_as(y).sum())  # the centre itself can be drawn
    else:
        assert torch.equal(changed, mask.expand_as(y))  # never the pixel's own value
    if strategy == "mean":
        n, r, c = [int(v) for v in mask.nonzero()[0][[0, 2, 3]]]
        if 2 <= r < 10 and 2 <= c < 10:
            win = y[n, :, r - 2 : r + 3, c - 2 : c + 3].reshape(2, -1)
            assert torch.allclose(out[n, :, r, c], (win.sum(1) - y[n, :, r, c]) / 24)


def _blind_spot_gradient(net, x, i, j, **kw):
    x = x.clone().requires_grad_(True)
    net(x, **kw)[0, :, i, j].sum().backward()
    return x.grad[0]


@pytest.mark.parametrize("i,j", [(0, 0), (7, 9), (15, 3)])
def test_dbsnl_is_blind_masked_and_sees_the_centre_unmasked(i, j):
    torch.manual_seed(0)
    net = DBSNl(channels=3, base=8, modules=2).double()
    x = torch.rand(1, 3, 16, 18, dtype=torch.float64)
    before = net.branch2.masked_conv.weight.detach().clone()
    g = _blind_spot_gradient(net, x, i, j, masked=True)
    assert float(g[:, i, j].abs().max()) == 0.0
    assert float(g.abs().sum()) > 0  # it does see its neighbours
    g_open = _blind_spot_gradient(net, x, i, j, masked=False)
    assert float(g_open[:, i, j].abs().max()) > 0
    assert torch.equal(net.branch2.masked_conv.weight, before)  # the mask is applied to a copy
    clone = build_net(net.config()).double()
    clone.load_state_dict(net.state_dict())
    assert torch.equal(clone(x), net(x))
