"""Blind noise parameters from one image: the noise-level function (NLF) fit.

After Foi, Trimeche, Katkovnik & Egiazarian, "Practical Poissonian-Gaussian
noise modeling and fitting for single-image raw-data" (IEEE TIP 2008):

1. finest-scale orthonormal Haar transform: approximation ``A`` (the local
   2x2 mean, x2) and diagonal detail ``D = (a - b - c + d) / 2``, whose std
   is the noise std at that intensity on smooth areas;
2. texture mask: coefficients whose local gradient of ``A`` is in the top
   ``texture_quantile`` are dropped (edges and texture inflate ``D``);
3. level sets: the remaining coefficients are binned by intensity ``A / 2``;
   per bin the robust variance ``(median|D| / 0.6745)^2``;
4. weighted least squares of the bin variances against the bin means for the
   family's variance law (weights ``n_i / var_i^2``, the inverse variance of a
   variance estimate):

   ==================  =====================  ====================
   family              variance law           returned
   ==================  =====================  ====================
   gaussian            ``b``                  ``sigma = sqrt(b)``
   poisson             ``zeta * x``           ``zeta``
   poisson-gaussian    ``gain * x + b``       ``(gain, sigma)``
   gamma               ``x^2 / k``            ``k``
   ==================  =====================  ====================

Inputs are ``(C, H, W)`` or ``(H, W)`` arrays/tensors in [0, 1] units; all
channels share the parameters (pooled bins).  Saturated bins (mean < 0.01 or
> 0.99) are left out.
"""
from __future__ import annotations

import numpy as np

FAMILIES = ("gaussian", "poisson", "poisson-gaussian", "gamma")
_IMMERKAER = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
#: E[min(n^2, 9)] for n ~ N(0, 1): the 3-sigma winsorised second moment
_CLIP_3SIGMA = 0.9707


def level_sets(y, *, bins: int = 24, texture_quantile: float = 0.5, min_count: int = 200,
               valid: tuple[float, float] = (0.01, 0.99)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, variance, count)`` per intensity bin of image ``y`` (see module doc); local means
    outside ``valid`` are left out (clipped data; RAW planes, unclipped at black, use a lower bound
    below 0)."""
    arr = np.asarray(y.detach().cpu() if hasattr(y, "detach") else y, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    from scipy.ndimage import convolve, gaussian_filter, uniform_filter

    means, dets, grads = [], [], []
    for ch in arr:
        # Immerkaer's mask kills locally linear (and most quadratic) signal; its
        # output has std 6 * sigma for white noise of std sigma.
        det = convolve(ch, _IMMERKAER, mode="reflect")[1:-1, 1:-1] / 6.0
        mean = uniform_filter(ch, 3, mode="reflect")[1:-1, 1:-1]
        gy, gx = np.gradient(gaussian_filter(ch, 2.0))
        means.append(mean[::2, ::2].ravel())
        dets.append(det[::2, ::2].ravel())
        grads.append(np.hypot(gx, gy)[1:-1, 1:-1][::2, ::2].ravel())
    mean, det, grad = (np.concatenate(v) for v in (means, dets, grads))
    keep = grad <= np.quantile(grad, texture_quantile)
    keep &= (mean > valid[0]) & (mean < valid[1])
    mean, det = mean[keep], det[keep]
    if mean.size < min_count:
        raise ValueError("too few smooth, unsaturated pixels to estimate the noise parameters")
    edges = np.quantile(mean, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, mean, side="right") - 1, 0, bins - 1)
    mu, var, n = [], [], []
    for i in range(bins):
        sel = idx == i
        if sel.sum() < min_count // 4:
            continue
        mu.append(mean[sel].mean())
        dv = det[sel]
        v = (np.median(np.abs(dv)) / 0.6745) ** 2  # robust start, then a 3-sigma-clipped sample variance
        for _ in range(2):
            v = np.mean(np.minimum(dv**2, 9 * v)) / _CLIP_3SIGMA if v > 0 else np.mean(dv**2)
        var.append(v)
        n.append(sel.sum())
    return np.array(mu), np.array(var), np.array(n, dtype=np.float64)


def fit_noise(y, family: str, **kwargs):
    """Blind parameters of ``family`` for image ``y`` (see the module table)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown noise family {family!r}; known: {', '.join(FAMILIES)}")
    mu, var, n = level_sets(y, **kwargs)
    var = np.maximum(var, 1e-12)
    w = n / var**2
    if family == "gaussian":
        return float(np.sqrt(np.sum(w * var) / np.sum(w)))
    if family == "poisson":
        return float(np.sum(w * mu * var) / np.sum(w * mu**2))
    if family == "gamma":
        c = np.sum(w * mu**2 * var) / np.sum(w * mu**4)
        return float(1.0 / max(c, 1e-12))
    X = np.stack([mu, np.ones_like(mu)], axis=1)
    sw = np.sqrt(w)
    gain, b = np.linalg.lstsq(X * sw[:, None], var * sw, rcond=None)[0]
    if gain <= 0:  # no signal dependence detectable: pure Gaussian
        return 0.0, float(np.sqrt(max(np.sum(w * var) / np.sum(w), 0.0)))
    return float(gain), float(np.sqrt(max(b, 0.0)))


# --------------------------------------------------------------------------- paper's grid search
def grid_objective(family: str, x_hat, y):
    """Noise2Score's no-reference objective for candidate estimate ``x_hat`` of ``y``
    (cubeyoung/Noise2Score ``forward_tv``): Poisson ``0.1 TV(clip(x)) + mean(x - y log x)``,
    Gamma ``TV(x) + mean(log x) + mean(y/x) + mean((y/x)^2)`` (over ``x > 0``),
    Gaussian ``TV(x)``; TV is the Charbonnier total variation.  Tensors ``(N, C, H, W)``."""
    import torch

    from restore.noise.estimate import _charbonnier_tv

    if family == "gaussian":
        return _charbonnier_tv(x_hat)
    pos = x_hat > 0
    xs = torch.where(pos, x_hat, torch.ones_like(x_hat))
    n = pos.sum(dim=(1, 2, 3)).clamp(min=1)

    def mean(t):
        return (t * pos).sum(dim=(1, 2, 3)) / n

    if family == "poisson":
        return 0.1 * _charbonnier_tv(x_hat.clamp(0, 1)) + mean(xs - y * torch.log(xs))
    return _charbonnier_tv(x_hat) + mean(torch.log(xs)) + mean(y / xs) + mean((y / xs) ** 2)


def grid_search(y, family: str, denoise_fn, grid) -> float:
    """The grid value whose ``denoise_fn(y, value)`` minimises :func:`grid_objective`
    (``y`` ``(1, C, H, W)`` tensor; Noise2Score's blind-parameter search)."""
    import torch

    vals = []
    with torch.no_grad():
        for v in grid:
            vals.append(float(grid_objective(family, denoise_fn(y, float(v)), y)[0]))
    return float(grid[int(np.argmin(vals))])
