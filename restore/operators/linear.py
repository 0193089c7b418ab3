"""Concrete linear operators: identity, blur, downsampling, masking, grayscale.

All act on images of shape (N, C, H, W) and follow the input's device and
floating dtype (buffers are cast with ``type_as`` only when the dtype
differs; move them once with ``module.to(device)``).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Operator
from .exposure import Exposure

__all__ = [
    "Identity", "Blur", "Downsample", "Mask", "Grayscale", "gaussian_kernel",
    "LINEAR_OPERATORS", "make_operator",
]


def _cast(buffer: Tensor, x: Tensor) -> Tensor:
    return buffer if buffer.dtype == x.dtype else buffer.type_as(x)


class Identity(Operator):
    """``A = I``: forward, adjoint and pinv return the input unchanged."""

    linear = True

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return x

    def adjoint(self, y: Tensor) -> Tensor:  # noqa: D102
        return y

    def pinv(self, y: Tensor, **_: object) -> Tensor:  # noqa: D102
        return y


def gaussian_kernel(
    sigma: float, size: int | None = None, *, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Isotropic 2-D Gaussian kernel of shape (size, size), summing to 1.

    Args:
        sigma: standard deviation in pixels (> 0).
        size: odd side length; default ``2 * ceil(3 * sigma) + 1``.
    """
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"gaussian_kernel: sigma must be finite and > 0, got {sigma}")
    if size is None:
        size = 2 * math.ceil(3 * sigma) + 1
    if size < 1 or size % 2 == 0:
        raise ValueError(f"gaussian_kernel: size must be a positive odd integer, got {size}")
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    k = torch.outer(g, g)
    return (k / k.sum()).to(dtype)


class Blur(Operator):
    """Per-channel 2-D convolution ``A x = k * x`` with zero padding, 'same' size.

    ``kernel`` has shape (kh, kw) (shared by all channels) or (C, kh, kw),
    with odd kh and kw; its centre is the origin.  ``forward`` is a true
    convolution (impulse response = ``kernel``), ``adjoint`` the matching
    correlation, exact for the zero-padded definition: pixels outside the
    image are zero, the output has the input's (H, W).  ``pinv`` is the
    inherited conjugate gradient on the normal equations (no regularisation),
    not an FFT formula, which would assume circular boundaries.
    """

    linear = True

    def __init__(self, kernel: Tensor) -> None:
        super().__init__()
        kernel = torch.as_tensor(kernel)
        if not kernel.is_floating_point():
            kernel = kernel.float()
        if kernel.ndim not in (2, 3) or kernel.shape[-1] % 2 == 0 or kernel.shape[-2] % 2 == 0:
            raise ValueError(
                f"Blur: kernel must be (k, k) or (C, k, k) with odd sides, got {tuple(kernel.shape)}"
            )
        kernel = kernel.detach().clone().reshape(-1, 1, *kernel.shape[-2:])
        self.register_buffer("kernel", kernel)  # (C or 1, 1, kh, kw)
        self.padding = (kernel.shape[-2] // 2, kernel.shape[-1] // 2)

    def _weight(self, x: Tensor) -> Tensor:
        k = _cast(self.kernel, x)
        channels = x.shape[1]
        if k.shape[0] == channels:
            return k
        if k.shape[0] == 1:
            return k.expand(channels, -1, -1, -1)
        raise ValueError(f"Blur: kernel has {k.shape[0]} channels, input has {channels}")

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        w = self._weight(x).flip((-2, -1))
        return F.conv2d(x, w, padding=self.padding, groups=x.shape[1])

    def adjoint(self, y: Tensor) -> Tensor:  # noqa: D102
        return F.conv2d(y, self._weight(y), padding=self.padding, groups=y.shape[1])

    def extra_repr(self) -> str:
        c, _, kh, kw = self.kernel.shape
        return f"kernel=({c}, {kh}, {kw})"


class Downsample(Operator):
    """Downsampling by an integer ``factor``: (..., H, W) -> (..., H/f, W/f).

    ``filter='box'``: mean over each f x f block.  ``A A^T = I / f^2``, so
    ``pinv = f^2 A^T`` = nearest-neighbour upsampling and ``A(pinv(y)) == y``.

    ``filter='none'``: decimation ``x[..., ::f, ::f]``.  ``A A^T = I``, so
    ``pinv = A^T`` = zero insertion.

    H and W must be divisible by ``factor``.
    """

    linear = True

    def __init__(self, factor: int, filter: str = "box") -> None:  # noqa: A002
        super().__init__()
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            raise ValueError(f"Downsample: factor must be an integer >= 1, got {factor!r}")
        if filter not in ("box", "none"):
            raise ValueError(f"Downsample: filter must be 'box' or 'none', got {filter!r}")
        self.factor = factor
        self.filter = filter

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        f = self.factor
        *lead, h, w = x.shape
        if h % f or w % f:
            raise ValueError(f"Downsample: (H, W) = ({h}, {w}) not divisible by factor {f}")
        if self.filter == "none":
            return x[..., ::f, ::f]
        return x.reshape(*lead, h // f, f, w // f, f).mean(dim=(-3, -1))

    def _upsample(self, y: Tensor) -> Tensor:
        f = self.factor
        if self.filter == "box":
            return y.repeat_interleave(f, dim=-2).repeat_interleave(f, dim=-1)
        *lead, h, w = y.shape
        out = y.new_zeros(*lead, h, f, w, f)
        out[..., :, 0, :, 0] = y
        return out.reshape(*lead, h * f, w * f)

    def adjoint(self, y: Tensor) -> Tensor:  # noqa: D102
        up = self._upsample(y)
        return up / self.factor**2 if self.filter == "box" else up

    def pinv(self, y: Tensor, **_: object) -> Tensor:  # noqa: D102
        return self._upsample(y)

    def extra_repr(self) -> str:
        return f"factor={self.factor}, filter={self.filter!r}"


def _hash32(h):
    """Integer mixing hash on [0, 2^32) for Python ints or int64 tensors."""
    h = ((h >> 16) ^ h) * 0x45D9F3B & 0xFFFFFFFF
    h = ((h >> 16) ^ h) * 0x45D9F3B & 0xFFFFFFFF
    return (h >> 16) ^ h


class Mask(Operator):
    """Pixel mask ``A x = m * x``; forward = adjoint = pinv (``m`` is 0/1).

    Either a fixed ``mask`` of shape (H, W), (C, H, W) or (N, C, H, W),
    broadcast against the input, or a random mask with keep probability
    ``p`` (fraction of observed pixels, value 1): an (H, W) pattern shared by
    channels and batch, generated per input size from a counter-based hash of
    ``seed`` and the pixel index, so it is deterministic and identical on
    every device and in every call.
    """

    linear = True

    def __init__(
        self, mask: Tensor | None = None, *, p: float | None = None, seed: int = 0
    ) -> None:
        super().__init__()
        if (mask is None) == (p is None):
            raise ValueError("Mask: give exactly one of mask or p")
        if mask is not None:
            mask = torch.as_tensor(mask)
            if not 2 <= mask.ndim <= 4:
                raise ValueError(f"Mask: mask must have 2 to 4 dims, got {tuple(mask.shape)}")
            if not bool(((mask == 0) | (mask == 1)).all()):
                raise ValueError("Mask: mask values must be 0 or 1")
            mask = mask.detach().clone().to(torch.float32)
        elif not 0.0 <= p <= 1.0:
            raise ValueError(f"Mask: p must be in [0, 1], got {p}")
        self.register_buffer("mask", mask)
        self.p = p
        self.seed = int(seed)

    def _mask(self, x: Tensor) -> Tensor:
        if self.mask is not None:
            return _cast(self.mask, x)
        h, w = x.shape[-2:]
        idx = torch.arange(h * w, device=x.device, dtype=torch.int64)
        u = _hash32(_hash32(idx) ^ _hash32(self.seed & 0xFFFFFFFF))
        return (u < round(self.p * 2**32)).reshape(h, w).type_as(x)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return self._mask(x) * x

    def adjoint(self, y: Tensor) -> Tensor:  # noqa: D102
        return self.forward(y)

    def pinv(self, y: Tensor, **_: object) -> Tensor:  # noqa: D102
        return self.forward(y)

    def extra_repr(self) -> str:
        if self.mask is not None:
            return f"mask={tuple(self.mask.shape)}"
        return f"p={self.p}, seed={self.seed}"


class Grayscale(Operator):
    """Weighted channel sum ``A x = sum_c w_c x_c``: (N, C, H, W) -> (N, 1, H, W).

    ``adjoint`` broadcasts ``w y`` back to C channels; ``pinv y = w y / ||w||^2``.
    Default weights are ITU-R BT.601 luma for RGB.
    """

    linear = True

    def __init__(self, weights: Sequence[float] = (0.299, 0.587, 0.114)) -> None:
        super().__init__()
        w = torch.as_tensor(weights, dtype=torch.float32).flatten()
        if w.numel() == 0 or not bool(w.ne(0).any()):
            raise ValueError("Grayscale: weights must be non-empty and not all zero")
        self.register_buffer("weights", w.reshape(1, -1, 1, 1))

    def _w(self, x: Tensor) -> Tensor:
        return _cast(self.weights, x)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        if x.shape[-3] != self.weights.shape[1]:
            raise ValueError(
                f"Grayscale: expected {self.weights.shape[1]} channels, got {x.shape[-3]}"
            )
        return (x * self._w(x)).sum(dim=-3, keepdim=True)

    def adjoint(self, y: Tensor) -> Tensor:  # noqa: D102
        return y * self._w(y)

    def pinv(self, y: Tensor, **_: object) -> Tensor:  # noqa: D102
        w = self._w(y)
        return y * w / (w * w).sum()

    def extra_repr(self) -> str:
        return f"weights={tuple(round(v, 6) for v in self.weights.flatten().tolist())}"


def _asymmetric_kernel() -> Tensor:
    """Fixed (3, 5, 5) non-symmetric kernel (per-channel ramps on a Gaussian)."""
    g = gaussian_kernel(1.0, 5, dtype=torch.float64)
    ramp = torch.linspace(0.5, 1.5, 5, dtype=torch.float64)
    k = torch.stack([g * ramp, g * ramp[:, None], g * torch.outer(ramp, ramp.flip(0))])
    return (k / k.sum(dim=(-2, -1), keepdim=True)).float()


#: Factories of a small instance of every linear operator.  Each accepts
#: (N, 3, H, W) inputs with H and W divisible by 2.
LINEAR_OPERATORS: dict[str, Callable[[], Operator]] = {
    "identity": Identity,
    "blur": lambda: Blur(gaussian_kernel(1.0)),
    "blur_asym": lambda: Blur(_asymmetric_kernel()),
    "downsample_box": lambda: Downsample(2),
    "downsample_none": lambda: Downsample(2, filter="none"),
    "mask": lambda: Mask(p=0.5, seed=0),
    "grayscale": Grayscale,
    "downsample_blur": lambda: Downsample(2) @ Blur(gaussian_kernel(1.0)),
}


def _parse_filter(value: str) -> str:
    if value not in ("box", "none"):
        raise ValueError("expected 'box' or 'none'")
    return value


# name -> (builder, {parameter: parser}); builders take the parameters as keywords.
_SPECS: dict[str, tuple[Callable[..., Operator], dict[str, Callable[[str], object]]]] = {
    "identity": (Identity, {}),
    "blur": (
        lambda sigma=1.0, size=None: Blur(gaussian_kernel(sigma, size)),
        {"sigma": float, "size": int},
    ),
    "downsample": (
        lambda factor=2, filter="box": Downsample(factor, filter),
        {"factor": int, "filter": _parse_filter},
    ),
    "mask": (lambda p=0.5, seed=0: Mask(p=p, seed=seed), {"p": float, "seed": int}),
    "grayscale": (Grayscale, {}),
    "exposure": (
        lambda gain=1.0, blind=0: Exposure(gain, offset=0.0 if blind else None, learnable=bool(blind)),
        {"gain": float, "blind": int},
    ),
}


def _make_single(spec: str) -> Operator:
    name, _, args = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in _SPECS:
        raise ValueError(
            f"unknown operator {name!r} in {spec!r}; valid choices: {', '.join(sorted(_SPECS))}"
        )
    builder, params = _SPECS[name]
    kwargs: dict[str, object] = {}
    for item in filter(None, (a.strip() for a in args.split(","))):
        key, eq, value = (s.strip() for s in item.partition("="))
        if not eq or key not in params:
            valid = ", ".join(f"{k}=..." for k in params) or "none"
            raise ValueError(f"bad parameter {item!r} for operator {name!r}; valid: {valid}")
        if key in kwargs:
            raise ValueError(f"parameter {key!r} given twice in {spec!r}")
        try:
            kwargs[key] = params[key](value)
        except ValueError as err:
            raise ValueError(f"bad value {value!r} for {name}:{key} ({err})") from None
    try:
        return builder(**kwargs)
    except ValueError as err:
        raise ValueError(f"invalid operator spec {spec!r}: {err}") from None


def make_operator(spec: str) -> Operator:
    """Build an operator from a CLI string ``name[:key=value[,key=value...]]``.

    Names and parameters (defaults in brackets): ``identity``;
    ``blur:sigma=[1.0],size=[2*ceil(3 sigma)+1]`` (Gaussian, sigma in pixels);
    ``downsample:factor=[2],filter=[box]|none``; ``mask:p=[0.5],seed=[0]``
    (random mask, ``p`` = fraction of pixels kept); ``grayscale``;
    ``exposure:gain=[1.0],blind=[0]`` (low light ``y = gain x``; ``blind=1``: gain and an
    offset map are estimated while solving, ``gain`` is the starting value).
    Terms joined by ``@`` compose like the operator: ``"downsample:factor=2@blur:sigma=1"``
    is ``Downsample(2) @ Blur(...)`` (blur first).  Raises ValueError with a
    one-line message on a bad spec.
    """
    terms = spec.split("@") if isinstance(spec, str) else []
    if not terms or not all(t.strip() for t in terms):
        raise ValueError(
            f"empty operator spec {spec!r}; valid choices: {', '.join(sorted(_SPECS))}"
        )
    ops = [_make_single(t) for t in terms]
    out = ops[0]
    for op in ops[1:]:
        out = out @ op
    return out
