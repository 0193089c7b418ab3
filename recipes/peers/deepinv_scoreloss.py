#!/usr/bin/env python
"""Equal-budget peer run: deepinv 0.5.0's Noise2Score loss (``deepinv.loss.ScoreLoss``) on our network and data.

Run with the anchors venv (deepinv lives there, not in the system python), from /work/main::

    OMP_NUM_THREADS=1 /work/anchors-venv/bin/python recipes/peers/deepinv_scoreloss.py \\
        --config recipes/peers/deepinv-scoreloss.yaml --json runs/peers/deepinv-scoreloss.json

Smoke test: ``--steps 20 --limit 3``.

What it does, following deepinv's own training flow (``deepinv.Trainer``: ``model = loss.adapt_model(model)``,
``x_net = model(y, physics, update_parameters=True)``, ``loss(x=, x_net=, y=, physics=, model=)``):

* backbone ``S`` = ``restore.nets.CompactUNet(channels=1, widths=(32,64,128,256), depth=2, cond=False)``,
  used as is (a residual net, like deepinv's DnCNN in ScoreLoss's docstring example);
* ``ScoreLoss(noise_model=None, total_batches=steps, delta=(0.001, 0.1))`` -> ``ScoreModel`` wrapper;
* each step, our ``SyntheticNoisy`` batch gives ``noisy`` (B,1,96,96) and a per-patch ``sigma`` (B,); the
  physics is ``Denoising(GaussianNoise(sigma=sigma.view(B,1,1,1)))`` -- deepinv's documented batched-sigma
  form (``t * GaussianNoise()`` yields a (B,1,1,1) sigma). The score loss itself does not depend on sigma;
  only ScoreModel's Tweedie output does, and with this shape it is per-sample correct;
* Adam, linear warm-up + cosine LR, grad clip and EMA as in ``restore/train/loop.py``;
* evaluation on BSD68 at sigma 25 with deepinv's inference (eval mode: ``y + sigma^2 S(y + delta_min eps)``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

import deepinv as dinv

from restore.bench import load_clean, noisy_copy
from restore.datasets.patches import SyntheticNoisy
from restore.metrics import psnr, ssim
from restore.nets import CompactUNet
from restore.train.ema import EMA

HERE = Path(__file__).resolve().parent


class Backbone(nn.Module):
    """Adapter giving our net the call ``backbone(y, physics)`` that ScoreModel makes.

    With ``cond=False`` the physics is ignored (exactly what CompactUNet / deepinv's DnCNN do with their
    unused second argument). With ``cond=True`` the net is fed ``physics.noise_model.sigma`` (the data
    noise level; deepinv passes no perturbation level).
    """

    def __init__(self, net: CompactUNet):
        super().__init__()
        self.net = net

    def forward(self, y, physics=None):
        if not self.net.cond:
            return self.net(y)
        s = physics.noise_model.sigma.to(y).reshape(-1)
        return self.net(y, s.expand(y.shape[0]) if s.numel() == 1 else s)


def lr_at(step: int, t: dict) -> float:
    """Same schedule as restore.train.loop.TrainConfig.lr_at."""
    lr, lr_min, warmup, steps = float(t["lr"]), float(t["lr_min"]), int(t["warmup"]), int(t["steps"])
    if step < warmup:
        return lr * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, steps - warmup))
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * p))


def pad_to(x: torch.Tensor, m: int) -> torch.Tensor:
    """Pad (N,C,H,W) on the far side to multiples of m (reflect; replicate if the pad is too large)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(HERE / "deepinv-scoreloss.yaml"))
    ap.add_argument("--json", required=True, help="where to write the results JSON")
    ap.add_argument("--steps", type=int, default=None, help="override train.steps (smoke tests)")
    ap.add_argument("--limit", type=int, default=None, help="evaluate on the first N images only")
    ap.add_argument("--save", default=None, help="optional path for the trained (EMA) backbone state_dict (.pt)")
    args = ap.parse_args(argv)

    cfg = yaml.safe_load(Path(args.config).read_text())
    t, d, n, lc, ev = cfg["train"], cfg["data"], cfg["net"], cfg["loss"], cfg["eval"]
    if args.steps is not None:
        t["steps"] = int(args.steps)
    steps = int(t["steps"])
    total_batches = int(lc.get("total_batches") or steps)
    delta = tuple(float(v) for v in lc.get("delta", (0.001, 0.1)))
    if lc.get("noise_model") is not None:
        raise ValueError("loss.noise_model: only null (noise model taken from the physics) is supported here")
    if cfg.get("noise", "gaussian") != "gaussian" or d.get("kind", "synthetic") != "synthetic":
        raise ValueError("this peer script handles synthetic Gaussian noise only")

    torch.set_num_threads(int(t.get("threads", 1)))
    seed = int(t["seed"])
    torch.manual_seed(seed)  # ScoreModel draws its perturbation (sigma ~ N(0, delta^2), eps) from the global RNG
    rng = np.random.default_rng(seed)

    lo, hi = d["sigma_range"]
    data = SyntheticNoisy(d["path"], channels=int(d["channels"]), patch=int(d["patch"]),
                          batch_size=int(d["batch_size"]), sigma_range=(lo / 255.0, hi / 255.0))
    net = CompactUNet(channels=int(d["channels"]), widths=tuple(n["widths"]), depth=int(n["depth"]),
                      cond=bool(n["cond"]))
    channels_last = bool(t.get("channels_last", True))
    if channels_last:
        net.to(memory_format=torch.channels_last)
    backbone = Backbone(net)

    loss_fn = dinv.loss.ScoreLoss(noise_model=None, total_batches=total_batches, delta=delta)
    model = loss_fn.adapt_model(backbone)  # ScoreLoss.ScoreModel wrapping S
    opt = torch.optim.Adam(model.parameters(), lr=float(t["lr"]))
    ema_decay = t.get("ema_decay")
    ema = EMA(backbone, float(ema_decay)) if ema_decay else None
    grad_clip = t.get("grad_clip")
    log_every = int(t.get("log_every", 100))
    n_params = sum(p.numel() for p in net.parameters())
    print(f"deepinv {dinv.__version__}, torch {torch.__version__}; CompactUNet params {n_params}; "
          f"ScoreLoss(delta={delta}, total_batches={total_batches}); steps {steps}", flush=True)

    loss_avg, t0 = None, time.perf_counter()
    model.train()
    for step in range(steps):
        batch = data.batch(rng)
        y, sig = batch["noisy"], batch["sigma"]
        if channels_last:
            y = y.contiguous(memory_format=torch.channels_last)
        physics = dinv.physics.Denoising(noise_model=dinv.physics.GaussianNoise(sigma=sig.view(-1, 1, 1, 1)))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, t)
        opt.zero_grad(set_to_none=True)
        x_net = model(y, physics, update_parameters=True)  # as deepinv.Trainer.model_inference(train=True)
        assert x_net.shape == y.shape, (x_net.shape, y.shape)
        loss = loss_fn(x=None, x_net=x_net, y=y, physics=physics, model=model).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step}")
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), float(grad_clip))
        opt.step()
        if ema is not None:
            ema.update(backbone)
        lv = loss.item()
        loss_avg = lv if loss_avg is None else 0.98 * loss_avg + 0.02 * lv
        if (step + 1) % log_every == 0 or step + 1 == steps:
            print(f"step {step + 1} loss {loss_avg:.5f} lr {lr_at(step, t):.2e} "
                  f"{time.perf_counter() - t0:.0f}s", flush=True)
    train_s = time.perf_counter() - t0

    # ---- evaluation: deepinv inference with the (EMA) backbone -----------------------------------------
    eval_backbone = ema.shadow if ema is not None else backbone
    eval_model = loss_fn.adapt_model(eval_backbone).eval()  # fresh ScoreModel; eval mode -> sigma = delta_min
    eval_model.base_model.net.to(memory_format=torch.contiguous_format)
    s_eval = float(ev["sigma"]) / 255.0
    e_seed = int(ev.get("seed", 0))
    physics = dinv.physics.Denoising(noise_model=dinv.physics.GaussianNoise(sigma=s_eval))
    images = load_clean(ev["folder"], args.limit)
    mult = net.multiple
    rows, te = [], time.perf_counter()
    for i, (name, clean) in enumerate(images):
        noisy = noisy_copy(clean, s_eval, e_seed, ev["folder"], i)
        y = torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1)))[None]
        h, w = y.shape[-2:]
        torch.manual_seed(e_seed * 100003 + i)  # ScoreModel adds delta_min * eps at inference too
        with torch.no_grad():
            x = eval_model(pad_to(y, mult), physics)[..., :h, :w]
        x = x[0].numpy().transpose(1, 2, 0).clip(0.0, 1.0)
        rows.append({"image": name, "psnr": psnr(x, clean), "ssim": ssim(x, clean),
                     "psnr_noisy": psnr(noisy, clean)})
        print(f"{name}: PSNR {rows[-1]['psnr']:.2f} SSIM {rows[-1]['ssim']:.4f}", flush=True)
    eval_s = time.perf_counter() - te

    if args.save:
        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        torch.save(eval_backbone.net.state_dict(), args.save)

    out = {
        "method": "deepinv.loss.ScoreLoss (Noise2Score)",
        "dataset": ev["folder"], "sigma255": float(ev["sigma"]), "images": len(rows),
        "psnr": float(np.mean([r["psnr"] for r in rows])), "ssim": float(np.mean([r["ssim"] for r in rows])),
        "psnr_noisy": float(np.mean([r["psnr_noisy"] for r in rows])),
        "train_seconds": train_s, "seconds_per_step": train_s / max(1, steps), "steps": steps,
        "final_loss_avg": loss_avg, "eval_seconds": eval_s,
        "settings": {
            "config": str(args.config), "recipe": cfg,
            "scoreloss": {"delta": list(delta), "total_batches": total_batches, "noise_model": "from physics",
                          "train_physics": "Denoising(GaussianNoise(sigma=per-patch sigma, shape (B,1,1,1)))",
                          "eval_physics": f"Denoising(GaussianNoise(sigma={s_eval}))",
                          "backbone_call": "S(y + s*eps, physics) -> CompactUNet(y)" + (
                              " with sigma=physics.noise_model.sigma" if net.cond else "")},
            "net": net.config(), "params": n_params, "limit": args.limit,
        },
        "per_image": rows,
        "env": {"deepinv": dinv.__version__, "torch": torch.__version__, "python": platform.python_version(),
                "threads": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2))
    print(f"mean PSNR {out['psnr']:.3f} SSIM {out['ssim']:.4f} over {len(rows)} images; "
          f"train {train_s:.1f}s ({out['seconds_per_step']:.3f}s/step); wrote {args.json}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
