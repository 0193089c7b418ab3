import numpy as np
import pytest
import torch

import restore
from restore.metrics import psnr
from restore.weights import default_weights


def _noisy(clean, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)


def test_shipped_defaults_exist_and_carry_their_recipe():
    from restore.train import read_model

    from pathlib import Path

    import yaml

    from restore.weights import DEFAULTS

    recipes = {}
    for p in (Path(__file__).parents[1] / "recipes").rglob("*.yaml"):
        doc = yaml.safe_load(p.read_text()) or {}
        recipes.setdefault(doc.get("name"), doc)
    for (method, channels, noise), _ in DEFAULTS.items():
        _, meta = read_model(default_weights(method, channels, noise))
        assert meta["net"]["channels"] == channels
        # the RAW default is a Gaussian model of the GAT domain, trained on synthetic RAW
        assert meta["recipe"].get("noise", "gaussian") == {"raw": "gaussian"}.get(noise, noise)
        if noise == "raw":
            assert meta["recipe"]["data"]["kind"] == "raw-synthetic"
        # the recipe that trained it is in the repository, same method and settings
        recipe = recipes[meta["recipe"]["name"]]
        assert recipe["method"] == meta["method"]
        assert recipe.get("method_params", {}).items() <= meta["recipe"].get("method_params", {}).items()
        assert recipe["train"]["steps"] == meta["steps"]


@pytest.mark.parametrize("sigma255", [15, 50])
def test_default_grey_model_denoises_known_and_estimated_sigma(camera, sigma255):
    noisy = _noisy(camera, sigma255 / 255)
    gain_known = psnr(restore.denoise(noisy, noise=f"gaussian:{sigma255}"), camera) - psnr(noisy, camera)
    gain_est = psnr(restore.denoise(noisy), camera) - psnr(noisy, camera)
    assert gain_known > 6.0
    assert gain_est > gain_known - 0.5


def test_colour_images_are_denoised_in_opponent_space_better_than_per_rgb_channel():
    import skimage.data
    from skimage.util import img_as_float32

    clean = img_as_float32(skimage.data.astronaut())[:192, :192]
    noisy = _noisy(clean, 25 / 255)
    x = restore.denoise(noisy, noise="gaussian:25", channel_axis=-1)
    assert x.shape == clean.shape and x.dtype == np.float32
    per_rgb = np.dstack([restore.denoise(noisy[..., k], noise="gaussian:25") for k in range(3)])
    assert psnr(x, clean) > psnr(noisy, clean) + 8.0
    assert psnr(x, clean) > psnr(per_rgb, clean) + 0.5


def test_opponent_sigmas_match_the_noise_of_the_opponent_channels():
    from restore.color import SCALE, opponent_sigmas, rgb_to_opponent

    assert np.allclose(opponent_sigmas(0.1), (0.1 / SCALE).tolist())  # white noise stays white
    sig = torch.tensor([0.02, 0.05, 0.1])
    n = torch.randn(3, 400, 400, generator=torch.Generator().manual_seed(0)) * sig[:, None, None]
    measured = (rgb_to_opponent(0.5 + n) - rgb_to_opponent(torch.full_like(n, 0.5))).std(dim=(1, 2))
    assert np.allclose(opponent_sigmas(sig), measured.tolist(), rtol=0.02)


def test_rgb_noise_with_a_std_per_channel_given_or_estimated():
    import skimage.data
    from skimage.util import img_as_float32

    from restore.api import gaussian_sigma

    clean = img_as_float32(skimage.data.astronaut())[:192, :192]
    sig = np.array([8.0, 20.0, 40.0])
    noisy = _noisy(clean, sig / 255)
    est = gaussian_sigma(torch.from_numpy(noisy.transpose(2, 0, 1).copy()), None)
    assert isinstance(est, tuple) and np.allclose(np.array(est) * 255, sig, rtol=0.15)
    per = restore.denoise(noisy, noise="gaussian:8,20,40", channel_axis=-1)
    blind = restore.denoise(noisy, channel_axis=-1)
    one = restore.denoise(noisy, noise="gaussian:20", channel_axis=-1)  # one std for all: wrong for R and B
    assert psnr(per, clean) > psnr(noisy, clean) + 8.0
    assert psnr(per, clean) > psnr(one, clean) + 0.5
    assert abs(psnr(blind, clean) - psnr(per, clean)) < 0.3
    with pytest.raises(ValueError, match="three for an RGB"):
        restore.denoise(noisy[..., 0], noise="gaussian:8,20,40")


def test_opponent_transform_is_orthonormal_and_invertible():
    import torch

    from restore.color import OPPONENT, opponent_to_rgb, rgb_to_opponent

    assert torch.allclose(OPPONENT @ OPPONENT.T, torch.eye(3), atol=1e-6)
    corners = torch.tensor([[[0.0]], [[1.0]], [[0.0]]]), torch.tensor([[[1.0]], [[0.0]], [[1.0]]])
    for rgb in corners + (torch.rand(3, 9, 9),):
        z = rgb_to_opponent(rgb)
        assert float(z.min()) >= -1e-6 and float(z.max()) <= 1 + 1e-6
        assert torch.allclose(opponent_to_rgb(z), rgb, atol=1e-6)


def test_same_type_dtype_shape_out_and_values_scaled_right(camera):
    clean = camera[:64, :96]
    noisy = np.clip(_noisy(clean, 20 / 255), 0, 1)
    ref = restore.denoise(noisy, noise="gaussian:20")
    assert psnr(ref, clean) > psnr(noisy, clean) + 4
    u8 = np.round(noisy * 255).astype(np.uint8)
    out = restore.denoise(u8, noise="gaussian:20")
    assert out.dtype == np.uint8 and out.shape == u8.shape
    assert np.abs(out / 255.0 - ref).max() < 0.03
    u16 = np.round(np.dstack([noisy] * 3) * 65535).astype(np.uint16)
    out = restore.denoise(u16, noise="gaussian:20", channel_axis=-1)
    assert out.dtype == np.uint16 and out.shape == u16.shape
    # the same noise in all three channels is correlated (the opponent luminance carries
    # sqrt(3) sigma while sigma is declared), so the gain is smaller than for independent noise
    assert psnr(out / 65535.0, np.dstack([clean] * 3)) > psnr(noisy, clean) + 3
    chw_first = np.stack([noisy] * 3).astype(np.float64)
    out = restore.denoise(chw_first, noise=20 / 255, channel_axis=0)
    assert out.dtype == np.float64 and out.shape == chw_first.shape
    t = torch.from_numpy(np.stack([noisy, noisy])[:, None])
    out = restore.denoise(t, noise="gaussian:20")
    assert isinstance(out, torch.Tensor) and out.shape == t.shape and out.dtype == t.dtype
    assert torch.allclose(out[0, 0], torch.from_numpy(ref), atol=1e-5)


def test_unclipped_noisy_data_at_high_sigma_is_not_rescaled(camera):
    noisy = _noisy(camera, 50 / 255)
    assert noisy.max() > 1.5  # overshoots [0, 1] as unclipped noise does
    known = psnr(restore.denoise(noisy, noise="gaussian:50"), camera)
    assert known > psnr(noisy, camera) + 10
    assert known > psnr(restore.denoise(noisy), camera) - 0.3  # a known sigma is no worse than an estimate


def test_float_data_in_physical_units_is_rescaled_not_clipped(camera):
    clean = camera[:64, :96]
    noisy = _noisy(clean, 20 / 255)
    out = restore.denoise(noisy * 1000.0 + 50.0, noise="gaussian:20")
    assert out.min() > 40 and out.max() > 900  # not clamped to [0, 1]
    assert psnr((out - 50.0) / 1000.0, clean) > psnr(noisy, clean) + 4
    out = restore.denoise(noisy * 1000.0 + 50.0, noise=1000.0 * 20 / 255)  # float sigma: data units
    assert psnr((out - 50.0) / 1000.0, clean) > psnr(noisy, clean) + 4


def test_bad_arrays_get_clear_errors():
    with pytest.raises(TypeError, match="signed integer"):
        restore.denoise(np.zeros((16, 16), np.int16))
    with pytest.raises(ValueError, match="4 channels"):
        restore.denoise(np.zeros((16, 16, 4), np.float32), channel_axis=-1)
    with pytest.raises(ValueError, match="at least 8x8"):
        restore.denoise(np.zeros((1, 200), np.float32), noise="gaussian:10")
    with pytest.raises(ValueError, match="SIGMA must be"):
        restore.denoise(np.zeros((16, 16), np.float32), noise="gaussian:abc")


def test_channel_axis_is_required_for_3d_arrays_and_nan_rejected():
    with pytest.raises(ValueError, match="channel_axis"):
        restore.denoise(np.zeros((16, 16, 3), np.float32))
    bad = np.zeros((16, 16), np.float32)
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        restore.denoise(bad, noise="gaussian:10")


def test_tiled_run_matches_whole_image_within_blend_tolerance(camera):
    """Hann-blended tiles vs. one whole-image pass of the shipped model: visually identical."""
    noisy = torch.from_numpy(_noisy(camera, 25 / 255))[None]
    r = restore.load(channels=1, device="cpu")
    whole = r(noisy[None], torch.tensor([25 / 255]))[0]
    tiled = r.run(noisy, 25 / 255, tile=128, overlap=64)
    assert tiled.shape == whole.shape
    assert psnr(tiled.clamp(0, 1), whole.clamp(0, 1)) > 45.0


def test_self_ensemble_is_exactly_rotation_equivariant_and_not_worse(camera, tiny_model):
    import torch

    from restore.metrics import psnr

    y = camera + 0.1 * np.random.default_rng(4).standard_normal(camera.shape).astype(np.float32)
    plain = restore.denoise(y, noise=0.1, model=str(tiny_model), tile=None)
    ens = restore.denoise(y, noise=0.1, model=str(tiny_model), tile=None, ensemble=True)
    ens_rot = restore.denoise(np.ascontiguousarray(np.rot90(y)), noise=0.1, model=str(tiny_model), tile=None,
                              ensemble=True)
    np.testing.assert_allclose(ens_rot, np.rot90(ens), atol=2e-5)
    assert not np.allclose(plain, ens, atol=1e-4)
    assert psnr(ens, camera) > psnr(plain, camera) - 0.02
    assert torch.is_tensor(restore.denoise(torch.from_numpy(y), noise=0.1, model=str(tiny_model), ensemble=True))
