"""The one training loop: Adam + cosine schedule, EMA, seed, checkpoints with
exact resume, a progress bar and a wall-clock budget.

A method plugs in through ``method.loss(net, batch, progress=, generator=)``;
a dataset through ``dataset.batch(rng) -> dict`` of tensors.
"""
from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint, save_checkpoint, save_model
from .ema import EMA


@dataclass
class TrainConfig:
    """Hyper-parameters of one run (all from a recipe's ``train`` section)."""

    steps: int = 10000
    lr: float = 1e-3
    lr_min: float = 1e-5
    warmup: int = 200
    ema_decay: float = 0.999
    seed: int = 0
    minutes: float | None = None  # wall-clock budget; stops early, checkpointed
    stop_at: int | None = None  # stop (checkpointed) at this step; the schedule still spans ``steps``
    checkpoint_every: int = 500
    log_every: int = 100
    grad_clip: float = 1.0
    device: str = "cpu"
    channels_last: bool = True
    threads: int | None = None
    extra: dict = field(default_factory=dict)

    def lr_at(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        p = min(1.0, (step - self.warmup) / max(1, self.steps - self.warmup))
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * p))


def train(method, net, dataset, cfg: TrainConfig, *, out: str | Path, meta: dict,
          checkpoint: str | Path | None = None, log=None) -> dict:
    """Train ``net`` with ``method.loss`` on ``dataset``; write the EMA weights to ``out``.

    Resumes from ``checkpoint`` when it exists (same recipe, exact: model,
    optimiser, EMA, data RNG and noise RNG are restored).  Returns a summary
    dict (steps done, final loss, seconds).
    """
    if log is None:
        log = functools.partial(print, flush=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    net.to(device)
    if cfg.channels_last:
        net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    ema = EMA(net, cfg.ema_decay)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    step, loss_avg = 0, None
    checkpoint = Path(checkpoint) if checkpoint else Path(str(out) + ".ckpt")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if checkpoint.exists():
        state = load_checkpoint(checkpoint)
        if state.get("run_id") != meta.get("run_id"):
            raise ValueError(f"{checkpoint}: checkpoint of a different run (other data, network or settings); "
                             "delete it or choose another output name to start afresh")
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        ema.load_state_dict(state["ema"])
        rng.bit_generator.state = state["rng"]
        gen.set_state(state["gen"])
        step, loss_avg = int(state["step"]), state["loss_avg"]
        log(f"resumed from {checkpoint} at step {step}")

    def save_ckpt():
        save_checkpoint(checkpoint, {
            "net": net.state_dict(), "opt": opt.state_dict(), "ema": ema.state_dict(),
            "rng": rng.bit_generator.state, "gen": gen.get_state(), "step": step, "loss_avg": loss_avg,
            "run_id": meta.get("run_id"),
        })

    from tqdm import tqdm

    t0 = time.time()
    bar = tqdm(total=cfg.steps, initial=step, disable=None, desc=f"train {method.name}", unit="step")
    net.train()
    stopped_by_time = False
    last = min(cfg.steps, cfg.stop_at or cfg.steps)
    while step < last:
        if cfg.minutes is not None and time.time() - t0 > cfg.minutes * 60:
            stopped_by_time = True
            break
        batch = {k: v.to(device) for k, v in dataset.batch(rng).items()}
        if cfg.channels_last:
            batch = {k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v for k, v in batch.items()}
        for g in opt.param_groups:
            g["lr"] = cfg.lr_at(step)
        loss = method.loss(net, batch, progress=step / cfg.steps, generator=gen)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step}; lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        ema.update(net)
        step += 1
        lv = loss.item()
        loss_avg = lv if loss_avg is None else 0.98 * loss_avg + 0.02 * lv
        bar.update(1)
        if step % cfg.log_every == 0:
            bar.set_postfix(loss=f"{loss_avg:.5f}", lr=f"{cfg.lr_at(step):.1e}")
            if bar.disable:  # no terminal: log lines instead of a bar
                log(f"step {step} loss {loss_avg:.6f} lr {cfg.lr_at(step):.2e} {time.time() - t0:.0f}s")
        if step % cfg.checkpoint_every == 0:
            save_ckpt()
            save_model(out, ema.shadow, {**meta, "steps": step})
    bar.close()
    save_ckpt()
    save_model(out, ema.shadow, {**meta, "steps": step})
    return {"steps": step, "loss": loss_avg, "seconds": time.time() - t0, "finished": step >= cfg.steps,
            "stopped_by_time": stopped_by_time}
