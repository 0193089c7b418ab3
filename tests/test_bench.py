"""restore bench: seeded noise per family, anchors through the GAT, reuse of anchor rows."""
import json

import numpy as np
import pytest

from restore.bench import bench_synthetic, noisy_copy, run_anchor


@pytest.fixture(scope="module")
def eval_folder(tmp_path_factory):
    import skimage.data
    from skimage.util import img_as_float32

    from restore.io import write_image

    d = tmp_path_factory.mktemp("eval")
    for name in ("camera", "moon"):
        write_image(d / f"{name}.png", img_as_float32(getattr(skimage.data, name)())[:128, :128], dtype=np.uint8)
    return d


@pytest.mark.parametrize("noise,level", [("gaussian", 0.1), ("poisson", 0.02), ("gamma", 50.0)])
def test_noisy_copy_is_seeded_and_unbiased(noise, level):
    clean = np.full((200, 200, 1), 0.4, np.float32)
    a = noisy_copy(clean, level, 0, "x", 1, noise)
    assert np.array_equal(a, noisy_copy(clean, level, 0, "x", 1, noise))
    assert not np.array_equal(a, noisy_copy(clean, level, 1, "x", 1, noise))
    var = {"gaussian": level**2, "poisson": level * 0.4, "gamma": 0.4**2 / level}[noise]
    assert float(a.mean()) == pytest.approx(0.4, abs=0.003)
    assert float(a.var()) == pytest.approx(var, rel=0.05)


def test_anchor_runs_between_gat_and_exact_inverse_for_poisson(camera):
    y = noisy_copy(camera[..., None], 0.02, 0, "c", 0, "poisson")
    x, _ = run_anchor("skimage-wavelet", y, 0.02, "poisson")
    from restore.metrics import psnr

    assert psnr(x, camera[..., None]) > psnr(y, camera[..., None]) + 4
    with pytest.raises(ValueError, match="gamma"):
        run_anchor("skimage-wavelet", y, 50.0, "gamma")


def test_bench_families_and_anchor_reuse(tmp_path, eval_folder, tiny_model):
    res = bench_synthetic([str(eval_folder)], [0.02], ["noisy", "ours", "ours-est", "skimage-wavelet",
                                                        f"tiny={tiny_model}"],
                          model=None, noise="poisson", log=lambda *a: None)
    rows = {r["method"]: r for r in res["rows"]}
    assert rows["tiny"]["model"] == str(tiny_model) and rows["tiny"]["psnr"] != rows["ours"]["psnr"]
    assert rows["ours"]["psnr"] > rows["noisy"]["psnr"] + 3
    assert rows["ours-est"]["param_est_mean_abs_rel_err"] < 0.2
    src = tmp_path / "first.json"
    src.write_text(json.dumps({"settings": {"seed": 0}, "rows": res["rows"]}))
    calls = []
    again = bench_synthetic([str(eval_folder)], [0.02], ["noisy", "skimage-wavelet"], model=str(tiny_model),
                            noise="poisson", reuse=[str(src)], log=calls.append)
    reused = [r for r in again["rows"] if r["method"] == "skimage-wavelet"][0]
    assert reused["reused_from"] == str(src) and reused["psnr"] == rows["skimage-wavelet"]["psnr"]
    assert any("reused from" in c for c in calls)
    # another seed: nothing is reused
    other = bench_synthetic([str(eval_folder)], [0.02], ["skimage-wavelet"], seed=1, noise="poisson",
                            reuse=[str(src)], log=lambda *a: None)
    assert "reused_from" not in other["rows"][0]


def test_gaussian_rgb_bench_noise_has_its_std_per_channel_and_known_spec():
    from restore.bench import _noise_arg, noisy_copy, rgb_sigmas

    clean = np.full((200, 200, 3), 0.5, np.float32)
    y = noisy_copy(clean, 30 / 255, 0, "x", 0, "gaussian-rgb")
    assert np.allclose((y - clean).std(axis=(0, 1)) * 255, [15, 30, 45], rtol=0.03)
    assert _noise_arg("gaussian-rgb", 30 / 255, True) == "gaussian:15,30,45"
    assert _noise_arg("gaussian-rgb", 30 / 255, False) is None
    assert rgb_sigmas(2.0) == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="RGB"):
        noisy_copy(clean[..., :1], 0.1, 0, "x", 0, "gaussian-rgb")
