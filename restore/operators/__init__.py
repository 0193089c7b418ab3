"""Degradation operators ``A`` for inverse problems ``y = A(x) + noise``.

Images are float tensors of shape (N, C, H, W).  Linear operators provide
``forward`` (``A``), ``adjoint`` (``A^T``) and ``pinv`` (``A^+``); compose with
``A @ B``.  :func:`make_operator` builds one from a CLI string such as
``"blur:sigma=2"``.
"""
from .base import Composed, Operator
from .exposure import Exposure
from .linear import (
    LINEAR_OPERATORS,
    Blur,
    Downsample,
    Grayscale,
    Identity,
    Mask,
    gaussian_kernel,
    make_operator,
)

__all__ = [
    "Operator",
    "Composed",
    "Identity",
    "Blur",
    "Downsample",
    "Mask",
    "Grayscale",
    "Exposure",
    "gaussian_kernel",
    "LINEAR_OPERATORS",
    "make_operator",
]
