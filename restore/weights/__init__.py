"""Shipped default weights (safetensors) and the recipes that trained them.

Each file's header carries its method, network config and the full recipe;
``recipes/train-<name>.yaml`` in the repository reproduces it with ``restore train``.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent

#: (method family, channels, noise) -> file name.  Poisson / Poisson-Gaussian
#: images without a Poisson model go through the Gaussian model between the
#: generalised Anscombe transform and its exact unbiased inverse.
DEFAULTS = {
    ("default", 1, "gaussian"): "default-gray.safetensors",
    ("default", 1, "gamma"): "default-gray-gamma.safetensors",  # generalised R2R; colour: per channel
    # camera RAW (GAT domain, Bayer-opponent channels): the grey default trained further self-supervised on
    # synthetic noisy RAW (recipes/raw/n2s-selfsup.yaml + n2s-selfsup-stage2.yaml); used by restore.rawdenoise
    ("default", 1, "raw"): "default-raw.safetensors",
    # SDAP trained self-supervised on real noisy photos (recipes/bsn-real/sdap.yaml): `--method sdap
    # --noise real`; the default `--noise real` route (grey model through pixel-shuffle) measured better.
    ("sdap", 3, "real"): "sdap-real.safetensors",
    # No colour default: the grey model in an opponent colour space measured
    # better than a colour network (restore.color; recipes/train-color-r2r.yaml).
}


#: Shipped diffusion priors by name (``restore solve --prior color64``): DDPM epsilon networks trained on
#: 64x64 clean patches of ../shared/data/train (recipes/prior/prior-*.yaml), float16.
PRIORS = {
    "gray64": "prior-gray64.safetensors",
    "color64": "prior-color64.safetensors",
}


def default_weights(method: str = "default", channels: int = 1, noise: str = "gaussian") -> Path:
    """Path of the shipped weights for ``method``, ``channels`` and ``noise`` family.

    Raises FileNotFoundError (one line, with the fix) when none is shipped.
    """
    name = DEFAULTS.get((method, channels, noise))
    path = HERE / name if name else None
    if path is None or not path.is_file():
        shipped = ", ".join(f"{m} ({'grey' if c == 1 else 'colour'}, {n})" for (m, c, n), f in DEFAULTS.items()
                            if (HERE / f).is_file())
        kind = "grey" if channels == 1 else "colour"
        raise FileNotFoundError(
            f"no shipped {kind} {noise} weights for method {method!r} (shipped: {shipped or 'none'}); "
            f"train one with 'restore train n2s --noise {noise} ...' and pass --model")
    return path


def shipped() -> list[Path]:
    return sorted(HERE.glob("*.safetensors"))
