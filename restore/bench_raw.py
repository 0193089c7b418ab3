"""RAW-domain benchmark: clean sRGB test images un-processed to Bayer planes
(:func:`restore.unprocess.unprocess`), camera sensor noise from a profile at given
ISOs (:class:`restore.noise.sensor.SensorNoise`, parameters drawn from the profile's
joint model with a seeded generator, low light pushed by ``ratio``), PSNR / SSIM on the
packed planes (clipped to [0, 1], 1 = white level).

Methods: ``noisy``; ``ours`` (GAT with the noise's Poisson-Gaussian equivalent, the
grey model on the Bayer-opponent channels, exact unbiased inverse;
:func:`restore.rawdenoise.denoise_planes`); ``ours-est`` (the same, Poisson-Gaussian
parameters fitted blind); ``ours-planes`` (per plane, no opponent transform);
``bm3d`` (the same GAT route with BM3D in place of the model); ``LABEL=MODEL``
(another grey model file through the ``ours`` route).
"""
from __future__ import annotations

import time
import zlib
from pathlib import Path

import numpy as np
import torch

from .metrics import psnr, ssim

__all__ = ["raw_case", "bench_raw", "RAW_METHODS"]

RAW_METHODS = ("noisy", "ours", "ours-est", "ours-planes", "bm3d")


def raw_case(clean_rgb: np.ndarray, *, iso: float, profile, ratio: float, seed: int, folder: str, index: int):
    """``(clean planes (4, h, w), noisy planes, params)`` for one test image (H, W, C) and ISO;
    deterministic in (seed, folder name, index, iso)."""
    from .noise.sensor import SensorNoise, sample_params
    from .unprocess import unprocess

    key = zlib.crc32(f"{seed}/{Path(folder).name}/{index}/{iso:g}".encode())
    g = torch.Generator().manual_seed(key)
    x = unprocess(torch.from_numpy(np.ascontiguousarray(clean_rgb.transpose(2, 0, 1))))
    params = sample_params(profile, iso=iso, generator=g)
    noise = SensorNoise.from_params(params, scale=profile.white - profile.black, ratio=ratio)
    y = noise.sample(x[None].double(), generator=g)[0].float()
    a, s = noise.poisson_gaussian()
    params.update(pg_gain=float(a), pg_sigma=float(s))
    return x, y, params


def _bm3d_grey(t: torch.Tensor, s: float) -> torch.Tensor:
    import bm3d

    out = bm3d.bm3d(t[0].double().numpy(), sigma_psd=float(s))
    return torch.from_numpy(np.asarray(out, np.float64))[None].float()


def _denoiser(method: str, model):
    """``run_grey(t (1, h, w), sigma) -> (1, h, w)`` for a method name."""
    from .api import select_model

    if method == "bm3d":
        return _bm3d_grey
    mdl = method.partition("=")[2] or model
    r = select_model(1, model=mdl, device="cpu", noise="raw")  # the shipped RAW default, else the grey one
    return lambda t, s: torch.as_tensor(r.run(t, s, tile=512, overlap=64))


def bench_raw(folders: list[str], isos: list[float], methods: list[str], *, profile="SonyA7S2", ratio: float = 50.0,
              seed: int = 0, model=None, limit: int | None = None, log=print) -> dict:
    """Rows ``{data, noise: "sensor", sigma: ISO, method, psnr, ssim, ms_per_mp, images}``
    (``sigma`` holds the ISO so :func:`restore.bench.format_table` applies)."""
    from .bench import load_clean
    from .noise.sensor import load_profile
    from .rawdenoise import RawNoise, denoise_planes, raw_noise

    prof = load_profile(profile) if isinstance(profile, (str, Path)) else profile
    if prof.white is None or prof.black is None:
        raise ValueError(f"profile {prof.name!r} has no black/white level; the benchmark needs them")
    skipped = {}
    try:
        import bm3d  # noqa: F401
    except ImportError as e:
        skipped["bm3d"] = f"bm3d is not installed ({e})"
    methods = [m for m in methods if m not in skipped]
    runners = {m: _denoiser(m, model) for m in methods if m != "noisy"}
    rows = []
    for folder in folders:
        images = load_clean(folder, limit)
        for iso in isos:
            per = {m: [] for m in methods}
            for i, (name, rgb) in enumerate(images):
                x, y, params = raw_case(rgb, iso=iso, profile=prof, ratio=ratio, seed=seed, folder=folder, index=i)
                mp = x.shape[1] * x.shape[2] * 4 / 1e6  # sensor megapixels
                known = RawNoise(params["pg_gain"], params["pg_sigma"], source="known")
                for m in methods:
                    t0 = time.perf_counter()
                    used = known
                    if m == "noisy":
                        out = y
                    else:
                        if m == "ours-est":
                            used = raw_noise(y.numpy())
                        with torch.no_grad():
                            out = denoise_planes(y, used, runners[m], opponent=m != "ours-planes")
                    dt = time.perf_counter() - t0
                    xo = out.clamp(0, 1).numpy().transpose(1, 2, 0)
                    ref = x.numpy().transpose(1, 2, 0)
                    per[m].append({"image": name, "megapixels": mp, "psnr": psnr(xo, ref),
                                   "ssim": float(np.mean([ssim(xo[..., k:k + 1], ref[..., k:k + 1]) for k in range(4)])),
                                   "seconds": dt, "K": params["K"], "gain_used": used.gain, "sigma_used": used.sigma,
                                   "gain_true": params["pg_gain"], "sigma_true": params["pg_sigma"]})
            for m in methods:
                recs = per[m]
                row = {"data": Path(folder).name, "noise": "sensor", "sigma": iso, "method": m.partition("=")[0],
                       "profile": prof.name, "ratio": ratio,
                       "psnr": float(np.mean([r["psnr"] for r in recs])),
                       "ssim": float(np.mean([r["ssim"] for r in recs])),
                       "ms_per_mp": 1000 * sum(r["seconds"] for r in recs) / sum(r["megapixels"] for r in recs),
                       "images": recs}
                if m == "ours-est":
                    row["gain_est_mean_abs_rel_err"] = float(np.mean([abs(r["gain_used"] / r["gain_true"] - 1)
                                                                      for r in recs]))
                if "=" in m:
                    row["model"] = m.partition("=")[2]
                rows.append(row)
                log(f"{row['data']:8s} ISO {iso:<6g} x{ratio:g} {row['method']:12s} PSNR {row['psnr']:6.2f}  "
                    f"SSIM {row['ssim']:.4f}  {row['ms_per_mp']:8.0f} ms/MP")
    return {"rows": rows, "skipped": skipped}
