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

    for channels in (1, 3):
        _, meta = read_model(default_weights("default", channels))
        assert meta["recipe"]["name"] == ("default-gray" if channels == 1 else "default-color")
        assert meta["net"]["channels"] == channels


@pytest.mark.parametrize("sigma255", [15, 50])
def test_default_grey_model_denoises_known_and_estimated_sigma(camera, sigma255):
    noisy = _noisy(camera, sigma255 / 255)
    gain_known = psnr(restore.denoise(noisy, noise=f"gaussian:{sigma255}"), camera) - psnr(noisy, camera)
    gain_est = psnr(restore.denoise(noisy), camera) - psnr(noisy, camera)
    assert gain_known > 6.0
    assert gain_est > gain_known - 0.5


def test_default_colour_model_beats_per_channel_noisy(camera):
    import skimage.data
    from skimage.util import img_as_float32

    clean = img_as_float32(skimage.data.astronaut())[:192, :192]
    noisy = _noisy(clean, 25 / 255)
    x = restore.denoise(noisy, noise="gaussian:25", channel_axis=-1)
    assert x.shape == clean.shape and x.dtype == np.float32
    assert psnr(x, clean) > psnr(noisy, clean) + 6.0


def test_same_type_dtype_shape_out():
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, (40, 56), dtype=np.uint8)
    out = restore.denoise(u8, noise=20)
    assert out.dtype == np.uint8 and out.shape == u8.shape
    u16 = rng.integers(0, 65536, (40, 56, 3), dtype=np.uint16)
    out = restore.denoise(u16, noise=20, channel_axis=-1)
    assert out.dtype == np.uint16 and out.shape == u16.shape
    chw_first = rng.random((3, 40, 56)).astype(np.float64)
    out = restore.denoise(chw_first, noise=20, channel_axis=0)
    assert out.dtype == np.float64 and out.shape == chw_first.shape
    t = torch.rand(2, 1, 40, 56)
    out = restore.denoise(t, noise=20)
    assert isinstance(out, torch.Tensor) and out.shape == t.shape and out.dtype == t.dtype


def test_channel_axis_is_required_for_3d_arrays_and_nan_rejected():
    with pytest.raises(ValueError, match="channel_axis"):
        restore.denoise(np.zeros((16, 16, 3), np.float32))
    bad = np.zeros((16, 16), np.float32)
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        restore.denoise(bad, noise=10)


def test_tiled_run_matches_whole_image_within_blend_tolerance(camera):
    """Hann-blended tiles vs. one whole-image pass of the shipped model: visually identical."""
    noisy = torch.from_numpy(_noisy(camera, 25 / 255))[None]
    r = restore.load(channels=1, device="cpu")
    whole = r(noisy[None], torch.tensor([25 / 255]))[0]
    tiled = r.run(noisy, 25 / 255, tile=128, overlap=64)
    assert tiled.shape == whole.shape
    assert psnr(tiled.clamp(0, 1), whole.clamp(0, 1)) > 45.0
