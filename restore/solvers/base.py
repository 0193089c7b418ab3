"""What every diffusion-prior solver shares: the [0, 1] <-> [-1, 1] map, the measurement
residual, reverse-diffusion steps between any two timesteps, and the registry.

Conventions: the user's image ``x`` and measurement ``y = A(x) + n``,
``n ~ N(0, sigma^2)``, are in [0, 1] units; the prior works on ``z = 2 x - 1``
in [-1, 1].  For a linear ``A`` that is ``y_z = 2 y - A(1) = A z + 2 n``, so
linear-algebra solvers (DDRM, the pseudo-inverse) use ``A`` unchanged with
noise ``2 sigma``; gradient solvers evaluate ``A((z + 1) / 2)`` directly and so
also take nonlinear or learnable operators (Exposure).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from restore.diffusion.prior import DiffusionPrior
from restore.operators import Operator
from restore.registry import Registry

SOLVERS = Registry("solver")
register_solver = SOLVERS.register


def get_solver(name: str, **params) -> "Solver":
    return SOLVERS.build(name, **params)


def to_prior(x: Tensor) -> Tensor:
    """[0, 1] image -> the prior's [-1, 1]."""
    return 2 * x - 1


def from_prior(z: Tensor) -> Tensor:
    """The prior's [-1, 1] -> [0, 1] image."""
    return (z + 1) / 2


def linear_measurement(A: Operator, y: Tensor, shape) -> Tensor:
    """``y_z = 2 y - A(1)``: the measurement of ``z = 2 x - 1`` under a linear ``A``."""
    return 2 * y - A(torch.ones(shape, dtype=y.dtype, device=y.device))


def initial_estimate(A: Operator, y: Tensor) -> Tensor:
    """``clip(A^+ y, 0, 1)`` in [0, 1] units (plain pseudo-inverse; the bench's ``pinv`` row)."""
    with torch.no_grad():
        return A.pinv(y).clamp(0, 1)


def image_shape(A: Operator, y: Tensor) -> tuple:
    """Shape of the image ``x`` behind a measurement ``y`` (the adjoint's for linear ``A``)."""
    with torch.no_grad():
        return tuple((A.adjoint(y) if A.linear else A.pinv(y)).shape)


def start_estimate(A: Operator, y: Tensor, *, s_min: float = 3e-2) -> Tensor:
    """A starting image in prior units: the truncated-SVD pseudo-inverse of ``y_z = 2 y - A(1)``.

    Singular values ``<= s_min`` are dropped (as in the official RED-Diff/DDRM code), so a blur
    is not inverted into noise, and unobserved pixels start at 0 (mid-grey), not at black.
    Operators without a known SVD use conjugate-gradient ``A^+ y_z``; nonlinear ones ``2 A^+(y) - 1``.
    Clipped to [-1, 1].
    """
    from restore.operators.svd import svd_of

    shape = image_shape(A, y)
    with torch.no_grad():
        if not A.linear:
            return to_prior(A.pinv(y)).clamp(-1, 1)
        yz = linear_measurement(A, y, shape)
        try:
            svd = svd_of(A, shape, s_min=s_min)
        except NotImplementedError:
            return A.pinv(yz).clamp(-1, 1)
        s = svd.s.to(device=y.device, dtype=y.dtype).expand(shape)
        c = torch.where(s > 0, svd.Ut(yz) / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(s))
        return svd.V(c).clamp(-1, 1)


def reject_blind(A: Operator, solver: str) -> None:
    """Only GDP estimates an operator's trainable parameters; the others would silently ignore them."""
    if any(p.requires_grad for p in A.parameters()):
        raise ValueError(f"{solver} cannot estimate the operator's parameters (blind mode): use gdp, "
                         "or give the operator's values (e.g. exposure:gain=0.1 without blind=1)")


def residual(A: Operator, z: Tensor, y: Tensor) -> Tensor:
    """``A((z + 1) / 2) - y`` in [0, 1] units (differentiable in ``z`` and in ``A``'s parameters)."""
    return A(from_prior(z)) - y


def data_lipschitz(A: Operator, shape, like: Tensor, *, iters: int = 20) -> float:
    """``||J^T J||`` of ``x -> A(x)`` (largest eigenvalue; J the Jacobian at x = 0.5) by power iteration.

    Exact for linear and affine operators (Exposure); autograd gives ``J^T``, so no adjoint is needed.
    """
    gen = torch.Generator(device=like.device).manual_seed(0)
    v = torch.randn(shape, generator=gen, dtype=like.dtype, device=like.device)
    x = torch.full(shape, 0.5, dtype=like.dtype, device=like.device, requires_grad=True)
    Ax = A(x)
    lam = 1.0
    for _ in range(iters):
        v = v / v.norm().clamp_min(1e-30)
        with torch.no_grad():
            u = A(x.detach() + v) - Ax.detach()  # J v (affine A)
        (w,) = torch.autograd.grad(Ax, x, grad_outputs=u, retain_graph=True)  # J^T J v
        lam = float(w.norm())
        v = w.detach()
    return lam


def posterior_step(prior: DiffusionPrior, x_t: Tensor, x0: Tensor, t: int, t_prev: int) -> tuple[Tensor, float]:
    """Mean and std of ``q(x_{t_prev} | x_t, x0)`` for any ``t > t_prev >= -1`` (strided DDPM).

    With ``abar`` at both ends and ``beta = 1 - abar_t / abar_prev``: mean =
    ``sqrt(abar_prev) beta / (1 - abar_t) x0 + sqrt(1 - beta) (1 - abar_prev) / (1 - abar_t) x_t``,
    variance ``beta (1 - abar_prev) / (1 - abar_t)`` (0 at ``t_prev = -1``).
    """
    a_t, a_p = prior.schedule.abar(t), prior.schedule.abar(t_prev)
    beta = 1 - a_t / a_p
    mean = (a_p**0.5 * beta / (1 - a_t)) * x0 + ((1 - beta) ** 0.5 * (1 - a_p) / (1 - a_t)) * x_t
    return mean, (beta * (1 - a_p) / (1 - a_t)) ** 0.5


def randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


@dataclass
class Solver:
    """Base class: ``solver(y, A, prior, sigma=...) -> x`` (N, C, H, W) in [0, 1]."""

    name = "base"

    def __call__(self, y: Tensor, A: Operator, prior: DiffusionPrior, *, sigma: float = 0.0,
                 generator: torch.Generator | None = None) -> Tensor:
        """Restore ``x`` from ``y = A(x) + N(0, sigma^2)`` (``y``, ``sigma`` in [0, 1] units)."""
        raise NotImplementedError

    def validate(self) -> None:
        """Raise ValueError on settings out of range (called before any work)."""
        steps = getattr(self, "steps", 1)
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"{self.name}: steps must be a positive integer, got {steps!r}")

    def params(self) -> dict:
        from dataclasses import asdict

        return asdict(self)
