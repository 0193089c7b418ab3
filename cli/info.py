"""``restore info``: versions, devices, shipped models, optional dependencies."""
from __future__ import annotations

import importlib.util
import platform


def run_info() -> int:
    import torch

    import restore
    from restore.train import model_noise, read_model
    from restore.weights import shipped

    print(f"restore {restore.__version__}  python {platform.python_version()}  torch {torch.__version__}")
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"devices: cpu ({torch.get_num_threads()} threads), cuda: {cuda}")
    print("shipped models:")
    for path in shipped():
        _, meta = read_model(path)
        net = meta["net"]
        noise = model_noise(meta)
        shape = ", ".join(f"{k}={v}" for k, v in net.items() if k not in ("arch", "channels"))
        print(f"  {path.name}: method {meta['method']}, noise {noise}, {meta.get('method_params', {})}, "
              f"{net['arch']} channels={net['channels']} {shape}, "
              f"{meta.get('steps', '?')} steps, recipe {meta.get('recipe', {}).get('name', '?')} (recipes/)")
    print("optional dependencies:")
    for mod, why in [("bm3d", "BM3D anchor in 'restore bench'"), ("lpips", "LPIPS metric"),
                     ("rawpy", "camera RAW"), ("kornia", "operators/augmentation"),
                     ("diffusers", "diffusers UNet2DModel priors for restore solve"),
                     ("h5py", "MATLAB v7.3 cubes"), ("spectral", "ENVI cubes"), ("zarr", "zarr cubes"),
                    ("dask", "restore cube --engine dask"), ("distributed", "dask --workers / --scheduler")]:
        state = "installed" if importlib.util.find_spec(mod) else "not installed"
        print(f"  {mod:8s} {state:14s} ({why})")
    return 0
