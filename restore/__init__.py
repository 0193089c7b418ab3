"""restore: self-supervised image restoration and denoising.

``import restore`` is cheap: submodules (torch models, io back-ends) load on
first use.  The main entry points are :func:`restore.denoise` and
:func:`restore.load`.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "denoise": ("restore.api", "denoise"),
    "load": ("restore.api", "load"),
    "fit": ("restore.fitting", "fit"),
    "solve": ("restore.solving", "solve"),
}


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'restore' has no attribute {name!r}")


__all__ = ["denoise", "load", "fit", "solve", "__version__"]
