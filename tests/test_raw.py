"""Camera RAW: packing, DNG round trip through rawpy, rendering, bad files, the RAW denoise route."""
import json

import numpy as np
import pytest
import torch

from restore.io import ImageReadError
from restore.io.raw import RawFrame, pack, read_raw, render_rgb, unpack, write_dng
from restore.noise.sensor import SensorNoise


def _scene(h=128, w=192):
    """A smooth linear-light scene, float64 (4, h/2, w/2) planes in [0.02, 0.6]."""
    import skimage.data
    from skimage.transform import resize

    rgb = resize(skimage.data.astronaut() / 255.0, (h // 2, w // 2), anti_aliasing=True) ** 2.2
    return np.stack([rgb[..., 0], rgb[..., 1], rgb[..., 1], rgb[..., 2]]) * 0.58 + 0.02


def _frame(cfa="GRBG", h=128, w=192, black=512.0, white=16383.0, noise=None):
    planes = _scene(h, w)
    frame = RawFrame(mosaic=np.zeros((h + 1, w + 1), np.uint16), cfa=cfa, black=np.full(4, black),
                     white=np.full(4, white), meta={"make": "Test", "model": "Cam 1", "iso": 800.0,
                                                    "exposure_s": 0.01, "camera_wb": [2.0, 1.0, 1.5, 0.0]})
    frame.mosaic[-1] = 700  # odd last row / column: kept as read
    frame.mosaic[:, -1] = 700
    if noise is not None:
        planes = noise.sample(torch.from_numpy(planes)[None].float(), generator=torch.Generator().manual_seed(0))[0]
        planes = planes.double().numpy()
    frame.mosaic = unpack(planes, frame)
    return frame


@pytest.mark.parametrize("cfa", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_pack_unpack_is_exact_for_every_cfa_phase(cfa):
    frame = _frame(cfa)
    planes = pack(frame)
    assert planes.shape == (4, 64, 96)
    assert np.array_equal(unpack(planes, frame), frame.mosaic)
    # plane 0 is red whatever the phase: the scene's red plane, sampled where the CFA has R
    i, j = frame.offsets[0]
    assert frame.cfa[2 * i + j] == "R"
    assert frame.offsets[1][0] == i and frame.offsets[2][0] != i  # G1 on the red row, G2 on the blue row


@pytest.mark.parametrize("cfa", ["RGGB", "GBRG"])
def test_dng_round_trips_through_rawpy(tmp_path, cfa):
    frame = _frame(cfa)
    path = write_dng(tmp_path / "x.dng", frame.mosaic, frame)
    back = read_raw(path)
    assert np.array_equal(back.mosaic, frame.mosaic)  # read, write, read: identical mosaic values
    assert back.cfa == cfa
    assert np.allclose(back.black, frame.black) and np.allclose(back.white, frame.white)
    assert back.meta["make"] == "Test" and back.meta["model"] == "Cam 1"
    assert back.meta["exposure_s"] == pytest.approx(0.01)
    assert back.meta["iso"] == 800.0  # kept (TIFF/EP ISOSpeedRatings), so --camera works on our DNGs
    turned = RawFrame(mosaic=frame.mosaic, cfa=cfa, black=frame.black, white=frame.white,
                      meta={**frame.meta, "orientation": 6})
    assert read_raw(write_dng(tmp_path / "t.dng", frame.mosaic, turned)).meta["orientation"] == 6  # kept
    again = write_dng(tmp_path / "y.dng", back.mosaic, back)
    assert np.array_equal(read_raw(again).mosaic, frame.mosaic)
    rgb = render_rgb(path, back.mosaic)
    assert rgb.dtype == np.uint16 and rgb.shape[2] == 3 and rgb.mean() > 1000


def test_corrupt_and_truncated_raw_give_one_line_errors(tmp_path):
    frame = _frame()
    good = write_dng(tmp_path / "good.dng", frame.mosaic, frame)
    (tmp_path / "trunc.dng").write_bytes(good.read_bytes()[:3000])
    (tmp_path / "junk.nef").write_bytes(b"not a raw file at all" * 50)
    for name in ("trunc.dng", "junk.nef", "missing.cr2"):
        with pytest.raises(ImageReadError) as e:
            read_raw(tmp_path / name)
        msg = str(e.value)
        assert name in msg and "\n" not in msg


def test_cli_denoises_raw_folder_and_goes_on_after_a_bad_file(tmp_path):
    from restore.cli.main import main

    K, S = 3.0, 16383 - 512.0
    noise = SensorNoise(K, 6.0, 0.0, 1.0, scale=S, ratio=20.0, components="ptrq")
    frame = _frame("RGGB", 192, 256, noise=noise)
    src = tmp_path / "in"
    write_dng(src / "shot.dng", frame.mosaic, frame)
    (src / "broken.arw").write_bytes(b"\x00" * 4096)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    out = tmp_path / "out"
    code = main(["denoise", str(src), "-o", str(out), "--output", "both"])  # shipped grey default
    assert code == 1  # one bad file: exit non-zero, the other file still done
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # inputs untouched
    assert (out / "shot.dng").is_file() and (out / "shot.tiff").is_file()
    side = json.loads((out / "shot.json").read_text())
    assert side["cfa"] == "RGGB" and side["make"] == "Test" and side["noise"]["source"] == "estimated"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] == 1 and summary["failed"] == 1
    assert "broken.arw" in [f for f in summary["files"] if f["status"] == "error"][0]["error"]
    # the denoised mosaic is closer to the clean scene than the noisy one (RAW domain PSNR)
    clean = pack(_frame("RGGB", 192, 256))
    den = pack(read_raw(out / "shot.dng"))
    noisy = pack(frame)

    def psnr(a):
        return 10 * np.log10(1.0 / np.mean((a - clean) ** 2))

    assert psnr(den) > psnr(noisy) + 5.0  # measured: 30.8 -> 38.4 dB


def test_raw_bench_ours_beats_noisy_and_is_seeded(tmp_path):
    """restore.bench_raw on one un-processed image at one ISO: deterministic noise, ours > noisy."""
    import skimage.data

    from restore.bench_raw import bench_raw
    from restore.io import write_image

    write_image(tmp_path / "a.png", skimage.data.astronaut()[100:228, 100:228] / 255.0, dtype=np.uint8)
    runs = [bench_raw([str(tmp_path)], [6400], ["noisy", "ours"], log=lambda *a: None) for _ in range(2)]
    rows = {r["method"]: r for r in runs[0]["rows"]}
    assert runs[0]["rows"][0]["psnr"] == runs[1]["rows"][0]["psnr"]  # same seed, same noise
    assert rows["ours"]["psnr"] > rows["noisy"]["psnr"] + 3.0


def test_camera_profile_sets_the_raw_noise():
    """--camera: the profile's log-linear model at the frame's ISO gives the route's noise
    (gain K / (white - black)); the profile's median scales give the read part."""
    from restore.noise.sensor import load_profile, tukey_lambda_variance
    from restore.rawdenoise import denoise_raw, raw_noise

    p = load_profile("SonyA7S2")
    S = 16383 - 512.0
    n = raw_noise(np.zeros((4, 8, 8)), profile=p, iso=3200, scale=S)
    K = p.K_of_iso(3200)
    assert n.gain == pytest.approx(K / S) and n.source.startswith("profile SonyA7S2")
    s_tl = np.exp(p.tl_scale["slope"] * np.log(K) + p.tl_scale["bias"])
    assert n.sigma * S > s_tl * np.sqrt(tukey_lambda_variance(np.median(p.tl_shapes)))  # read + row + q
    with pytest.raises(ValueError, match="no ISO"):
        raw_noise(np.zeros((4, 8, 8)), profile=p, iso=None, scale=S)
    frame = _frame("RGGB", 64, 64, noise=SensorNoise(K, s_tl, 0.0, 1.0, scale=S, ratio=1.0, components="ptrq"))
    mosaic, used = denoise_raw(frame, profile="SonyA7S2")
    assert used.source.startswith("profile") and mosaic.shape == frame.mosaic.shape
