"""Concrete noise families and the ``make_noise`` spec parser.

All families follow the conventions of :mod:`restore.noise.base`: images
``(N, C, H, W)`` in ``[0, 1]``, parameters as float / ``()`` / ``(N,)`` /
broadcastable tensors stored as buffers, optional ``torch.Generator``.

Tweedie / Noise2Score formulas (Kim & Ye, "Noise2Score", NeurIPS 2021), with
``l'`` the score of the noisy marginal density:

=================  =================================  ===============================
family             model                              ``tweedie(y, score)``
=================  =================================  ===============================
Gaussian           ``y = x + sigma n``                ``y + sigma^2 l'(y)``
Poisson            ``z = y/gain ~ Poisson(x/gain)``   ``gain (z + 1/2) exp(l'_z(z))``
PoissonGaussian    ``gain Poisson(x/gain) + sigma n`` NotImplementedError (see class)
Gamma              ``y ~ Gamma(k, rate k/x)``         ``k y / ((k - 1) - y l'(y))``
=================  =================================  ===============================
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from .base import NoiseModel, ParamLike, _as_param

__all__ = ["Gaussian", "Poisson", "PoissonGaussian", "Gamma", "make_noise"]

_LOG_2PI = math.log(2.0 * math.pi)
_EPS = 1e-12


def _fmt(t: Tensor) -> str:
    return f"{t.item():.6g}" if t.numel() == 1 else f"tensor{tuple(t.shape)}"


class Gaussian(NoiseModel):
    """Additive white Gaussian noise ``y = x + sigma * n``, ``n ~ N(0, 1)``.

    ``sigma`` is in ``[0, 1]`` image units (``25/255`` for "sigma 25").

    * ``variance(x) = sigma^2``.
    * ``nll``: the exact negative log-density, *no* constant dropped:
      ``sum 0.5 ((y - x) / sigma)^2 + log(sigma) + 0.5 log(2 pi)``.
    * ``tweedie(y, score) = y + sigma^2 * score`` with ``score = d/dy log p(y)``
      (exact posterior mean, Tweedie's formula).
    """

    sigma: Tensor

    def __init__(self, sigma: ParamLike):
        super().__init__()
        self.register_buffer("sigma", _as_param(sigma, "sigma"))

    def extra_repr(self) -> str:
        return f"sigma={_fmt(self.sigma)}"

    def sample(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        return x + self._param("sigma", x) * self._randn(x, generator)

    def variance(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x) + self._param("sigma", x) ** 2

    def nll(self, y: Tensor, x: Tensor) -> Tensor:
        s = self._param("sigma", x)
        t = 0.5 * ((y - x) / s) ** 2 + torch.log(s) + 0.5 * _LOG_2PI
        return self._per_image(t)

    def tweedie(self, y: Tensor, score: Tensor) -> Tensor:
        return y + self._param("sigma", y) ** 2 * score


class Poisson(NoiseModel):
    """Scaled Poisson (shot) noise ``y = gain * z``, ``z ~ Poisson(x / gain)``.

    ``gain`` (``zeta`` in Noise2Score) is the value of one photon in image
    units; the expected photon count of a pixel is ``x / gain``.  Negative
    ``x`` is clamped to 0 (a rate cannot be negative).

    * ``variance(x) = gain * x``.
    * ``nll``: exact negative log-pmf of the counts ``z = y / gain``,
      ``sum lam - z log(lam) + lgamma(z + 1)`` with ``lam = max(x, 1e-12)/gain``;
      no constant dropped (``lgamma(z+1)`` is kept so that the value is a true
      log-pmf; it does not depend on ``x``).  ``y`` is *not* required to lie
      exactly on the lattice ``gain * N``.
    * ``tweedie(y, score)``: **``score`` is the score of the marginal of the
      count image ``z = y / gain``, i.e. ``d/dz log p(z)``, not w.r.t. ``y``**
      (the network is trained on ``z``; see :meth:`counts`).  Then
      ``x_hat = gain * (z + 1/2) * exp(score)``, which is
      ``gain * exp(E[log lam | z])`` with Noise2Score's approximation
      ``psi(z + 1) ~= log(z + 1/2)`` (exponential-family Tweedie in the natural
      parameter ``log lam``).  Relative error of that approximation is
      ``< 1/(24 (z + 1/2)^2)``, i.e. < 0.2 % for ``z >= 5``.
    """

    gain: Tensor

    def __init__(self, gain: ParamLike):
        super().__init__()
        self.register_buffer("gain", _as_param(gain, "gain"))

    def extra_repr(self) -> str:
        return f"gain={_fmt(self.gain)}"

    def counts(self, y: Tensor) -> Tensor:
        """Count image ``z = y / gain`` (the domain of the Poisson score)."""
        return y / self._param("gain", y)

    def sample(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        g = self._param("gain", x)
        rate = (x.clamp(min=0) / g).expand_as(x)
        return g * torch.poisson(rate, generator=generator)

    def variance(self, x: Tensor) -> Tensor:
        return self._param("gain", x) * x.clamp(min=0)

    def nll(self, y: Tensor, x: Tensor) -> Tensor:
        g = self._param("gain", x)
        lam = x.clamp(min=_EPS) / g
        z = y / g
        t = lam - torch.xlogy(z, lam) + torch.lgamma(z + 1)
        return self._per_image(t)

    def tweedie(self, y: Tensor, score: Tensor) -> Tensor:
        g = self._param("gain", y)
        z = y / g
        return g * (z + 0.5) * torch.exp(score)


class PoissonGaussian(NoiseModel):
    """Poisson-Gaussian noise ``y = gain * Poisson(x / gain) + sigma * n``.

    * ``variance(x) = gain * x + sigma^2`` (``x`` clamped at 0).
    * ``nll``: **Gaussian approximation** with signal-dependent variance
      ``v = gain * max(x, 0) + sigma^2``:
      ``sum 0.5 (y - x)^2 / v + 0.5 log(v) + 0.5 log(2 pi)`` (the exact
      likelihood is an infinite Poisson mixture; no constant dropped from the
      approximation).
    * ``tweedie``: there is no closed-form Tweedie formula for this mixture.
      By default it raises ``NotImplementedError``; the principled route is to
      variance-stabilise with the generalised Anscombe transform (GAT) and use
      the Gaussian formula in the transformed domain (a later issue).  With
      ``approx_tweedie=True`` it returns the first-order Gaussian
      approximation ``x_hat = y + v(y) * score`` with
      ``v(y) = gain * max(y, 0) + sigma^2`` and ``score = d/dy log p(y)``; it
      is exact for ``gain -> 0`` and ignores the ``dv/dx`` terms otherwise.
    """

    gain: Tensor
    sigma: Tensor

    def __init__(self, gain: ParamLike, sigma: ParamLike, approx_tweedie: bool = False):
        super().__init__()
        self.register_buffer("gain", _as_param(gain, "gain"))
        self.register_buffer("sigma", _as_param(sigma, "sigma"))
        self.approx_tweedie = bool(approx_tweedie)

    def extra_repr(self) -> str:
        return f"gain={_fmt(self.gain)}, sigma={_fmt(self.sigma)}"

    def sample(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        g = self._param("gain", x)
        rate = (x.clamp(min=0) / g).expand_as(x)
        shot = g * torch.poisson(rate, generator=generator)
        return shot + self._param("sigma", x) * self._randn(x, generator)

    def variance(self, x: Tensor) -> Tensor:
        return self._param("gain", x) * x.clamp(min=0) + self._param("sigma", x) ** 2

    def nll(self, y: Tensor, x: Tensor) -> Tensor:
        v = self.variance(x)
        t = 0.5 * (y - x) ** 2 / v + 0.5 * torch.log(v) + 0.5 * _LOG_2PI
        return self._per_image(t)

    def tweedie(self, y: Tensor, score: Tensor) -> Tensor:
        if not self.approx_tweedie:
            raise NotImplementedError(
                "PoissonGaussian has no exact Tweedie formula; apply the generalised "
                "Anscombe transform (GAT) and use Gaussian(1).tweedie in that domain "
                "(planned), or construct PoissonGaussian(..., approx_tweedie=True) "
                "for the first-order approximation y + var(y) * score"
            )
        v = self._param("gain", y) * y.clamp(min=0) + self._param("sigma", y) ** 2
        return y + v * score


def _standard_gamma(alpha: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Gamma(alpha, 1) samples (same shape as ``alpha``), reproducible with ``generator``.

    Marsaglia & Tsang (2000) squeeze/rejection for ``alpha >= 1``; for
    ``alpha < 1`` uses ``Gamma(alpha) = Gamma(alpha + 1) * U^(1/alpha)``.
    (``torch._standard_gamma`` does not accept a generator.)
    """
    flat = alpha.reshape(-1)
    boost = flat < 1
    a = torch.where(boost, flat + 1, flat)
    d = a - 1.0 / 3.0
    c = torch.rsqrt(9.0 * d)
    out = torch.empty_like(a)
    idx = torch.arange(a.numel(), device=a.device)
    kw = dict(generator=generator, dtype=a.dtype, device=a.device)
    for _ in range(1000):  # acceptance >= 95 % per round
        if idx.numel() == 0:
            break
        dd, cc = d[idx], c[idx]
        z = torch.randn(idx.shape, **kw)
        v = (1 + cc * z) ** 3
        u = torch.rand(idx.shape, **kw)
        vpos = torch.where(v > 0, v, torch.ones_like(v))
        ok = (v > 0) & (torch.log(u) < 0.5 * z * z + dd - dd * vpos + dd * torch.log(vpos))
        out[idx[ok]] = (dd * v)[ok]
        idx = idx[~ok]
    else:  # pragma: no cover - probability ~0
        raise RuntimeError("gamma sampler did not converge")
    if bool(boost.any()):
        u = torch.rand(a.shape, **kw)
        out = torch.where(boost, out * u ** (1.0 / flat), out)
    return out.reshape(alpha.shape)


class Gamma(NoiseModel):
    """Multiplicative Gamma (speckle) noise ``y ~ Gamma(shape=k, rate=k/x)``.

    ``E[y | x] = x`` and ``Var[y | x] = x^2 / k`` (``k`` = number of looks).
    ``x`` must be positive; ``x = 0`` gives ``y = 0``.

    * ``nll``: exact negative log-density, no constant dropped:
      ``sum lgamma(k) - k log k + k log x + k y / x - (k - 1) log y``, with
      ``x`` clamped to ``>= 1e-12`` and ``y`` to ``>= 1e-12``.
    * ``tweedie(y, score) = k y / ((k - 1) - y * score)`` with
      ``score = d/dy log p(y)``; this is ``1 / E[1/x | y]`` (Tweedie in the
      natural parameter ``-k/x``), Noise2Score's Gamma estimator.
    """

    k: Tensor

    def __init__(self, k: ParamLike):
        super().__init__()
        self.register_buffer("k", _as_param(k, "k"))

    def extra_repr(self) -> str:
        return f"k={_fmt(self.k)}"

    def sample(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        k = self._param("k", x)
        g = _standard_gamma(k.expand_as(x).contiguous(), generator)
        return x * g / k

    def variance(self, x: Tensor) -> Tensor:
        return x**2 / self._param("k", x)

    def nll(self, y: Tensor, x: Tensor) -> Tensor:
        k = self._param("k", x)
        xc = x.clamp(min=_EPS)
        yc = y.clamp(min=_EPS)
        t = (torch.lgamma(k) - k * torch.log(k) + k * torch.log(xc) + k * yc / xc
             - (k - 1) * torch.log(yc))
        return self._per_image(t)

    def tweedie(self, y: Tensor, score: Tensor) -> Tensor:
        k = self._param("k", y)
        return k * y / ((k - 1) - y * score)


_SPEC_HELP = (
    "valid noise specs: 'gaussian:SIGMA' (SIGMA > 1 means /255, e.g. gaussian:25 or "
    "gaussian:0.1), 'poisson:GAIN', 'poisson-gaussian:GAIN,SIGMA', 'gamma:K'"
)


def _sigma_value(v: float) -> float:
    """Gaussian std from a spec: values > 1 are on the 0..255 scale."""
    return v / 255.0 if v > 1 else v


def make_noise(spec: str) -> NoiseModel:
    """Build a noise model from a short string spec.

    Accepted forms (case-insensitive, whitespace ignored):

    * ``"gaussian:25"`` / ``"gaussian:0.1"`` -- :class:`Gaussian`; a sigma
      ``> 1`` is interpreted on the 0..255 scale and divided by 255, a sigma
      ``<= 1`` is already in ``[0, 1]`` units.
    * ``"poisson:0.01"`` -- :class:`Poisson` with ``gain = 0.01``.
    * ``"poisson-gaussian:0.01,0.02"`` (also ``poisson_gaussian``) --
      :class:`PoissonGaussian` with ``gain, sigma``; the same ``> 1 -> /255``
      rule applies to sigma.
    * ``"gamma:100"`` -- :class:`Gamma` with ``k = 100`` looks.

    Raises ``ValueError`` (one line naming the valid forms) on anything else,
    including non-positive or non-finite values.
    """
    if not isinstance(spec, str):
        raise ValueError(f"noise spec must be a string, got {type(spec).__name__}; {_SPEC_HELP}")
    s = "".join(spec.split()).lower()
    name, sep, args = s.partition(":")
    name = name.replace("_", "-")
    try:
        vals = [float(a) for a in args.split(",")] if sep and args else []
    except ValueError:
        vals = None
    nargs = {"gaussian": 1, "poisson": 1, "poisson-gaussian": 2, "gamma": 1}.get(name)
    if (nargs is None or vals is None or len(vals) != nargs
            or not all(math.isfinite(v) and v > 0 for v in vals)):
        raise ValueError(f"bad noise spec {spec!r}; {_SPEC_HELP}")
    if name == "gaussian":
        return Gaussian(_sigma_value(vals[0]))
    if name == "poisson":
        return Poisson(vals[0])
    if name == "poisson-gaussian":
        return PoissonGaussian(vals[0], _sigma_value(vals[1]))
    return Gamma(vals[0])
