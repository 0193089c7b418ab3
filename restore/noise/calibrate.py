"""Sensor calibration from dark and flat frames (the ELD procedure, Wei et al. 2020, §3.2 of
the project's research brief), giving a :class:`restore.noise.sensor.SensorProfile`.

Frames are packed RAW planes in DN with the black level already subtracted:
float (4, h, w), planes R, G1, G2, B (:func:`restore.io.raw.pack` times ``scale``).

* System gain K (DN per electron), per ISO: photon-transfer curve of flat-frame
  *pairs*, ``var(F1 - F2) / 2 = K * mean + c`` (the pair difference cancels
  fixed-pattern noise / PRNU); the least-squares slope is K.
* Dark (bias) frames, per ISO: colour bias = per-plane mean; row noise = std of
  all row means, less the read noise each row mean averages in (``var/W``);
  after removing row means, the Tukey-lambda shape by probability-plot
  correlation maximisation (``scipy.stats.ppcc_max``) and its scale / location
  from the probability plot (``scipy.stats.probplot``); a Gaussian read std too.
* Across ISOs: ``log sigma = slope log K + bias + N(0, sigma^2)`` for the Tukey
  and row scales (least squares; sigma = residual std, 0 with fewer than 3 ISOs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .sensor import SensorProfile

__all__ = ["photon_transfer", "dark_statistics", "fit_log_linear", "calibrate", "Calibration",
           "PTC_SATURATION"]

PTC_SATURATION = 0.85  # flat pairs whose mean exceeds this fraction of the range are not used
READ_SAMPLES = 40000  # read-noise values fed to ppcc_max / probplot (a fixed random subset)


def _centre(planes: np.ndarray, frac: float = 0.8) -> np.ndarray:
    """Central ``frac`` of each plane (vignetting and edge effects stay out)."""
    h, w = planes.shape[-2:]
    dh, dw = int(h * (1 - frac) / 2), int(w * (1 - frac) / 2)
    return planes[..., dh:h - dh, dw:w - dw]


def photon_transfer(pairs, *, full_scale: float | None = None) -> dict:
    """K from flat-frame pairs [(F1, F2), ...] (each float (4, h, w), DN, black subtracted).

    Returns ``{"K", "offset", "points": [(mean, var) per pair and plane], "used": bool mask}``;
    ``offset`` is the fitted signal-independent variance (DN^2)."""
    pts = []
    for f1, f2 in pairs:
        a, b = _centre(np.asarray(f1, np.float64)), _centre(np.asarray(f2, np.float64))
        for k in range(a.shape[0]):
            mean = 0.5 * (a[k].mean() + b[k].mean())
            var = np.var(a[k] - b[k]) / 2
            pts.append((mean, var))
    pts = np.asarray(pts)
    used = np.ones(len(pts), bool) if full_scale is None else pts[:, 0] < PTC_SATURATION * full_scale
    if used.sum() < 2 or np.ptp(pts[used, 0]) <= 0:
        raise ValueError("the photon-transfer fit needs flat pairs at two or more exposure levels (not saturated)")
    K, offset = np.polyfit(pts[used, 0], pts[used, 1], 1)
    if K <= 0:
        raise ValueError(f"photon-transfer slope K = {K:.4g} <= 0: the flat frames are not flat or not paired")
    return {"K": float(K), "offset": float(offset), "points": pts.tolist(), "used": used.tolist()}


def dark_statistics(frames, *, seed: int = 0) -> dict:
    """Colour bias, row noise and read noise (Tukey-lambda and Gaussian) from dark frames
    (list of float (4, h, w), DN, black subtracted)."""
    from scipy import stats

    frames = [_centre(np.asarray(f, np.float64)) for f in frames]
    bias = np.mean([f.mean(axis=(1, 2)) for f in frames], axis=0)
    row_means, residuals, widths = [], [], []
    for f in frames:
        x = f - f.mean(axis=(1, 2), keepdims=True)
        rm = x.mean(axis=2, keepdims=True)
        row_means.append(rm.reshape(-1))
        residuals.append((x - rm).reshape(-1))
        widths.append(x.shape[2])
    row_means, residuals = np.concatenate(row_means), np.concatenate(residuals)
    read_var = residuals.var() * widths[0] / (widths[0] - 1)
    (osm, osr), (slope_r, _, r_row) = stats.probplot(row_means, dist="norm")
    sigma_r = math.sqrt(max(slope_r ** 2 - read_var / widths[0], 0.0))
    rng = np.random.default_rng(seed)
    sub = rng.choice(residuals, size=min(READ_SAMPLES, residuals.size), replace=False)
    lam = float(stats.ppcc_max(sub, brack=(-0.4, 0.4), dist="tukeylambda"))
    lam = float(np.clip(lam, -0.45, 1.0))
    (tq, ts), (sigma_tl, loc_tl, r_tl) = stats.probplot(sub, sparams=(lam,), dist="tukeylambda")
    (_, _), (sigma_g, _, r_g) = stats.probplot(sub, dist="norm")
    return {"color_bias": bias.tolist(), "sigma_r": sigma_r, "row_r": float(r_row), "lam": lam,
            "sigma_tl": float(sigma_tl), "loc_tl": float(loc_tl), "r2_tl": float(r_tl ** 2),
            "sigma_gauss": float(sigma_g), "r2_gauss": float(r_g ** 2), "read_var": float(read_var),
            "_plots": {"row": (osm, osr, slope_r), "tl": (tq, ts, sigma_tl, loc_tl)}}


def fit_log_linear(K, sigma) -> dict:
    """``log sigma = slope log K + bias + N(0, s^2)``: {"slope", "bias", "sigma"} (natural logs)."""
    lk, ls = np.log(np.asarray(K, float)), np.log(np.maximum(np.asarray(sigma, float), 1e-12))
    if lk.size == 1:
        return {"slope": 0.0, "bias": float(ls[0]), "sigma": 0.0}
    slope, bias = np.polyfit(lk, ls, 1)
    resid = ls - (slope * lk + bias)
    s = float(np.sqrt(np.sum(resid ** 2) / (lk.size - 2))) if lk.size > 2 else 0.0
    return {"slope": float(slope), "bias": float(bias), "sigma": s}


def _iso_line(isos, Ks):
    """K = c * ISO through the origin (the gain is proportional to the analogue gain; an
    intercept could make K <= 0 at low ISO); None when no ISO is known."""
    pts = [(float(i), k) for i, k in zip(isos, Ks) if i]
    if not pts:
        return None
    iso, K = np.array(pts).T
    return (float(np.sum(iso * K) / np.sum(iso * iso)), 0.0)


@dataclass
class Calibration:
    """Result of :func:`calibrate`: the profile plus the per-ISO measurements behind it."""

    profile: SensorProfile
    per_iso: dict = field(default_factory=dict)  # iso -> {"K", "offset", dark statistics, ...}


def calibrate(darks: dict, flats: dict, *, name: str = "camera", black: float | None = None,
              white: float | None = None, full_scale: float | None = None) -> Calibration:
    """Calibrate from ``darks`` {iso: [frames]} and ``flats`` {iso: [(F1, F2), ...]}.

    Every ISO needs both; frames as in :func:`dark_statistics`.  ``full_scale``
    (DN, white - black) keeps saturated flats out of the photon-transfer fit."""
    isos = sorted(set(darks) & set(flats), key=lambda v: (v is None, float(v or 0)))
    missing = sorted(set(darks) ^ set(flats), key=str)
    if not isos:
        raise ValueError("no ISO has both dark and flat frames" + (f" (only one kind at {missing})" if missing else ""))
    per_iso = {}
    for iso in isos:
        ptc = photon_transfer(flats[iso], full_scale=full_scale)
        per_iso[iso] = {**dark_statistics(darks[iso]), **{k: ptc[k] for k in ("K", "offset")},
                        "_ptc": (ptc["points"], ptc["used"])}
    Ks = [per_iso[i]["K"] for i in isos]
    profile = SensorProfile(
        name=name,
        K_range=(min(Ks), max(Ks)),
        tl_scale=fit_log_linear(Ks, [per_iso[i]["sigma_tl"] for i in isos]),
        row_scale=fit_log_linear(Ks, [max(per_iso[i]["sigma_r"], 1e-6) for i in isos]),
        gauss_scale=fit_log_linear(Ks, [per_iso[i]["sigma_gauss"] for i in isos]),
        tl_shapes=[per_iso[i]["lam"] for i in isos],
        color_bias=[per_iso[i]["color_bias"] for i in isos],
        iso_to_K=_iso_line(isos, Ks),
        black=black, white=white,
        source=f"restore calibrate: {len(isos)} ISO(s) {', '.join(str(i) for i in isos)}",
    )
    return Calibration(profile=profile, per_iso=per_iso)
