"""Forward operators ``A`` of an inverse problem ``y = A(x) + noise``.

An :class:`Operator` is a :class:`torch.nn.Module` mapping an image ``x`` of
shape (N, C, H, W) to a measurement ``y = A(x)``.  Linear operators also
provide ``adjoint`` (``A^T``, exact with respect to the Euclidean inner
product over all tensor elements) and ``pinv`` (the Moore-Penrose
pseudo-inverse ``A^+``).  Parameters live in buffers, so ``module.to(...)``
moves them; inputs of another floating dtype are handled per call.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

__all__ = ["Operator", "Composed", "cgls"]


def _sample_dot(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample inner product ``<a_n, b_n>`` of (N, ...) tensors -> (N, 1, ..., 1)."""
    dims = tuple(range(1, a.ndim))
    return (a * b).sum(dim=dims, keepdim=True) if dims else a * b


def cgls(
    A: Callable[[Tensor], Tensor],
    AT: Callable[[Tensor], Tensor],
    y: Tensor,
    *,
    n_iter: int = 100,
    tol: float = 1e-6,
) -> Tensor:
    """Least squares ``min_x ||A x - y||`` by conjugate gradient on ``A^T A x = A^T y``.

    CGLS form: mathematically CG on the normal equations, but the residual is
    kept in measurement space, which is more accurate than applying
    ``A^T A`` directly.  Starts from zero, so it converges to the
    minimum-norm solution ``A^+ y``.  Batch dimension 0 holds independent
    problems (step sizes per sample).  Stops after ``n_iter`` iterations or
    once every sample has ``||A^T (y - A x)|| <= tol * ||A^T y||``.

    Args:
        A, AT: ``x -> A x`` and ``y -> A^T y``.
        y: measurements, shape (N, ...).
        n_iter: maximum number of iterations (each one ``A`` and one ``A^T``).
        tol: relative tolerance on the normal-equation residual (dimensionless).
    """
    if n_iter < 0 or tol < 0:
        raise ValueError(f"need n_iter >= 0 and tol >= 0, got {n_iter}, {tol}")
    r = y
    s = AT(r)
    x = torch.zeros_like(s)
    p = s
    gamma = _sample_dot(s, s)
    threshold = tol**2 * gamma
    one = torch.ones_like(gamma)
    for _ in range(n_iter):
        active = gamma > threshold
        if not bool(active.any()):
            break
        q = A(p)
        qq = _sample_dot(q, q)
        ok = active & (qq > 0)
        alpha = torch.where(ok, gamma / torch.where(ok, qq, one), 0.0)
        x = x + alpha * p
        r = r - alpha * q
        s = AT(r)
        gamma_new = _sample_dot(s, s)
        beta = torch.where(ok, gamma_new / torch.where(ok, gamma, one), 0.0)
        p = s + beta * p
        gamma = torch.where(ok, gamma_new, gamma)
    return x


class Operator(nn.Module):
    """Base class of a degradation operator ``A``: (N, C, H, W) -> measurement.

    Subclasses implement :meth:`forward` and, when ``linear`` is True,
    :meth:`adjoint`.  :meth:`pinv` defaults to conjugate gradient on the
    normal equations ``A^T A x = A^T y``; subclasses with a closed form
    override it (and accept and ignore the CG keywords).  ``A @ B`` builds the
    composition ``x -> A(B(x))``.  Operators act on each batch element
    independently (the CG step sizes are computed per sample).
    """

    linear: bool = False

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def adjoint(self, y: Tensor) -> Tensor:
        """Adjoint ``A^T y``: measurement shape -> image shape."""
        raise NotImplementedError(f"{type(self).__name__} has no adjoint")

    def pinv(self, y: Tensor, *, n_iter: int = 100, tol: float = 1e-6) -> Tensor:
        """Pseudo-inverse ``A^+ y``: measurement shape -> image shape.

        Default: at most ``n_iter`` conjugate-gradient steps from zero on
        ``A^T A x = A^T y`` (:func:`cgls`, relative tolerance ``tol``), which
        converge to the minimum-norm least-squares solution.  For an
        ill-conditioned ``A`` (e.g. a wide blur) convergence is slow: raise
        ``n_iter`` or regularise.  Differentiable.
        """
        if not self.linear:
            raise NotImplementedError(f"{type(self).__name__} is not linear; no pinv")
        return cgls(self.forward, self.adjoint, y, n_iter=n_iter, tol=tol)

    def __matmul__(self, other: Operator) -> Composed:
        if not isinstance(other, Operator):
            return NotImplemented
        return Composed(self, other)

    @torch.no_grad()
    def adjointness_error(
        self, x: Tensor, generator: torch.Generator | None = None, eps: float = 1e-30
    ) -> float:
        """Relative adjoint mismatch ``|<A x, y> - <x, A^T y>| / (|<A x, y>| + eps)``.

        ``y`` is standard normal of the shape of ``A(x)``, drawn with
        ``generator`` (which must live on ``x.device``).  Inner products are
        summed over all elements.  About machine precision for a correct
        adjoint; use float64 inputs for tight checks.
        """
        Ax = self.forward(x)
        y = torch.randn(Ax.shape, generator=generator, dtype=Ax.dtype, device=Ax.device)
        lhs = (Ax * y).sum()
        rhs = (x * self.adjoint(y)).sum()
        return float((lhs - rhs).abs() / (lhs.abs() + eps))


class Composed(Operator):
    """Composition ``A @ B``: forward ``A(B(x))``, adjoint ``B^T(A^T(y))``.

    ``pinv`` uses conjugate gradient (``(A B)^+`` is not ``B^+ A^+`` in
    general).  ``linear`` is True iff both factors are linear.
    """

    def __init__(self, A: Operator, B: Operator) -> None:
        super().__init__()
        self.A = A
        self.B = B
        self.linear = A.linear and B.linear

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self.A(self.B(x))

    def adjoint(self, y: Tensor) -> Tensor:  # noqa: D102
        if not self.linear:
            raise NotImplementedError("composition with a nonlinear factor has no adjoint")
        return self.B.adjoint(self.A.adjoint(y))
