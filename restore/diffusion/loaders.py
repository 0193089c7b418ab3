"""Load a diffusion prior by path: ours, a diffusers ``UNet2DModel`` folder, or a guided-diffusion ``.pt``.

* ``*.safetensors`` written by ``restore train prior`` (:class:`restore.nets.EpsUNet`).
* a diffusers folder: a ``UNet2DModel`` (``config.json`` + weights), or a pipeline
  folder holding ``unet/`` and optionally ``scheduler/scheduler_config.json``
  (its linear beta range and step count are used).  Needs the optional
  ``diffusers`` package.
* a guided-diffusion (ADM) checkpoint (``.pt`` / ``.pth``): the architecture is
  read from the state dict (:func:`restore.nets.adm_unet.adm_config_from_state_dict`);
  the linear schedule with T = 1000 is assumed, as for the released models.

Every loader returns a :class:`DiffusionPrior` whose ``eps`` keeps the first
C output channels (models that learned their variance output 2C).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .prior import DiffusionPrior
from .schedule import DDPMSchedule

__all__ = ["load_prior"]


def _first_channels(net, channels: int):
    def eps(x_t, t):
        return net(x_t, t)[:, :channels]

    return eps


def _load_ours(path: Path, **kw) -> DiffusionPrior:
    from restore.nets import build_net
    from restore.train.checkpoint import read_model

    state, meta = read_model(path)
    if meta.get("net", {}).get("arch") != "EpsUNet":
        raise ValueError(f"{path}: a {meta.get('method')} model, not a diffusion prior — "
                         "train one with 'restore train prior' or give a diffusers / guided-diffusion checkpoint")
    net = build_net(meta["net"])
    net.load_state_dict(state)
    net.eval()
    sched = DDPMSchedule(T=net.T, beta_start=net.beta_start, beta_end=net.beta_end)
    return DiffusionPrior(net, channels=net.channels, schedule=sched, image_size=net.image_size,
                          multiple=net.multiple, source=str(path), **kw)


def _load_diffusers(path: Path, **kw) -> DiffusionPrior:
    try:
        from diffusers import UNet2DModel
    except ImportError as e:
        raise ImportError(f"{path}: loading a diffusers model needs the optional 'diffusers' package "
                          f"(pip install diffusers): {e}") from None
    unet_dir = path / "unet" if (path / "unet" / "config.json").is_file() else path
    try:
        model = UNet2DModel.from_pretrained(str(unet_dir), local_files_only=True).eval()
    except Exception as e:  # noqa: BLE001 - missing weights, bad config: one line
        raise ValueError(f"{path}: not a loadable diffusers UNet2DModel ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None
    sched = DDPMSchedule()
    sc = path / "scheduler" / "scheduler_config.json"
    if sc.is_file():
        cfg = json.loads(sc.read_text())
        if cfg.get("prediction_type", "epsilon") != "epsilon":
            raise ValueError(f"{sc}: prediction_type {cfg['prediction_type']!r} is not supported (epsilon only)")
        if cfg.get("beta_schedule", "linear") != "linear":
            raise ValueError(f"{sc}: beta_schedule {cfg['beta_schedule']!r} is not supported (linear only)")
        sched = DDPMSchedule(T=int(cfg.get("num_train_timesteps", 1000)), beta_start=float(cfg.get("beta_start", 1e-4)),
                             beta_end=float(cfg.get("beta_end", 0.02)))
    channels = int(model.config.in_channels)

    def eps(x_t, t):
        return model(x_t, t).sample[:, :channels]

    size = model.config.sample_size
    size = size if isinstance(size, int) else (size[0] if size else None)
    n_down = len(model.config.down_block_types) - 1
    prior = DiffusionPrior(eps, channels=channels, schedule=sched, image_size=size, multiple=2**n_down,
                           source=str(path), **kw)
    prior.net = model.requires_grad_(False)
    return prior


def _load_adm(path: Path, *, num_head_channels: int = 64, **kw) -> DiffusionPrior:
    from restore.nets.adm_unet import ADMUNet, adm_config_from_state_dict

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is the same user error
        raise ValueError(f"{path}: not a readable PyTorch state dict ({e})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a state dict")
    if "label_emb.weight" in state:
        raise ValueError(f"{path}: a class-conditional guided-diffusion model; use an unconditional one "
                         "(e.g. 256x256_diffusion_uncond.pt)")
    try:
        cfg = adm_config_from_state_dict(state, num_head_channels=num_head_channels)
        net = ADMUNet(**cfg)
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, ValueError, KeyError) as e:
        raise ValueError(f"{path}: not a guided-diffusion UNet state dict this loader understands "
                         f"({str(e).splitlines()[0]})") from None
    net.eval()
    channels = cfg["in_channels"]
    prior = DiffusionPrior(_first_channels(net, channels), channels=channels, schedule=DDPMSchedule(),
                           image_size=None, multiple=net.multiple, source=str(path), **kw)
    prior.net = net.requires_grad_(False)
    return prior


def load_prior(path: str | Path = "color64", *, num_head_channels: int = 64, patch: int | None = None,
               stride: int | None = None, tile_batch: int = 16) -> DiffusionPrior:
    """A :class:`DiffusionPrior` from ``path`` (see the module docstring) or a shipped name
    (``gray64``, ``color64``: :data:`restore.weights.PRIORS`); ``patch``/``stride``
    set the patch method for images larger than the prior (default: its training size)."""
    from restore.weights import HERE, PRIORS

    p = Path(path)
    kw = dict(patch=patch, stride=stride, tile_batch=tile_batch)
    if not p.exists() and str(path) in PRIORS and (HERE / PRIORS[str(path)]).is_file():
        p = HERE / PRIORS[str(path)]
    if not p.exists():
        names = ", ".join(n for n, f in PRIORS.items() if (HERE / f).is_file()) or "none"
        raise FileNotFoundError(f"{p}: no such prior — give a shipped name ({names}), a model from "
                                "'restore train prior', a diffusers UNet2DModel folder or a guided-diffusion .pt file")
    if p.is_dir():
        if not ((p / "config.json").is_file() or (p / "unet" / "config.json").is_file()):
            raise ValueError(f"{p}: a folder without config.json or unet/config.json is not a diffusers model")
        return _load_diffusers(p, **kw)
    if p.suffix == ".safetensors":
        prior = _load_ours(p, **kw)
    elif p.suffix in (".pt", ".pth", ".ckpt", ".bin"):
        prior = _load_adm(p, num_head_channels=num_head_channels, **kw)
    else:
        raise ValueError(f"{p}: unknown prior format — use .safetensors (ours), .pt (guided-diffusion) "
                         "or a diffusers folder")
    return prior
