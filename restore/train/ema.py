"""Exponential moving average of a network's parameters."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps ``shadow = decay * shadow + (1 - decay) * param`` after each step.

    The warm-up ``decay_t = min(decay, (1 + t) / (10 + t))`` lets early steps
    count while the average is still short.
    """

    def __init__(self, net: nn.Module, decay: float = 0.999):
        self.decay = decay
        self.steps = 0
        self.shadow = copy.deepcopy(net).eval()
        for p in self.shadow.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for s, p in zip(self.shadow.parameters(), net.parameters()):
            s.lerp_(p.detach(), 1 - d)

    def state_dict(self) -> dict:
        return {"steps": self.steps, "shadow": self.shadow.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        self.shadow.load_state_dict(state["shadow"])
