"""Supervised training on synthetic (noisy, clean) pairs: ``||f(y, sigma) - clean||^2``.

Only for data whose clean target is *synthesised* (e.g. the ELD recipe for RAW:
clean sRGB images un-processed to RAW plus calibrated sensor noise,
``datasets/raw.py`` with ``pairs: true``); the self-supervised methods need no clean image.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .base import Method, register


@register("supervised")
@dataclass
class Supervised(Method):
    net_config: dict = field(default_factory=lambda: {"widths": [32, 64, 128, 256], "depth": 2, "cond": True})

    def prepare(self, dataset) -> None:
        if not getattr(dataset, "pairs", False):
            raise ValueError("supervised training needs synthetic pairs (data.pairs: true, e.g. kind raw-synthetic)")

    def restore(self, net, y, sigma):
        return net(y, sigma)

    def loss(self, net, batch, *, progress=0.0, generator=None):
        return torch.mean((net(batch["noisy"], batch["sigma"]) - batch["clean"]) ** 2)


@register("r2r-bank")
@dataclass
class R2RBank(Supervised):
    """Recorrupted-to-Recorrupted with the recorruption made by the dataset from a bank of the
    images' own noise residuals (:class:`restore.datasets.real.ResidualBank`,
    :mod:`restore.realfit`): MSE between ``f(y + a z, sigma_in)`` and ``y - z / a``."""

    def prepare(self, dataset) -> None:
        if not getattr(dataset, "recorrupted", False):
            raise ValueError("r2r-bank needs recorrupted pairs (data.kind: real-bank)")

    def loss(self, net, batch, *, progress=0.0, generator=None):
        return torch.mean((net(batch["noisy"], batch["sigma"]) - batch["target"]) ** 2)
