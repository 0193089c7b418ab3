"""Benchmarks: PSNR/SSIM and speed of our models against anchors, in one run.

Two modes:

* **synthetic** — folders of clean images; Gaussian noise of each sigma is
  added with a seed fixed per (seed, folder, image, sigma), unclipped.
* **pairs** — a folder of noisy images and one of ground truths (same names
  or same sorted order); the noise level is unknown and estimated.

Methods (columns): ``noisy`` (the input), ``ours`` (shipped default or
``model``, sigma known), ``ours-x8`` (the same with the 8-fold geometric
self-ensemble), ``ours-est`` (sigma estimated), ``LABEL=MODEL.safetensors``
(another model, e.g. a baseline trained with the same budget), and anchors
``bm3d`` (optional package), ``skimage-nlm``, ``skimage-wavelet``.
Denoiser outputs are clipped to [0, 1]; the noisy input is not.
"""
from __future__ import annotations

import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from restore.metrics import psnr, ssim

ANCHORS = ("bm3d", "skimage-nlm", "skimage-wavelet")


def run_anchor(name: str, noisy: np.ndarray, sigma: float, noise: str = "gaussian") -> tuple[np.ndarray, float]:
    """Denoise ``noisy`` (H, W, C) float in [0,1] with an anchor; returns (x, seconds).

    ``sigma`` is the Gaussian std, or with ``noise="poisson"`` the gain zeta: the
    anchor then runs between the generalised Anscombe transform and its exact
    unbiased inverse (e.g. GAT + BM3D + exact inverse, Makitalo & Foi).
    """
    if noise == "poisson":
        import torch

        from restore.noise.vst import through_gat

        def anchor(t, s_t):
            d, _ = _run_gaussian_anchor(name, t.float().numpy(), s_t, clip=False)
            return torch.from_numpy(d).double()

        t0 = time.perf_counter()
        x = through_gat(anchor, torch.from_numpy(noisy).double(), sigma).float().numpy()
        return np.clip(x, 0, 1), time.perf_counter() - t0
    if noise == "gaussian-rgb":  # CBM3D takes one std per channel
        return _run_gaussian_anchor(name, noisy, rgb_sigmas(sigma))
    if noise != "gaussian":
        raise ValueError(f"anchor {name!r} supports gaussian and poisson noise, not {noise!r}")
    return _run_gaussian_anchor(name, noisy, sigma)


def _run_gaussian_anchor(name: str, noisy: np.ndarray, sigma: float, clip: bool = True):
    t0 = time.perf_counter()
    grey = noisy.shape[2] == 1
    if name == "bm3d":
        import bm3d

        x = bm3d.bm3d(noisy[..., 0], sigma_psd=sigma)[..., None] if grey else bm3d.bm3d_rgb(noisy, sigma)
    elif name == "skimage-nlm":
        from skimage.restoration import denoise_nl_means

        x = denoise_nl_means(noisy, h=0.8 * sigma, sigma=sigma, fast_mode=True, patch_size=5,
                             patch_distance=6, channel_axis=-1)
    elif name == "skimage-wavelet":
        from skimage.restoration import denoise_wavelet

        x = denoise_wavelet(noisy, sigma=sigma, method="BayesShrink", mode="soft", rescale_sigma=True,
                            channel_axis=-1, convert2ycbcr=not grey)
    else:
        raise ValueError(f"unknown anchor {name!r}; known: {', '.join(ANCHORS)}")
    x = np.asarray(x, dtype=np.float32).reshape(noisy.shape)
    return (np.clip(x, 0, 1) if clip else x), time.perf_counter() - t0


def _anchor_job(args):
    name, noisy, sigma, clean, noise = args
    x, dt = run_anchor(name, noisy, sigma, noise)
    return psnr(x, clean), ssim(x, clean), dt


NOISES = ("gaussian", "gaussian-rgb", "poisson", "gamma")
#: ``gaussian-rgb`` at level L: Gaussian noise of std L * RGB_RATIOS on R, G and B.
RGB_RATIOS = (0.5, 1.0, 1.5)


def rgb_sigmas(sigma: float) -> list[float]:
    """The per-channel stds of the ``gaussian-rgb`` bench noise at level ``sigma``."""
    return [sigma * r for r in RGB_RATIOS]


def noisy_copy(clean: np.ndarray, sigma: float, seed: int, folder: str, index: int,
               noise: str = "gaussian") -> np.ndarray:
    """Seeded noise: same image + level + seed + family, same noise.

    ``sigma`` is the level: Gaussian std (unclipped ``x + sigma*n``), Poisson
    gain zeta (``zeta * Poisson(x / zeta)``) or Gamma shape k
    (``x * Gamma(k, 1/k)``, mean x).
    """
    tag = "" if noise == "gaussian" else f"{noise}/"
    key = zlib.crc32(f"{tag}{Path(folder).name}/{index}/{sigma:.6f}".encode())
    rng = np.random.default_rng([seed, key])
    if noise == "gaussian":
        y = clean + sigma * rng.standard_normal(clean.shape)
    elif noise == "gaussian-rgb":
        if clean.shape[-1] != 3:
            raise ValueError("gaussian-rgb noise needs RGB images")
        y = clean + np.asarray(rgb_sigmas(sigma)) * rng.standard_normal(clean.shape)
    elif noise == "poisson":
        y = sigma * rng.poisson(np.clip(clean, 0, None) / sigma)
    elif noise == "gamma":
        y = clean * rng.gamma(sigma, 1.0 / sigma, clean.shape)
    else:
        raise ValueError(f"unknown noise {noise!r}; known: {', '.join(NOISES)}")
    return y.astype(np.float32)


def noise_level(noise: str, level: float) -> float:
    """A recipe's level in the units the noise takes: 8-bit sigma -> [0, 1]; zeta and k as they are."""
    return level / 255.0 if noise.startswith("gaussian") else float(level)


def _noise_arg(noise: str, level: float, known: bool):
    """What ``denoise_chw(noise=...)`` gets for the known (or blind) parameter."""
    if noise == "gaussian":
        return level if known else None
    if noise == "gaussian-rgb":
        return "gaussian:" + ",".join(f"{255 * v:.6g}" for v in rgb_sigmas(level)) if known else None
    return f"{noise}:{level}" if known else noise


def load_clean(folder: str, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    from restore.io import list_images, read_image

    files = [f for f in list_images([folder]) if f.is_file()][: limit or None]
    if not files:
        raise ValueError(f"{folder}: no images found")
    return [(f.name, read_image(f).data) for f in files]


def _ours(y: np.ndarray, sigma, model, ensemble: bool = False) -> tuple[np.ndarray, float, float]:
    import torch

    from restore.api import denoise_chw

    t = torch.from_numpy(np.ascontiguousarray(y.transpose(2, 0, 1)))
    t0 = time.perf_counter()
    x, s = denoise_chw(t, noise=sigma, model=model, device="cpu", ensemble=ensemble)
    return x.numpy().transpose(1, 2, 0), time.perf_counter() - t0, s


def speed_test(image: np.ndarray, sigma: float, methods: list[str], model=None, repeats: int = 3) -> dict:
    """Seconds per image and ms per megapixel on one image, methods run one after another."""
    mp = image.shape[0] * image.shape[1] / 1e6
    noisy = noisy_copy(image, sigma, 0, "speed", 0)
    res = {"image_shape": list(image.shape), "megapixels": mp}
    if "ours" in methods:
        _ours(noisy, sigma, model)  # warm-up (model load, allocator)
        dt = min(_ours(noisy, sigma, model)[1] for _ in range(repeats))
        res["ours"] = {"seconds": dt, "ms_per_mp": 1000 * dt / mp}
    for name in [m for m in methods if m in ANCHORS]:
        try:
            dt = run_anchor(name, noisy, sigma)[1]
        except ImportError as e:
            res[name] = {"unavailable": str(e)}
            continue
        res[name] = {"seconds": dt, "ms_per_mp": 1000 * dt / mp}
    if "ours" in res:
        for name in ANCHORS:
            if "seconds" in res.get(name, {}):
                res[name]["ours_speedup"] = res[name]["seconds"] / res["ours"]["seconds"]
    return res


def _available(name: str) -> str | None:
    if name == "bm3d":
        try:
            import bm3d  # noqa: F401
        except ImportError as e:
            return f"bm3d not installed ({e}); pip install bm3d (comparator only)"
    return None


def load_anchor_results(paths: list[str], seed: int) -> dict:
    """Anchor rows of earlier ``restore bench`` JSON files with the same ``seed``, keyed by
    ``(data, noise, level, method)``.  Anchors are deterministic and the noise is seeded per
    (seed, folder, image, level), so a row measured before is the row this run would measure."""
    import json

    index = {}
    for p in paths:
        d = json.loads(Path(p).read_text())
        if d.get("settings", {}).get("seed", 0) != seed:
            continue
        for r in d.get("rows", []):
            if r.get("method") in ANCHORS and "images" in r:
                index[(r["data"], r.get("noise", "gaussian"), float(r["sigma"]), r["method"])] = {**r, "reused_from": str(p)}
    return index


def bench_synthetic(folders: list[str], sigmas: list[float], methods: list[str], *, seed: int = 0,
                    model=None, limit: int | None = None, workers: int = 1, noise: str = "gaussian",
                    reuse: list[str] | None = None, log=print) -> dict:
    """Mean PSNR/SSIM per (folder, level, method); levels: Gaussian sigma in 8-bit
    units, Poisson zeta or Gamma k (see :func:`noisy_copy`).  ``reuse``: JSON files of
    earlier runs whose anchor rows (same seed, data, noise, level and images) are taken
    instead of recomputed; such rows carry ``reused_from``."""
    cached = load_anchor_results(reuse or [], seed)
    rows, skipped = [], {m: why for m in methods if (why := _available(m))}
    methods = [m for m in methods if m not in skipped]
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    for folder in folders:
        images = load_clean(folder, limit)
        for s255 in sigmas:
            sigma = noise_level(noise, s255)
            per = {m: [] for m in methods}
            reused = {}
            for m in methods:
                prev = cached.get((Path(folder).name, noise, float(s255), m))
                if prev is not None and [r["image"] for r in prev["images"]] != [n for n, _ in images]:
                    raise ValueError(f"{prev['reused_from']}: its {m} row covers other images; drop --reuse")
                if prev is not None:
                    reused[m] = prev
            futures = []
            for i, (name, clean) in enumerate(images):
                noisy = noisy_copy(clean, sigma, seed, folder, i, noise)
                rec_common = {"image": name, "megapixels": clean.shape[0] * clean.shape[1] / 1e6}
                for m in methods:
                    if m in reused:
                        continue
                    if m in ANCHORS:
                        job = (m, noisy, sigma, clean, noise)
                        futures.append((m, rec_common, pool.submit(_anchor_job, job) if pool else job))
                        continue
                    if m == "noisy":
                        x, dt, s = noisy, 0.0, sigma
                    else:
                        known = m != "ours-est"
                        mdl = m.partition("=")[2] or model  # "label=model.safetensors": another model's column
                        x, dt, s = _ours(noisy, _noise_arg(noise, sigma, known), mdl, ensemble=m == "ours-x8")
                    used = ({"sigma_used_255": np.multiply(s, 255).tolist()} if noise.startswith("gaussian")
                            else {"param_used": s})
                    per[m].append({**rec_common, "psnr": psnr(x, clean), "ssim": ssim(x, clean),
                                   "seconds": dt, **used})
            for m, rec_common, fut in futures:
                p, q, dt = fut.result() if pool else _anchor_job(fut)
                per[m].append({**rec_common, "psnr": p, "ssim": q, "seconds": dt})
            for m in methods:
                if m in reused:
                    prev = reused[m]
                    rows.append(prev)
                    log(f"{prev['data']:8s} {noise}={s255:<4g} {m:16s} PSNR {prev['psnr']:6.2f}  "
                        f"SSIM {prev['ssim']:.4f}  (reused from {prev['reused_from']})")
                    continue
                recs = per[m]
                mp = sum(r["megapixels"] for r in recs)
                row = {"data": Path(folder).name, "noise": noise, "sigma": s255, "method": m.partition("=")[0],
                       "psnr": float(np.mean([r["psnr"] for r in recs])),
                       "ssim": float(np.mean([r["ssim"] for r in recs])),
                       "ms_per_mp": 1000 * sum(r["seconds"] for r in recs) / mp, "images": recs}
                if m == "ours-est" and noise.startswith("gaussian"):
                    true = rgb_sigmas(s255) if noise == "gaussian-rgb" else s255
                    err = np.array([np.subtract(np.broadcast_to(r["sigma_used_255"], np.shape(true)), true)
                                    for r in recs])
                    row["sigma_est_mean_abs_err_255"] = float(np.mean(np.abs(err)))
                    row["sigma_est_bias_255"] = float(np.mean(err))
                elif m == "ours-est":
                    rel = [r["param_used"] / sigma - 1 for r in recs]
                    row["param_est_mean_abs_rel_err"] = float(np.mean(np.abs(rel)))
                    row["param_est_median_ratio"] = float(np.median(rel)) + 1
                if "=" in m:
                    row["model"] = m.partition("=")[2]
                rows.append(row)
                log(f"{row['data']:8s} {noise}={s255:<4g} {row['method']:16s} PSNR {row['psnr']:6.2f}  SSIM {row['ssim']:.4f}")
    if pool:
        pool.shutdown()
    return {"rows": rows, "skipped": skipped}


def _pair_key(name: str) -> str:
    import re

    stem = Path(name).stem.lower()
    return re.sub(r"(^|[_\-. ])(noisy|gt|clean|mean|ref)(?=$|[_\-. ])", r"\1", stem).strip("_-. ")


def pair_images(noisy: list, gts: list, noisy_dir: str, gt_dir: str) -> tuple[list, list]:
    """Match noisy and reference images by name with the words noisy/gt/clean/mean/ref removed
    (``NOISY_3.png`` <-> ``GT_3.png``); reference images without a partner are ignored."""
    by_key = {_pair_key(n): (n, im) for n, im in gts}
    missing = [n for n, _ in noisy if _pair_key(n) not in by_key]
    if missing:
        raise ValueError(f"{noisy_dir}: no reference in {gt_dir} for {', '.join(missing[:3])}"
                         f"{' ...' if len(missing) > 3 else ''} (names must match up to noisy/gt/clean)")
    return noisy, [by_key[_pair_key(n)] for n, _ in noisy]


def _peer_rows(paths: list[str], data: str, noise: str) -> dict:
    """Rows of earlier bench JSONs (e.g. a peer library run in its own venv, such as
    ``recipes/peers/careamics_n2v.py``) for ``data`` and ``noise``, keyed by method."""
    import json

    out = {}
    for p in paths:
        for r in json.loads(Path(p).read_text()).get("rows", []):
            if r.get("data") == data and r.get("noise") == noise and "images" in r:
                out[r["method"]] = {**r, "reused_from": str(p)}
    return out


def bench_pairs(noisy_dir: str, gt_dir: str, methods: list[str], *, model=None, limit=None, noise: str = "gaussian",
                reuse: list[str] | None = None, log=print) -> dict:
    """Real noisy/GT pairs (sorted order): PSNR/SSIM, noise parameters estimated.

    ``ours`` (and ``LABEL=MODEL`` columns) run with ``noise`` (``"real"``: correlated camera
    noise, :func:`restore.api.denoise_chw`); anchors get the wavelet-MAD sigma of the image.
    A method name that is none of those (e.g. ``careamics-n2v``) is taken from the ``reuse``
    JSON files (a peer run in its own environment on the same pairs); such rows say so."""
    from restore.noise import estimate_sigma

    noisy_imgs, gts = pair_images(load_clean(noisy_dir, limit), load_clean(gt_dir), noisy_dir, gt_dir)
    data = Path(noisy_dir).parent.name
    runnable = {"noisy", "ours", "ours-x8", *ANCHORS}
    peers = _peer_rows(reuse or [], data, noise)
    reused = {}
    for m in methods:
        if m in runnable or "=" in m:
            continue
        if m not in peers:
            raise ValueError(f"method {m!r} is neither run here nor found for {data}/{noise} in --reuse files")
        if sorted(Path(r["image"]).stem for r in peers[m]["images"]) != sorted(Path(n).stem for n, _ in noisy_imgs):
            raise ValueError(f"{peers[m]['reused_from']}: its {m} row covers other images")
        reused[m] = peers[m]
    methods = [m for m in methods if m not in reused]
    per = {m: [] for m in methods}
    for (name, y), (_, gt) in zip(noisy_imgs, gts):
        s = float(estimate_sigma(y.transpose(2, 0, 1)[None].copy())[0])
        for m in methods:
            if m == "noisy":
                x, dt = y, 0.0
            elif m in ANCHORS:
                x, dt = run_anchor(m, y, s)
            else:
                x, dt, _ = _ours(y, None if noise == "gaussian" else noise, m.partition("=")[2] or model,
                                 ensemble=m == "ours-x8")
            per[m].append({"image": name, "psnr": psnr(x, gt), "ssim": ssim(x, gt), "seconds": dt,
                           "megapixels": y.shape[0] * y.shape[1] / 1e6})
    rows = []
    for m, recs in per.items():
        mp = sum(r["megapixels"] for r in recs)
        row = {"data": Path(noisy_dir).parent.name, "noise": noise, "sigma": "est", "method": m.partition("=")[0],
               "psnr": float(np.mean([r["psnr"] for r in recs])), "ssim": float(np.mean([r["ssim"] for r in recs])),
               "ms_per_mp": 1000 * sum(r["seconds"] for r in recs) / mp, "images": recs}
        if "=" in m:
            row["model"] = m.partition("=")[2]
        rows.append(row)
        log(f"{row['data']:8s} {row['method']:16s} PSNR {row['psnr']:6.2f}  SSIM {row['ssim']:.4f}  "
            f"{row['ms_per_mp']:9.1f} ms/MP")
    for m, row in reused.items():
        rows.append(row)
        log(f"{row['data']:8s} {m:16s} PSNR {row['psnr']:6.2f}  SSIM {row['ssim']:.4f}  (from {row['reused_from']})")
    return {"rows": rows, "skipped": {}}


def format_table(rows: list[dict]) -> str:
    """Markdown table: one line per (data, sigma), one column per method (PSNR / SSIM)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    keys = list(dict.fromkeys((r["data"], r["sigma"]) for r in rows))
    cell = {(r["data"], r["sigma"], r["method"]): r for r in rows}
    lines = ["| data | sigma | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for d, s in keys:
        vals = [f"{cell[d, s, m]['psnr']:.2f} / {cell[d, s, m]['ssim']:.4f}" if (d, s, m) in cell else "—"
                for m in methods]
        lines.append(f"| {d} | {s} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def bench_family_estimators(folders: list[str], levels: list[float], noise: str, *, seed: int = 0, model=None,
                            limit: int | None = None, grid_size: int = 30, log=print) -> dict:
    """Relative error of the blind parameter estimators for Poisson zeta / Gamma k: the
    noise-level-function fit (:func:`restore.noise.nlf.fit_noise`) and Noise2Score's grid
    search with its objective (:func:`restore.noise.nlf.grid_search`) run with our model."""
    import torch

    from restore.api import denoise_chw
    from restore.noise.nlf import fit_noise, grid_search

    lo, hi = (0.004, 0.1) if noise == "poisson" else (25.0, 250.0)
    grid = np.geomspace(lo, hi, grid_size)
    rows = []
    for folder in folders:
        images = load_clean(folder, limit)
        for level in levels:
            errs = {"nlf": [], "grid": []}
            for i, (_, clean) in enumerate(images):
                y = torch.from_numpy(noisy_copy(clean, level, seed, folder, i, noise).transpose(2, 0, 1).copy())
                errs["nlf"].append(fit_noise(y, noise) / level - 1)
                fn = lambda t, v: denoise_chw(t[0], noise=f"{noise}:{v}", model=model, device="cpu")[0][None]  # noqa: E731
                errs["grid"].append(grid_search(y[None], noise, fn, grid) / level - 1)
            for k, e in errs.items():
                row = {"data": Path(folder).name, "noise": noise, "sigma": level, "estimator": k,
                       "mean_abs_rel_err": float(np.mean(np.abs(e))), "median_ratio": float(1 + np.median(e))}
                rows.append(row)
                log(f"{row['data']:8s} {noise}={level:<6g} {k:4s} |rel err| {row['mean_abs_rel_err']:.3f}  "
                    f"median ratio {row['median_ratio']:.3f}")
    return {"rows": rows, "skipped": {}}


def bench_estimators(folders: list[str], sigmas: list[float], *, seed: int = 0, model=None,
                     limit: int | None = None, grid_size: int = 26, log=print) -> dict:
    """Accuracy of the sigma estimators (8-bit units): wavelet MAD, patch PCA and the
    Noise2Score TV grid search run with our model as the Tweedie denoiser."""
    import torch

    from restore.api import load
    from restore.noise import estimate_sigma_mad, estimate_sigma_pca, estimate_sigma_tv

    r = load(model, channels=1, device="cpu")
    grid = torch.linspace(5.0, 55.0, grid_size, dtype=torch.float64) / 255.0

    def tweedie(y, s):
        return torch.as_tensor(r.run(y[0], s)).unsqueeze(0)

    rows = []
    for folder in folders:
        images = load_clean(folder, limit)
        for s255 in sigmas:
            errs = {"mad": [], "pca": [], "tv": []}
            for i, (_, clean) in enumerate(images):
                y = torch.from_numpy(noisy_copy(clean, s255 / 255, seed, folder, i).transpose(2, 0, 1).copy())[None]
                errs["mad"].append(float(estimate_sigma_mad(y)[0]) * 255 - s255)
                errs["pca"].append(float(estimate_sigma_pca(y)[0]) * 255 - s255)
                errs["tv"].append(float(estimate_sigma_tv(y, tweedie, grid)[0]) * 255 - s255)
            for k, e in errs.items():
                row = {"data": Path(folder).name, "sigma": s255, "estimator": k,
                       "mean_abs_err_255": float(np.mean(np.abs(e))), "bias_255": float(np.mean(e))}
                rows.append(row)
                log(f"{row['data']:8s} sigma={s255:<4g} {k:4s} |err| {row['mean_abs_err_255']:.2f}  "
                    f"bias {row['bias_255']:+.2f}")
    return {"rows": rows, "skipped": {}}
