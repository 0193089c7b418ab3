"""Hyperspectral denoising benchmark (``restore bench --recipe recipes/bench-hsi.yaml``, kind ``hsi``).

Each clean cube (normalised by its maximum to [0, 1], bands first) gets seeded
Gaussian noise: i.i.d. ``sigma``/255 for every level in ``sigmas`` and, for
``band-varying``, a std per band drawn uniformly in ``[lo, hi]``/255.  Every
method denoises the same noisy cube; MPSNR, MSSIM, SAM (radians) and ERGAS
against the clean cube and the seconds are reported, in one run:

* ``noisy`` -- the input;
* ``subspace`` -- ours, :func:`restore.hsi.subspace_denoise` (per-band sigma estimated);
* ``bandwindow`` -- ours, the self-supervised band-window model fitted on the noisy cube itself
  (``fit_steps``; per-band sigma estimated), then applied to it;
* ``bandwise`` -- our 2-D grey model on each band (per-band sigma estimated);
* ``bm3d`` -- band-wise BM3D (``bm3d`` package) given the *true* per-band sigma;
* ``hyres``, ``fasthyde`` -- HyDe's (PyPI ``hyde-images``), run by ``recipes/peers/hyde_hsi.py`` in
  the anchors venv (``anchors_python``); a method that cannot run is reported with the reason.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from restore.metrics import ergas, mpsnr, mssim, sam

__all__ = ["bench_hsi", "format_hsi_table", "noisy_cube"]

OURS = ("subspace", "bandwindow", "bandwise")
HYDE = ("hyres", "fasthyde")


def noisy_cube(x: np.ndarray, level, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(noisy, sigma per band)`` for ``level`` = a number (8-bit units) or ``[lo, hi]`` (band-varying)."""
    rng = np.random.default_rng(seed)
    B = x.shape[0]
    if isinstance(level, (list, tuple)):
        s = rng.uniform(level[0], level[1], B) / 255.0
    else:
        s = np.full(B, float(level) / 255.0)
    y = x + s[:, None, None] * rng.standard_normal(x.shape)
    return y.astype(np.float32), s


def _scores(d: np.ndarray, x: np.ndarray) -> dict:
    d = np.clip(d, 0, 1)  # every method's output clipped to the data range, as usual in HSI papers
    return {"mpsnr": mpsnr(d, x), "mssim": mssim(d, x), "sam": sam(d, x), "ergas": ergas(d, x)}


def _run_hyde(y: np.ndarray, methods: list[str], python: str, script: str) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "noisy.npy", y)
        try:
            p = subprocess.run([python, script, "--noisy", str(Path(tmp) / "noisy.npy"), "--out-dir", tmp,
                                "--methods", ",".join(methods)], capture_output=True, text=True, timeout=1800,
                               env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
            lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
            info = json.loads(lines[-1]) if lines else {}
        except (OSError, subprocess.TimeoutExpired, ValueError) as e:
            return {m: {"error": f"HyDe runner failed: {e}"} for m in methods}
        for m in methods:
            r = info.get(m, {"ok": False, "error": (p.stderr.strip().splitlines() or ["no output"])[-1]})
            out[m] = ({"output": np.load(Path(tmp) / f"{m}.npy"), "seconds": r["seconds"]} if r.get("ok")
                      else {"error": r.get("error", "failed")})
    return out


def bench_hsi(cfg: dict, log=print) -> list[dict]:
    """Run the recipe; returns one record per (cube, level, method)."""
    import torch

    from restore.api import denoise
    from restore.hsi import band_sigmas, subspace_denoise
    from restore.hsi.bandwindow import denoise_bands
    from restore.hsi.fit import fit_bandwindow
    from restore.io.hsi import read_cube

    methods = cfg.get("methods", ["noisy", *OURS, "bm3d", *HYDE])
    seed = int(cfg.get("seed", 0))
    rows = []
    for name, path in cfg["data"].items():
        x = np.asarray(read_cube(path).data, np.float64)
        x = (x / x.max()).astype(np.float32)
        for li, level in enumerate(cfg["levels"]):
            label = f"{level[0]}-{level[1]}" if isinstance(level, (list, tuple)) else str(level)
            y, s_true = noisy_cube(x, level, seed + 1000 * li)
            outs: dict[str, dict] = {}
            hyde = [m for m in methods if m in HYDE]
            if hyde:
                outs.update(_run_hyde(y, hyde, cfg.get("anchors_python", "python"), cfg.get("hyde_script",
                                                                                            "recipes/peers/hyde_hsi.py")))
            for m in methods:
                if m in HYDE:
                    continue
                t0 = time.perf_counter()
                if m == "noisy":
                    d = y
                elif m == "subspace":
                    d = subspace_denoise(y)
                elif m == "bandwise":
                    s_est = band_sigmas(y)
                    d = np.stack([denoise(y[b], noise=float(s_est[b])) for b in range(y.shape[0])])
                elif m == "bandwindow":
                    s_est = band_sigmas(y)
                    net = fit_bandwindow([y], Path(tempfile.mkdtemp()) / "bw.safetensors", sigmas=[s_est],
                                         steps=int(cfg.get("fit_steps", 1000)), seed=seed, log=lambda s: None,
                                         checkpoint_every=10**9)
                    with torch.inference_mode():
                        d = denoise_bands(net, torch.from_numpy(y)[None],
                                          torch.tensor(s_est, dtype=torch.float32)[None])[0].numpy()
                elif m == "bm3d":
                    import bm3d

                    d = np.stack([bm3d.bm3d(y[b], sigma_psd=float(s_true[b])) for b in range(y.shape[0])])
                else:
                    raise ValueError(f"unknown HSI bench method {m!r}")
                outs[m] = {"output": d, "seconds": time.perf_counter() - t0}
            for m in methods:
                o = outs.get(m, {"error": "not run"})
                rec = {"cube": name, "level": label, "method": m}
                if "error" in o:
                    rec["error"] = o["error"]
                    log(f"{name:8s} {label:>6s} {m:10s} unavailable: {o['error']}")
                else:
                    rec.update(_scores(o["output"], x), seconds=o["seconds"])
                    log(f"{name:8s} {label:>6s} {m:10s} {rec['mpsnr']:6.2f} dB  MSSIM {rec['mssim']:.4f}  "
                        f"SAM {rec['sam']:.4f} rad  ERGAS {rec['ergas']:7.2f}  {rec['seconds']:6.1f} s")
                rows.append(rec)
    return rows


def format_hsi_table(rows: list[dict]) -> str:
    """Markdown table: one row per method, MPSNR/MSSIM/SAM per (cube, level)."""
    cols = list(dict.fromkeys((r["cube"], r["level"]) for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    head = "| method | " + " | ".join(f"{c} {lv}" for c, lv in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for m in methods:
        cells = []
        for c in cols:
            r = next((r for r in rows if r["method"] == m and (r["cube"], r["level"]) == c), None)
            cells.append("n/a" if r is None or "error" in r else f"{r['mpsnr']:.2f} / {r['mssim']:.3f} / {r['sam']:.3f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\ncells: MPSNR dB / MSSIM / SAM rad (clipped to [0, 1])"
