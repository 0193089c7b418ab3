import json
import os

import numpy as np
import pytest
import tifffile
import torch

from restore.cli.main import main
from restore.io import read_image, write_image


def _digest(folder):
    import hashlib

    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.iterdir())}


@pytest.fixture()
def mixed_inputs(tmp_path, camera):
    d = tmp_path / "in"
    d.mkdir()
    rng = np.random.default_rng(0)
    noisy = np.clip(camera[:96, :128] + 0.08 * rng.standard_normal((96, 128)), 0, 1)
    write_image(d / "good.png", noisy, dtype=np.uint8)
    tifffile.imwrite(d / "deep.tif", (noisy * 65535).astype(np.uint16))
    rgba = np.dstack([np.repeat(noisy[..., None], 3, axis=2) * 255,
                      np.linspace(0, 255, 128)[None].repeat(96, 0)]).astype(np.uint8)
    write_image(d / "rgba.png", rgba[..., :3] / 255.0, dtype=np.uint8, alpha=rgba[..., 3])
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    (d / "empty.png").write_bytes(b"")
    (d / "notes.txt").write_text("not an image")
    write_image(d / "tiny.png", np.zeros((1, 1)), dtype=np.uint8)
    return d


def test_bad_inputs_are_reported_and_the_batch_goes_on(mixed_inputs, tmp_path, capsys):
    before = _digest(mixed_inputs)
    out = tmp_path / "out"
    code = main(["denoise", str(mixed_inputs), str(mixed_inputs / "notes.txt"), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    for bad in ("corrupt.png", "empty.png", "notes.txt", "tiny.png"):
        lines = [ln for ln in err.splitlines() if bad in ln and ln.startswith("error")]
        assert len(lines) == 1, (bad, err)
    assert _digest(mixed_inputs) == before  # inputs untouched
    assert sorted(p.name for p in out.iterdir()) == ["deep.tif", "good.png", "rgba.png", "summary.json"]
    deep = read_image(out / "deep.tif")
    assert deep.dtype == np.uint16
    src = read_image(mixed_inputs / "rgba.png")
    res = read_image(out / "rgba.png")
    assert res.alpha is not None and np.array_equal(res.alpha, src.alpha)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] == 3 and summary["failed"] == 4
    # outputs are denoised, not copies
    assert not np.array_equal(read_image(out / "good.png").data, read_image(mixed_inputs / "good.png").data)
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_output_onto_input_is_refused(mixed_inputs, capsys):
    before = _digest(mixed_inputs)
    code = main(["denoise", str(mixed_inputs / "good.png"), "-o", str(mixed_inputs)])
    assert code == 1
    assert "is the input file itself" in capsys.readouterr().err
    after = _digest(mixed_inputs)
    assert {k: after[k] for k in before} == before


def test_same_names_from_two_folders_never_clobber(tmp_path, camera, capsys):
    for sub in ("a", "b"):
        write_image(tmp_path / sub / "x.png", camera[:64, :64], dtype=np.uint8)
    before = _digest(tmp_path / "b")
    code = main(["denoise", str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"), "-o", str(tmp_path / "b")])
    after = _digest(tmp_path / "b")
    assert code == 1 and after["x.png"] == before["x.png"]
    code = main(["denoise", str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"), "-o", str(tmp_path / "o")])
    assert code == 1 and "already written" in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["denoise", str(tmp_path / "nothing-here"), "-o", out]) == 1  # named file missing: a bad input
    assert "no such file" in capsys.readouterr().err
    assert main(["denoise", str(tmp_path), "-o", out]) == 2  # a folder without images
    img = tmp_path / "i.png"
    write_image(img, np.zeros((16, 16)), dtype=np.uint8)
    assert main(["denoise", str(img), "-o", out, "--noise", "gaussian:abc"]) == 2
    assert main(["denoise", str(img), "-o", out, "--model", str(tmp_path / "missing.safetensors")]) == 2
    assert main(["denoise", str(img), "-o", out, "--tile", "64", "--overlap", "40"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["denoise"])
    assert e.value.code == 2
    assert main([]) == 2


def test_info_lists_shipped_models(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "default-gray.safetensors: method n2s" in out
    assert "default-gray-gamma.safetensors: method gr2r" in out and "noise gamma" in out


def test_train_cli_writes_a_model_and_resumes(tmp_path, camera, capsys):
    data = tmp_path / "noisy"
    rng = np.random.default_rng(0)
    write_image(data / "a.png", np.clip(camera + 0.1 * rng.standard_normal(camera.shape), 0, 1), dtype=np.uint8)
    model = tmp_path / "m.safetensors"
    args = ["train", "r2r", "--data", str(data), "-o", str(model), "--steps", "4", "--noise", "gaussian:25"]
    assert main(args) == 0
    assert model.exists() and (tmp_path / "m.safetensors.ckpt").exists()
    from restore.train import read_model

    first, meta = read_model(model)
    assert meta["recipe"]["data"]["kind"] == "noisy" and meta["recipe"]["data"]["channels"] == 1
    capsys.readouterr()
    assert main(args + ["--steps", "6"]) == 2  # a different run: refuses the stale checkpoint
    assert "checkpoint of a different run" in capsys.readouterr().err
    assert main(args) == 0  # same run: resumes at step 4, nothing left to do
    assert "resumed from" in capsys.readouterr().out
    again, _ = read_model(model)
    assert all(torch.equal(first[k], again[k]) for k in first)
