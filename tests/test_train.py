import numpy as np
import pytest
import torch

from restore.io import write_image
from restore.recipe import run_recipe
from restore.train import read_model


@pytest.fixture()
def clean_dir(tmp_path, camera):
    d = tmp_path / "clean"
    write_image(d / "camera.png", camera, dtype=np.uint8)
    return d


def _recipe(path, steps, minutes=None):
    return {"name": "t", "method": "r2r", "net": {"widths": [8, 16], "depth": 1},
            "data": {"kind": "synthetic", "path": str(path), "channels": 1, "patch": 32, "batch_size": 4,
                     "sigma_range": [10, 30]},
            "train": {"steps": steps, "lr": 1e-3, "warmup": 2, "checkpoint_every": 3, "log_every": 100,
                      "seed": 3, "minutes": minutes}}


def test_resume_is_exact(tmp_path, clean_dir):
    whole = tmp_path / "whole.safetensors"
    run_recipe(_recipe(clean_dir, 8), whole, log=lambda *a: None)
    part = tmp_path / "part.safetensors"
    # an interrupted run: stops at step 5 with the schedule of an 8-step run, then resumes
    r = run_recipe(_recipe(clean_dir, 8), part, log=lambda *a: None, overrides={"train": {"stop_at": 5}})
    assert r["steps"] == 5
    r = run_recipe(_recipe(clean_dir, 8), part, log=lambda *a: None)
    assert r["steps"] == 8
    a, meta_a = read_model(whole)
    b, _ = read_model(part)
    assert meta_a["steps"] == 8 and meta_a["method"] == "r2r"
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_time_budget_stops_and_checkpoints(tmp_path, clean_dir):
    out = tmp_path / "m.safetensors"
    r = run_recipe(_recipe(clean_dir, 10**6, minutes=0.02), out, log=lambda *a: None)
    assert r["stopped_by_time"] and not r["finished"] and 0 < r["steps"] < 10**6
    assert out.exists() and (tmp_path / "m.safetensors.ckpt").exists()


def test_model_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="bad.safetensors: not a readable safetensors model"):
        read_model(bad)
    with pytest.raises(FileNotFoundError, match="no such model file"):
        read_model(tmp_path / "missing.safetensors")


def test_tiny_r2r_model_denoises(tiny_model, camera):
    """300 CPU steps of R2R on three noisy images must already beat the noisy input by > 4 dB."""
    import restore
    from restore.metrics import psnr

    rng = np.random.default_rng(5)
    sigma = 25 / 255
    noisy = (camera + sigma * rng.standard_normal(camera.shape)).astype(np.float32)
    x = restore.denoise(noisy, noise="gaussian:25", model=tiny_model)
    assert psnr(x, camera) > psnr(noisy, camera) + 4.0
