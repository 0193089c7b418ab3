"""Recipes: one YAML names everything a training run needs.

    name: default-gray
    method: r2r               # registry name
    method_params: {a: 1.0}
    net: {widths: [32, 64, 128, 256], depth: 2}
    data: {kind: synthetic, path: ../shared/data/train/gray400, channels: 1,
           patch: 96, batch_size: 8, sigma_range: [5, 50]}
    train: {steps: 30000, lr: 1.0e-3, seed: 0, ...}   # TrainConfig fields

Relative data paths are resolved against the current directory.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import torch
import yaml

from restore.train import TrainConfig, train


def load_recipe(path: str | Path) -> dict:
    path = Path(path)
    try:
        recipe = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such recipe file") from None
    if not isinstance(recipe, dict) or "method" not in recipe:
        raise ValueError(f"{path}: not a training recipe (needs at least 'method', 'data', 'train')")
    recipe.setdefault("name", path.stem)
    return recipe


def run_recipe(recipe: dict, out: str | Path, *, overrides: dict | None = None, log=None) -> dict:
    """Train the model a recipe describes and write it to ``out`` (safetensors).

    ``overrides`` is a nested dict merged over the recipe (e.g. from CLI flags
    such as ``--minutes`` or ``--data``).
    """
    from restore.datasets.patches import make_dataset
    from restore.methods import get_method

    r = copy.deepcopy(recipe)
    for section, values in (overrides or {}).items():
        if isinstance(values, dict):
            r.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
        elif values is not None:
            r[section] = values
    method = get_method(r["method"], **r.get("method_params", {}))
    if "net" in r:
        method.net_config = dict(r["net"])
    data_cfg = r["data"]
    dataset = make_dataset(data_cfg)
    method.prepare(dataset)
    cfg = TrainConfig(**r.get("train", {}))
    torch.manual_seed(cfg.seed)  # the initial weights are part of the run's identity
    net = method.build_net(int(data_cfg.get("channels", 1)))
    if r.get("init"):  # warm start from a model file (e.g. a shipped default); its hash joins the run id
        from restore.train.checkpoint import read_model

        state, _ = read_model(r["init"])
        net.load_state_dict({k: v.float() for k, v in state.items()})
        r["init_sha256"] = hashlib.sha256(Path(r["init"]).read_bytes()).hexdigest()[:16]
    identity = {k: v for k, v in r.items() if k != "train"}
    identity["train"] = {k: v for k, v in r.get("train", {}).items() if k not in ("minutes", "stop_at", "threads")}
    meta = {
        "run_id": hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16],
        "method": method.name,
        "method_params": method.params(),
        "net": net.config(),
        "recipe": r,
        "noise": r.get("noise", "gaussian"),
    }
    return train(method, net, dataset, cfg, out=out, meta=meta, log=log)
