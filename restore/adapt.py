"""Fit a model to a user's own noisy images, then denoise them (``restore denoise DIR --fit``).

The route is chosen by a measured rule on the images themselves
(:func:`noise_correlation`): camera sRGB noise is spatially correlated (the
ISP's demosaicking and filtering), synthetic and RAW-like noise is not.

* correlated: the shipped Gaussian model is trained further at full resolution with
  Recorrupted-to-Recorrupted whose recorruption noise comes from a bank of the images'
  own noise residuals (:mod:`restore.realfit`, ``data.kind: real-bank``, method
  ``r2r-bank``); it is then averaged with the pixel-shuffle route (``--noise real``);
* pixel-independent: the same on the images as they are (grey, sigma
  estimated per image), then used with ``--noise auto``.

Both start from the shipped default (a warm start: minutes of CPU adapt it to
the images' content and noise instead of learning from nothing); nothing but
the noisy images is used.  Which route wins on real camera noise, and by how
much, is measured in recipes/bench-real-sidd12.yaml.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: Above this median ratio var(lag-2 difference) / var(lag-1 difference) in the flattest blocks,
#: the noise is taken as spatially correlated (white noise: ~1.0-1.1 on most images; sidd12 1.46-2.37).
CORRELATION_THRESHOLD = 1.4


def noise_correlation(y: np.ndarray, block: int = 16, quantile: float = 0.2) -> float:
    """How correlated the noise of ``y`` ``(C, H, W)`` is: in the ``quantile`` flattest
    ``block x block`` blocks (smallest lag-1 difference variance), the median ratio of the
    variance of lag-2 differences to that of lag-1 differences (both directions).  White noise
    gives 1 (``var(d_k) = 2 sigma^2`` for any lag); noise correlated over neighbours, with
    ``rho_1 > rho_2``, gives ``(1 - rho_2) / (1 - rho_1) > 1``."""
    y = np.asarray(y, np.float64)
    c, h, w = y.shape
    b = min(block, h, w)
    hh, ww = h // b * b, w // b * b
    blk = y[:, :hh, :ww].reshape(c, hh // b, b, ww // b, b).transpose(0, 1, 3, 2, 4).reshape(-1, b, b)
    flat = lambda a: a.reshape(len(blk), -1)  # noqa: E731
    d1 = np.concatenate([flat(np.diff(blk, axis=1)), flat(np.diff(blk, axis=2))], 1)
    d2 = np.concatenate([flat(blk[:, 2:] - blk[:, :-2]), flat(blk[:, :, 2:] - blk[:, :, :-2])], 1)
    v1, v2 = d1.var(1), d2.var(1)
    ok = v1 > 1e-12
    if not ok.any():
        return 1.0
    v1, v2 = v1[ok], v2[ok]
    keep = np.argsort(v1)[: max(1, int(quantile * len(v1)))]
    return float(np.median(v2[keep] / v1[keep]))


def choose_route(images: list[np.ndarray]) -> tuple[str, float]:
    """``("correlated" | "white", median correlation ratio)`` for ``(C, H, W)`` images."""
    ratio = float(np.median([noise_correlation(im) for im in images]))
    return ("correlated" if ratio > CORRELATION_THRESHOLD else "white"), ratio


def fit_recipe(files: list[Path], route: str, minutes: float, *, patch: int = 96, batch_size: int = 8,
               lr: float = 1e-4, seed: int = 0, seconds_per_step: float = 0.3) -> dict:
    """The training recipe ``--fit`` runs: the shipped grey default trained further for ``minutes``
    at a constant learning rate on ``files``.  Correlated noise: R2R with recorruption from the
    residual bank (:mod:`restore.realfit`; Noise2Score/R2R with Gaussian recorruption are biased by
    the correlation, Neighbor2Neighbor on PD sub-images measured 32.80 dB against the route's 33.60
    on sidd12).  Pixel-independent noise: Neighbor2Neighbor's loss (no noise model), the network
    keeping its sigma input.  ``steps`` (the span of schedules) is the budget over ``seconds_per_step``."""
    from restore.train import read_model
    from restore.weights import default_weights

    init = default_weights("default", 1, "gaussian")
    _, meta = read_model(init)
    if route == "correlated":  # full resolution, R2R from the residual bank (restore.realfit)
        method, params, noise, data = "r2r-bank", {}, "real-fit", {"kind": "real-bank"}
    else:
        method, params, noise, data = "nb2nb", {"gamma_max": 2.0}, "gaussian", {"kind": "noisy", "channels": 1}
    return {
        "name": f"fit-{route}",
        "method": method,
        "method_params": params,
        "noise": noise,
        "init": str(init),
        "net": {k: v for k, v in meta["net"].items() if k not in ("arch", "channels")},
        "data": {**data, "path": [str(f) for f in files], "patch": patch, "batch_size": batch_size},
        "train": {"steps": max(100, int(minutes * 60 / seconds_per_step)), "minutes": float(minutes), "lr": lr,
                  "lr_min": lr, "warmup": 50, "ema_decay": 0.995, "seed": seed, "checkpoint_every": 200,
                  "log_every": 100},
    }


def fit_to_images(files: list[Path], output: str | Path, *, minutes: float = 10.0, log=print) -> tuple[str, dict]:
    """Read ``files`` (unreadable ones are skipped here; the denoise loop reports them), pick the
    route, train for ``minutes`` and write the model to ``output``.  Returns ``(noise spec for
    denoising, info)``."""
    from restore.io import read_image
    from restore.recipe import run_recipe

    good, images = [], []
    for f in files:
        try:
            img = read_image(f)
        except Exception:  # noqa: BLE001 - reported once, by the denoise loop
            continue
        if min(img.height, img.width) >= 64:
            good.append(f)
            images.append(img.data.transpose(2, 0, 1))
    if not good:
        raise ValueError("--fit: no readable image of at least 64x64 pixels to train on")
    route, ratio = choose_route(images)
    smallest = min(min(im.shape[1:]) for im in images)
    patch = max(32, min(96, smallest // 32 * 32))
    recipe = fit_recipe(good, route, minutes, patch=patch)
    log(f"fit: {len(good)} images, noise {'spatially correlated' if route == 'correlated' else 'pixel-independent'} "
        f"(ratio {ratio:.2f}, threshold {CORRELATION_THRESHOLD}); training {recipe['method']} from the shipped "
        f"default for {minutes:g} min -> {output}")
    if route == "correlated":
        log("fit: noise residuals of the pixel-shuffle route fill the recorruption bank")
    summary = run_recipe(recipe, output, log=log)
    return ("real" if route == "correlated" else "auto"), {"route": route, "correlation": ratio,
                                                          "images": len(good), **summary}
