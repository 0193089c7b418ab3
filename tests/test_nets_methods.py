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
    with pytest.raises(ValueError, match="available: n2s, r2r"):
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
    method = Noise2Score(ratio_max=0.3, ratio_min=0.3)
    losses = {}
    for k in (0.6, 1.0, 1.4):
        g = torch.Generator().manual_seed(2)
        losses[k] = float(method.loss(_Wiener(m, s, k), batch, generator=g))
    assert losses[1.0] < losses[0.6] and losses[1.0] < losses[1.4]


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
