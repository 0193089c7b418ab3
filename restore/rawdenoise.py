"""Denoising a Bayer RAW mosaic with a Gaussian model through the generalised
Anscombe transform (GAT), with the noise from a camera profile or estimated blind.

Planes: float (4, h, w) R, G1, G2, B from :func:`restore.io.raw.pack`
(black-subtracted, 1 = white level).  Noise there: ``Var = gain * x + sigma^2``
(Poisson-Gaussian; from :class:`restore.noise.sensor.SensorNoise` via a profile and
the frame's ISO, or fitted blind by :func:`restore.noise.nlf.fit_noise` on the
pooled planes).  Route: GAT (noise std 1) -> [f(0), f(1)] onto [0, 1] -> an orthonormal
transform of the four planes (:data:`BAYER_OPPONENT`, whose first channel carries
the structure, as CBM3D's opponent colours) -> the grey Gaussian model per
channel -> back -> exact unbiased inverse GAT.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from restore.color import orthonormal_forward, orthonormal_inverse

__all__ = ["BAYER_OPPONENT", "raw_noise", "denoise_planes", "gat_unit", "RawNoise", "bayer_to_opponent", "opponent_to_bayer"]

_R2 = math.sqrt(2.0)
#: Rows: (R+G1+G2+B)/2, (R-G1-G2+B)/2, (R-B)/sqrt2, (G1-G2)/sqrt2 (orthonormal).
BAYER_OPPONENT = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.5, -0.5, -0.5, 0.5],
                               [1 / _R2, 0.0, 0.0, -1 / _R2], [0.0, 1 / _R2, -1 / _R2, 0.0]])
#: Channel ranges for planes in [0, 1]: (offset, scale) onto [0, 1].
#: the least bright end a frame is stretched to (see :func:`denoise_planes`).
STRETCH_FLOOR = 0.05
_OFFSET = torch.tensor([0.0, 1.0, 1 / _R2, 1 / _R2])
_SCALE = torch.tensor([2.0, 2.0, _R2, _R2])


def bayer_to_opponent(p: torch.Tensor) -> torch.Tensor:
    """(4, h, w) planes -> (4, h, w) opponent channels mapped into ~[0, 1]."""
    return orthonormal_forward(p, BAYER_OPPONENT, _OFFSET, _SCALE)


def opponent_to_bayer(z: torch.Tensor) -> torch.Tensor:
    return orthonormal_inverse(z, BAYER_OPPONENT, _OFFSET, _SCALE)


@dataclass
class RawNoise:
    """Poisson-Gaussian noise of packed planes: ``Var = gain * (x - mu) + sigma^2`` (plane units)."""

    gain: float
    sigma: float
    mu: float = 0.0
    source: str = "estimated"


def raw_noise(planes, *, profile=None, iso: float | None = None, K: float | None = None,
              scale: float | None = None) -> RawNoise:
    """The planes' noise: from ``profile`` (a :class:`SensorProfile`, with ``iso`` or ``K``;
    ``scale`` = white - black DN) as the SensorNoise's Poisson-Gaussian equivalent at the
    profile's median read/row scales, else fitted blind (NLF on the pooled planes)."""
    if profile is not None:
        from restore.noise.sensor import tukey_lambda_variance

        if K is None:
            if not iso:
                raise ValueError("the RAW file has no ISO; give the gain K or calibrate with this ISO")
            K = profile.K_of_iso(iso)
        if scale is None:
            raise ValueError("scale (white - black, DN) is needed to use a camera profile")
        logK = math.log(K)
        s_tl = math.exp(profile.tl_scale["slope"] * logK + profile.tl_scale["bias"])
        s_r = math.exp(profile.row_scale["slope"] * logK + profile.row_scale["bias"])
        lam = float(np.median(profile.tl_shapes)) if profile.tl_shapes else 0.0
        read_var = s_tl ** 2 * tukey_lambda_variance(lam) + s_r ** 2 + 1 / 12
        return RawNoise(gain=K / scale, sigma=math.sqrt(read_var) / scale, source=f"profile {profile.name}, K={K:.4g}")
    from restore.noise.nlf import fit_noise

    # RAW planes are not clipped at black: the dark bins (read noise) are kept
    gain, sigma = fit_noise(np.asarray(planes, dtype=np.float64), "poisson-gaussian", valid=(-1.0, 0.95))
    return RawNoise(gain=float(gain), sigma=float(sigma), source="estimated")


def gat_unit(y: torch.Tensor, gain: float, sigma: float) -> tuple[torch.Tensor, tuple[float, float]]:
    """GAT of ``y`` (noise std 1) mapped by ``[f(0), f(1)] -> [0, 1]`` (as YOND): returns ``t``
    and ``(f0, f1)``; the noise std in ``t`` is ``1 / (f1 - f0)``.  The map the grey model sees,
    at inference (:func:`denoise_planes`) and in training (``datasets/raw.py``)."""
    from restore.noise.vst import gat

    f0, f1 = (float(gat(torch.tensor(v, dtype=torch.float64), gain, sigma)) for v in (0.0, 1.0))
    return (gat(y, gain, sigma) - f0) / (f1 - f0), (f0, f1)


def denoise_planes(planes: torch.Tensor, noise: RawNoise, run_grey, *, opponent: bool = True) -> torch.Tensor:
    """Denoise (4, h, w) planes; ``run_grey(t (1, h, w), sigma) -> (1, h, w)`` is a grey
    Gaussian denoiser on ~[0, 1] data.  Pure Gaussian noise (gain 0) skips the GAT."""
    from restore.noise.vst import gat_inverse

    def gaussian(t: torch.Tensor, s: float) -> torch.Tensor:
        if not opponent:
            return torch.cat([run_grey(t[k : k + 1], s) for k in range(4)])
        z = bayer_to_opponent(t)
        out = [run_grey(z[k : k + 1], s / float(_SCALE[k])) for k in range(4)]
        return opponent_to_bayer(torch.cat(out))

    y = planes.double()
    if noise.gain <= 0:
        return gaussian(y.float(), noise.sigma).to(planes.dtype)
    t, (f0, f1) = gat_unit(y - noise.mu, noise.gain, noise.sigma)
    # stretch dark frames so their bright end (99.9th percentile) sits at 1: the grey model was
    # trained on images spanning [0, 1] with sigma >= 5/255
    q = min(1.0, max(STRETCH_FLOOR, float(torch.quantile(t.flatten()[:: max(1, t.numel() // 1_000_000)], 0.999))))
    d = gaussian((t / q).float(), 1.0 / (f1 - f0) / q).double() * q
    return (gat_inverse(d * (f1 - f0) + f0, noise.gain, noise.sigma) + noise.mu).to(planes.dtype)


def denoise_raw(frame, *, profile=None, model=None, method: str = "default", device="auto",
                tile: int | None = 512, overlap: int = 64, opponent: bool = True):
    """Denoise a :class:`restore.io.raw.RawFrame`; returns ``(mosaic, noise)``: the denoised
    uint16 (H, W) mosaic in DN (same CFA phase and levels) and the :class:`RawNoise` used.

    ``profile``: a :class:`SensorProfile` or its JSON path / shipped name (then the
    frame's ISO picks K); without one the noise is estimated from the frame."""
    from restore.api import select_model
    from restore.io.raw import pack, unpack

    if isinstance(profile, (str, bytes)) or hasattr(profile, "__fspath__"):
        from restore.noise.sensor import load_profile

        profile = load_profile(profile)
    planes = pack(frame)
    scale = float(np.mean(frame.scale))
    noise = raw_noise(planes, profile=profile, iso=frame.meta.get("iso") or None, scale=scale)
    r = select_model(1, method=method, model=model, device=device, noise="raw")  # RAW default, else the grey one

    def run_grey(t, s):
        return torch.as_tensor(r.run(t, s, tile=tile, overlap=overlap))

    with torch.no_grad():
        x = denoise_planes(torch.from_numpy(planes), noise, run_grey, opponent=opponent)
    return unpack(x.numpy(), frame), noise
