"""The down-sampling blind-spot methods: losses, refinements, exact tiling, a short fit."""
import numpy as np
import pytest
import torch

from restore.api import Restorer
from restore.blindspot.inference import coordinate_uniform, pd_apply, r3_refine
from restore.methods import get_method
from restore.metrics import psnr

TINY = {"base": 8, "modules": 1}


def _correlated_noisy(clean, sigma=0.08, seed=0):
    """Noise correlated over 2x2 neighbourhoods (a stand-in for demosaicked sRGB noise)."""
    g = torch.Generator().manual_seed(seed)
    n = torch.randn(clean.shape, generator=g) * sigma
    n = (n + n.roll(1, -1) + n.roll(1, -2) + n.roll((1, 1), (-2, -1))) / 2
    return clean + n


def _train(m, net, y, *, steps: int, patch: int, lr: float) -> None:
    """``steps`` Adam steps of ``m.loss`` on random ``patch``-crops of ``y`` (1, 1, H, W), batch 2."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    for step in range(steps):
        i, j = torch.randint(0, y.shape[-1] - patch, (2,), generator=g).tolist()  # square y
        loss = m.loss(net, {"noisy": y[..., i : i + patch, j : j + patch].repeat(2, 1, 1, 1)},
                      progress=step / steps, generator=g)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_coordinate_uniforms_depend_on_global_coordinates_only():
    whole = coordinate_uniform(40, 50, stream=3)
    part = coordinate_uniform(10, 20, (12, 25), stream=3)
    assert torch.equal(part, whole[12:22, 25:45])
    assert not torch.equal(coordinate_uniform(40, 50, stream=4), whole)
    assert abs(float(whole.mean()) - 0.5) < 0.03 and float(whole.min()) >= 0 and float(whole.max()) < 1


def test_pd_apply_with_identity_net_is_the_identity_for_odd_sizes():
    y = torch.rand(1, 3, 23, 17)
    for form in ("mosaic", "batch"):
        assert torch.equal(pd_apply(lambda t: t, y, 2, pad=2, form=form), y)


def test_r3_keeps_the_mean_when_the_net_is_the_identity():
    y, x0 = torch.rand(1, 1, 30, 30), torch.zeros(1, 1, 30, 30)
    out = r3_refine(lambda t: t, y, x0, passes=50, p=0.16)
    assert abs(float((out / y).mean()) - 0.16) < 0.02  # each pixel keeps y with probability p


@pytest.mark.parametrize("name,params", [("apbsn", {"refine": "r3", "r3_passes": 2}),
                                         ("apbsn", {"refine": "e"}), ("sdap", {}), ("cbsn", {})])
def test_tiled_equals_whole_image_output(name, params):
    torch.manual_seed(0)
    m = get_method(name, net_config=TINY, **params)
    net = m.build_net(3).eval()
    r = Restorer(method=m, net=net)
    y = torch.rand(3, 96, 80)
    whole = r.run(y, 0.0, tile=512, overlap=0)
    tiled = r.run(y, 0.0, tile=48, overlap=40, window="crop")  # overlap >= 2 x receptive radius of TINY
    assert whole.shape == y.shape
    assert torch.allclose(tiled, whole, atol=1e-5)


@pytest.mark.parametrize("name", ["apbsn", "cbsn", "sdap"])
def test_losses_run_and_short_training_beats_the_noisy_input(name, camera):
    """200 steps from scratch on one correlated-noise image (blind-spot nets learn slowly:
    the gains at this budget are ~1.5-6 dB; the trained defaults are measured in the bench)."""
    torch.manual_seed(0)
    m = get_method(name, net_config={"base": 16, "modules": 1}, **({} if name == "cbsn" else {"refine": "none"}))
    net = m.build_net(1)
    clean = torch.from_numpy(np.ascontiguousarray(camera))[None, None]
    y = _correlated_noisy(clean, sigma=0.2)
    _train(m, net, y, steps=200, patch=60, lr=3e-3)
    with torch.no_grad():
        x = m.restore(net, y, None)
    assert psnr(x.numpy(), clean.numpy()) > psnr(y.numpy(), clean.numpy()) + 1.0


def test_training_patches_are_cropped_to_the_stride():
    from restore.blindspot import crop_to_multiple

    x = torch.rand(1, 1, 32, 33)
    assert torch.equal(crop_to_multiple(x, 5), x[..., :30, :30])
    m = get_method("apbsn", net_config=TINY)
    assert torch.isfinite(m.loss(m.build_net(1), {"noisy": x}))
    with pytest.raises(ValueError, match="smaller than the stride"):
        crop_to_multiple(torch.rand(1, 1, 4, 9), 5)


def test_train_a_real_noise_model_then_denoise_with_it_model_free(tmp_path, camera):
    import restore
    from restore.api import denoise_chw
    from restore.io import write_image
    from restore.train import model_noise, read_model

    data = tmp_path / "photos"
    data.mkdir()
    chw = torch.from_numpy(np.stack([camera] * 3))
    for k in range(2):
        write_image(data / f"p{k}.png", np.clip(_correlated_noisy(chw, 0.05, seed=k).numpy().transpose(1, 2, 0), 0, 1))
    out = tmp_path / "sdap.safetensors"
    restore.fit("sdap", data=data, noise="real", output=out, steps=2)
    _, meta = read_model(out)
    assert model_noise(meta) == "real" and meta["net"]["arch"] == "DBSNl" and meta["net"]["channels"] == 3
    y = chw[:, :64, :80].contiguous()
    x, sigma = denoise_chw(y, noise="real", model=out, device="cpu")
    assert x.shape == y.shape and sigma is None
    with pytest.raises(ValueError, match="trained for real noise"):
        denoise_chw(y, noise="auto", model=out, device="cpu")


def test_neighbor2neighbor_pairs_are_adjacent_and_training_helps(camera):
    from restore.methods.nb2nb import neighbour_pair

    i1, i2 = neighbour_pair((4, 1, 32, 32), torch.Generator().manual_seed(0))
    dy, dx = (i1 // 2 - i2 // 2).abs(), (i1 % 2 - i2 % 2).abs()
    assert torch.equal(dy + dx, torch.ones_like(dy))  # horizontal or vertical neighbours, never diagonal
    torch.manual_seed(0)
    m = get_method("nb2nb", net_config={"widths": [16, 32], "depth": 1, "cond": False})
    net = m.build_net(1)
    clean = torch.from_numpy(np.ascontiguousarray(camera))[None, None]
    y = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    _train(m, net, y, steps=120, patch=64, lr=2e-3)
    with torch.no_grad():
        x = m.restore(net, y, None)
    assert psnr(x.numpy(), clean.numpy()) > psnr(y.numpy(), clean.numpy()) + 2.0
