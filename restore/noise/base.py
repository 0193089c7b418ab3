"""Abstract noise model and parameter-broadcasting helpers.

Conventions used by every noise model in :mod:`restore.noise`:

* Images are float tensors of shape ``(N, C, H, W)`` with clean values in
  ``[0, 1]`` (display-referred).  Noisy samples may leave ``[0, 1]``; they are
  never clipped here (clipping changes the noise statistics).
* Noise parameters (``sigma``, ``gain``, ``k`` ...) are stored as *buffers* so
  that ``module.to(device)`` / ``state_dict`` work.  A parameter may be a
  python float, a tensor of shape ``()`` (shared), ``(N,)`` (one value per
  image) or any tensor broadcastable against ``(N, C, H, W)`` such as
  ``(N, C, 1, 1)``.  :func:`_bcast` reshapes it against an image; it also
  casts it to the image's dtype/device with ``type_as`` so results follow the
  input (no ``.to()`` calls in ``forward``).
* Sampling takes an optional :class:`torch.Generator` for reproducibility.
  The generator must live on the same device as the image.
"""
from __future__ import annotations

import abc
from typing import Optional, Union

import torch
from torch import Tensor, nn

ParamLike = Union[float, int, Tensor]

__all__ = ["NoiseModel", "ParamLike", "_bcast", "_as_param"]


def _as_param(value: ParamLike, name: str = "parameter", positive: bool = True) -> Tensor:
    """Convert a user parameter to a floating tensor suitable for a buffer.

    Python numbers and integer tensors become ``torch.get_default_dtype()``
    (float32); floating tensors keep their dtype.  Raises ``ValueError`` if
    ``positive`` and some value is ``<= 0`` or non-finite.
    """
    t = torch.as_tensor(value)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    t = t.detach().clone()
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and not (t > 0).all():
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return t


def _bcast(p: Tensor, x: Tensor) -> Tensor:
    """Reshape parameter ``p`` so that it broadcasts against image ``x``.

    * ``p.ndim == 0``: returned as is (shared by all pixels/images).
    * ``p.ndim == 1``: per-image values, ``(N,) -> (N, 1, 1, 1)`` (in general
      ``(N,) + (1,) * (x.ndim - 1)``); a length-1 vector is also accepted.
    * ``p.ndim == x.ndim``: assumed already broadcastable, e.g. ``(N, C, 1, 1)``.

    The result is cast to ``x``'s dtype and device with ``type_as``.
    """
    if not torch.is_tensor(p):
        p = torch.as_tensor(p)
    if p.ndim == 1:
        if p.shape[0] not in (1, x.shape[0]):
            raise ValueError(
                f"per-image parameter has {p.shape[0]} values but the batch has "
                f"{x.shape[0]} images"
            )
        p = p.reshape((p.shape[0],) + (1,) * (x.ndim - 1))
    elif p.ndim != 0 and p.ndim != x.ndim:
        raise ValueError(
            f"parameter of shape {tuple(p.shape)} cannot broadcast against an image "
            f"of shape {tuple(x.shape)}; use (), (N,) or a {x.ndim}-d broadcastable shape"
        )
    return p.type_as(x)


class NoiseModel(nn.Module, metaclass=abc.ABCMeta):
    """Abstract forward noise model ``p(y | x)``.

    Subclasses implement:

    * :meth:`sample` -- draw ``y ~ p(y | x)`` (``forward`` is an alias);
    * :meth:`variance` -- ``Var[y | x]`` per pixel, same shape as ``x``;
    * :meth:`nll` -- negative log-likelihood ``-log p(y | x)`` per image,
      summed over pixels (shape ``(N,)``); each subclass documents which
      ``x``-independent constants, if any, are dropped;
    * :meth:`tweedie` -- posterior-mean-style estimate of ``x`` from ``y`` and
      the score ``d/dy log p(y)`` of the *noisy marginal* (Noise2Score,
      Kim & Ye, NeurIPS 2021).  The domain in which the score is taken is
      documented per family (e.g. the count image for :class:`Poisson`).
    """

    def _param(self, name: str, x: Tensor) -> Tensor:
        """Buffer ``name`` broadcast against ``x`` (see :func:`_bcast`)."""
        return _bcast(getattr(self, name), x)

    @abc.abstractmethod
    def sample(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """Draw a noisy observation ``y`` of the clean image ``x``."""

    @abc.abstractmethod
    def variance(self, x: Tensor) -> Tensor:
        """Per-pixel ``Var[y | x]``, a tensor shaped like ``x``."""

    @abc.abstractmethod
    def nll(self, y: Tensor, x: Tensor) -> Tensor:
        """Negative log-likelihood ``-log p(y | x)`` summed per image, shape ``(N,)``."""

    @abc.abstractmethod
    def tweedie(self, y: Tensor, score: Tensor) -> Tensor:
        """Estimate ``x`` from ``y`` and the score of the noisy marginal."""

    def forward(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        return self.sample(x, generator=generator)

    @staticmethod
    def _per_image(t: Tensor) -> Tensor:
        """Sum a per-pixel tensor over all but the first dimension -> ``(N,)``."""
        return t.reshape(t.shape[0], -1).sum(dim=1)

    @staticmethod
    def _randn(x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
        return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
