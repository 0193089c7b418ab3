"""Singular value decompositions ``A = U diag(s) V^T`` of the linear operators, for DDRM.

The spectral coefficients are kept image-shaped: ``Vt(x)`` maps (N, C, H, W)
to (N, C, H, W) coefficients, ``s`` has that shape (broadcastable, zeros for
directions ``A`` does not see), ``Ut(y)`` maps a measurement to coefficients
(zero where ``s = 0``) and ``U`` back.  So ``A x = U(s * Vt(x))`` and
``A^+ y = V(Ut(y) / s)`` on ``s > 0``.

Exact for Identity, Mask, Grayscale, Downsample (box or decimation) and Blur
with a separable kernel (every Gaussian): the zero-padded 'same' convolution
is ``Y = K_h X K_w^T`` with two Toeplitz matrices, whose SVDs give the 2-D one.
"""
from __future__ import annotations

import torch
from torch import Tensor
import torch.nn.functional as F

from .base import Operator
from .linear import Blur, Downsample, Grayscale, Identity, Mask

__all__ = ["OperatorSVD", "svd_of"]


def _orthonormal_with_first(v: Tensor) -> Tensor:
    """An orthonormal (n, n) matrix whose first row is ``v / |v|`` (float64)."""
    v = v.double().flatten()
    n = v.numel()
    m = torch.eye(n, dtype=torch.float64)
    m[:, 0] = v
    q, _ = torch.linalg.qr(m)
    q = q * torch.sign(q[:, :1].T @ v)  # first column along +v
    return q.T.contiguous()


class OperatorSVD:
    """``A = U diag(s) V^T`` with image-shaped coefficients; see the module docstring.

    Built by :func:`svd_of`; ``s`` has the coefficients' shape (or broadcasts to it).
    """

    def __init__(self, s: Tensor, Vt, V, Ut, U):
        self.s, self._Vt, self._V, self._Ut, self._U = s, Vt, V, Ut, U

    def Vt(self, x: Tensor) -> Tensor:
        return self._Vt(x)

    def V(self, c: Tensor) -> Tensor:
        return self._V(c)

    def Ut(self, y: Tensor) -> Tensor:
        return self._Ut(y)

    def U(self, c: Tensor) -> Tensor:
        return self._U(c)

    def forward(self, x: Tensor) -> Tensor:
        """``A x`` through the decomposition (for checks)."""
        return self.U(self.s * self.Vt(x))


def _channel_mix(q: Tensor, x: Tensor) -> Tensor:
    return torch.einsum("ij,njhw->nihw", q.type_as(x), x)


def _blocks(x: Tensor, f: int) -> Tensor:
    n, c, h, w = x.shape
    return F.pixel_unshuffle(x, f).reshape(n, c, f * f, h // f, w // f)


def _unblocks(b: Tensor, f: int) -> Tensor:
    n, c, k, h, w = b.shape
    return F.pixel_shuffle(b.reshape(n, c * k, h, w), f)


def _toeplitz(k1: Tensor, n: int) -> Tensor:
    """(n, n) matrix of the zero-padded 'same' 1-D convolution with odd kernel ``k1``."""
    r = k1.numel() // 2
    i = torch.arange(n)
    d = i[:, None] - i[None, :] + r  # M[i, j] = k[i - j + r]
    ok = (d >= 0) & (d < k1.numel())
    return torch.where(ok, k1.double()[d.clamp(0, k1.numel() - 1)], torch.zeros((), dtype=torch.float64))


def _separable(kernel: Tensor) -> tuple[Tensor, Tensor] | None:
    k = kernel.double()
    if k.shape[0] != 1:
        return None
    u, s, vh = torch.linalg.svd(k[0, 0])
    if s.numel() > 1 and float(s[1]) > 1e-6 * float(s[0]):
        return None
    return u[:, 0] * s[0].sqrt(), vh[0] * s[0].sqrt()


def svd_of(A: Operator, shape: tuple[int, int, int, int], *, s_min: float = 0.0) -> OperatorSVD:
    """The SVD of ``A`` for images of ``shape`` (N, C, H, W); singular values ``<= s_min`` count as 0.

    Raises NotImplementedError for operators without a known decomposition
    (compositions, non-separable blur kernels, nonlinear operators).
    """
    n, c, h, w = shape
    cut = (lambda s: torch.where(s > s_min, s, torch.zeros_like(s)))
    if isinstance(A, Identity):
        ident = lambda t: t  # noqa: E731
        return OperatorSVD(torch.ones(1, 1, 1, 1), ident, ident, ident, ident)
    if isinstance(A, Mask):
        m = A._mask(torch.zeros(shape))
        m = m.expand(shape) if m.ndim == 4 else m.expand(n, c, h, w)
        ident = lambda t: t  # noqa: E731
        return OperatorSVD(cut(m.contiguous()), ident, ident, lambda y: y * (m > 0).type_as(y), ident)
    if isinstance(A, Grayscale):
        wts = A.weights.flatten()
        if wts.numel() != c:
            raise ValueError(f"Grayscale expects {wts.numel()} channels, the image has {c}")
        q = _orthonormal_with_first(wts).float()
        s = torch.zeros(1, c, 1, 1)
        s[0, 0] = float(wts.double().norm())

        def ut(y):
            return torch.cat([y, y.new_zeros(y.shape[0], c - 1, *y.shape[-2:])], dim=1)

        return OperatorSVD(s, lambda x: _channel_mix(q, x), lambda co: _channel_mix(q.T, co), ut, lambda co: co[:, :1])
    if isinstance(A, Downsample):
        f = A.factor
        if h % f or w % f:
            raise ValueError(f"Downsample: ({h}, {w}) not divisible by factor {f}")
        if A.filter == "box":
            q = _orthonormal_with_first(torch.ones(f * f)).float()
            s0 = 1.0 / f
        else:
            q = torch.eye(f * f)
            s0 = 1.0
        s = torch.zeros(1, 1, f * f, 1, 1)
        s[:, :, 0] = s0
        s = _unblocks(s.expand(1, c, f * f, h // f, w // f), f)

        def vt(x):
            return _unblocks(torch.einsum("ij,ncjhw->ncihw", q.type_as(x), _blocks(x, f)), f)

        def v(co):
            return _unblocks(torch.einsum("ji,ncjhw->ncihw", q.type_as(co), _blocks(co, f)), f)

        def ut(y):
            b = y.new_zeros(y.shape[0], y.shape[1], f * f, *y.shape[-2:])
            b[:, :, 0] = y
            return _unblocks(b, f)

        return OperatorSVD(s, vt, v, ut, lambda co: _blocks(co, f)[:, :, 0])
    if isinstance(A, Blur):
        sep = _separable(A.kernel)
        if sep is None:
            raise NotImplementedError("Blur: only a separable kernel shared by the channels has a known SVD")
        kh, kw = sep
        Uh, Sh, Vht = torch.linalg.svd(_toeplitz(kh, h))
        Uw, Sw, Vwt = torch.linalg.svd(_toeplitz(kw, w))
        Uh, Vh, Uw, Vw = Uh.float(), Vht.T.float(), Uw.float(), Vwt.T.float()
        s = cut(torch.outer(Sh, Sw).float()).reshape(1, 1, h, w)

        def two(L, R):
            return lambda t: L.type_as(t) @ t @ R.type_as(t)

        return OperatorSVD(s, two(Vh.T, Vw), two(Vh, Vw.T), two(Uh.T, Uw), two(Uh, Uw.T))
    raise NotImplementedError(
        f"{type(A).__name__}: no known SVD (DDRM needs identity, mask, grayscale, downsample or a separable blur)")
