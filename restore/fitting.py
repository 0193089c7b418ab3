"""Training from the library: what ``restore train`` does, as functions.

    import restore
    restore.fit("n2s", data="noisy_tiffs/", noise="poisson", output="poisson.safetensors", steps=5000)
"""
from __future__ import annotations

from pathlib import Path

FAMILIES = ("gaussian", "poisson", "gamma", "poisson-gaussian", "real")


def build_recipe(method: str, *, output: str | Path = "model.safetensors", recipe: str | Path | None = None,
                 data: str | Path | None = None, noise: str | None = None, synthetic: str | None = None,
                 channels: int | None = None, minutes: float | None = None, steps: int | None = None,
                 seed: int | None = None, device: str | None = None) -> dict:
    """A training recipe from a recipe file and/or settings (keyword values override the file).

    ``noise``: ``gaussian[:SIGMA]`` (8-bit units), ``poisson[:ZETA]``, ``gamma[:K]`` or
    ``poisson-gaussian[:GAIN,SIGMA]``; a parameter not given is estimated per image.
    ``synthetic="LO,HI"`` treats ``data`` as clean images and draws the level per patch
    (Gaussian sigma in 8-bit units, Poisson zeta or Gamma k).
    """
    from restore.recipe import load_recipe

    if recipe:
        r = load_recipe(recipe)
        if r["method"] != method:
            raise ValueError(f"{recipe}: recipe trains {r['method']!r}, not {method!r}")
    else:
        if not data:
            raise ValueError("give --data DIR (a folder of noisy images) or --recipe YAML")
        r = {"name": Path(output).stem, "method": method, "data": {"kind": "noisy"}, "train": {"steps": 5000}}
        if method == "prior":  # a small DDPM prior on 64x64 patches (recipes/prior/ has the shipped ones)
            r["net"] = {"widths": [32, 64, 128, 256], "depth": 2, "image_size": 64}
            r["data"].update(patch=64, batch_size=16)
    d, train = r.setdefault("data", {}), r.setdefault("train", {})
    if data:
        d["path"] = str(data)
        if not synthetic:
            # user data is noisy unless synthetic says it is clean; a diffusion prior learns clean images
            d["kind"] = "clean" if method == "prior" else "noisy"
            d.pop("sigma_range", None)
    if not d.get("path"):
        raise ValueError("the recipe names no data path; give --data DIR")
    if channels:
        d["channels"] = channels
    elif "channels" not in d:
        d["channels"] = _channels_of(d["path"])
    kind, value = "gaussian", ""
    if noise:
        kind, _, value = noise.strip().lower().partition(":")
        if kind not in FAMILIES:
            raise ValueError(f"--noise {noise}: use gaussian[:SIGMA], poisson[:ZETA], gamma[:K], "
                             "poisson-gaussian[:GAIN,SIGMA] or real (camera noise, for apbsn/cbsn/sdap)")
        d["noise"] = kind
        r["noise"] = "gaussian" if kind == "poisson-gaussian" else kind  # PG is trained as Gaussian after the GAT
        if kind in ("poisson", "gamma") and method in ("n2s", "gr2r"):
            r.setdefault("method_params", {})["noise"] = kind
    if synthetic:
        lo, hi = (float(v) for v in str(synthetic).split(","))
        if kind == "poisson-gaussian":
            raise ValueError("--synthetic supports gaussian, poisson and gamma noise")
        d.update(kind="synthetic", **({"sigma_range": [lo, hi]} if kind == "gaussian" else {"level_range": [lo, hi]}))
    elif noise:
        try:
            if kind == "gaussian":
                d["sigma"] = float(value) if value else None  # 8-bit units, as in 'restore denoise'
            elif kind == "poisson-gaussian":
                d["level"] = [float(v) for v in value.split(",")] if value else None
            else:
                d["level"] = float(value) if value else None
        except ValueError:
            raise ValueError(f"--noise {noise}: the parameter must be a number (poisson-gaussian: GAIN,SIGMA)") from None
    for key, v in (("minutes", minutes), ("steps", steps), ("seed", seed), ("device", device)):
        if v is not None:
            train[key] = v
    return r


def _channels_of(path) -> int:
    """1 or 3: the channel count of the first image in the folder."""
    from restore.io import list_images, read_image

    files = [f for f in list_images([str(path)]) if f.is_file()]
    if not files:
        raise ValueError(f"{path}: no images found — give a folder of PNG/JPEG/TIFF/.npy files")
    return read_image(files[0]).channels


def fit(method: str, *, output: str | Path, log=None, **settings) -> dict:
    """Train ``method`` (``n2s``, ``r2r``, ``gr2r``, ``n2v``) and write ``output`` (safetensors);
    ``settings`` as in :func:`build_recipe`.  Returns the training summary (steps, loss, seconds)."""
    from restore.recipe import run_recipe

    return run_recipe(build_recipe(method, output=output, **settings), output, log=log)
