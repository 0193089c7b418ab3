"""Laine et al. 2019: blind-spot network and Bayesian posterior-mean method (tiny CPU settings)."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from restore.methods.laine19 import Laine19, gaussian_nll, n_cov, posterior_mean, prior_covariance
from restore.nets.laine19 import BlindSpotUNet
from restore.nets.registry import build_net


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


@pytest.mark.parametrize("shape", [(32, 32), (16, 32)])  # square: batched rotations; non-square: one pass each
def test_blind_spot_by_autograd(shape):
    torch.manual_seed(0)
    h, w = shape
    net = BlindSpotUNet(channels=3, out_channels=4, width=8, levels=2)
    y = torch.rand(1, 3, h, w, requires_grad=True)
    out = net(y)
    assert out.shape == (1, 4, h, w)
    for i, j in [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (1, 2), (h // 2, w // 2), (h - 2, w // 3)]:
        for k in range(out.shape[1]):
            (g,) = torch.autograd.grad(out[0, k, i, j], y, retain_graph=True)
            assert torch.all(g[0, :, i, j] == 0), (i, j, k)  # every input channel of the centre pixel
            near = [(i + di, j + dj) for di, dj in [(-1, 0), (1, 0), (0, -1), (0, 1)]
                    if 0 <= i + di < h and 0 <= j + dj < w]
            for a, b in near:  # all four directions are seen (the four rotated half-planes)
                assert g[0, :, a, b].abs().sum() > 0, (i, j, k, a, b)


def test_config_round_trip_and_shapes():
    torch.manual_seed(1)
    net = BlindSpotUNet(channels=3, out_channels=9, width=8, levels=2, noise_param=True)
    assert net.multiple == 4 and net.channels == 3
    cfg = net.config()
    assert cfg["arch"] == "BlindSpotUNet" and cfg["dec_width"] == 16
    clone = build_net(cfg)
    assert clone.config() == cfg
    with torch.no_grad():
        net.noise_param.fill_(0.7)
    clone.load_state_dict(net.state_dict())
    y = torch.rand(2, 3, 16, 16)
    assert torch.equal(clone(y), net(y))
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.rand(1, 3, 18, 16))
    m = Laine19(sigma_mode="global", net_config={"width": 8, "levels": 2})
    built = m.build_net(3)
    assert built.out_channels == 3 + 6 and built.noise_param is not None
    assert m.build_net(1).out_channels == 2 and n_cov(3) == 6
    assert Laine19(**m.params()).params() == m.params()
    with pytest.raises(ValueError):
        Laine19(noise="gamma")


def test_prior_covariance_layout():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], dtype=torch.float64)
    A = torch.tensor([[1.0, 2.0, 3.0], [0.0, 4.0, 5.0], [0.0, 0.0, 6.0]], dtype=torch.float64)
    assert torch.allclose(prior_covariance(a, 3), A @ A.T)
    assert torch.allclose(prior_covariance(torch.tensor([[-0.3]]), 1), torch.tensor([[[0.09]]]))


def test_grey_posterior_mean_matches_bayes_by_quadrature():
    """E[x|y] for x ~ N(mu, sx^2), y|x ~ N(x, s^2), integrated numerically, vs the closed form."""
    x = np.linspace(-3.0, 4.0, 200001)
    for mu, sx, s, yv in [(0.3, 0.2, 0.1, 0.55), (0.7, 0.05, 0.2, 0.1), (0.5, 0.5, 0.02, 0.9)]:
        wgt = np.exp(-0.5 * ((x - mu) / sx) ** 2 - 0.5 * ((yv - x) / s) ** 2)
        expected = (wgt * x).sum() / wgt.sum()
        t = lambda v: torch.tensor([[v]], dtype=torch.float64)  # noqa: E731
        got = posterior_mean(t(yv), t(mu), t(sx**2)[..., None], t(s**2))
        assert abs(got.item() - expected) < 1e-7
        assert abs(got.item() - (yv * sx**2 + mu * s**2) / (sx**2 + s**2)) < 1e-12


def test_rgb_posterior_mean_and_nll():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(0)
    n = 5
    y, mu = rng.random((n, 3)), rng.random((n, 3))
    var_n = rng.uniform(0.001, 0.05, (n, 3))
    T = lambda a: torch.from_numpy(a)  # noqa: E731
    # diagonal Sigma_x: each channel is the grey formula
    vx = rng.uniform(0.0, 0.1, (n, 3))
    diag = posterior_mean(T(y), T(mu), torch.diag_embed(T(vx)), T(var_n)).numpy()
    grey = posterior_mean(T(y).reshape(-1, 1), T(mu).reshape(-1, 1), T(vx).reshape(-1, 1, 1), T(var_n).reshape(-1, 1))
    assert np.allclose(diag, grey.numpy().reshape(n, 3), rtol=0, atol=1e-12)
    # full Sigma_x: information form with explicit inverses
    a = rng.normal(0.0, 0.2, (n, 6))
    cov_x = prior_covariance(T(a), 3).numpy()
    got = posterior_mean(T(y), T(mu), T(cov_x), T(var_n)).numpy()
    nll = gaussian_nll(T(y), T(mu), T(cov_x), T(var_n)).numpy()
    for k in range(n):
        sx_inv, sn_inv = np.linalg.inv(cov_x[k]), np.diag(1.0 / var_n[k])
        want = np.linalg.inv(sx_inv + sn_inv) @ (sx_inv @ mu[k] + sn_inv @ y[k])
        assert np.allclose(got[k], want, rtol=0, atol=1e-9)
        ref = -multivariate_normal(mu[k], cov_x[k] + np.diag(var_n[k])).logpdf(y[k])
        assert abs(nll[k] - ref) < 1e-9
    g1 = gaussian_nll(T(y[:, :1]), T(mu[:, :1]), T(vx[:, :1, None]), T(var_n[:, :1])).numpy()
    v1 = vx[:, 0] + var_n[:, 0]
    ref1 = 0.5 * (y[:, 0] - mu[:, 0]) ** 2 / v1 + 0.5 * np.log(2 * np.pi * v1)
    assert np.allclose(g1, ref1, rtol=0, atol=1e-12)


def test_restore_uses_mean_then_factor_layout():
    torch.manual_seed(2)
    m = Laine19(net_config={"width": 8, "levels": 2})
    net = m.build_net(1)
    y, s = torch.rand(2, 1, 16, 16), torch.tensor([0.05, 0.2])
    with torch.no_grad():
        out = net(y).double()
        got = m.restore(net, y, s)
    mu, vx, sn = out[:, :1], out[:, 1:2] ** 2, s.double().reshape(-1, 1, 1, 1) ** 2
    want = (y.double() * vx + mu * sn) / (vx + sn)
    assert got.dtype == y.dtype and got.shape == y.shape
    assert torch.allclose(got.double(), want, atol=1e-6)
    zeta = torch.tensor([0.01, 0.03])  # Poisson: sigma_n^2 = zeta * max(mu, min_std)
    mp = Laine19(noise="poisson", net_config={"width": 8, "levels": 2})
    with torch.no_grad():
        got = mp.restore(net, y, zeta)
    sn = zeta.double().reshape(-1, 1, 1, 1) * mu.clamp(min=1e-3)
    assert torch.allclose(got.double(), (y.double() * vx + mu * sn) / (vx + sn), atol=1e-6)
    # colour: the method's loss / restore are the per-pixel helpers on channels-last data
    net3, y3 = m.build_net(3), torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        out = net3(y3).double().permute(0, 2, 3, 1)
        loss = m.loss(net3, {"noisy": y3, "sigma": s})
        got = m.restore(net3, y3, s)
    y3l, cov = y3.double().permute(0, 2, 3, 1), prior_covariance(out[..., 3:], 3)
    sn = s.double().reshape(-1, 1, 1, 1) ** 2
    assert torch.allclose(loss.double(), gaussian_nll(y3l, out[..., :3], cov, sn).mean() / 3, rtol=1e-5)
    want = posterior_mean(y3l, out[..., :3], cov, sn).permute(0, 3, 1, 2)
    assert torch.allclose(got.double(), want, atol=1e-6)


class _ConstantPrior(nn.Module):
    """A stand-in 'network' predicting the same (mu, a) at every pixel."""

    def __init__(self, global_noise: bool = False):
        super().__init__()
        self.mu = nn.Parameter(torch.tensor(0.2))
        self.a = nn.Parameter(torch.tensor(0.3))
        self.noise_param = nn.Parameter(torch.zeros(1)) if global_noise else None

    def forward(self, y):
        return torch.stack([self.mu, self.a]).reshape(1, 2, 1, 1).expand(y.shape[0], 2, *y.shape[-2:])


def _fit(method, net, batch, steps=400, lr=0.02):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        loss = method.loss(net, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("noise", ["gaussian", "poisson"])
def test_nll_is_minimised_at_the_true_prior(noise):
    """x ~ N(m, sx^2) per pixel; the loss's minimiser over a constant prior is (m, sx)."""
    g = torch.Generator().manual_seed(3)
    m_true, sx_true = 0.5, 0.1
    x = m_true + sx_true * torch.randn(4, 1, 64, 64, generator=g, dtype=torch.float64)
    if noise == "gaussian":
        level = 0.1
        y = x + level * torch.randn(x.shape, generator=g, dtype=torch.float64)
        batch = {"noisy": y.float(), "sigma": torch.full((4,), level)}
    else:
        level = 0.01  # Var(y) = sx^2 + zeta m exactly, as the model assumes
        y = level * torch.poisson(x.clamp(min=0) / level, generator=g)
        batch = {"noisy": y.float(), "level": torch.full((4,), level)}
    method = Laine19(noise=noise)
    net = _ConstantPrior()
    _fit(method, net, batch)
    assert abs(net.mu.item() - y.mean().item()) < 2e-3
    assert abs(net.mu.item() - m_true) < 5e-3
    assert abs(abs(net.a.item()) - sx_true) < 0.01
    # and it is a minimum: moving either parameter raises the loss
    with torch.no_grad():
        best = method.loss(net, batch).item()
        for p, d in [(net.mu, 0.02), (net.mu, -0.02), (net.a, 0.02), (net.a, -0.02)]:
            p += d
            assert method.loss(net, batch).item() > best
            p -= d


def test_global_noise_level_is_learned():
    """Flat image: all variance is noise; the balance term makes the learned sigma take it."""
    g = torch.Generator().manual_seed(4)
    y = 0.5 + 0.1 * torch.randn(8, 1, 64, 64, generator=g)
    method = Laine19(sigma_mode="global")
    net = _ConstantPrior(global_noise=True)
    _fit(method, net, {"noisy": y, "sigma": torch.full((8,), 0.5)}, steps=600, lr=0.05)  # batch sigma is ignored
    assert abs(method.learned_level(net).item() - 0.1) < 0.01
    assert abs(net.a.item()) < 0.04


def test_short_training_improves_psnr(camera):
    torch.manual_seed(0)
    img = torch.from_numpy(camera)
    method = Laine19(net_config={"width": 8, "levels": 2})
    net = method.build_net(1)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    s = 0.1
    for _ in range(150):
        ij = torch.randint(0, 256 - 32, (4, 2), generator=g).tolist()
        x = torch.stack([img[i:i + 32, j:j + 32] for i, j in ij])[:, None]
        y = x + s * torch.randn(x.shape, generator=g)
        loss = method.loss(net, {"noisy": y, "sigma": torch.full((4,), s)})
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = img[None, None, 128:192, 128:192]
    y = x + s * torch.randn(x.shape, generator=g)
    with torch.no_grad():
        x_hat = method.restore(net, y, torch.tensor([s]))

    def psnr(a):
        return -10 * math.log10(((a - x) ** 2).mean().item())

    assert psnr(x_hat) > psnr(y) + 2.0, (psnr(y), psnr(x_hat))
