"""Training the band-window model (:mod:`restore.hsi.bandwindow`) on noisy cubes only.

:func:`fit_bandwindow` samples (cube, band, 64x64 crop) triples from one or
more noisy (B, H, W) cubes (arrays, memmaps or zarr: only the crops are read),
applies a random flip/rotation, and minimises ``|net(neighbours) - y_b|^2``
against the *noisy* band.  It stops at ``steps`` or after ``minutes`` of wall
clock, writes a resume checkpoint (``OUT.ckpt``) every ``checkpoint_every``
steps and the model (``OUT``, safetensors with the settings) at the end; a run
given the same output resumes from its checkpoint.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .bandwindow import BandWindowNet, band_window_inputs, neighbour_index, regression_weights

__all__ = ["fit_bandwindow", "load_bandwindow", "cube_sigmas"]

METHOD = "bandwindow"


def cube_sigmas(cube, *, crop: int = 1024) -> np.ndarray:
    """Per-band noise std (B,) by wavelet MAD on a central ``crop`` x ``crop`` window of each band
    (bounded memory for any cube size)."""
    from .subspace import band_sigmas

    B, H, W = (int(s) for s in cube.shape)
    i, j = max(0, (H - crop) // 2), max(0, (W - crop) // 2)
    out = np.empty(B)
    for b0 in range(0, B, 32):
        out[b0:b0 + 32] = band_sigmas(np.asarray(cube[b0:b0 + 32, i:i + crop, j:j + crop], np.float32))
    return out


def _sample(cubes, sigmas, k, patch, batch, rng: np.random.Generator, betas=None):
    sizes = np.array([c.shape[0] * c.shape[1] * c.shape[2] for c in cubes], np.float64)
    which = rng.choice(len(cubes), size=batch, p=sizes / sizes.sum())
    neigh, s, target = [], [], []
    for ci in which:
        c = cubes[ci]
        B, H, W = c.shape
        b = int(rng.integers(B))
        ph, pw = min(patch, H), min(patch, W)
        i, j = int(rng.integers(H - ph + 1)), int(rng.integers(W - pw + 1))
        idx = neighbour_index(B, k)[b].numpy()
        lo, hi = (0, B) if betas is not None else (int(min(idx.min(), b)), int(max(idx.max(), b)) + 1)
        block = torch.from_numpy(np.array(c[lo:hi, i:i + ph, j:j + pw], np.float32))
        sb = torch.from_numpy(sigmas[ci][idx].astype(np.float32))
        stack = [block[torch.from_numpy(idx - lo)]]
        if betas is not None:  # band b from all the others, cross-fitted weights by absolute row parity
            bt = torch.from_numpy(betas[ci].astype(np.float32))  # (2, B, B)
            reg, s_reg = band_window_inputs(block[None], torch.from_numpy(sigmas[ci].astype(np.float32))[None], k,
                                            torch.tensor([b]), bt, row0=i)
            stack.append(reg[0, -1:])
            sb = torch.cat([sb, s_reg[0, -1:]])
        stack.append(block[b - lo:b - lo + 1])  # the noisy target, last
        t = torch.cat(stack)
        if (ph, pw) != (patch, patch):  # small cubes: pad the crop up to the patch
            t = torch.nn.functional.pad(t[None], (0, patch - pw, 0, patch - ph), mode="replicate")[0]
        t = torch.rot90(t, int(rng.integers(4)), dims=(-2, -1))
        if rng.random() < 0.5:
            t = t.flip(-1)
        neigh.append(t[:-1])
        target.append(t[-1:])
        s.append(sb)
    return torch.stack(neigh), torch.stack(s), torch.stack(target)


def fit_bandwindow(cubes: Sequence, out: str | Path, *, sigmas: Sequence | None = None, k: int = 3,
                   widths: Sequence[int] = (32, 64), depth: int = 2, patch: int = 64, batch: int = 16,
                   steps: int = 3000, minutes: float | None = None, lr: float = 1e-3, seed: int = 0,
                   checkpoint_every: int = 200, regression: bool = True, log=print) -> BandWindowNet:
    """Train a :class:`BandWindowNet` on noisy cubes (each (B, H, W), [0, 1]-like units).

    Args:
        cubes: noisy cubes (may differ in size and band count; each needs >= 2k+1 bands).
        out: model path (.safetensors); ``out + ".ckpt"`` holds the resume checkpoint.
        sigmas: per-cube noise std per band ((B,) arrays or numbers); None = estimated per band.
        steps, minutes: stop at whichever comes first (minutes=None: steps only).
        regression: add the band predicted from all the other bands as an input
            (:func:`restore.hsi.bandwindow.regression_weights`, per cube; whole spectra are read).
    Returns the trained network (eval mode).
    """
    from restore.train.checkpoint import load_checkpoint, save_checkpoint, save_model

    out = Path(out)
    os.makedirs(out.parent, exist_ok=True)
    cubes = list(cubes)
    for c in cubes:
        if len(c.shape) != 3:
            raise ValueError(f"cubes must be (bands, rows, columns), got shape {tuple(c.shape)}")
        neighbour_index(int(c.shape[0]), k)  # clear error for too few bands
    if sigmas is None:
        sig = [cube_sigmas(c) for c in cubes]
    else:
        sig = [np.broadcast_to(np.asarray(s, np.float64), (int(c.shape[0]),)).copy() for s, c in zip(sigmas, cubes)]
    torch.manual_seed(seed)
    net = BandWindowNet(k, widths, depth, regression=regression)
    betas = [regression_weights(c) for c in cubes] if regression else None
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.05)
    rng = np.random.default_rng(seed)
    step, ckpt = 0, Path(str(out) + ".ckpt")
    settings = {"net": net.config(), "patch": patch, "batch": batch, "lr": lr, "seed": seed,
                "cubes": [list(map(int, c.shape)) for c in cubes]}
    if ckpt.exists():
        st = load_checkpoint(ckpt)
        if st.get("settings") != settings:
            raise ValueError(f"{ckpt}: a checkpoint of another run (different network, data or settings); "
                             f"delete it to start afresh or pick another output name")
        net.load_state_dict(st["net"]), opt.load_state_dict(st["opt"]), sched.load_state_dict(st["sched"])
        sched.T_max = steps  # the schedule follows this run's step count
        step = st["step"]
        rng.bit_generator.state = st["rng"]
        log(f"resumed {ckpt} at step {step}")
    def save(at: int) -> None:
        save_checkpoint(ckpt, {"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                               "step": at, "rng": rng.bit_generator.state, "settings": settings})

    net.train()
    t0, loss_avg = time.time(), None
    while step < steps and (minutes is None or time.time() - t0 < 60 * minutes):
        neigh, s, target = _sample(cubes, sig, k, patch, batch, rng, betas)
        loss = torch.mean((net(neigh.contiguous(memory_format=torch.channels_last), s) - target) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step(), sched.step()
        step += 1
        lv = float(loss.detach())
        loss_avg = lv if loss_avg is None else 0.98 * loss_avg + 0.02 * lv
        if step % checkpoint_every == 0 or step == steps:
            save(step)
            log(f"step {step}/{steps}  loss {loss_avg:.3e}  {time.time() - t0:.0f} s")
    if step % checkpoint_every and step != steps:  # stopped on time: keep every step done
        save(step)
    net.eval()
    meta = {"method": METHOD, "method_params": {"k": k}, "net": net.config(), "steps": step,
            "settings": {"regression": regression, "patch": patch, "batch": batch, "lr": lr, "seed": seed, "widths": list(widths)}}
    save_model(out, net, meta)
    return net


def load_bandwindow(path: str | Path) -> BandWindowNet:
    """A band-window model written by :func:`fit_bandwindow`."""
    from restore.nets.registry import build_net
    from restore.train.checkpoint import read_model

    state, meta = read_model(path)
    if meta.get("method") != METHOD:
        raise ValueError(f"{path}: a {meta.get('method')!r} model, not a band-window HSI model; "
                         f"train one with 'restore cube train'")
    net = build_net(meta["net"])
    net.load_state_dict(state)
    return net.eval()
