"""The method protocol and registry.

A *method* says how a network is trained from noisy data (``loss``) and how it
turns a noisy image into an estimate (``restore``).  The training loop knows a
method only through ``loss(net, batch)``; inference (tiling, CLI, api) only
through ``restore(net, y, sigma)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from restore.nets import CompactUNet
from restore.registry import Registry

METHODS = Registry("method")
register = METHODS.register


def get_method(name: str, **params) -> "Method":
    return METHODS.build(name, **params)


@dataclass
class Method:
    """Base class: subclasses set ``name`` via :func:`register`."""

    name = "base"
    net_config: dict = field(default_factory=lambda: {"widths": [32, 64, 128, 256], "depth": 2})

    def build_net(self, channels: int) -> nn.Module:
        return CompactUNet(channels=channels, **self.net_config)

    def params(self) -> dict:
        """Method hyper-parameters saved beside the weights."""
        return {}

    def prepare(self, dataset) -> None:
        """Look at the training data before training (e.g. its noise-level range)."""

    def loss(self, net: nn.Module, batch: dict, *, progress: float = 0.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Scalar training loss on ``batch`` (``noisy`` (B,C,P,P), ``sigma`` (B,)).

        ``progress`` in [0, 1] is the fraction of training done (for annealing).
        """
        raise NotImplementedError

    #: True when ``restore`` takes ``origins`` (the global top-left pixel of each tile), for
    #: randomness that is a function of image coordinates (tiled == whole-image output).
    uses_origins = False

    def restore(self, net: nn.Module, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Estimate ``(N, C, H, W)`` from noisy ``y`` with noise level ``sigma`` (N,)."""
        return net(y, sigma)

    def input_multiple(self, net: nn.Module) -> int:
        """Spatial size multiple ``restore`` needs (tile origins are kept on this grid)."""
        return int(getattr(net, "multiple", 1))

    def check_level(self, sigma: float) -> str | None:
        """A warning when ``sigma`` is outside what the model was trained for, else None."""
        return None
