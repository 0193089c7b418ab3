"""SensorNoise moments, Tukey-lambda sampling, profiles, calibration from synthetic frames,
the Poisson-Gaussian estimator and the GAT route on synthetic RAW planes."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from restore.noise.calibrate import calibrate, fit_log_linear
from restore.noise.sensor import (SensorNoise, load_profile, sample_params, sample_tukey_lambda,
                                  tukey_lambda_variance)

S = 16383 - 512.0


@pytest.mark.parametrize("lam", [-0.2, 0.0, 0.14, 0.4])
def test_tukey_lambda_inverse_cdf_sampling_matches_scipy(lam):
    x = sample_tukey_lambda((200000,), lam, 2.0, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert tukey_lambda_variance(lam) == pytest.approx(stats.tukeylambda(lam).var(), rel=1e-9)
    assert x.var().item() == pytest.approx(4.0 * tukey_lambda_variance(lam), rel=0.03)
    # KS against scipy's distribution (scale 2)
    assert stats.kstest(x[:20000].numpy(), stats.tukeylambda(lam, scale=2.0).cdf).pvalue > 0.01


@pytest.mark.parametrize("ratio", [1.0, 50.0])
def test_sensor_noise_moments_match_the_model(ratio):
    K, s_tl, lam, s_r, bias = 2.0, 4.0, -0.1, 1.5, torch.tensor([1.0, -1.0, 0.5, 2.0])
    n = SensorNoise(K, s_tl, lam, s_r, bias, scale=S, ratio=ratio)
    x = torch.full((8, 4, 128, 128), 0.3 / ratio * 10)
    y = n.sample(x, generator=torch.Generator().manual_seed(0)).double()
    mean_expected = x[0, :, 0, 0].double() + bias.double() * ratio / S
    assert torch.allclose(y.mean((0, 2, 3)), mean_expected, atol=3e-3 * float(x[0, 0, 0, 0]) + 1e-5)
    # variance = (ratio/S)^2 (K * signal + read + row + 1/12), pooled over rows (the row term included)
    signal = float(x[0, 0, 0, 0]) * S / ratio
    v = (K * signal + s_tl ** 2 * tukey_lambda_variance(lam) + s_r ** 2 + 1 / 12) * (ratio / S) ** 2
    assert n.variance(x)[0, 0, 0, 0].item() == pytest.approx(v, rel=1e-5)
    assert y.var((0, 2, 3)).mean().item() == pytest.approx(v, rel=0.03)
    # the row term: row means vary by sigma_r (plus the averaged rest)
    resid = (y - y.mean((2, 3), keepdim=True)).mean(3)  # (N, C, H) row means
    rest = v - (s_r * ratio / S) ** 2
    assert resid.var().item() == pytest.approx((s_r * ratio / S) ** 2 + rest / 128, rel=0.1)


def test_poisson_gaussian_equivalent():
    n = SensorNoise(1.5, 3.0, 0.0, 1.0, scale=S, ratio=4.0)
    a, s = n.poisson_gaussian()
    x = torch.tensor([0.0, 0.1, 0.5]).reshape(1, 3, 1, 1)
    assert torch.allclose(n.variance(x).reshape(-1), (a * x.reshape(-1) + s ** 2), rtol=1e-5)


def test_profiles_and_parameter_sampling():
    p = load_profile("SonyA7S2")
    assert p.K_of_iso(3200) == pytest.approx(0.0009546 * 3200 - 0.00193)
    g = torch.Generator().manual_seed(0)
    draws = [sample_params(p, generator=g) for _ in range(400)]
    Ks = np.array([d["K"] for d in draws])
    assert Ks.min() >= p.K_range[0] and Ks.max() <= p.K_range[1]
    # log sigma_tl regresses on log K with the profile's slope
    slope = np.polyfit(np.log(Ks), np.log([d["sigma_tl"] for d in draws]), 1)[0]
    assert slope == pytest.approx(p.tl_scale["slope"], abs=0.08)
    with pytest.raises(FileNotFoundError, match="restore calibrate"):
        load_profile("NoSuchCamera")


def _frames(truth, seed=0, shape=(1, 4, 128, 128)):
    g = torch.Generator().manual_seed(seed)
    darks, flats = {}, {}
    for iso, (K, s_tl, lam, s_r, bias) in truth.items():
        n = SensorNoise(K, s_tl, lam, s_r, bias=bias, scale=S, components="ptrd")  # rounding = quantisation

        def dn(x):
            return torch.round(n.sample(x, generator=g) * S)[0].double().numpy()

        darks[iso] = [dn(torch.zeros(shape)) for _ in range(4)]
        prnu = 1 + 0.01 * torch.randn(shape, generator=g)  # fixed pattern, cancelled by the pair difference
        flats[iso] = [(dn(torch.full(shape, lv) * prnu), dn(torch.full(shape, lv) * prnu))
                      for lv in (0.02, 0.05, 0.1, 0.2, 0.4, 0.95)]  # the last one saturates: left out
    return darks, flats


def test_calibration_recovers_synthetic_sensor_parameters():
    truth = {iso: (K, math.exp(0.46 * math.log(K) + 0.9), -0.1, math.exp(0.5 * math.log(K) - 0.4),
                   [1.0, -0.5, 0.2, 2.0]) for iso, K in ((800, 0.75), (3200, 3.0), (12800, 12.0))}
    darks, flats = _frames(truth)
    for iso in flats:  # saturate the brightest pair as a camera would
        flats[iso][-1] = tuple(np.minimum(f, 0.9 * S) for f in flats[iso][-1])
    cal = calibrate(darks, flats, full_scale=S)
    for iso, (K, s_tl, lam, s_r, bias) in truth.items():
        r = cal.per_iso[iso]
        assert r["K"] == pytest.approx(K, rel=0.05)
        assert r["sigma_tl"] == pytest.approx(s_tl, rel=0.10)
        assert r["sigma_r"] == pytest.approx(s_r, rel=0.10)
        assert r["lam"] == pytest.approx(lam, abs=0.05)
        assert np.allclose(r["color_bias"], bias, atol=0.3)
    prof = cal.profile
    assert prof.tl_scale["slope"] == pytest.approx(0.46, abs=0.05)
    assert prof.row_scale["slope"] == pytest.approx(0.5, abs=0.08)
    assert prof.iso_to_K[0] == pytest.approx(12.0 / 12800, rel=0.05)


def test_fit_log_linear_recovers_a_line():
    K = np.array([0.5, 1, 2, 4, 8])
    fit = fit_log_linear(K, np.exp(0.4 * np.log(K) + 0.3))
    assert fit["slope"] == pytest.approx(0.4) and fit["bias"] == pytest.approx(0.3) and fit["sigma"] < 1e-9


def test_blind_poisson_gaussian_estimate_on_synthetic_raw_planes():
    """The NLF fit recovers (gain, sigma) of a SensorNoise frame's Poisson-Gaussian equivalent
    within 15 % on a 256^2 scene (measured: +13 %/+2 % at K=1, +4 %/+1 % at K=6; texture that
    survives the mask biases the gain up at low noise)."""
    import skimage.data
    from skimage.transform import resize

    from restore.rawdenoise import raw_noise

    rgb = resize(skimage.data.astronaut() / 255.0, (256, 256), anti_aliasing=True) ** 2.2
    planes = torch.from_numpy(np.stack([rgb[..., 0], rgb[..., 1], rgb[..., 1], rgb[..., 2]]) * 0.8 + 0.02)
    for K in (1.0, 6.0):
        n = SensorNoise(K, 2.5 * K ** 0.46, 0.0, 0.5 * K ** 0.5, scale=S, ratio=20, components="ptrq")
        y = n.sample(planes[None].float(), generator=torch.Generator().manual_seed(1))[0]
        a, s = n.poisson_gaussian()
        est = raw_noise(y.numpy())
        assert est.gain == pytest.approx(float(a), rel=0.15)
        assert est.sigma == pytest.approx(float(s), rel=0.15)


def test_calibrate_cli_on_synthetic_dng_frames(tmp_path):
    """`restore calibrate` on DNG dark/flat frames synthesised by SensorNoise (ISO from folder names)."""
    from restore.cli.main import main
    from restore.io.raw import RawFrame, unpack, write_dng

    truth = {iso: (K, 3.0 * K ** 0.46, 0.0, 0.8 * K ** 0.5, [0.5, 0.0, 0.0, 1.0])
             for iso, K in ((400, 0.5), (1600, 2.0))}
    darks, flats = _frames(truth, shape=(1, 4, 96, 96))
    frame = RawFrame(mosaic=np.zeros((192, 192), np.uint16), cfa="RGGB", black=np.full(4, 512.0),
                     white=np.full(4, 16383.0), meta={"make": "Test", "model": "Cam"})
    for iso in truth:
        for k, d in enumerate(darks[iso]):
            write_dng(tmp_path / "dark" / f"iso{iso}" / f"d{k}.dng", unpack(d / S, frame), frame)
        for k, (a, b) in enumerate(flats[iso][:-1]):
            for tag, f in (("a", a), ("b", b)):
                write_dng(tmp_path / "flat" / f"iso{iso}" / f"f{k}{tag}.dng", unpack(f / S, frame), frame)
    out = tmp_path / "cam.json"
    assert main(["calibrate", "--dark", str(tmp_path / "dark"), "--flat", str(tmp_path / "flat"),
                 "-o", str(out)]) == 0
    prof = load_profile(out)
    assert prof.K_range[0] == pytest.approx(0.5, rel=0.05) and prof.K_range[1] == pytest.approx(2.0, rel=0.05)
    assert prof.iso_to_K[0] == pytest.approx(1.5 / 1200, rel=0.08)
    assert prof.black == 512.0
