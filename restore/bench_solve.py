"""Benchmark of the diffusion-prior solvers: centre crops of clean images, seeded measurements.

For each task (an operator spec and a measurement noise std in [0, 1] units)
every method restores the same measurements of the same crops, batched;
PSNR/SSIM against the crop and seconds per image are reported.  ``pinv`` is
the clipped pseudo-inverse.  Settings per method come from the recipe
(``methods: {reddiff: {steps: 100, lam: 0.25}, ...}``; ``NAME@LABEL`` runs solver NAME
under another label, to compare settings), per-task overrides from ``tasks[i].params``.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from restore.bench import load_clean
from restore.metrics import lpips_available, lpips_distance, psnr, ssim

__all__ = ["bench_solve", "centre_crops"]


def centre_crops(folder: str, size: int, limit: int | None, channels: int) -> tuple[list[str], torch.Tensor]:
    """Names and an (N, C, size, size) tensor of centre crops."""
    names, crops = [], []
    for name, img in load_clean(folder, limit):
        h, w = img.shape[:2]
        if min(h, w) < size:
            continue
        i, j = (h - size) // 2, (w - size) // 2
        c = img[i:i + size, j:j + size]
        if channels == 1 and c.shape[2] == 3:
            c = (c @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        names.append(name)
        crops.append(c.transpose(2, 0, 1))
    if not crops:
        raise ValueError(f"{folder}: no image of at least {size}x{size}")
    return names, torch.from_numpy(np.stack(crops).astype(np.float32))


def bench_solve(data: str, tasks: list[dict], methods: dict, *, prior: str, crop: int = 64,
                limit: int | None = None, seed: int = 0, log=print) -> dict:
    """Run every method on every task; returns ``{"rows": [...], "lpips": why-unavailable or None}``."""
    from restore.diffusion import load_prior
    from restore.operators import make_operator
    from restore.solvers import get_solver
    from restore.solvers.base import initial_estimate

    P = load_prior(prior)
    names, x = centre_crops(data, crop, limit, P.channels)
    ok, why = lpips_available()
    rows = []
    log(f"{len(names)} crops {crop}x{crop} from {data}; prior {prior}")
    for ti, task in enumerate(tasks):
        A = make_operator(task["operator"])
        sigma = float(task.get("sigma", 0.0))
        g = torch.Generator().manual_seed(seed * 1000 + ti)
        with torch.no_grad():
            y0 = A(x)
        y = y0 + sigma * torch.randn(y0.shape, generator=g)
        for mname, base in methods.items():
            params = {**(base or {}), **task.get("params", {}).get(mname, {})}
            solver = mname.split("@")[0]
            # blind tasks measure with `operator` and solve with `solve_operator` (its parameters learned)
            As = make_operator(task["solve_operator"]) if task.get("solve_operator") else A
            blind = any(p.requires_grad for p in As.parameters())
            if blind and solver not in ("gdp", "pinv"):
                log(f"{task['name']:10s} {mname:8s} skipped: only GDP estimates the degradation")
                continue
            t0 = time.perf_counter()
            if solver == "pinv":
                est = initial_estimate(As, y)
            else:
                gen = torch.Generator().manual_seed(seed + 1)
                est = get_solver(solver, **params)(y, As, P, sigma=sigma, generator=gen)
            sec = (time.perf_counter() - t0) / len(names)
            e, r = est.numpy().transpose(0, 2, 3, 1), x.numpy().transpose(0, 2, 3, 1)
            p = float(np.mean([psnr(a, b) for a, b in zip(e, r)]))
            s = float(np.mean([ssim(a, b) for a, b in zip(e, r)]))
            lp = float(np.mean(lpips_distance(est, x))) if ok else None
            learned = {k: v.detach().flatten().tolist()[:1] for k, v in As.named_parameters()} if blind else None
            rows.append({"task": task["name"], "operator": task["operator"], "sigma": sigma, "method": mname,
                         "params": params, "psnr": p, "ssim": s, "lpips": lp, "sec_per_image": sec,
                         "images": len(names), **({"learned": learned} if learned else {})})
            lps = f"  LPIPS {lp:.4f}" if lp is not None else ""
            extra = f"  learned {learned}" if learned else ""
            log(f"{task['name']:10s} {mname:8s} {p:6.2f} dB  {s:.4f}{lps}  {sec:7.2f} s/image  {params}{extra}")
    return {"rows": rows, "images": names, "lpips": None if ok else why, "prior": prior}


def format_solve_table(rows: list[dict]) -> str:
    """Task x method table of PSNR / SSIM / s per image."""
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    by = {(r["task"], r["method"]): r for r in rows}
    lines = ["| method | " + " | ".join(tasks) + " |", "|---" * (len(tasks) + 1) + "|"]
    for m in methods:
        cells = [f"{by[t, m]['psnr']:.2f} / {by[t, m]['ssim']:.3f} / {by[t, m]['sec_per_image']:.2f}s"
                 if (t, m) in by else "-" for t in tasks]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seam_ratio(img: np.ndarray, period: int) -> float:
    """Mean absolute neighbour difference across lines at multiples of ``period`` (tile edges), over the
    mean across all other lines, rows and columns together; ~1 when tiles leave no seams.  ``img`` (H, W, C)."""
    dx = np.abs(np.diff(img, axis=1)).mean(axis=(0, 2))  # dx[c-1]: between columns c-1 and c
    dy = np.abs(np.diff(img, axis=0)).mean(axis=(1, 2))
    edge_c = np.arange(1, img.shape[1]) % period == 0
    edge_r = np.arange(1, img.shape[0]) % period == 0
    at = np.concatenate([dx[edge_c], dy[edge_r]]).mean()
    off = np.concatenate([dx[~edge_c], dy[~edge_r]]).mean()
    return float(at / off)


def _demo_image(image: str) -> np.ndarray:
    """(H, W, C) float image in [0, 1] from a path, or ``skimage:NAME`` for an image scikit-image ships."""
    if image.startswith("skimage:"):
        import skimage.data
        from skimage.util import img_as_float32
        name = image.split(":", 1)[1]
        if not hasattr(skimage.data, name):
            raise ValueError(f"{image}: scikit-image ships no image called {name!r}; try skimage:astronaut")
        img = img_as_float32(getattr(skimage.data, name)())
        return img[..., None] if img.ndim == 2 else img[..., :3]
    from restore.io import read_image
    return read_image(image).data


def patch_demo(image: str, out_png: str, *, prior: str, operator: str, sigma: float, size: int = 256,
               patch: int | None = None, stride: int | None = None, seed: int = 0, log=print, **params) -> dict:
    """GDP's patch method on a ``size`` x ``size`` centre crop with a prior trained on smaller images.

    Writes ``out_png`` = [pseudo-inverse | GDP | ground truth] side by side and returns PSNR/SSIM and the
    seam ratio at the tile stride (result and ground truth)."""
    from restore.diffusion import load_prior
    from restore.io import write_image
    from restore.operators import make_operator
    from restore.solvers import get_solver
    from restore.solvers.base import initial_estimate

    P = load_prior(prior, patch=patch, stride=stride)
    img = _demo_image(image)
    h, w = img.shape[:2]
    i, j = (h - size) // 2, (w - size) // 2
    x = torch.from_numpy(np.ascontiguousarray(img[i:i + size, j:j + size].transpose(2, 0, 1)))[None]
    A = make_operator(operator)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        y0 = A(x)
    y = y0 + sigma * torch.randn(y0.shape, generator=g)
    t0 = time.perf_counter()
    est = get_solver("gdp", **params)(y, A, P, sigma=sigma, generator=torch.Generator().manual_seed(seed + 1))
    sec = time.perf_counter() - t0
    e, r = est[0].numpy().transpose(1, 2, 0), x[0].numpy().transpose(1, 2, 0)
    pinv = initial_estimate(A, y)[0].numpy().transpose(1, 2, 0)
    write_image(out_png, np.concatenate([pinv, e, r], axis=1))
    step = P.stride or P.patch // 2
    res = {"image": image, "operator": operator, "sigma": sigma, "size": size, "patch": P.patch, "stride": step,
           "tiles": len(P.tile_origins(size, size, P.patch)), "params": params, "seconds": sec,
           "psnr": psnr(e, r), "ssim": ssim(e, r), "psnr_pinv": psnr(pinv, r),
           "seam_ratio": seam_ratio(e, step), "seam_ratio_truth": seam_ratio(r, step), "png": out_png}
    log(f"GDP patch method {size}x{size} with a {P.patch}x{P.patch} prior ({res['tiles']} tiles, stride {step}): "
        f"{res['psnr']:.2f} dB / {res['ssim']:.4f} (pinv {res['psnr_pinv']:.2f}), seam ratio {res['seam_ratio']:.3f} "
        f"(truth {res['seam_ratio_truth']:.3f}), {sec:.0f} s -> {out_png}")
    return res
