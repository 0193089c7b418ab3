"""``restore train METHOD``: a recipe (or flags) to a model file."""
from __future__ import annotations

import sys
from pathlib import Path


def recipe_from_args(args) -> dict:
    from restore.recipe import load_recipe

    if args.recipe:
        recipe = load_recipe(args.recipe)
        if recipe["method"] != args.method:
            raise ValueError(f"{args.recipe}: recipe trains {recipe['method']!r}, not {args.method!r}")
    else:
        if not args.data:
            raise ValueError("give --data DIR (a folder of noisy images) or --recipe YAML")
        recipe = {"name": Path(args.output).stem, "method": args.method, "data": {"kind": "noisy"},
                  "train": {"steps": 5000}}
    data, train = recipe.setdefault("data", {}), recipe.setdefault("train", {})
    if args.data:
        data["path"] = args.data
        if not args.synthetic:
            data["kind"] = "noisy"  # user data is noisy unless --synthetic says it is clean
            data.pop("sigma_range", None)
    if not data.get("path"):
        raise ValueError("the recipe names no data path; give --data DIR")
    if args.channels:
        data["channels"] = args.channels
    elif "channels" not in data:
        data["channels"] = _channels_of(data["path"])
    kind, value = "gaussian", ""
    if args.noise:
        kind, _, value = args.noise.strip().lower().partition(":")
        if kind not in ("gaussian", "poisson", "gamma", "poisson-gaussian"):
            raise ValueError(f"--noise {args.noise}: use gaussian[:SIGMA], poisson[:ZETA], gamma[:K] or "
                             "poisson-gaussian[:GAIN,SIGMA]")
        data["noise"] = kind
        recipe["noise"] = kind
        if kind != "gaussian" and args.method in ("n2s", "gr2r"):
            if kind == "poisson-gaussian":
                recipe["noise"] = "gaussian"  # trained as Gaussian data after the GAT
            else:
                recipe.setdefault("method_params", {})["noise"] = kind
    if args.synthetic:
        lo, hi = (float(v) for v in args.synthetic.split(","))
        if kind == "poisson-gaussian":
            raise ValueError("--synthetic supports gaussian, poisson and gamma noise")
        data.update(kind="synthetic", **({"sigma_range": [lo, hi]} if kind == "gaussian" else {"level_range": [lo, hi]}))
    elif args.noise:
        try:
            if kind == "gaussian":
                data["sigma"] = float(value) if value else None  # 8-bit units, as in 'restore denoise'
            elif kind == "poisson-gaussian":
                data["level"] = [float(v) for v in value.split(",")] if value else None
            else:
                data["level"] = float(value) if value else None
        except ValueError:
            raise ValueError(f"--noise {args.noise}: the parameter must be a number "
                             "(poisson-gaussian: GAIN,SIGMA)") from None
    for key in ("minutes", "steps", "seed", "device"):
        if getattr(args, key) is not None:
            train[key] = getattr(args, key)
    return recipe


def _channels_of(path) -> int:
    """1 or 3: the channel count of the first image in the folder."""
    from restore.io import list_images, read_image

    files = [f for f in list_images([str(path)]) if f.is_file()]
    if not files:
        raise ValueError(f"{path}: no images found — give a folder of PNG/JPEG/TIFF/.npy files")
    return read_image(files[0]).channels


def run_train(args) -> int:
    from restore.recipe import run_recipe

    recipe = recipe_from_args(args)
    print(f"training {recipe['method']} ({recipe.get('name')}) on {recipe['data']['path']} -> {args.output}",
          file=sys.stderr)
    result = run_recipe(recipe, args.output)
    state = "finished" if result["finished"] else "stopped by the time budget (resume: run the same command again)"
    print(f"{args.output}: {result['steps']} steps, loss {result['loss']:.6f}, "
          f"{result['seconds'] / 60:.1f} min, {state}")
    return 0
