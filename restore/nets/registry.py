"""Network architectures by name: a model file's ``net`` config names its ``arch``."""
from __future__ import annotations

from torch import nn

ARCHS: dict[str, type[nn.Module]] = {}


def register_arch(cls: type[nn.Module]) -> type[nn.Module]:
    """Class decorator: ``build_net({"arch": cls.__name__, ...})`` builds it."""
    ARCHS[cls.__name__] = cls
    return cls


def build_net(config: dict) -> nn.Module:
    """Build a network from the dict its ``config()`` returned (``arch`` + keyword arguments)."""
    cfg = dict(config)
    arch = cfg.pop("arch", "CompactUNet")
    if arch not in ARCHS:
        raise ValueError(f"unknown network architecture {arch!r}; known: {', '.join(sorted(ARCHS))}")
    return ARCHS[arch](**cfg)
