import numpy as np
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def camera():
    """scikit-image's camera, float32 [0, 1], 256x256 crop, (H, W)."""
    import skimage.data
    from skimage.util import img_as_float32

    return img_as_float32(skimage.data.camera())[100:356, 150:406]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny R2R-trained grey model file (a few hundred CPU steps), for api/cli tests."""
    from restore.recipe import run_recipe

    import skimage.data
    from skimage.util import img_as_float32
    from restore.io import write_image

    d = tmp_path_factory.mktemp("clean")
    for name in ("camera", "moon", "coins"):
        write_image(d / f"{name}.png", img_as_float32(getattr(skimage.data, name)())[:256, :256], dtype=np.uint8)
    out = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    recipe = {
        "name": "tiny", "method": "r2r", "method_params": {"a": 1.0},
        "net": {"widths": [16, 32], "depth": 1},
        "data": {"kind": "synthetic", "path": str(d), "channels": 1, "patch": 64, "batch_size": 8,
                 "sigma_range": [15, 35]},
        "train": {"steps": 300, "lr": 2e-3, "warmup": 20, "checkpoint_every": 1000, "log_every": 1000,
                  "seed": 0},
    }
    run_recipe(recipe, out, log=lambda *a: None)
    return out


@pytest.fixture
def one_thread():
    """One torch thread for the test (tiny tensors), the previous count restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
