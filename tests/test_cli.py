import json
import os

import numpy as np
import pytest
import tifffile

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
    code = main(["denoise", str(mixed_inputs / "good.png"), "-o", str(mixed_inputs)])
    assert code == 1
    assert "good.png" in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["denoise", str(tmp_path / "nothing-here")]) in (1, 2)
    with pytest.raises(SystemExit) as e:
        main(["denoise"])
    assert e.value.code == 2
    assert main([]) == 2


def test_info_lists_shipped_models(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "default-gray.safetensors" in out and "default-color.safetensors" in out


def test_train_cli_writes_a_model_and_resumes(tmp_path, camera, capsys):
    data = tmp_path / "noisy"
    rng = np.random.default_rng(0)
    write_image(data / "a.png", np.clip(camera + 0.1 * rng.standard_normal(camera.shape), 0, 1), dtype=np.uint8)
    model = tmp_path / "m.safetensors"
    args = ["train", "r2r", "--data", str(data), "-o", str(model), "--steps", "4", "--noise", "gaussian:25"]
    assert main(args) == 0
    assert model.exists() and (tmp_path / "m.safetensors.ckpt").exists()
    assert main(args) == 0
    assert "4 steps" in capsys.readouterr().out
