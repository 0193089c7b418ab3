"""Physics-based camera sensor noise (the ELD noise-formation model, Wei et al.,
CVPR 2020 / TPAMI 2021) on packed RAW planes.

In DN, for a clean signal ``s = x * S / ratio`` (``x``: black-subtracted clean
planes in [0, 1], ``S = white - black`` DN, ``ratio``: exposure amplification)::

    D = K * Poisson(s / K) + TL(lam; 0, sigma_tl) + bias_c + N(0, sigma_r^2)[row, c] + U(-q/2, q/2)
    y = D * ratio / S

``K`` is the system gain (DN per electron), ``TL`` the Tukey-lambda read noise
(shape ``lam``, scale ``sigma_tl`` DN; sampled by its inverse CDF), the row
noise is one Gaussian draw per (image, CFA channel, row) broadcast along the row,
``bias_c`` a DC offset per CFA channel (DN) and ``q`` the quantisation step (DN).
So ``E[y] = x + bias * ratio / S`` and
``Var[y] = (ratio/S)^2 (K s + sigma_tl^2 v(lam) + sigma_r^2 + q^2/12)``, with
``v(lam)`` the unit Tukey-lambda variance (:func:`tukey_lambda_variance`).

Camera profiles (JSON; :func:`load_profile`) hold the joint log-linear model
of the parameters across ISO: ``log sigma = slope * log K + bias + N(0, sigma^2)``
for ``tl_scale`` and ``row_scale``, K's range, the Tukey shapes and the
colour-bias rows; :func:`sample_params` draws from it.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from .base import NoiseModel, ParamLike, _as_param, _bcast

__all__ = ["SensorNoise", "SensorProfile", "tukey_lambda_quantile", "tukey_lambda_variance", "sample_tukey_lambda",
           "load_profile", "sample_params", "PROFILES"]

PROFILE_DIR = Path(__file__).parent / "profiles"


def tukey_lambda_quantile(u: Tensor, lam) -> Tensor:
    """Inverse CDF of the standard Tukey-lambda distribution:
    ``(u^lam - (1-u)^lam) / lam``, ``log(u / (1-u))`` at ``lam = 0`` (the logistic)."""
    lam = torch.as_tensor(lam, dtype=u.dtype, device=u.device)
    small = lam.abs() < 1e-6
    safe = torch.where(small, torch.ones_like(lam), lam)
    q = (u.pow(safe) - (1 - u).pow(safe)) / safe
    return torch.where(small, torch.log(u) - torch.log1p(-u), q)


def tukey_lambda_variance(lam: float) -> float:
    """Variance of the standard (scale 1) Tukey-lambda distribution; finite for lam > -1/2."""
    lam = float(lam)
    if lam <= -0.5:
        return math.inf
    if abs(lam) < 1e-6:
        return math.pi ** 2 / 3
    return 2.0 / lam ** 2 * (1.0 / (1 + 2 * lam) - math.exp(2 * math.lgamma(lam + 1) - math.lgamma(2 * lam + 2)))


def sample_tukey_lambda(shape, lam, scale, *, generator=None, dtype=torch.float32, device="cpu") -> Tensor:
    """``scale * Q(u)``, ``u ~ U(0, 1)`` open: Tukey-lambda samples of ``shape``."""
    tiny = torch.finfo(dtype).eps
    u = torch.rand(shape, generator=generator, dtype=dtype, device=device).clamp(tiny, 1 - tiny)
    return scale * tukey_lambda_quantile(u, lam)


class SensorNoise(NoiseModel):
    """ELD sensor noise on packed RAW planes ``x`` (N, C, H, W), C = 4 (R, G1, G2, B) or any C.

    Parameters (float, ``()``, ``(N,)`` or broadcastable tensors; DN unless said):
    ``K`` system gain (DN/e-), ``sigma_tl`` Tukey read-noise scale, ``lam`` its shape,
    ``sigma_r`` row-noise std, ``bias`` colour bias per channel (shape ``(C,)`` or
    ``(N, C)``), ``q`` quantisation step, ``scale`` S = white - black (DN per unit of x),
    ``ratio`` exposure amplification.  Components can be switched off with
    ``components`` (subset of ``"ptrqd"``: Poisson, Tukey read, row, quantisation, bias).
    Samples are not clipped.
    """

    def __init__(self, K: ParamLike, sigma_tl: ParamLike, lam: ParamLike = 0.0, sigma_r: ParamLike = 0.0,
                 bias: ParamLike | None = None, *, q: float = 1.0, scale: ParamLike = 1.0, ratio: ParamLike = 1.0,
                 components: str = "ptrqd"):
        super().__init__()
        self.register_buffer("K", _as_param(K, "K"))
        self.register_buffer("sigma_tl", _as_param(sigma_tl, "sigma_tl", positive=False).abs())
        self.register_buffer("lam", _as_param(lam, "lam", positive=False))
        self.register_buffer("sigma_r", _as_param(sigma_r, "sigma_r", positive=False).abs())
        self.register_buffer("bias", _as_param(0.0 if bias is None else bias, "bias", positive=False))
        self.register_buffer("scale", _as_param(scale, "scale"))
        self.register_buffer("ratio", _as_param(ratio, "ratio"))
        if (self.lam <= -0.5).any():
            raise ValueError("lam must be > -0.5 (finite variance)")
        self.q = float(q)
        if set(components) - set("ptrqd"):
            raise ValueError(f"components must be letters of 'ptrqd', got {components!r}")
        self.components = components

    @classmethod
    def from_params(cls, params: dict, **kw) -> "SensorNoise":
        """From :func:`sample_params`'s dict (keys K, sigma_tl, lam, sigma_r, bias)."""
        keys = ("K", "sigma_tl", "lam", "sigma_r", "bias")
        return cls(**{k: params[k] for k in keys if k in params}, **kw)

    def extra_repr(self) -> str:
        f = (lambda t: f"{t.item():.4g}" if t.numel() == 1 else f"tensor{tuple(t.shape)}")
        return (f"K={f(self.K)}, sigma_tl={f(self.sigma_tl)}, lam={f(self.lam)}, sigma_r={f(self.sigma_r)}, "
                f"scale={f(self.scale)}, ratio={f(self.ratio)}, components={self.components!r}")

    def _bias(self, x: Tensor) -> Tensor:
        b = self.bias.type_as(x)
        if b.ndim == 1 and b.numel() == x.shape[1] and b.numel() != 1:
            return b.reshape(1, -1, 1, 1)
        if b.ndim == 2:  # (N, C)
            return b.reshape(b.shape[0], b.shape[1], 1, 1)
        return _bcast(b, x)

    def sample(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        K, S, ratio = self._param("K", x), self._param("scale", x), self._param("ratio", x)
        s = (x.clamp(min=0) * S / ratio).expand_as(x)
        c = self.components
        d = K * torch.poisson(s / K, generator=generator) if "p" in c else s.clone()
        lam = self._param("lam", x)
        if "t" in c:
            u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            eps = torch.finfo(x.dtype).eps
            d = d + self._param("sigma_tl", x) * tukey_lambda_quantile(u.clamp(eps, 1 - eps), lam)
        if "r" in c:
            rows = torch.randn(x.shape[:-1] + (1,), generator=generator, dtype=x.dtype, device=x.device)
            d = d + self._param("sigma_r", x) * rows
        if "q" in c and self.q > 0:
            d = d + self.q * (torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) - 0.5)
        if "d" in c:
            d = d + self._bias(x)
        return d * ratio / S

    def read_variance(self, x: Tensor) -> Tensor:
        """Signal-independent variance in DN^2: Tukey read + row + quantisation."""
        c, v = self.components, torch.zeros((), dtype=x.dtype, device=x.device)
        if "t" in c:
            lam = self.lam.detach().cpu().reshape(-1)
            unit = torch.tensor([tukey_lambda_variance(float(v)) for v in lam], dtype=x.dtype, device=x.device)
            unit = unit.reshape(self.lam.shape)
            v = v + _bcast(unit, x) * self._param("sigma_tl", x) ** 2
        if "r" in c:
            v = v + self._param("sigma_r", x) ** 2
        if "q" in c:
            v = v + self.q ** 2 / 12
        return v

    def mean(self, x: Tensor) -> Tensor:
        """``E[y | x]`` = x + bias * ratio / S (the colour bias is the only offset)."""
        out = x.clamp(min=0) if "p" in self.components else x
        if "d" in self.components:
            out = out + self._bias(x) * self._param("ratio", x) / self._param("scale", x)
        return out

    def variance(self, x: Tensor) -> Tensor:
        K, S, ratio = self._param("K", x), self._param("scale", x), self._param("ratio", x)
        shot = K * x.clamp(min=0) * S / ratio if "p" in self.components else torch.zeros_like(x)
        return (shot + self.read_variance(x)) * (ratio / S) ** 2

    def poisson_gaussian(self) -> tuple[Tensor, Tensor]:
        """The equivalent Poisson-Gaussian model in y's units: ``Var[y] = a x + b``;
        returns ``(a, sqrt(b))`` = (gain, sigma) for the GAT (:mod:`restore.noise.vst`)."""
        x = torch.zeros(1, 1, 1, 1)
        a = (self.K * self.ratio / self.scale).reshape(-1)
        return a, self.variance(x).reshape(-1).sqrt()  # at x = 0 only the read terms remain

    def nll(self, y: Tensor, x: Tensor) -> Tensor:
        """Gaussian approximation: mean :meth:`mean`, variance :meth:`variance` (the exact
        density, a Poisson mixture of Tukey-lambda convolutions, has no closed form)."""
        v = self.variance(x).expand_as(y)
        t = 0.5 * (y - self.mean(x)) ** 2 / v + 0.5 * torch.log(v) + 0.5 * math.log(2 * math.pi)
        return self._per_image(t)

    def tweedie(self, y: Tensor, score: Tensor) -> Tensor:
        raise NotImplementedError("SensorNoise has no Tweedie formula; denoise through the GAT with "
                                  "SensorNoise.poisson_gaussian() (restore.noise.vst.through_gat)")


# --------------------------------------------------------------------------- profiles


@dataclass
class SensorProfile:
    """A camera's noise profile: the joint log-linear model across ISO.

    ``tl_scale`` / ``row_scale`` / ``gauss_scale``: ``{"slope", "bias", "sigma"}`` of
    ``log sigma = slope log K + bias + N(0, sigma^2)`` (sigma in DN, natural logs).
    ``K_range``: (K_min, K_max) DN/e-.  ``tl_shapes``: Tukey lambda values seen.
    ``color_bias``: rows of 4 per-channel offsets (DN).  ``iso_to_K``: (slope,
    intercept) of ``K = slope * ISO + intercept``.  ``black``/``white``: DN.
    """

    name: str
    K_range: tuple
    tl_scale: dict
    row_scale: dict
    tl_shapes: list
    color_bias: list = field(default_factory=list)
    gauss_scale: dict | None = None
    iso_to_K: tuple | None = None
    black: float | None = None
    white: float | None = None
    source: str = ""

    def K_of_iso(self, iso: float) -> float:
        if not self.iso_to_K:
            if self.K_range and self.K_range[0] == self.K_range[1]:  # calibrated at one ISO
                return float(self.K_range[0])
            raise ValueError(f"profile {self.name!r} has no ISO -> K line; calibrate with frames whose ISO is known")
        return float(self.iso_to_K[0] * iso + self.iso_to_K[1])

    def to_json(self, path) -> Path:
        from restore.io.atomic import atomic_write_text

        atomic_write_text(Path(path), json.dumps(asdict(self), indent=2) + "\n")
        return Path(path)


def _shipped() -> dict:
    return {p.stem: p for p in sorted(PROFILE_DIR.glob("*.json"))}


PROFILES = tuple(_shipped())


def load_profile(name_or_path) -> SensorProfile:
    """A shipped profile by name (``SonyA7S2``) or a calibration JSON by path."""
    path = _shipped().get(str(name_or_path)) or Path(name_or_path)
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{name_or_path}: no such camera profile (shipped: {', '.join(PROFILES)}; "
                                "make one with 'restore calibrate')") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a camera profile JSON ({e})") from None
    keys = SensorProfile.__dataclass_fields__
    return SensorProfile(**{k: v for k, v in doc.items() if k in keys})


def sample_params(profile: SensorProfile, *, K: float | None = None, iso: float | None = None,
                  generator: torch.Generator | None = None) -> dict:
    """One draw of (K, sigma_tl, lam, sigma_r, bias) from ``profile``'s joint model.
    K: given, from ``iso``, or log-uniform in ``K_range``."""
    g = generator

    def u():
        return float(torch.rand((), generator=g))

    if K is None and iso is not None:
        K = profile.K_of_iso(iso)
    if K is None:
        lo, hi = (math.log(v) for v in profile.K_range)
        K = math.exp(lo + (hi - lo) * u())
    logK = math.log(K)

    def log_linear(p):
        return math.exp(p["slope"] * logK + p["bias"] + p["sigma"] * float(torch.randn((), generator=g)))

    shapes = profile.tl_shapes or [0.0]
    lam = shapes[min(int(u() * len(shapes)), len(shapes) - 1)]
    bias = profile.color_bias[min(int(u() * len(profile.color_bias)), len(profile.color_bias) - 1)] \
        if profile.color_bias else [0.0] * 4
    return {"K": K, "sigma_tl": log_linear(profile.tl_scale), "lam": float(lam),
            "sigma_r": log_linear(profile.row_scale), "bias": [float(b) for b in bias]}
