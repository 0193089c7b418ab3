import math

import pytest
import torch

from restore.methods import Noise2Score, R2R, get_method
from restore.nets import CompactUNet, build_net


def test_unet_shapes_and_config_roundtrip():
    net = CompactUNet(3, (8, 16, 32), depth=1)
    assert net.multiple == 8
    y = torch.rand(2, 3, 40, 24)
    out = net(y, torch.tensor([0.1, 0.2]))
    assert out.shape == y.shape
    clone = build_net(net.config())
    clone.load_state_dict(net.state_dict())
    assert torch.equal(clone(y, torch.tensor([0.1, 0.2])), out)


def test_noise_level_input_changes_output():
    torch.manual_seed(0)
    net = CompactUNet(1, (8, 16), depth=1)
    y = torch.rand(1, 1, 32, 32)
    assert not torch.allclose(net(y, 0.05), net(y, 0.2))
    with pytest.raises(ValueError, match="sigma"):
        net(y)


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="available: apbsn, cbsn, gr2r, laine19, n2s, n2v, nb2nb, prior, r2r, r2r-bank, sdap, supervised"):
        get_method("nope")


def _gaussian_prior_batch(n=20000, m=0.5, s=0.1, sigma=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = m + s * torch.randn(n, 1, 1, 1, generator=g)
    y = x + sigma * torch.randn(x.shape, generator=g)
    return x, y


class _Wiener(torch.nn.Module):
    """Exact posterior mean for x ~ N(m, s^2), y = x + N(0, level^2), scaled by ``k``."""

    def __init__(self, m, s, k=1.0):
        super().__init__()
        self.m, self.s, self.k = m, s, k

    def forward(self, y, sigma):
        level2 = sigma.reshape(-1, 1, 1, 1) ** 2
        return self.m + self.k * self.s**2 / (self.s**2 + level2) * (y - self.m)


def test_r2r_loss_is_minimised_by_the_mmse_denoiser_at_the_recorrupted_level():
    # E over z of the R2R loss equals the supervised MSE at level sigma*sqrt(1+a^2) plus a constant,
    # so the Wiener filter for that level must beat shrunk / inflated versions of itself.
    m, s, sigma = 0.5, 0.1, 0.1
    _, y = _gaussian_prior_batch(m=m, s=s, sigma=sigma)
    batch = {"noisy": y, "sigma": torch.full((y.shape[0],), sigma)}
    method = R2R(a=1.0)
    losses = {}
    for k in (0.7, 1.0, 1.3):
        g = torch.Generator().manual_seed(1)
        losses[k] = float(method.loss(_Wiener(m, s, k), batch, generator=g))
    assert losses[1.0] < losses[0.7] and losses[1.0] < losses[1.3]
    # closed form of the expected loss for the exact filter: var(x|y_in) + sigma^2/a^2 (target noise) + cross terms
    level2 = sigma**2 * 2
    post_var = s**2 * level2 / (s**2 + level2)
    expected = post_var + sigma**2 + sigma**2  # E(x - x_hat)^2 + noise of y + (sigma/a)^2 z term
    assert losses[1.0] == pytest.approx(expected, rel=0.05)


def test_n2s_ardae_loss_prefers_the_true_score():
    m, s, sigma = 0.5, 0.1, 0.1
    _, y = _gaussian_prior_batch(n=40000, m=m, s=s, sigma=sigma)
    batch = {"noisy": y, "sigma": torch.full((y.shape[0],), sigma)}
    method = Noise2Score(conditioning="sigma", weighting="ardae", ratio_max=0.3, ratio_min=0.3)
    losses = {}
    for k in (0.6, 1.0, 1.4):
        g = torch.Generator().manual_seed(2)
        losses[k] = float(method.loss(_Wiener(m, s, k), batch, generator=g))
    assert losses[1.0] < losses[0.6] and losses[1.0] < losses[1.4]


@pytest.mark.parametrize("weighting", ["ardae", "mse", "snr"])
def test_level_conditioned_n2s_is_minimised_by_the_exact_score_at_every_level(weighting):
    # With conditioning on level = sqrt(sigma^2 + sigma_a^2), the AR-DAE optimum is the
    # Wiener filter at that level for any a (no bias at large sigma_a), whatever the weighting.
    m, s, sigma = 0.5, 0.1, 0.1
    _, y = _gaussian_prior_batch(n=40000, m=m, s=s, sigma=sigma)
    batch = {"noisy": y, "sigma": torch.full((y.shape[0],), sigma)}
    method = Noise2Score(conditioning="level", a_min=0.5, a_max=3.0, weighting=weighting)
    losses = {}
    for k in (0.8, 1.0, 1.2):
        g = torch.Generator().manual_seed(3)
        losses[k] = float(method.loss(_Wiener(m, s, k), batch, generator=g))
    assert losses[1.0] < losses[0.8] and losses[1.0] < losses[1.2]


def test_paper_n2s_is_biased_at_large_sigma_a_and_level_conditioning_is_not():
    # The paper's unconditioned AR-DAE at sigma_a = sigma learns the score of the
    # level-sqrt(2)-sigma marginal, read at level sigma: in closed form the Wiener gain
    # scaled by k = 4/3 here (s = sigma) -- too little smoothing.  Level conditioning: k = 1.
    m, s, sigma = 0.5, 0.1, 0.1
    _, y = _gaussian_prior_batch(n=40000, m=m, s=s, sigma=sigma)
    batch = {"noisy": y, "sigma": torch.full((y.shape[0],), sigma)}
    biased = Noise2Score(conditioning="sigma", weighting="ardae", ratio_max=1.0, ratio_min=1.0)
    exact = Noise2Score(conditioning="level", a_min=1.0, a_max=1.0, weighting="ardae")

    def best_k(method):
        ks = [0.6 + 0.05 * i for i in range(21)]
        vals = [float(method.loss(_Wiener(m, s, k), batch, generator=torch.Generator().manual_seed(4))) for k in ks]
        return ks[vals.index(min(vals))]

    assert best_k(exact) == pytest.approx(1.0, abs=0.051)
    assert best_k(biased) == pytest.approx(4 / 3, abs=0.051)


def test_n2s_rejects_bad_settings():
    with pytest.raises(ValueError, match="conditioning"):
        Noise2Score(conditioning="x")
    with pytest.raises(ValueError, match="weighting"):
        Noise2Score(weighting="x")
    with pytest.raises(ValueError, match="noise"):
        Noise2Score(noise="rician")


def test_gr2r_splits_are_independent_unbiased_copies():
    g = torch.Generator().manual_seed(5)
    x = torch.full((1, 1, 400, 400), 0.3, dtype=torch.float64)
    for noise, level, var_in, var_tgt in (
        ("gaussian", 0.1, 0.1**2 * 2, 0.1**2 * 2),  # alpha 0.5: a = 1
        ("poisson", 0.02, 0.02 * 0.3 / 0.5, 0.02 * 0.3 / 0.5),
        ("gamma", 40.0, 0.3**2 / 20, 0.3**2 / 20),
    ):
        from restore.noise import Gamma as G, Gaussian as N, Poisson as P

        nm = {"gaussian": N(level), "poisson": P(level), "gamma": G(level)}[noise]
        y = nm.sample(x, generator=g)
        method = get_method("gr2r", noise=noise, alpha=0.5)
        a, b = method.split(y, torch.tensor([level], dtype=torch.float64), generator=g)
        for t, v in ((a, var_in), (b, var_tgt)):
            assert float(t.mean()) == pytest.approx(0.3, abs=0.003)
            assert float(t.var()) == pytest.approx(v, rel=0.03)
        corr = float(torch.corrcoef(torch.stack([a.reshape(-1), b.reshape(-1)]))[0, 1])
        assert abs(corr) < 0.01, noise


def test_n2s_family_restore_applies_the_family_tweedie_map():
    # A network returning y + ell^2 * R with a known constant score R lets us check
    # the Poisson and Gamma maps end to end.
    from restore.noise import Gamma, Poisson

    class ConstScore(torch.nn.Module):
        def __init__(self, method, R):
            super().__init__()
            self.method, self.R = method, R

        def forward(self, y, cond):
            level = cond[:, 0] ** 2 if self.method.noise == "poisson" else cond[:, 0] ** -2
            return y + self.method.local_var(y, level) * self.R

    y = torch.rand(2, 1, 8, 8) * 0.8 + 0.1
    for noise, level, ref in (("poisson", 0.02, lambda R: Poisson(0.02).tweedie(y, 0.02 * R)),
                              ("gamma", 50.0, lambda R: Gamma(50.0).tweedie(y, R))):
        method = Noise2Score(noise=noise)
        R = torch.full_like(y, -3.0)
        out = method.restore(ConstScore(method, R), y, torch.tensor([level]))
        torch.testing.assert_close(out, ref(R), rtol=1e-4, atol=1e-6)


def test_n2s_anneal_is_global_and_geometric():
    method = Noise2Score(ratio_max=0.5, ratio_min=0.05)
    assert method.sigma_a_ratio(0.0) == pytest.approx(0.5)
    assert method.sigma_a_ratio(1.0) == pytest.approx(0.05)
    assert method.sigma_a_ratio(0.5) == pytest.approx(math.sqrt(0.5 * 0.05))


def test_r2r_below_trained_levels_averages_recorruptions():
    calls = []

    class Probe(torch.nn.Module):
        def forward(self, y, sigma):
            calls.append(float(sigma[0]))
            return y

    y = torch.zeros(1, 1, 32, 32)
    method = R2R(a=1.0, level_min=0.1, K=4)
    method.restore(Probe(), y, torch.tensor([0.2]))
    assert calls == [pytest.approx(0.2)]  # inside the trained range: one direct pass at sigma
    calls.clear()
    out = method.restore(Probe(), y, torch.tensor([0.02]))
    assert calls == [pytest.approx(0.1)] * 4  # K passes, recorrupted up to the smallest trained level
    a_eff = math.sqrt((0.1 / 0.02) ** 2 - 1)
    assert float(out.std()) == pytest.approx(a_eff * 0.02 / 2, rel=0.25)  # mean of 4 recorruptions


def test_r2r_prepare_records_the_smallest_trained_level():
    class Data:
        sigma_min = 0.02

    m = R2R(a=0.5)
    m.prepare(Data())
    assert m.level_min == pytest.approx(0.02 * math.sqrt(1.25))
    assert m.params()["level_min"] == m.level_min
