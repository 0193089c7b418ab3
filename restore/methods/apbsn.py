"""AP-BSN (Lee, Son & Lee, CVPR 2022): asymmetric pixel-shuffle down-sampling for a
blind-spot network on real, spatially correlated sRGB noise.

Training: ``L = || PD_a^-1(BSN(PD_a(y))) - y ||_1`` with a large stride ``a``
(5: the noise of neighbouring sub-image pixels is nearly independent, so the
blind spot's assumption holds).  Inference with a small stride ``b`` (2: less
aliasing), then a refinement (``refine``, default ``"e"``; the paper uses R^3):

* ``"none"``: ``x0 = PD_b^-1(BSN(PD_b(y)))``;
* ``"e"``: SDAP's enhancement pass, the BSN once more at full resolution on ``x0``;
* ``"r3"``: random-replacing refinement (``passes`` BSN runs, see
  :func:`restore.blindspot.inference.r3_refine`).

Needs no noise model or level: ``sigma`` is ignored.  The network is DBSNl
(:class:`restore.nets.DBSNl`; ``net_config`` sets ``base`` and ``modules``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from restore.blindspot import crop_to_multiple, pd_down, pd_up
from restore.blindspot.inference import pd_apply, r3_refine
from restore.nets import DBSNl

from .base import Method, register

REFINEMENTS = ("none", "e", "r3")


@dataclass
class DownsampledBSN(Method):
    """Shared inference of the down-sampling blind-spot methods (AP-BSN, SDAP)."""

    pd_test: int = 2
    pd_pad: int = 2
    pd_form: str = "mosaic"
    refine: str = "e"  # measured (README, sidd12): E keeps most of R3's gain at a fifth of its time
    r3_passes: int = 8
    r3_p: float = 0.16
    noise: str = "real"
    net_config: dict = field(default_factory=lambda: {"base": 48, "modules": 4})
    uses_origins = True

    def __post_init__(self):
        if self.refine not in REFINEMENTS:
            raise ValueError(f"refine must be one of {REFINEMENTS}, got {self.refine!r}")

    def build_net(self, channels: int):
        return DBSNl(channels=channels, **self.net_config)

    def input_multiple(self, net) -> int:
        return self.pd_test  # tiles start on the PD grid

    def params(self) -> dict:
        return {"pd_test": self.pd_test, "pd_pad": self.pd_pad, "pd_form": self.pd_form, "refine": self.refine,
                "r3_passes": self.r3_passes, "r3_p": self.r3_p, "noise": self.noise}

    def first_estimate(self, net, y: torch.Tensor) -> torch.Tensor:
        return pd_apply(net, y, self.pd_test, pad=self.pd_pad, form=self.pd_form)

    def restore(self, net, y, sigma=None, origins=None):
        x0 = self.first_estimate(net, y)
        if self.refine == "none":
            return x0
        if self.refine == "e":
            return net(x0)
        return r3_refine(net, y, x0, passes=self.r3_passes, p=self.r3_p, origins=origins)


@register("apbsn")
@dataclass
class APBSN(DownsampledBSN):
    """AP-BSN: PD stride ``pd_train`` (5) for the L1 self-reconstruction loss."""

    pd_train: int = 5

    def params(self) -> dict:
        return {**super().params(), "pd_train": self.pd_train}

    def loss(self, net, batch, *, progress=0.0, generator=None):
        a = self.pd_train
        y = crop_to_multiple(batch["noisy"], a)
        return (pd_up(net(pd_down(y, a, self.pd_pad)), a, self.pd_pad) - y).abs().mean()
