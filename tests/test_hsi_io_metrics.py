"""Hyperspectral io round trips (every format, wavelengths kept) and the HSI metrics against hand values."""
from __future__ import annotations

import numpy as np
import pytest

from restore.io.hsi import HSICube, read_cube, write_cube
from restore.metrics import ergas, mpsnr, mssim, sam


def _cube(b=7, h=12, w=9):
    rng = np.random.default_rng(0)
    return HSICube(rng.random((b, h, w)).astype(np.float32), np.linspace(400.0, 1000.0, b), {"sensor": "test"})


@pytest.mark.parametrize("ext", [".npy", ".tif", ".mat", ".hdr", ".zarr"])
def test_cube_round_trip(tmp_path, ext):
    if ext == ".hdr":
        pytest.importorskip("spectral")
    if ext == ".zarr":
        pytest.importorskip("zarr")
    c = _cube()
    p = write_cube(tmp_path / f"cube{ext}", c)
    r = read_cube(p)
    assert r.shape == c.shape
    np.testing.assert_array_equal(np.asarray(r.data), c.data)
    if ext != ".npy":
        np.testing.assert_allclose(r.wavelengths, c.wavelengths)


def test_band_axis_and_unmixing_layout(tmp_path):
    import scipy.io

    c = _cube()
    np.save(tmp_path / "hwb.npy", np.moveaxis(c.data, 0, -1))
    np.testing.assert_array_equal(read_cube(tmp_path / "hwb.npy", band_axis=-1).data, c.data)
    # unmixing benchmarks: Y is (B, H*W) with pixels in MATLAB column-major order, plus nRow / nCol
    Y = np.stack([b.T.ravel() for b in c.data])  # column-major flattening of each band
    scipy.io.savemat(tmp_path / "u.mat", {"Y": Y, "nRow": np.array([[12]]), "nCol": np.array([[9]])})
    np.testing.assert_array_equal(read_cube(tmp_path / "u.mat").data, c.data)


def test_unreadable_cubes_say_why(tmp_path):
    (tmp_path / "bad.mat").write_bytes(b"nonsense")
    with pytest.raises(ValueError, match="bad.mat"):
        read_cube(tmp_path / "bad.mat")
    with pytest.raises(ValueError, match="unknown cube format"):
        read_cube(__file__)
    with pytest.raises(FileNotFoundError):
        read_cube(tmp_path / "none.npy")


def test_hsi_metrics_against_hand_values():
    ref = np.ones((3, 4, 4))
    x = ref.copy()
    x[:, 0, 0] = [1.0, 0.0, 1.0]  # one pixel's spectrum rotated
    # the angle between (1,1,1) and (1,0,1) is arccos(2 / (sqrt(3) sqrt(2))), in 1 of 16 pixels
    ang = np.arccos(2 / np.sqrt(6))
    assert sam(x, ref) == pytest.approx(ang / 16, rel=1e-6)
    assert sam(x, ref, degrees=True) == pytest.approx(np.degrees(ang) / 16, rel=1e-6)
    # band 1 has one error of 1 in 16 pixels: MSE 1/16 -> 12.04 dB; the others are exact (inf)
    y = ref + 0.1
    assert mpsnr(y, ref) == pytest.approx(20.0)
    assert ergas(y, ref) == pytest.approx(100 * 0.1)  # RMSE 0.1 on mean 1 in every band
    big = np.random.default_rng(1).random((2, 16, 16))
    assert mssim(big, big) == pytest.approx(1.0) and mssim(big, 1 - big) < 0
