"""Classes filed by name (methods, solvers): one decorator to file them, one call to build them."""
from __future__ import annotations

from typing import Any


class Registry(dict):
    """A ``name -> class`` dict: ``@registry.register("name")`` files a class and sets its ``name``;
    :meth:`build` instantiates one by name with a one-line error listing the known names."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str):
        def deco(cls):
            cls.name = name
            self[name] = cls
            return cls

        return deco

    def build(self, name: str, **params) -> Any:
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}; available: {', '.join(sorted(self))}")
        return self[name](**params)
