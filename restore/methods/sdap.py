"""SDAP (Pan et al., ICCV 2023): random sub-samples generation + cyclic sample difference.

Every ``s x s`` cell (``s = 5``) is randomly permuted; sub-image ``j`` takes
the pixel at the ``j``-th permuted position of every cell, so the ``s^2``
sub-images use each pixel once (:func:`restore.blindspot.random_subsamples`).
The blind-spot network learns ``L = sum_j || f(s_j) - s_(j+1 mod s^2) ||_1``:
each sub-image is the (independently noisy) target of its neighbour in the
cycle, and the sampling difference perturbs the input.

Inference (the paper's "E" variant by default): PD stride 2 in batch form,
the network, pixel shuffle back, then one enhancement pass at full resolution
(``refine="e"``; ``"r3"`` and ``"none"`` as in AP-BSN).
"""
from __future__ import annotations

from dataclasses import dataclass

from restore.blindspot import crop_to_multiple, random_subsamples

from .apbsn import DownsampledBSN
from .base import register


@register("sdap")
@dataclass
class SDAP(DownsampledBSN):
    stride: int = 5
    pd_form: str = "batch"
    refine: str = "e"

    def params(self) -> dict:
        return {**super().params(), "stride": self.stride}

    def loss(self, net, batch, *, progress=0.0, generator=None):
        s = self.stride
        y = crop_to_multiple(batch["noisy"], s)
        subs = random_subsamples(y, s, generator)  # (N, s^2, C, h, w)
        n, k, c, h, w = subs.shape
        pred = net(subs.reshape(n * k, c, h, w)).reshape(n, k, c, h, w)
        return (pred - subs.roll(-1, dims=1)).abs().mean()
