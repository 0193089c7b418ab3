"""Reading calibration frames from folders for ``restore calibrate`` and drawing the fits.

Frames are RAW files (any format :func:`restore.io.raw.read_raw` reads).  They are
grouped by ISO: the file's ISO, else the first number in its folder's name
(``dark/iso800/``), else one group.  Flat frames pair up within an ISO: sorted by
exposure and mean level, consecutive frames whose means agree within 3 % form a pair
(take flats two at a time at each exposure).
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from restore.io import list_images
from restore.io.raw import RAW_EXTENSIONS, pack, read_raw

__all__ = ["load_frames", "pair_flats", "plot_calibration", "PAIR_TOLERANCE"]

PAIR_TOLERANCE = 0.03


def _iso_of(frame, path: Path) -> float | None:
    if frame.meta.get("iso"):
        return float(frame.meta["iso"])
    m = re.search(r"(\d+(?:\.\d+)?)", path.parent.name)
    return float(m.group(1)) if m else None


def load_frames(folder) -> tuple[dict, dict, dict]:
    """``({iso: [planes (4, h, w), DN, black subtracted]}, {iso: [exposure_s]}, {iso: (black, white)})``
    for every RAW file under ``folder``."""
    files = list_images([str(folder)], extensions=RAW_EXTENSIONS)
    if not files:
        raise ValueError(f"{folder}: no camera RAW files found")
    frames, exposures, levels = defaultdict(list), defaultdict(list), {}
    for f in files:
        fr = read_raw(f)
        iso = _iso_of(fr, f)
        frames[iso].append(pack(fr).astype(np.float64) * fr.scale[:, None, None])
        exposures[iso].append(float(fr.meta.get("exposure_s") or 0.0))
        levels[iso] = (fr.black.tolist(), fr.white.tolist())
    if None in frames and len(frames) > 1:
        raise ValueError(f"{folder}: some frames have an ISO and some do not; put each ISO in a folder named by it")
    return dict(frames), dict(exposures), levels


def pair_flats(frames: list, exposures: list) -> list:
    """Consecutive frames (by exposure, then mean) whose means agree within PAIR_TOLERANCE."""
    order = sorted(range(len(frames)), key=lambda i: (exposures[i], frames[i].mean()))
    pairs, i = [], 0
    while i + 1 < len(order):
        a, b = frames[order[i]], frames[order[i + 1]]
        ma, mb = a.mean(), b.mean()
        if abs(ma - mb) <= PAIR_TOLERANCE * max(abs(ma), abs(mb), 1e-9):
            pairs.append((a, b))
            i += 2
        else:
            i += 1
    return pairs


def plot_calibration(cal, folder) -> list[Path]:
    """PNG plots of every fit (photon transfer, row-mean and Tukey-lambda probability plots per ISO,
    log-linear scales across ISO) into ``folder``; needs matplotlib (an optional extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for iso, r in cal.per_iso.items():
        fig, ax = plt.subplots(1, 3, figsize=(13, 4))
        pts, used = np.asarray(r["_ptc"][0]), np.asarray(r["_ptc"][1], bool)
        ax[0].plot(pts[used, 0], pts[used, 1], "o", label="flat pairs")
        ax[0].plot(pts[~used, 0], pts[~used, 1], "x", label="saturated (unused)")
        xs = np.linspace(0, pts[:, 0].max(), 50)
        ax[0].plot(xs, r["K"] * xs + r["offset"], "-", label=f"K = {r['K']:.4g} DN/e-")
        ax[0].set(title=f"ISO {iso}: photon transfer", xlabel="mean (DN)", ylabel="var(F1-F2)/2 (DN^2)")
        ax[0].legend()
        osm, osr, slope = r["_plots"]["row"]
        ax[1].plot(osm, osr, ".", ms=2)
        ax[1].plot(osm, slope * np.asarray(osm), "-", label=f"sigma_r = {r['sigma_r']:.3g} DN")
        ax[1].set(title="row means: normal probability plot", xlabel="normal quantile", ylabel="row mean (DN)")
        ax[1].legend()
        tq, ts, s_tl, loc = r["_plots"]["tl"]
        ax[2].plot(tq, ts, ".", ms=2)
        ax[2].plot(tq, s_tl * np.asarray(tq) + loc, "-",
                   label=f"lambda = {r['lam']:.3f}, sigma_TL = {s_tl:.3g}, r^2 = {r['r2_tl']:.4f}")
        ax[2].set(title="read noise: Tukey-lambda probability plot", xlabel="quantile", ylabel="DN")
        ax[2].legend()
        fig.tight_layout()
        p = folder / f"iso{iso:g}.png" if iso is not None else folder / "frames.png"
        fig.savefig(p, dpi=80)
        plt.close(fig)
        out.append(p)
    isos = list(cal.per_iso)
    if len(isos) > 1:
        K = np.array([cal.per_iso[i]["K"] for i in isos])
        fig, ax = plt.subplots(1, 2, figsize=(9, 4))
        for a, key, fit, name in ((ax[0], "sigma_tl", cal.profile.tl_scale, "Tukey scale"),
                                  (ax[1], "sigma_r", cal.profile.row_scale, "row noise")):
            a.loglog(K, [cal.per_iso[i][key] for i in isos], "o")
            ks = np.geomspace(K.min(), K.max(), 20)
            a.loglog(ks, np.exp(fit["slope"] * np.log(ks) + fit["bias"]), "-",
                     label=f"slope {fit['slope']:.3f}, bias {fit['bias']:.3f}, sigma {fit['sigma']:.3f}")
            a.set(title=f"log {name} vs log K", xlabel="K (DN/e-)", ylabel=f"{key} (DN)")
            a.legend()
        fig.tight_layout()
        p = folder / "log-linear.png"
        fig.savefig(p, dpi=80)
        plt.close(fig)
        out.append(p)
    return out
