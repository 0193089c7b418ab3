"""Cube engines: tiled over all three axes equals whole, dask equals local, streaming files, the
band-window model (J-invariance, learning, resume) and the `restore cube` command."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from restore.hsi.bandwindow import BandWindowNet, denoise_bands, neighbour_index
from restore.hsi.engine import run_dask, run_local
from restore.hsi.tilefns import bandwindow_fn

zarr = pytest.importorskip("zarr")


def _band_dependent_fn(block, band0):
    """A local 3-D function that also depends on the absolute band index."""
    t = torch.from_numpy(block)[None, None]
    box = torch.nn.functional.avg_pool3d(torch.nn.functional.pad(t, (2, 2, 2, 2, 1, 1), mode="replicate"),
                                         (3, 5, 5), stride=1)[0, 0].numpy()
    return box * (1 + 0.01 * (band0 + np.arange(block.shape[0]))[:, None, None])


@pytest.mark.parametrize("shape,tile,halo", [((21, 70, 90), (8, 32, 32), (1, 2, 2)),
                                             ((17, 33, 20), (8, 20, 20), (2, 2, 2))])  # remainders < halo
def test_local_and_dask_engines_equal_the_whole_cube(tmp_path, shape, tile, halo):
    c = np.random.default_rng(0).random(shape, dtype=np.float32)
    whole = _band_dependent_fn(c, 0)
    out = np.zeros_like(c)
    run_local(_band_dependent_fn, c, out, tile=tile, halo=halo, batch_size=3)
    np.testing.assert_allclose(out, whole, atol=1e-6)
    z = zarr.open_array(str(tmp_path / "in.zarr"), mode="w", shape=c.shape, chunks=(5, 32, 32), dtype="f4")
    z[...] = c
    run_dask(_band_dependent_fn, z, str(tmp_path / "out.zarr"), tile=tile, halo=halo)
    np.testing.assert_allclose(zarr.open_array(str(tmp_path / "out.zarr"), mode="r")[...], out, atol=1e-6)


@pytest.mark.parametrize("shape", [(19, 72, 80), (19, 70, 38), (19, 130, 72)])  # sizes off the 4-pixel grid too
def test_band_window_network_tiled_over_three_axes_equals_whole(shape):
    torch.manual_seed(0)
    net = BandWindowNet(k=2, widths=(8, 16), depth=1).eval()
    c = np.random.default_rng(1).random(shape, dtype=np.float32)
    sig = np.linspace(0.02, 0.1, 19)
    with torch.inference_mode():
        whole = denoise_bands(net, torch.from_numpy(c)[None], torch.tensor(sig, dtype=torch.float32)[None])[0].numpy()
    fn, halo, mult = bandwindow_fn(net, sig)
    out = np.zeros_like(c)
    run_local(fn, c, out, tile=(12, 64, 64), halo=halo, multiple=mult, batch_size=2)
    assert out.shape == c.shape
    np.testing.assert_allclose(out, whole, atol=1e-5)
    # dask on the same cube gives the same result
    y = __import__("restore.hsi.engine", fromlist=["dask_apply"]).dask_apply(fn, c, tile=(12, 64, 64), halo=halo,
                                                                             multiple=mult).compute()
    np.testing.assert_allclose(y, whole, atol=1e-5)


def test_band_window_never_sees_the_centre_band():
    idx = neighbour_index(9, 3)
    assert idx.shape == (9, 6)
    assert all(b not in idx[b].tolist() for b in range(9))
    assert idx.min() >= 0 and idx.max() <= 8
    with pytest.raises(ValueError, match="at least 7 bands"):
        neighbour_index(6, 3)
    # J-invariance: the output for band b does not change when band b changes
    torch.manual_seed(0)
    net = BandWindowNet(k=2, widths=(8, 16), depth=1).eval()
    c = torch.rand(1, 9, 16, 16)
    s = torch.full((1, 9), 0.05)
    a = denoise_bands(net, c, s)
    c2 = c.clone()
    c2[0, 4] += 1.0
    b = denoise_bands(net, c2, s)
    assert torch.equal(a[0, 4], b[0, 4])
    assert not torch.equal(a[0, 3], b[0, 3])
    # with the regression input (band b from all the others, zero diagonal) as well
    from restore.hsi.bandwindow import regression_weights

    torch.manual_seed(0)
    net = BandWindowNet(k=2, widths=(8, 16), depth=1, regression=True).eval()
    beta = regression_weights(c[0].numpy())
    assert beta.shape == (2, 9, 9) and np.allclose(np.diagonal(beta, axis1=1, axis2=2), 0)
    a, b = denoise_bands(net, c, s, beta=beta), denoise_bands(net, c2, s, beta=beta)
    assert torch.equal(a[0, 4], b[0, 4]) and not torch.equal(a[0, 3], b[0, 3])


def test_regression_weights_predict_a_low_rank_band_from_the_others():
    from restore.hsi.bandwindow import regression_weights

    x, rng = _low_rank_cube()
    beta = regression_weights(x, lam=1e-6)
    for p in (0, 1):  # each parity's weights (fitted on half the rows) predict every row
        pred = np.einsum("ab,bhw->ahw", beta[p], x)
        assert np.abs(pred - x).max() < 1e-3  # rank 3 < B - 1: every band is a combination of the others
    # cross-fitting: the weights that predict even rows never saw them (a spike on an even row
    # changes only the odd-row weights)
    y = x.copy()
    y[:, 10, 10] += np.linspace(0, 1, 24)
    b2 = regression_weights(y, lam=1e-6)
    assert np.allclose(b2[1], beta[1]) and not np.allclose(b2[0], beta[0])


def test_regression_model_tiled_in_space_equals_whole():
    from restore.hsi.bandwindow import regression_weights

    torch.manual_seed(0)
    net = BandWindowNet(k=2, widths=(8, 16), depth=1, regression=True).eval()
    c = np.random.default_rng(2).random((11, 72, 80), dtype=np.float32)
    sig = np.full(11, 0.05)
    beta = regression_weights(c)
    with torch.inference_mode():
        whole = denoise_bands(net, torch.from_numpy(c)[None], torch.tensor(sig, dtype=torch.float32)[None],
                              beta=beta)[0].numpy()
    fn, halo, mult = bandwindow_fn(net, sig, beta=beta)
    out = np.zeros_like(c)
    run_local(fn, c, out, tile=(11, 64, 64), halo=halo, multiple=mult)
    np.testing.assert_allclose(out, whole, atol=1e-5)
    with pytest.raises(ValueError, match="every band"):
        run_local(fn, c, np.zeros_like(c), tile=(6, 64, 64), halo=(1, halo[1], halo[2]), multiple=mult)


def _low_rank_cube(B=24, H=48, W=48, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W] / H
    maps = np.stack([0.5 + 0.4 * np.sin(6 * xx + 3 * yy), 0.5 + 0.4 * np.cos(5 * yy), (xx > 0.5) * 0.6 + 0.2])
    spectra = np.stack([0.5 + 0.4 * np.sin(np.linspace(0, np.pi, B) + p) for p in (0.0, 1.0, 2.0)], 1)  # (B, 3)
    x = np.einsum("bk,khw->bhw", spectra, maps) / 2
    return x.astype(np.float32), rng


def test_fit_bandwindow_denoises_and_resumes(tmp_path):
    from restore.hsi.fit import fit_bandwindow, load_bandwindow
    from restore.metrics import mpsnr

    x, rng = _low_rank_cube()
    y = (x + 0.08 * rng.standard_normal(x.shape)).astype(np.float32)
    out = tmp_path / "bw.safetensors"
    logs = []
    fit_bandwindow([y], out, sigmas=[0.08], k=2, steps=150, patch=32, batch=8, lr=2e-3,
                   checkpoint_every=50, log=lambda s: None, minutes=1e-9)  # stops at once: no steps
    fit_bandwindow([y], out, sigmas=[0.08], k=2, steps=150, patch=32, batch=8, lr=2e-3, checkpoint_every=50,
                   log=logs.append)
    net = fit_bandwindow([y], out, sigmas=[0.08], k=2, steps=300, patch=32, batch=8, lr=2e-3, checkpoint_every=50,
                         log=logs.append)  # resumes at step 150
    assert "resumed" in logs[3] and "at step 150" in logs[3]
    st = torch.load(str(out) + ".ckpt", weights_only=False)
    assert st["step"] == 300 and st["sched"]["T_max"] == 300  # the resumed run decays over its own length
    with pytest.raises(ValueError, match="another run"):
        fit_bandwindow([y], out, sigmas=[0.08], k=3, steps=310, patch=32, batch=8, log=lambda s: None)
    assert load_bandwindow(out).k == 2
    with torch.inference_mode():
        d = denoise_bands(net, torch.from_numpy(y)[None], torch.full((1, 24), 0.08))[0].numpy()
    from restore.hsi.bandwindow import neighbour_index

    idx = neighbour_index(24, 2)
    adjacent_mean = 0.5 * (y[idx[:, 1]] + y[idx[:, 2]])  # the network's starting point (+2.7 dB)
    assert mpsnr(d, x) > mpsnr(adjacent_mean, x) + 1.5  # measured +5.2 dB over the noisy cube


def test_denoise_file_streams_zarr_tif_npy_and_never_overwrites(tmp_path):
    from restore.hsi.stream import denoise_file, open_lazy

    x, rng = _low_rank_cube(B=3, H=64, W=64)
    img = (x[0] + 0.05 * rng.standard_normal(x[0].shape)).astype(np.float32)  # a 2-D image
    src = tmp_path / "img.zarr"
    z = zarr.open_array(str(src), mode="w", shape=img.shape, chunks=(32, 32), dtype="f4")
    z[...] = img
    outs = {}
    for name, engine in [("a.zarr", "local"), ("b.tif", "local"), ("c.npy", "local"), ("d.zarr", "dask")]:
        denoise_file(src, tmp_path / name, sigma=0.05, engine=engine, tile=(1, 64, 64), halo=16, log=lambda s: None)
        a, info = open_lazy(tmp_path / name)
        assert info["image"] and a.shape == (1, 64, 64)
        outs[name] = np.asarray(a[0])
    for name in ("b.tif", "c.npy", "d.zarr"):
        np.testing.assert_allclose(outs[name], outs["a.zarr"], atol=1e-5)
    assert np.mean((outs["a.zarr"] - x[0]) ** 2) < 0.5 * np.mean((img - x[0]) ** 2)
    with pytest.raises(FileExistsError, match="never overwritten"):
        denoise_file(src, tmp_path / "a.zarr", sigma=0.05)
    assert not list(tmp_path.glob(".*partial*"))


def test_cube_cli_batch_goes_on_and_exits_nonzero(tmp_path, capsys):
    from restore.cli.main import main

    x, rng = _low_rank_cube(B=9, H=32, W=32)
    np.save(tmp_path / "cube.npy", (x + 0.05 * rng.standard_normal(x.shape)).astype(np.float32))
    (tmp_path / "bad.npy").write_bytes(b"not a numpy file")
    rc = main(["cube", "denoise", str(tmp_path / "cube.npy"), str(tmp_path / "bad.npy"), str(tmp_path / "missing.zarr"),
               "-o", str(tmp_path / "out"), "--method", "bandwise", "--tile", "9,32,32", "--halo", "8"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "missing.zarr" in err and "bad.npy" in err
    assert (tmp_path / "out" / "cube.zarr").exists()


def test_hsi_bench_rows_and_table(tmp_path):
    from restore.bench_hsi import bench_hsi, format_hsi_table, noisy_cube

    x, _ = _low_rank_cube(B=12, H=32, W=32)
    np.save(tmp_path / "c.npy", x)
    y, s = noisy_cube(x, [10, 70], seed=0)
    assert s.shape == (12,) and 10 / 255 <= s.min() and s.max() <= 70 / 255 and s.std() > 0
    rows = bench_hsi({"data": {"toy": str(tmp_path / "c.npy")}, "levels": [30],
                      "methods": ["noisy", "subspace", "hyres"], "anchors_python": "/nonexistent/python"},
                     log=lambda s: None)
    by = {r["method"]: r for r in rows}
    assert by["subspace"]["mpsnr"] > by["noisy"]["mpsnr"] + 5
    assert "error" in by["hyres"]  # the anchors venv is missing: reported, not raised
    assert "n/a" in format_hsi_table(rows)


def test_synthetic_large_writes_chunked_zarr(tmp_path):
    from restore.datasets.synthetic_large import write_cube, write_image

    write_image(str(tmp_path / "i.zarr"), 300, 200, chunk=128)
    write_cube(str(tmp_path / "c.zarr"), 5, 64, 96, chunk=32)
    i = zarr.open_array(str(tmp_path / "i.zarr"), mode="r")
    c = zarr.open_array(str(tmp_path / "c.zarr"), mode="r")
    assert i.shape == (300, 200) and c.shape == (5, 64, 96)
    assert 0.05 < float(np.std(np.asarray(i[:128, :128]) - np.asarray(i[1:129, :128])) / np.sqrt(2)) < 0.2


def test_cube_cli_train_then_denoise_with_the_model(tmp_path):
    from restore.cli.main import main

    x, rng = _low_rank_cube(B=9, H=32, W=32)
    np.save(tmp_path / "cube.npy", (x + 0.05 * rng.standard_normal(x.shape)).astype(np.float32))
    assert main(["cube", "train", "--data", str(tmp_path), "-o", str(tmp_path / "bw.safetensors"), "--steps", "4",
                 "--k", "2"]) == 0
    assert main(["cube", "denoise", str(tmp_path / "cube.npy"), "-o", str(tmp_path / "out"), "--model",
                 str(tmp_path / "bw.safetensors"), "--format", "tif"]) == 0
    from restore.hsi.stream import open_lazy

    out, info = open_lazy(tmp_path / "out" / "cube.tif")
    assert out.shape == (9, 32, 32) and not info["image"]
