"""Diffusion priors: schedule, the epsilon network and its training, the patch method, the loaders."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from restore.diffusion import DDPMSchedule, DiffusionPrior, load_prior
from restore.nets import EpsUNet
from restore.nets.adm_unet import ADMUNet, adm_config_from_state_dict

sys.path.insert(0, str(Path(__file__).parent))
from gaussian_prior import gaussian_prior  # noqa: E402


def test_schedule_is_the_linear_ddpm_one():
    s = DDPMSchedule()
    betas = 1 - s.alpha_bar[1:] / s.alpha_bar[:-1]
    assert s.T == 1000 and abs(1 - s.abar(0) - 1e-4) < 1e-12
    assert torch.allclose(betas, torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)[1:], atol=1e-10)
    ts = s.timesteps(50)
    assert ts[0] == 999 and ts[-1] == 0 and len(ts) == 50 and all(a > b for a, b in zip(ts, ts[1:]))
    assert s.abar(-1) == 1.0


def test_exact_score_ddpm_sampling_reproduces_the_gaussian_prior():
    """Ancestral sampling with the exact epsilon of N(m, S) must draw from N(m, S)."""
    from restore.operators import Identity
    from restore.solvers import get_solver

    prior, m, S = gaussian_prior()
    K = 2048
    out = get_solver("gdp", steps=1000, scale=0.0)(torch.zeros(K, 1, 4, 4), Identity(), prior,
                                                    generator=torch.Generator().manual_seed(0))
    z = (out.double() * 2 - 1).reshape(K, -1)
    assert float((z.mean(0) - m).norm()) < 0.02  # MC error ~0.006
    assert float((torch.cov(z.T) - S).norm() / S.norm()) < 0.08  # measured 0.03 with 4096 draws


def test_eps_unet_learns_on_clean_patches():
    """A few steps of the DDPM loss on smooth images lower it (same noise draws before and after)."""
    from restore.methods import get_method

    torch.manual_seed(0)
    method = get_method("prior")
    method.net_config = {"widths": [8, 16], "depth": 1, "image_size": 16}
    net = method.build_net(1)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 16), indexing="ij")
    clean = torch.stack([((xx * a + yy * (1 - a)) % 1)[None] for a in torch.linspace(0, 1, 16)])
    batch = {"clean": clean}

    def loss():
        with torch.no_grad():
            return float(method.loss(net, batch, generator=torch.Generator().manual_seed(5)))

    before = loss()
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for i in range(100):
        opt.zero_grad()
        method.loss(net, batch, generator=torch.Generator().manual_seed(i)).backward()
        opt.step()
    assert loss() < 0.8 * before  # measured 0.21 -> 0.15 (EDM preconditioning starts low)
    assert net(torch.zeros(2, 1, 16, 16), torch.tensor([0, 999])).shape == (2, 1, 16, 16)


def test_patch_method_averages_tiles_exactly():
    """For a pixel-wise network, tiled prediction (stride p/2, last tile flush) equals the whole-image one."""
    def f(x, t):
        return torch.tanh(x) * (t.float().reshape(-1, 1, 1, 1) / 1000)

    P = DiffusionPrior(f, channels=3, image_size=16)
    x = torch.randn(2, 3, 40, 37)
    corners = P.tile_origins(40, 37, 16)
    assert (24, 21) in corners and all(i + 16 <= 40 and j + 16 <= 37 for i, j in corners)
    assert torch.allclose(P.eps(x, 500), f(x, torch.full((2,), 500)), atol=1e-6)
    P.tile_batch = 3  # batching the tiles changes nothing
    assert torch.allclose(P.eps(x, 500), f(x, torch.full((2,), 500)), atol=1e-6)


def test_our_prior_file_loads(tmp_path):
    from restore.train.checkpoint import save_model

    torch.manual_seed(0)
    net = EpsUNet(channels=3, widths=[8, 16], depth=1, image_size=32)
    path = tmp_path / "p.safetensors"
    save_model(path, net, {"method": "prior", "method_params": {}, "net": net.config()})
    P = load_prior(path)
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(P.eps(x, 10), net(x, torch.tensor([10])), atol=1e-6)
    assert P.image_size == 32 and P.channels == 3
    with pytest.raises(ValueError, match="not a diffusion prior"):
        from restore.nets import CompactUNet

        d = CompactUNet(1, widths=[8, 16])
        save_model(tmp_path / "d.safetensors", d, {"method": "n2s", "method_params": {}, "net": d.config()})
        load_prior(tmp_path / "d.safetensors")


@pytest.mark.parametrize("kw", [
    dict(model_channels=32, channel_mult=(1, 2, 2), attention_ds=(2, 4), num_res_blocks=1, out_channels=6),
    dict(model_channels=32, channel_mult=(1, 1, 2), attention_ds=(4,), num_res_blocks=2,
         resblock_updown=False, use_scale_shift_norm=False),
])
def test_guided_diffusion_checkpoint_loads(tmp_path, kw):
    """A tiny random ADM state dict saved as .pt loads by path; the architecture is read from it."""
    torch.manual_seed(0)
    net = ADMUNet(num_head_channels=16, **kw).eval()
    path = tmp_path / "adm.pt"
    torch.save(net.state_dict(), path)
    assert adm_config_from_state_dict(torch.load(path), num_head_channels=16) == net.cfg
    P = load_prior(path, num_head_channels=16)
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([3, 700])
    with torch.no_grad():
        assert torch.allclose(P.eps(x, t), net(x, t)[:, :3], atol=1e-5)


def test_adm_256_uncond_architecture_matches_the_released_model():
    """guided-diffusion's 256x256 unconditional model has 552.81 M parameters (552,814,086)."""
    with torch.device("meta"):
        net = ADMUNet(model_channels=256, out_channels=6, num_res_blocks=2, attention_ds=(8, 16, 32),
                      channel_mult=(1, 1, 2, 2, 4, 4), num_head_channels=64)
    assert sum(p.numel() for p in net.parameters()) == 552_814_086
    sd = net.state_dict()
    assert sd["middle_block.1.qkv.weight"].shape == (3 * 1024, 1024, 1)
    assert sd["input_blocks.1.0.emb_layers.1.weight"].shape == (512, 1024)


def test_diffusers_folder_loads(tmp_path):
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    m = diffusers.UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1,
                              block_out_channels=(32, 64), norm_num_groups=8,
                              down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                              up_block_types=("AttnUpBlock2D", "UpBlock2D")).eval()
    m.save_pretrained(tmp_path / "unet")
    (tmp_path / "scheduler").mkdir()
    (tmp_path / "scheduler" / "scheduler_config.json").write_text(
        '{"num_train_timesteps": 500, "beta_start": 0.0002, "beta_end": 0.03, "beta_schedule": "linear"}')
    P = load_prior(tmp_path)
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 400])
    with torch.no_grad():
        assert torch.allclose(P.eps(x, t), m(x, t).sample, atol=1e-4)
    assert P.T == 500 and abs(1 - P.schedule.abar(0) - 2e-4) < 1e-9 and P.image_size == 16


def test_missing_or_wrong_prior_paths_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="restore train prior"):
        load_prior(tmp_path / "nope.safetensors")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="unknown prior format"):
        load_prior(tmp_path / "x.txt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable"):
        load_prior(tmp_path / "bad.pt")


def test_hann_window_hides_tile_edges_better_than_uniform_averaging():
    """A zero-padded convolution is wrong near tile edges; the sin^2 window weighs those pixels down."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 1, 5, padding=2, bias=False)

    def f(x, t):
        with torch.no_grad():
            return conv(x)

    x = torch.rand(1, 1, 64, 64)
    whole = f(x, None)
    err = {}
    for window in ("uniform", "hann"):
        P = DiffusionPrior(f, channels=1, image_size=16, window=window)
        err[window] = float((P.eps(x, 10) - whole)[..., 4:-4, 4:-4].abs().mean())
    assert err["hann"] < 0.5 * err["uniform"], err
