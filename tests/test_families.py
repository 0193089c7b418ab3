"""Poisson, Poisson-Gaussian and Gamma noise end to end: GAT route, blind parameters,
family-trained models (Noise2Score, generalised R2R, Noise2Void) and the CLI."""
import numpy as np
import pytest
import torch

from restore import denoise
from restore.metrics import psnr


def _poisson(x, zeta, seed=0):
    return (zeta * np.random.default_rng(seed).poisson(x / zeta)).astype(np.float32)


def _gamma(x, k, seed=0):
    return (x * np.random.default_rng(seed).gamma(k, 1 / k, x.shape)).astype(np.float32)


@pytest.mark.parametrize("zeta", [0.01, 0.05])
def test_poisson_through_gat_and_the_gaussian_model_known_and_blind(camera, zeta):
    y = _poisson(camera, zeta)
    known = denoise(y, noise=f"poisson:{zeta}")
    blind = denoise(y, noise="poisson")
    assert psnr(known, camera) > psnr(y, camera) + 6
    assert abs(psnr(blind, camera) - psnr(known, camera)) < 0.2
    # the exact unbiased inverse keeps the mean; the algebraic one would darken the image
    assert abs(float(known.mean() - camera.mean())) < 0.004


def test_poisson_gaussian_blind_is_close_to_known(camera):
    r = np.random.default_rng(3)
    y = (0.02 * r.poisson(camera / 0.02) + 0.02 * r.standard_normal(camera.shape)).astype(np.float32)
    known = denoise(y, noise="poisson-gaussian:0.02,0.02")
    blind = denoise(y, noise="poisson-gaussian")
    assert psnr(known, camera) > psnr(y, camera) + 5
    assert abs(psnr(blind, camera) - psnr(known, camera)) < 0.3


def test_shipped_gamma_model_known_and_blind_and_colour(camera, tiny_model):
    y = _gamma(camera, 50)
    known = denoise(y, noise="gamma:50")
    blind = denoise(y, noise="gamma")
    assert psnr(known, camera) > psnr(y, camera) + 7
    assert abs(psnr(blind, camera) - psnr(known, camera)) < 0.2
    rgb = np.stack([camera, camera[::-1], camera[:, ::-1]], axis=-1)
    y3 = _gamma(rgb, 50, seed=2)
    x3 = denoise(y3, noise="gamma:50", channel_axis=-1)  # grey model per channel
    assert x3.shape == y3.shape and psnr(x3, rgb) > psnr(y3, rgb) + 6
    with pytest.raises(ValueError, match="Gamma noise needs a model trained for it"):
        denoise(y, noise="gamma:50", model=str(tiny_model))  # a Gaussian model


@pytest.fixture(scope="module")
def clean_folder(tmp_path_factory):
    import skimage.data
    from skimage.util import img_as_float32

    from restore.io import write_image

    d = tmp_path_factory.mktemp("clean_fam")
    for name in ("camera", "moon", "coins"):
        write_image(d / f"{name}.png", img_as_float32(getattr(skimage.data, name)())[:256, :256], dtype=np.uint8)
    return d


def _train(tmp_path, clean_folder, method, noise, level_range, method_params=None, steps=250):
    from restore.recipe import run_recipe

    out = tmp_path / f"{method}-{noise}.safetensors"
    recipe = {
        "name": f"tiny-{method}-{noise}", "method": method,
        "method_params": {"noise": noise, **(method_params or {})}, "noise": noise,
        "net": {"widths": [16, 32], "depth": 1, "cond": method != "n2v"},
        "data": {"kind": "synthetic", "path": str(clean_folder), "channels": 1, "patch": 64, "batch_size": 8,
                 "noise": noise, "level_range": level_range},
        "train": {"steps": steps, "lr": 2e-3, "warmup": 20, "checkpoint_every": 1000, "log_every": 1000, "seed": 0},
    }
    if method == "n2v":
        recipe["method_params"] = {}
    run_recipe(recipe, out, log=lambda *a: None)
    return out


@pytest.mark.parametrize("method,noise,level_range,level,params", [
    ("n2s", "poisson", [0.02, 0.08], 0.04, {"a_min": 0.05, "a_max": 1.0, "weighting": "ardae"}),
    ("gr2r", "poisson", [0.01, 0.08], 0.04, {"alpha": 0.5}),
    ("n2s", "gamma", [15.0, 60.0], 30.0, {"a_min": 0.05, "a_max": 1.0, "weighting": "ardae"}),
    ("gr2r", "gamma", [15.0, 80.0], 30.0, {"alpha": 0.5}),
    ("n2v", "gamma", [15.0, 60.0], 30.0, {}),
])
def test_family_models_trained_on_noisy_patches_denoise(tmp_path, clean_folder, camera, method, noise,
                                                         level_range, level, params):
    model = _train(tmp_path, clean_folder, method, noise, level_range, params)
    y = _poisson(camera, level, seed=7) if noise == "poisson" else _gamma(camera, level, seed=7)
    x = denoise(y, noise=f"{noise}:{level}", model=str(model))
    assert x.shape == y.shape and np.isfinite(x).all()
    gain = 3 if noise == "poisson" else 1.5  # Gamma k=30 is harder for a 250-step tiny net
    assert psnr(x, camera) > psnr(y, camera) + gain, (method, noise)
    with pytest.raises(ValueError, match=f"trained for {noise} noise"):
        denoise(y, noise="gaussian:25", model=str(model))


def test_train_cli_accepts_family_noise(tmp_path, clean_folder):
    from restore.cli.main import main

    noisy = tmp_path / "noisy"
    noisy.mkdir()
    from restore.io import read_image, write_image

    for f in sorted(clean_folder.iterdir()):
        x = read_image(f).data[..., 0]
        write_image(noisy / (f.stem + ".tif"), _poisson(x, 0.03), dtype=np.float32)
    out = tmp_path / "m.safetensors"
    assert main(["train", "gr2r", "--data", str(noisy), "--noise", "poisson", "--steps", "2", "-o", str(out)]) == 0
    from restore.train.checkpoint import read_model

    _, meta = read_model(out)
    assert meta["method_params"]["noise"] == "poisson"
    lo, hi = meta["method_params"]["level_range"]
    assert 0.03 / 0.5 * 0.8 < lo <= hi < 0.03 / 0.5 * 1.25  # estimated zeta per image, input gain 2 zeta
    assert main(["train", "n2s", "--data", str(noisy), "--noise", "rician", "--steps", "2",
                 "-o", str(tmp_path / "x.safetensors")]) == 2
    # the same from the library
    import restore

    res = restore.fit("n2s", data=noisy, noise="poisson:0.03", steps=2, output=tmp_path / "lib.safetensors")
    assert res["steps"] == 2
    _, meta = read_model(tmp_path / "lib.safetensors")
    assert meta["method_params"]["noise"] == "poisson" and meta["net"]["cond_dim"] == 2


def test_poisson_gaussian_folders_are_stabilised_into_gaussian_training_data(tmp_path, camera):
    from restore.datasets.patches import NoisyFolder
    from restore.io import write_image
    from restore.noise import estimate_sigma

    r = np.random.default_rng(5)
    y = (0.02 * r.poisson(camera / 0.02) + 0.01 * r.standard_normal(camera.shape)).astype(np.float32)
    write_image(tmp_path / "pg.tif", y, dtype=np.float32)
    ds = NoisyFolder(tmp_path, channels=1, patch=64, batch_size=2, noise="poisson-gaussian", level=(0.02, 0.01))
    assert ds.noise == "gaussian"
    assert float(ds.levels[0]) == pytest.approx(np.sqrt(0.02) / 2)
    # after the GAT the noise is white with the stated std, whatever the intensity
    est = float(estimate_sigma(torch.from_numpy(ds.images[0])[None])[0])
    assert est == pytest.approx(np.sqrt(0.02) / 2, rel=0.1)
    blind = NoisyFolder(tmp_path, channels=1, patch=64, batch_size=2, noise="poisson-gaussian")
    assert float(blind.levels[0]) == pytest.approx(np.sqrt(0.02) / 2, rel=0.1)
