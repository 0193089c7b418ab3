"""Tests for restore.noise: sampling moments, broadcasting, likelihoods,
Tweedie / Noise2Score estimators against closed-form posteriors, noise-level
estimators and the spec parser.  All randomness is seeded."""
import math

import numpy as np
import pytest
import torch
from scipy.special import digamma

from restore.noise import (
    Gamma,
    Gaussian,
    NoiseModel,
    Poisson,
    PoissonGaussian,
    default_tv_grid,
    estimate_sigma,
    estimate_sigma_mad,
    estimate_sigma_pca,
    estimate_sigma_tv,
    make_noise,
)
from restore.noise.base import _bcast
from restore.noise.estimate import _split_mean


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


FAMILIES = {
    "gaussian": lambda: Gaussian(0.1),
    "poisson": lambda: Poisson(0.01),
    "poisson-gaussian": lambda: PoissonGaussian(0.01, 0.05),
    "gamma": lambda: Gamma(10.0),
    "gamma-small-k": lambda: Gamma(0.7),  # exercises the alpha < 1 branch
}


# --------------------------------------------------------------------------- moments
@pytest.mark.parametrize("name", list(FAMILIES))
def test_monte_carlo_moments_on_ramp(name):
    model = FAMILIES[name]()
    m, p = 20000, 8
    ramp = torch.linspace(0.05, 0.95, p).reshape(1, 1, 1, p)
    y = model.sample(ramp.expand(m, 1, 1, p).contiguous(), generator=gen(1)).double()
    mean, var = y.mean(0), y.var(0)
    m4 = ((y - mean) ** 4).mean(0)
    true_var = model.variance(ramp).double()[0]
    # 5 standard errors (per pixel, 8 pixels): a false alarm has prob ~5e-6
    se_mean = (true_var / m).sqrt()
    se_var = ((m4 - var**2).clamp(min=0) / m).sqrt()
    assert torch.all((mean - ramp[0].double()).abs() < 5 * se_mean), (mean, ramp)
    assert torch.all((var - true_var).abs() < 5 * se_var), (var, true_var)


def test_variance_formulas():
    x = torch.tensor([0.0, 0.2, 0.5, 1.0]).reshape(1, 1, 1, 4)
    torch.testing.assert_close(Gaussian(0.1).variance(x), torch.full_like(x, 0.01))
    torch.testing.assert_close(Poisson(0.02).variance(x), 0.02 * x)
    torch.testing.assert_close(PoissonGaussian(0.02, 0.1).variance(x), 0.02 * x + 0.01)
    torch.testing.assert_close(Gamma(4.0).variance(x), x**2 / 4)


def test_poisson_samples_on_lattice_and_constant_image():
    g = 0.05
    x = torch.full((2, 1, 64, 64), 0.5)
    y = Poisson(g).sample(x, generator=gen(2))
    z = y / g
    assert torch.allclose(z, z.round(), atol=1e-4)
    assert abs(y.mean().item() - 0.5) < 5 * math.sqrt(g * 0.5 / y.numel())


@pytest.mark.parametrize("name", list(FAMILIES))
def test_reproducible_dtype_and_forward(name):
    model = FAMILIES[name]()
    x = torch.rand(2, 3, 8, 8, generator=gen(3)) * 0.9 + 0.05
    a = model.sample(x, generator=gen(7))
    b = model(x, generator=gen(7))
    c = model.sample(x, generator=gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    y64 = model.sample(x.double(), generator=gen(7))
    assert y64.dtype == torch.float64 and y64.shape == x.shape


# --------------------------------------------------------------------------- per-image params
def test_per_image_sigma_broadcast():
    sig = torch.tensor([0.01, 0.05, 0.2])
    x = torch.full((3, 1, 64, 64), 0.5)
    y = Gaussian(sig).sample(x, generator=gen(4))
    std = (y - x).reshape(3, -1).std(dim=1)
    # relative s.e. of a std from 4096 samples ~ 1.1 %
    torch.testing.assert_close(std, sig, rtol=0.06, atol=0)
    assert std[0] < std[1] < std[2]


def test_per_image_poisson_gamma_and_nc11_params():
    x = torch.full((2, 1, 64, 64), 0.5)
    gains = torch.tensor([0.001, 0.05])
    var = (Poisson(gains).sample(x, generator=gen(5)) - x).reshape(2, -1).var(dim=1)
    torch.testing.assert_close(var, gains * 0.5, rtol=0.12, atol=0)
    k = torch.tensor([100.0, 4.0])
    var = (Gamma(k).sample(x, generator=gen(6)) - x).reshape(2, -1).var(dim=1)
    torch.testing.assert_close(var, 0.25 / k, rtol=0.15, atol=0)
    # (N, C, 1, 1) parameter: per-channel sigma
    sig = torch.tensor([[0.01, 0.1, 0.3]]).reshape(1, 3, 1, 1).expand(2, 3, 1, 1)
    x3 = torch.full((2, 3, 64, 64), 0.5)
    std = (Gaussian(sig).sample(x3, generator=gen(7)) - x3).std(dim=(2, 3))
    torch.testing.assert_close(std, sig[..., 0, 0], rtol=0.06, atol=0)


def test_bcast_shapes_and_errors():
    x = torch.zeros(4, 3, 5, 5, dtype=torch.float64)
    assert _bcast(torch.tensor(0.1), x).shape == ()
    p = _bcast(torch.arange(4.0), x)
    assert p.shape == (4, 1, 1, 1) and p.dtype == torch.float64
    assert _bcast(torch.ones(4, 3, 1, 1), x).shape == (4, 3, 1, 1)
    with pytest.raises(ValueError):
        _bcast(torch.ones(3), x)
    with pytest.raises(ValueError):
        _bcast(torch.ones(4, 3), x)
    with pytest.raises(ValueError):
        Gaussian(torch.tensor([0.1, -0.1]))
    with pytest.raises(TypeError):
        NoiseModel()  # abstract
    assert "sigma" in dict(Gaussian(0.1).named_buffers())


# --------------------------------------------------------------------------- nll
def test_nll_matches_torch_distributions():
    d = torch.distributions
    x = torch.rand(2, 1, 4, 4, generator=gen(8), dtype=torch.float64) * 0.8 + 0.1
    sig = torch.tensor([0.05, 0.2], dtype=torch.float64)
    y = x + 0.1 * torch.randn(x.shape, generator=gen(9), dtype=torch.float64)
    ref = -d.Normal(x, sig.view(2, 1, 1, 1)).log_prob(y).sum(dim=(1, 2, 3))
    torch.testing.assert_close(Gaussian(sig).nll(y, x), ref)

    g = 0.02
    z = torch.poisson(x / g, generator=gen(10))
    ref = -d.Poisson(x / g).log_prob(z).sum(dim=(1, 2, 3))
    torch.testing.assert_close(Poisson(g).nll(g * z, x), ref)

    k = torch.tensor([3.0, 20.0], dtype=torch.float64)
    yg = Gamma(k).sample(x, generator=gen(11))
    kb = k.view(2, 1, 1, 1)
    ref = -d.Gamma(kb, kb / x).log_prob(yg).sum(dim=(1, 2, 3))
    torch.testing.assert_close(Gamma(k).nll(yg, x), ref)

    v = 0.01 * x + 0.03**2
    ref = -d.Normal(x, v.sqrt()).log_prob(y).sum(dim=(1, 2, 3))
    torch.testing.assert_close(PoissonGaussian(0.01, 0.03).nll(y, x), ref)


# --------------------------------------------------------------------------- tweedie
def test_gaussian_tweedie_is_wiener_under_gaussian_prior():
    m, s = 0.4, 0.15
    sig = torch.tensor([0.05, 0.1, 0.2], dtype=torch.float64)
    sb = sig.view(3, 1, 1, 1)
    y = m + 0.3 * torch.randn(3, 1, 8, 8, generator=gen(12), dtype=torch.float64)
    score = -(y - m) / (s**2 + sb**2)  # exact score of N(m, s^2 + sigma^2)
    wiener = m + s**2 / (s**2 + sb**2) * (y - m)
    torch.testing.assert_close(Gaussian(sig).tweedie(y, score), wiener, atol=1e-6, rtol=0)
    # float32 path too
    out32 = Gaussian(sig.float()).tweedie(y.float(), score.float())
    torch.testing.assert_close(out32, wiener.float(), atol=1e-6, rtol=0)


def _autograd_score(logp, y):
    y = y.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(logp(y).sum(), y)
    return g.detach()


def test_poisson_tweedie_gamma_prior_negative_binomial():
    # rate lam ~ Gamma(a, rate b) => counts z are negative binomial;
    # posterior lam | z ~ Gamma(a + z, b + 1).
    a, b = 8.0, 0.5
    gain = torch.tensor(0.02, dtype=torch.float64)  # float64 buffer for a 1e-10 check
    z = torch.arange(0, 61, dtype=torch.float64).reshape(1, 1, 1, -1)
    log_marginal = lambda t: torch.lgamma(t + a) - torch.lgamma(t + 1) - t * math.log(b + 1)
    score = _autograd_score(log_marginal, z)  # continuous score w.r.t. the counts z
    x_hat = Poisson(gain).tweedie(gain * z, score)

    zn = z.numpy()
    e_log_lam = digamma(a + zn) - math.log(b + 1)  # exact E[log lam | z]
    # 1) Noise2Score closed form: E[log lam|z] with psi(z+1) ~= log(z+1/2)
    gain = gain.item()
    n2s = gain * np.exp(e_log_lam - digamma(zn + 1) + np.log(zn + 0.5))
    np.testing.assert_allclose(x_hat.numpy(), n2s, rtol=1e-10)
    # 2) vs the exact gain*exp(E[log lam|z]): psi approximation error
    #    < 1/(20 (z+1/2)^2) relative for z >= 5
    exact = gain * np.exp(e_log_lam)
    big = zn >= 5
    rel = np.abs(x_hat.numpy() / exact - 1)
    assert np.all(rel[big] < 1 / (20 * (zn[big] + 0.5) ** 2))
    # 3) vs the posterior mean gain*(a+z)/(b+1): within 1/(a+z) relative for z >= 5
    post_mean = gain * (a + zn) / (b + 1)
    rel = np.abs(x_hat.numpy() / post_mean - 1)
    assert np.all(rel[big] < 1 / (a + zn[big]))


def test_gamma_tweedie_inverse_gamma_prior():
    # x ~ InvGamma(alpha, beta), y | x ~ Gamma(k, rate k/x)  =>
    # p(y) ∝ y^(k-1) (beta + k y)^-(alpha + k), E[1/x | y] = (alpha + k)/(beta + k y)
    alpha, beta = 6.0, 2.5
    k = torch.tensor([5.0, 10.0, 50.0], dtype=torch.float64)
    kb = k.view(3, 1, 1, 1)
    y = torch.rand(3, 1, 4, 4, generator=gen(13), dtype=torch.float64) * 1.4 + 0.1
    log_marginal = lambda t: (kb - 1) * torch.log(t) - (alpha + kb) * torch.log(beta + kb * t)
    score = _autograd_score(log_marginal, y)
    expected = (beta + kb * y) / (alpha + kb)  # 1 / E[1/x | y]
    torch.testing.assert_close(Gamma(k).tweedie(y, score), expected, rtol=1e-10, atol=0)


def test_poisson_gaussian_tweedie():
    pg = PoissonGaussian(0.01, 0.1)
    y = torch.rand(1, 1, 4, 4, generator=gen(14))
    with pytest.raises(NotImplementedError, match="Anscombe"):
        pg.tweedie(y, torch.zeros_like(y))
    # approximation reduces to the Gaussian formula as gain -> 0
    score = torch.randn(y.shape, generator=gen(15))
    approx = PoissonGaussian(1e-9, 0.1, approx_tweedie=True).tweedie(y, score)
    torch.testing.assert_close(approx, Gaussian(0.1).tweedie(y, score))
    approx = PoissonGaussian(0.01, 0.1, approx_tweedie=True).tweedie(y, score)
    torch.testing.assert_close(approx, y + (0.01 * y + 0.01) * score)


# --------------------------------------------------------------------------- estimators
@pytest.fixture(scope="module")
def camera_noisy():
    from skimage import data, img_as_float

    x = img_as_float(data.camera())
    rng = np.random.default_rng(0)
    return x + rng.normal(0, 25 / 255, x.shape)


def test_default_estimator_on_camera(camera_noisy):
    est = estimate_sigma(camera_noisy)
    assert est.shape == (1,) and est.dtype == torch.float32
    assert abs(est.item() - 25 / 255) < 0.1 * 25 / 255
    torch.testing.assert_close(est, estimate_sigma_mad(camera_noisy))  # default = mad
    pca = estimate_sigma(camera_noisy, method="pca")
    assert abs(pca.item() - 25 / 255) < 0.1 * 25 / 255
    with pytest.raises(ValueError):
        estimate_sigma(camera_noisy, method="nope")


def test_estimators_input_layouts_and_per_image():
    rng = np.random.default_rng(1)
    base = np.full((96, 96), 0.5)
    a = base + rng.normal(0, 0.02, base.shape)
    b = base + rng.normal(0, 0.2, base.shape)
    batch = torch.from_numpy(np.stack([a, b])[:, None]).float()  # (2, 1, H, W)
    for fn in (estimate_sigma_mad, estimate_sigma_pca):
        est = fn(batch)
        assert est.shape == (2,)
        torch.testing.assert_close(est, torch.tensor([0.02, 0.2]), rtol=0.08, atol=0)
        hwc = np.stack([a, a, a], axis=-1)  # numpy (H, W, C)
        chw = torch.from_numpy(a)[None]  # torch (C, H, W)
        torch.testing.assert_close(fn(hwc), fn(chw), rtol=1e-5, atol=0)
        torch.testing.assert_close(fn(a), fn(chw), rtol=1e-5, atol=0)  # numpy (H, W)
    with pytest.raises(ValueError):
        estimate_sigma_mad((a * 255).astype(np.uint8))


def test_split_mean_picks_noise_eigenvalues():
    ev = np.sort(np.r_[np.linspace(0.9, 1.1, 40), [50.0, 80.0, 200.0, 900.0]])[None]
    assert _split_mean(ev)[0] == pytest.approx(1.0, abs=1e-12)
    assert _split_mean(np.zeros((1, 9)))[0] == 0.0


def test_tv_search_returns_per_image_argmin_grid_value():
    grid = default_tv_grid()
    assert grid.numel() == 50
    assert grid[0].item() == pytest.approx(5 / 255) and grid[-1].item() == pytest.approx(55 / 255)
    y = torch.rand(2, 1, 16, 16, generator=gen(16))
    target = torch.stack([grid[7], grid[30]]).view(2, 1, 1, 1)
    # oracle: TV of the output is minimal exactly at sigma == target (per image)
    oracle = lambda t, s: t * (1 + 1000 * (s - target.to(t.dtype)) ** 2)
    est = estimate_sigma_tv(y, oracle)
    torch.testing.assert_close(est, target.view(2).float())
    assert all(any(abs(e - g) < 1e-7 for g in grid.tolist()) for e in est.tolist())
    est = estimate_sigma(y, method="tv", denoise_fn=oracle, grid=[0.01, 0.1, 0.5])
    assert est.tolist() == pytest.approx([0.01, 0.1])  # nearest to 0.047 and 0.139


# --------------------------------------------------------------------------- make_noise
def test_make_noise_parses():
    g = make_noise("gaussian:25")
    assert isinstance(g, Gaussian) and g.sigma.item() == pytest.approx(25 / 255)
    assert make_noise("Gaussian: 0.1").sigma.item() == pytest.approx(0.1)
    p = make_noise("poisson:0.01")
    assert isinstance(p, Poisson) and p.gain.item() == pytest.approx(0.01)
    pg = make_noise("poisson-gaussian:0.01,0.02")
    assert isinstance(pg, PoissonGaussian)
    assert (pg.gain.item(), pg.sigma.item()) == pytest.approx((0.01, 0.02))
    assert make_noise("poisson_gaussian:0.01,10").sigma.item() == pytest.approx(10 / 255)
    gm = make_noise("gamma:100")
    assert isinstance(gm, Gamma) and gm.k.item() == pytest.approx(100)


@pytest.mark.parametrize(
    "spec",
    ["", "gaussian", "gaussian:", "gaussian:abc", "gaussian:-1", "gaussian:0", "foo:1",
     "poisson:0.1,0.2", "poisson-gaussian:0.01", "gamma:inf", "gaussian:nan", 25],
)
def test_make_noise_rejects(spec):
    with pytest.raises(ValueError) as e:
        make_noise(spec)
    msg = str(e.value)
    assert "\n" not in msg and "gaussian:SIGMA" in msg and "poisson-gaussian" in msg


def test_gamma_tweedie_inverse_gamma_prior_closed_form():
    # theta = 1/x ~ Gamma(alpha, rate beta), y | x ~ Gamma(k, rate k/x):
    # theta | y ~ Gamma(k + alpha, rate k*y + beta), so 1/E[1/x | y] = (k*y + beta)/(k + alpha),
    # which is what Noise2Score's Gamma map returns given the exact marginal score.
    k, alpha, beta = 50.0, 6.0, 2.5
    y = torch.linspace(0.02, 1.5, 200, dtype=torch.float64).reshape(1, 1, 1, -1)
    log_marginal = lambda t: (k - 1) * torch.log(t) - (k + alpha) * torch.log(k * t + beta)  # noqa: E731
    score = _autograd_score(log_marginal, y)
    x_hat = Gamma(torch.tensor(k, dtype=torch.float64)).tweedie(y, score)
    torch.testing.assert_close(x_hat, (k * y + beta) / (k + alpha), rtol=1e-10, atol=0)


# --------------------------------------------------------------------------- GAT
@pytest.mark.parametrize("sigma", [0.0, 1.0])
def test_gat_exact_inverse_is_unbiased_in_monte_carlo(sigma):
    from restore.noise.vst import gat, gat_inverse

    g = gen(21)
    lams = [0.5, 1.0, 3.0, 10.0, 50.0] if sigma == 0 else [2.0, 5.0, 20.0, 80.0]
    for lam in lams:
        z = torch.poisson(torch.full((300000,), lam, dtype=torch.float64), generator=g)
        z = z + sigma * torch.randn(z.shape, generator=g, dtype=torch.float64)
        Ef = gat(z, 1.0, sigma).mean()
        assert float(gat_inverse(Ef, 1.0, sigma)) == pytest.approx(lam, rel=0.015, abs=0.01)
        if lam <= 1:  # the algebraic inverse is clearly biased at low counts
            assert float(gat_inverse(Ef, 1.0, sigma, exact=False)) < 0.9 * lam
        if lam >= 10:  # and the transform stabilises the variance to ~1
            assert float(gat(z, 1.0, sigma).var()) == pytest.approx(1.0, abs=0.06)


def test_gat_scales_with_gain_and_unit_domain_roundtrip():
    from restore.noise.vst import from_unit_domain, gat, gat_inverse, to_unit_domain

    y = torch.rand(4, 4, dtype=torch.float64) * 0.9 + 0.05
    for gain in (0.01, 0.05):
        f = gat(y, gain)
        torch.testing.assert_close(f, 2 * torch.sqrt(y / gain + 0.375))
        t, s = to_unit_domain(f, gain)
        assert s == pytest.approx(math.sqrt(gain) / 2)
        torch.testing.assert_close(from_unit_domain(t, gain), f)
        torch.testing.assert_close(gat_inverse(f, gain, exact=False), y)


# --------------------------------------------------------------------------- NLF fit
def _smooth_scene(n=512, seed=0):
    """A smooth synthetic scene spanning [0.05, 0.95]: ramps plus low-frequency blobs."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n] / n
    img = 0.5 + 0.3 * (xx - 0.5) + 0.2 * np.sin(2 * np.pi * (yy + r.random())) * np.cos(3 * np.pi * xx)
    return np.clip(img, 0.05, 0.95)


@pytest.mark.parametrize("family,value,tol", [
    ("gaussian", 0.05, 0.03), ("gaussian", 0.1, 0.03),
    ("poisson", 0.01, 0.05), ("poisson", 0.05, 0.05),
    ("gamma", 100.0, 0.08), ("gamma", 50.0, 0.08),
])
def test_nlf_fit_recovers_known_parameters(family, value, tol):
    from restore.noise.nlf import fit_noise

    x = _smooth_scene()
    r = np.random.default_rng(1)
    if family == "gaussian":
        y = x + value * r.standard_normal(x.shape)
    elif family == "poisson":
        y = value * r.poisson(x / value)
    else:
        y = x * r.gamma(value, 1 / value, x.shape)
    assert fit_noise(y, family) == pytest.approx(value, rel=tol)


def test_nlf_fit_poisson_gaussian_recovers_both():
    from restore.noise.nlf import fit_noise

    x = _smooth_scene()
    r = np.random.default_rng(2)
    y = 0.02 * r.poisson(x / 0.02) + 0.03 * r.standard_normal(x.shape)
    gain, sigma = fit_noise(y, "poisson-gaussian")
    assert gain == pytest.approx(0.02, rel=0.1)
    assert sigma == pytest.approx(0.03, rel=0.1)
    with pytest.raises(ValueError, match="unknown noise family"):
        fit_noise(y, "rician")


@pytest.mark.parametrize("family", ["gaussian", "poisson", "gamma"])
def test_grid_search_picks_the_candidate_with_the_best_objective(family):
    from restore.noise.nlf import grid_objective, grid_search

    x = torch.from_numpy(_smooth_scene(64)).float()[None, None]
    y = x * (1 + 0.1 * torch.randn(x.shape, generator=gen(30)))
    grid = [0.5, 1.0, 2.0]
    # candidate v returns a blend: v == 1 gives the clean scene, others keep noise
    fn = lambda t, v: x + (y - x) * abs(np.log(v))  # noqa: E731
    assert grid_search(y, family, fn, grid) == 1.0
    assert grid_objective(family, x, y).shape == (1,)


def test_through_gat_with_an_oracle_denoiser_returns_the_signal():
    # a denoiser that returns E[f | x] exactly (Monte-Carlo) must give back x through the
    # exact unbiased inverse; the identity "denoiser" gives back y's transform round trip.
    from restore.noise.vst import gat, through_gat, to_unit_domain

    g = gen(31)
    lam = torch.tensor([1.0, 4.0, 20.0], dtype=torch.float64)
    gain = 0.02
    y = gain * torch.poisson(lam.repeat(200000, 1), generator=g)
    mean_t = to_unit_domain(gat(y, gain), gain)[0].mean(dim=0, keepdim=True)
    x = through_gat(lambda t, s_t: mean_t.expand_as(t), y, gain)[0]
    torch.testing.assert_close(x, gain * lam, rtol=0.015, atol=0)
