"""C-BSN (Jang et al., ICCV 2023): conditional blind-spot network + down-sampled invariance.

One DBSNl whose centre taps can be switched on: ``f_m`` (masked, blind) and
``f_u`` (unmasked) share every weight.  Loss, as in the official code:

``L = L_blind + s(t) (L_self + lambda L_inv)``

* ``L_blind = || PD_a^-1(f_m(PD_a(y))) - y ||_1`` (AP-BSN's loss, ``a = 5``);
* ``L_self = || f_u(y) - y ||_1``;
* ``L_inv = || D_2(f_u(y)) - stopgrad(f_m(D_2(y))) ||_1`` with ``D_2`` one random
  pixel per 2x2 cell (:func:`restore.blindspot.random_subsample`): the unmasked
  network at full resolution must agree with the blind one on a sub-sample whose
  noise is nearly independent;
* ``s(t) = clip(t / ramp, 0, 1)`` over the fraction ``ramp`` of training (the
  code ramps over 200k of 500k steps: 0.4); ``lambda = 2``.

Inference: the unmasked network once at full resolution, no PD, no refinement.
The official code's per-patch mean/std normalisation is not used (inputs are
[0, 1] images for every method here).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from restore.blindspot import crop_to_multiple, pd_down, pd_up, random_subsample, subsample_at
from restore.nets import DBSNl

from .base import Method, register


@register("cbsn")
@dataclass
class CBSN(Method):
    pd_train: int = 5
    pd_pad: int = 2
    lam: float = 2.0
    ramp: float = 0.4
    noise: str = "real"
    net_config: dict = field(default_factory=lambda: {"base": 48, "modules": 4})

    def build_net(self, channels: int):
        return DBSNl(channels=channels, **self.net_config)

    def params(self) -> dict:
        return {"pd_train": self.pd_train, "pd_pad": self.pd_pad, "lam": self.lam, "ramp": self.ramp,
                "noise": self.noise}

    def loss(self, net, batch, *, progress=0.0, generator=None):
        a = self.pd_train
        y = crop_to_multiple(batch["noisy"], math.lcm(a, 2))
        blind = (pd_up(net(pd_down(y, a, self.pd_pad)), a, self.pd_pad) - y).abs().mean()
        s = min(1.0, progress / self.ramp) if self.ramp > 0 else 1.0
        if s == 0:
            return blind
        full = net(y, masked=False)
        sub, idx = random_subsample(y, 2, generator)
        with torch.no_grad():
            target = net(sub, masked=True)
        inv = (subsample_at(full, idx, 2) - target).abs().mean()
        return blind + s * ((full - y).abs().mean() + self.lam * inv)

    def restore(self, net, y, sigma=None):
        return net(y, masked=False)
