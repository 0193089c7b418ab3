"""Shipped default weights (safetensors) and the recipes that trained them.

Each file's header carries its method, network config and the full recipe;
``recipes/train-<name>.yaml`` in the repository reproduces it with ``restore train``.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent

#: (method family, channels) -> file name
DEFAULTS = {
    ("default", 1): "default-gray.safetensors",
    # No colour default: the grey model in an opponent colour space measured
    # better than a colour network (restore.color; recipes/train-color-r2r.yaml).
}


def default_weights(method: str = "default", channels: int = 1) -> Path:
    """Path of the shipped weights for ``method`` and ``channels``.

    Raises FileNotFoundError (one line, with the fix) when none is shipped.
    """
    name = DEFAULTS.get((method, channels))
    path = HERE / name if name else None
    if path is None or not path.is_file():
        shipped = ", ".join(f"{m} ({'grey' if c == 1 else 'colour'})" for (m, c), f in DEFAULTS.items()
                            if (HERE / f).is_file())
        raise FileNotFoundError(
            f"no shipped {'grey' if channels == 1 else 'colour'} weights for method {method!r} "
            f"(shipped: {shipped or 'none'}); train one with 'restore train {method} ...' and pass --model")
    return path


def shipped() -> list[Path]:
    return sorted(HERE.glob("*.safetensors"))
