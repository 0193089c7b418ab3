"""Real (correlated) noise through the Gaussian model: PD route, training sub-images, pairing."""
import numpy as np
import pytest
import torch

from restore.metrics import psnr


def _astronaut():
    import skimage.data
    from skimage.util import img_as_float32

    return img_as_float32(skimage.data.astronaut())[:256, 128:384].transpose(2, 0, 1).copy()


def _correlated(x, sigma, seed=0):
    n = np.random.default_rng(seed).standard_normal(x.shape)
    n = (n + np.roll(n, 1, -1) + np.roll(n, 1, -2) + np.roll(np.roll(n, 1, -1), 1, -2)) / 2  # std 1, 2x2 correlated
    return (x + sigma * n).astype(np.float32)


def test_pd_gaussian_with_an_identity_denoiser_is_the_identity():
    from restore.realnoise import pd_gaussian

    y = torch.rand(3, 37, 50)
    seen = []
    x, s = pd_gaussian(lambda t, sig: seen.append(sig) or t, y, stride=2, enhance=False)
    assert torch.equal(x, y) and len(seen) == 4 and len(s) == 3
    assert all(len(v) == 3 for v in seen)  # one sigma per channel of each sub-image


def test_real_noise_route_beats_the_white_noise_route_on_correlated_noise():
    from restore.api import denoise_chw

    clean = _astronaut()
    y = torch.from_numpy(_correlated(clean, 15 / 255))
    white, _ = denoise_chw(y, noise="auto", device="cpu")
    real, sigma = denoise_chw(y, noise="real", device="cpu")
    p_noisy, p_white, p_real = (psnr(v, clean) for v in (y.numpy(), white.numpy(), real.numpy()))
    assert p_real > p_white + 2.0 and p_real > p_noisy + 4.0
    assert 0 < sigma < 1


def test_pd_training_images_have_opponent_channels_and_scaled_sigmas():
    from restore.datasets.real import pd_training_images

    clean = np.full((3, 192, 192), 0.5, np.float32)
    y = clean + 0.04 * np.random.default_rng(0).standard_normal(clean.shape).astype(np.float32)
    imgs, sig = pd_training_images([y], stride=2, sigma_scale=1.5)
    assert len(imgs) == 12 and imgs[0].shape == (1, 96, 96)  # 4 sub-images x 3 opponent channels
    from restore.color import SCALE

    expect = [1.5 * 0.04 / float(s) for s in SCALE] * 4
    assert np.allclose(sig, expect, rtol=0.15)


def test_noisy_and_reference_images_pair_by_name():
    from restore.bench import pair_images

    noisy = [("NOISY_10.png", 1), ("NOISY_2.png", 2)]
    gts = [("GT_2.png", "b"), ("GT_10.png", "a"), ("GT_Big_unpaired.png", "c")]
    n, g = pair_images(noisy, gts, "n", "g")
    assert [v for _, v in g] == ["a", "b"]
    with pytest.raises(ValueError, match="no reference"):
        pair_images([("NOISY_3.png", 3)], gts, "n", "g")


@pytest.mark.parametrize("sigma255", [5, 15, 40])
def test_noise_correlation_separates_white_from_correlated_noise(sigma255):
    from restore.adapt import CORRELATION_THRESHOLD, noise_correlation

    clean = _astronaut()
    white = clean + sigma255 / 255 * np.random.default_rng(1).standard_normal(clean.shape)
    assert noise_correlation(white) < CORRELATION_THRESHOLD
    assert noise_correlation(_correlated(clean, sigma255 / 255)) > CORRELATION_THRESHOLD


def test_denoise_fit_trains_on_the_inputs_saves_the_model_and_uses_it(tmp_path):
    import json

    from restore.io import write_image
    from restore.train import read_model

    clean = _astronaut()
    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):
        write_image(src / f"img{k}.png", np.clip(_correlated(clean, 12 / 255, seed=k), 0, 1).transpose(1, 2, 0))
    (src / "broken.png").write_bytes(b"not a png")
    from restore.cli.main import main

    rc = main(["denoise", str(src), "-o", str(tmp_path / "out"), "--fit", "--minutes", "0.05"])
    assert rc == 1  # the broken file is reported, the others denoised
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["ok"] == 2 and summary["fit"]["route"] == "correlated" and summary["fit"]["steps"] > 0
    _, meta = read_model(tmp_path / "out" / "restore-fit.safetensors")
    assert meta["recipe"]["data"]["kind"] == "real-bank" and meta["method"] == "r2r-bank" and meta["recipe"]["init_sha256"]
    assert meta["noise"] == "real-fit"
    assert main(["denoise", str(src), "-o", str(tmp_path / "o2"), "--fit", "--noise", "gaussian:10"]) == 2


def test_residual_bank_recorruption_keeps_the_noise_correlation_and_decorrelates_input_and_target(tmp_path):
    """R2R with recorruption drawn from the images' own noise residuals (restore.realfit): with an
    oracle route (residual = the true correlated noise), input and target noises are uncorrelated
    (Cov(n + a z, n - z/a) = Sigma - Sigma = 0) and the input keeps the noise's spatial correlation."""
    from restore.datasets.real import ResidualBank
    from restore.io import write_image

    level = 0.5
    flat = np.full((3, 128, 128), level, np.float32)
    for k in range(3):
        write_image(tmp_path / f"n{k}.png", np.clip(_correlated(flat, 10 / 255, seed=k), 0, 1).transpose(1, 2, 0),
                    dtype=np.uint16)
    ds = ResidualBank(tmp_path, patch=48, batch_size=64, route=lambda y: torch.full_like(y, level))
    ds.stds = [[float(np.mean(s))] * 3 for s in ds.stds]  # one level: the covariance identity is exact
    b = ds.batch(np.random.default_rng(0))
    from restore.realfit import to_channels

    c = to_channels(torch.full((3, 1, 1), level))  # the clean value in each opponent channel
    n_in, n_tgt, lags = [], [], []
    for t_in, t_tgt in zip(b["noisy"], b["target"]):
        k = int(np.argmin([abs(float(t_in.mean() - v)) for v in c.reshape(-1)]))
        n_in.append(t_in - c[k]), n_tgt.append(t_tgt - c[k])
    n_in, n_tgt = torch.stack(n_in), torch.stack(n_tgt)
    norm = float(n_in.var().sqrt() * n_tgt.var().sqrt())
    cross0 = float((n_in * n_tgt).mean()) / norm
    cross1 = float((n_in[..., 1:] * n_tgt[..., :-1]).mean()) / norm  # white z would leave Sigma's lag-1 term here
    assert abs(cross0) < 0.1 and abs(cross1) < 0.1

    def lag1(t):
        return float((t[..., 1:] * t[..., :-1]).mean() / (t * t).mean())

    noise = torch.stack([r for r in ds.residuals])
    assert lag1(noise) > 0.3  # the data's noise is correlated ...
    assert abs(lag1(n_in) - lag1(noise)) < 0.1  # ... and the recorrupted input keeps that correlation


def test_shipped_sdap_real_noise_model_denoises_correlated_noise():
    """The shipped SDAP model (trained on real noisy photos only) is found by --method sdap and
    reduces spatially correlated noise it has never seen (2x2-box-filtered Gaussian; measured
    +0.75 dB here, while on real phone noise, sidd12, it gives +6.3 dB)."""
    import restore
    from restore.metrics import psnr

    clean = _astronaut()
    y = np.clip(_correlated(clean, 15 / 255, seed=3), 0, 1)
    x = restore.denoise(y, noise="real", method="sdap", channel_axis=0)
    assert x.shape == y.shape
    assert psnr(x, clean) > psnr(y, clean) + 0.5
