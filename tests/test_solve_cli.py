"""``restore solve`` and ``restore.solve``: shapes, bad files, settings, patch method end to end."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from restore.cli.main import main
from restore.io import read_image, write_image
from restore.nets import EpsUNet
from restore.train.checkpoint import save_model


@pytest.fixture()
def tiny_prior(tmp_path):
    torch.manual_seed(0)
    net = EpsUNet(channels=1, widths=[8, 16], depth=1, image_size=16)
    path = tmp_path / "prior.safetensors"
    save_model(path, net, {"method": "prior", "method_params": {}, "net": net.config()})
    return path


@pytest.fixture()
def inputs(tmp_path):
    from skimage import data

    d = tmp_path / "in"
    d.mkdir()
    cam = data.camera()[::16, ::16][:24, :24] / 255.0  # 24x24 grey
    write_image(d / "cam.png", cam)
    (d / "broken.png").write_bytes(b"\x89PNG not really")
    return d


def test_solve_cli_batch_goes_on_after_a_bad_file(tmp_path, tiny_prior, inputs, capsys):
    before = (inputs / "cam.png").read_bytes()
    out = tmp_path / "out"
    code = main(["solve", "reddiff", str(inputs), "--operator", "blur:sigma=1", "--noise", "gaussian:0.02",
                 "--prior", str(tiny_prior), "-o", str(out), "--steps", "5"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.png" in err[0]
    res = read_image(out / "cam.png")
    assert res.data.shape == (24, 24, 1)
    assert (inputs / "cam.png").read_bytes() == before


@pytest.mark.parametrize("method", ["gdp", "dps", "ddrm"])
def test_super_resolution_output_is_larger_and_uses_the_patch_method(tmp_path, tiny_prior, inputs, method):
    """A 24x24 measurement, 2x SR -> 48x48, larger than the 16x16 prior: tiles at every step."""
    out = tmp_path / method
    code = main(["solve", method, str(inputs / "cam.png"), "--operator", "downsample:factor=2",
                 "--prior", str(tiny_prior), "-o", str(out), "--steps", "4"])
    assert code == 0
    assert read_image(out / "cam.png").data.shape == (48, 48, 1)


def test_solve_cli_usage_errors(tmp_path, tiny_prior, inputs, capsys):
    args = ["solve", "reddiff", str(inputs / "cam.png"), "--prior", str(tiny_prior), "-o", str(tmp_path / "o")]
    assert main(args + ["--set", "zeta=1"]) == 2
    assert "no setting zeta" in capsys.readouterr().err
    assert main(args + ["--operator", "warp:x=1"]) == 2
    assert "unknown operator" in capsys.readouterr().err
    assert main(args[:-4] + ["--prior", str(tmp_path / "none.safetensors"), "-o", str(tmp_path / "o")]) == 2


def test_library_solve_keeps_type_and_layout(tiny_prior):
    import restore

    y = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    x = restore.solve(y, "ddrm", operator="mask:p=0.5", noise=0.05, prior=str(tiny_prior), steps=3)
    assert isinstance(x, np.ndarray) and x.shape == (16, 16) and np.isfinite(x).all()
    t = restore.solve(torch.from_numpy(y)[..., None], "reddiff", noise="gaussian:13", prior=str(tiny_prior),
                      channel_axis=-1, steps=3)
    assert isinstance(t, torch.Tensor) and t.shape == (16, 16, 1)
    from restore.solving import parse_sigma

    assert parse_sigma("gaussian:25") == pytest.approx(25 / 255) and parse_sigma("gaussian:0.05") == 0.05
    with pytest.raises(ValueError):
        parse_sigma("poisson:3")


def test_seam_ratio_sees_tile_edges():
    from restore.bench_solve import seam_ratio

    rng = np.random.default_rng(0)
    img = rng.random((64, 64, 1))
    assert 0.9 < seam_ratio(img, 16) < 1.1
    seamed = img + (np.arange(64) // 16 % 2)[None, :, None] * 2.0  # offsets that jump at every 16th column
    assert seam_ratio(seamed, 16) > 1.5


def test_patch_demo_writes_the_comparison(tmp_path, tiny_prior):
    from skimage import data

    from restore.bench_solve import patch_demo

    write_image(tmp_path / "cam.png", data.camera()[::8, ::8] / 255.0)  # 64x64
    res = patch_demo(str(tmp_path / "cam.png"), str(tmp_path / "demo.png"), prior=str(tiny_prior),
                     operator="mask:p=0.5", sigma=0.01, size=48, steps=3, log=lambda s: None)
    assert res["tiles"] == 25 and read_image(tmp_path / "demo.png").data.shape == (48, 144, 1)


def test_train_prior_from_a_clean_folder(tmp_path):
    """``restore train prior --data DIR`` writes a prior that ``restore solve`` loads (64x64 patches)."""
    from skimage import data

    from restore.diffusion import load_prior

    d = tmp_path / "clean"
    d.mkdir()
    for k in range(2):
        write_image(d / f"c{k}.png", np.rot90(data.camera()[::4, ::4], k) / 255.0)
    out = tmp_path / "p.safetensors"
    assert main(["train", "prior", "--data", str(d), "-o", str(out), "--steps", "2"]) == 0
    P = load_prior(out)
    assert P.image_size == 64 and P.channels == 1 and P.T == 1000


def test_lpips_says_why_it_is_unavailable(monkeypatch):
    """LPIPS never downloads: without the package or the AlexNet weights on disk it reports why."""
    import restore.metrics as metrics

    ok, why = metrics.lpips_available()
    if ok:
        monkeypatch.setattr(metrics, "_alexnet_weights", lambda: None)
        ok, why = metrics.lpips_available()
        assert "never downloads" in why
    assert not ok and why
    with pytest.raises(RuntimeError, match="LPIPS unavailable"):
        metrics.lpips_distance(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_solve_cli_never_overwrites_inputs_and_reports_missing_files(tmp_path, tiny_prior, inputs, capsys):
    """An output that would land on another input, and a named file that does not exist: one line each, exit 1."""
    o2 = tmp_path / "o2"
    o2.mkdir()
    other = o2 / "cam.png"
    other.write_bytes((inputs / "cam.png").read_bytes())
    before = other.read_bytes()
    code = main(["solve", "ddrm", str(inputs / "cam.png"), str(other), str(tmp_path / "missing.png"), "--prior", str(tiny_prior),
                 "-o", str(o2), "--steps", "2"])
    assert code == 1 and other.read_bytes() == before
    err = capsys.readouterr().err
    assert "would overwrite an input" in err and "missing.png" in err
    assert main(["solve", "gdp", str(inputs / "cam.png"), "--prior", str(tiny_prior), "-o", str(tmp_path / "x"),
                 "--set", "mode=zz"]) == 2  # a bad setting is a usage error, before any file


def test_blind_mode_is_gdp_only_and_grayscale_wants_one_channel(tiny_prior):
    import restore
    from restore.solving import solve_tensor
    from restore.diffusion import load_prior

    y = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    with pytest.raises(ValueError, match="blind mode"):
        restore.solve(y, "reddiff", operator="exposure:gain=0.5,blind=1", prior=str(tiny_prior), steps=2)
    P = load_prior(tiny_prior)
    from restore.operators import Grayscale

    with pytest.raises(ValueError, match="1-channel measurement"):
        solve_tensor(torch.rand(1, 3, 16, 16), "gdp", Grayscale(), P, steps=2)
    with pytest.raises(ValueError, match="3-channel prior"):  # grey stored as RGB is collapsed, then the prior is checked
        solve_tensor(torch.rand(1, 1, 16, 16).repeat(1, 3, 1, 1), "gdp", Grayscale(), P, steps=2)


def test_start_estimate_is_the_truncated_svd_pseudo_inverse():
    """RED-Diff's start: blur is not inverted into noise, unobserved pixels start mid-grey."""
    from skimage import data

    from restore.operators import Blur, Mask, gaussian_kernel
    from restore.solvers.base import start_estimate

    x = torch.from_numpy(data.camera()[200:264, 200:264] / 255.0).float()[None, None]
    A = Blur(gaussian_kernel(2.0))
    y = A(x) + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    z = start_estimate(A, y)
    from restore.metrics import psnr

    assert psnr((z + 1) / 2, x) > psnr(y, x) - 1.0  # plain CG pinv of the noisy blur measured 15.7 dB here
    M = Mask(p=0.5, seed=0)
    z = start_estimate(M, M(x))
    assert bool((z[M(torch.ones_like(x)) == 0] == 0).all())


def test_bench_solve_rows_and_blind_skips(tmp_path, tiny_prior):
    from skimage import data

    from restore.bench_solve import bench_solve

    d = tmp_path / "clean"
    d.mkdir()
    for k in range(2):
        write_image(d / f"c{k}.png", np.rot90(data.camera()[::4, ::4], k) / 255.0)
    tasks = [{"name": "inp", "operator": "mask:p=0.5", "sigma": 0.01},
             {"name": "dark", "operator": "exposure:gain=0.2", "solve_operator": "exposure:gain=1.0,blind=1",
              "sigma": 0.01}]
    res = bench_solve(str(d), tasks, {"pinv": {}, "reddiff": {"steps": 3}, "gdp": {"steps": 3}},
                      prior=str(tiny_prior), crop=32, log=lambda s: None)
    got = {(r["task"], r["method"]) for r in res["rows"]}
    assert got == {("inp", "pinv"), ("inp", "reddiff"), ("inp", "gdp"), ("dark", "pinv"), ("dark", "gdp")}
    dark = next(r for r in res["rows"] if r["task"] == "dark" and r["method"] == "gdp")
    assert "gain" in dark["learned"] and res["rows"][0]["images"] == 2


def test_demo_image_reads_scikit_image_names():
    from restore.bench_solve import _demo_image

    assert _demo_image("skimage:camera").shape == (512, 512, 1)
    assert _demo_image("skimage:astronaut").shape == (512, 512, 3)
    with pytest.raises(ValueError, match="no image called"):
        _demo_image("skimage:nosuchimage")
