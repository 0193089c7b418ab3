"""Model files (safetensors + JSON metadata) and exact-resume checkpoints."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from restore.io import atomic_write

FORMAT = "restore-model/1"


def save_model(path: str | Path, net: nn.Module, meta: dict, *, half: bool = False) -> None:
    """Write ``net``'s weights as safetensors with ``meta`` (JSON) in the header.

    ``meta`` must hold ``method``, ``method_params``, ``net`` (the network
    config) and may hold anything else JSON-serialisable (recipe, data, steps).
    ``half=True`` stores float16 (half the size; loaded back as float32).
    """
    from safetensors.torch import save_file

    tensors = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
               for k, v in net.state_dict().items()}
    header = {"format": FORMAT, "meta": json.dumps(meta)}
    atomic_write(str(path), lambda tmp: save_file(tensors, tmp, metadata=header))


def read_model(path: str | Path) -> tuple[dict, dict]:
    """Return ``(state_dict float32, meta)`` from a file written by :func:`save_model`."""
    from safetensors import safe_open

    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such model file — give a .safetensors written by 'restore train'")
    try:
        with safe_open(path, framework="pt") as f:
            header = f.metadata() or {}
            state = {k: f.get_tensor(k).float() for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - any parse failure is the same user error
        raise ValueError(f"{path}: not a readable safetensors model ({e})") from None
    if header.get("format") != FORMAT:
        raise ValueError(f"{path}: not a restore model (missing '{FORMAT}' header)")
    return state, json.loads(header["meta"])


def model_noise(meta: dict) -> str:
    """The noise family a model written by :func:`save_model` was trained for: the method's own
    ``noise`` parameter (Poisson/Gamma-aware methods record it), else the recipe's, else Gaussian."""
    return meta.get("method_params", {}).get("noise") or meta.get("noise") or "gaussian"


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Atomically write a resume checkpoint (tensors and plain Python values)."""
    atomic_write(str(path), lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict:
    return torch.load(str(path), map_location="cpu", weights_only=True)
